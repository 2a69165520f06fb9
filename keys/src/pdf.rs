//! A minimal PDF 1.4 writer: A4 pages of Helvetica text and filled rectangles.

use std::fmt::Write;

/// A text-drawing operator sequence at (x, y) in points, with PDF string escaping.
/// Characters outside Latin-1 are replaced by `?` (the built-in font has no others).
pub fn text_op(x: f32, y: f32, size: f32, text: &str) -> String {
    let mut escaped = String::new();
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            ' '..='~' => escaped.push(c),
            _ => escaped.push('?'),
        }
    }
    format!("BT /F1 {size:.1} Tf {x:.1} {y:.1} Td ({escaped}) Tj ET\n")
}

/// A PDF with one A4 page per content stream.
pub fn document(pages: &[String]) -> Vec<u8> {
    let mut objects: Vec<String> = Vec::new();
    // 1: catalog, 2: pages, 3: font; then per page a page object and its content stream.
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", 4 + 2 * i))
        .collect();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    objects.push(format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        pages.len()
    ));
    objects.push(
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
    );
    for (i, content) in pages.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ));
    }
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, obj) in objects.iter().enumerate() {
        offsets.push(out.len());
        let _ = write!(out, "{} 0 obj\n{obj}\nendobj\n", i + 1);
    }
    let xref = out.len();
    let _ = write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for o in offsets {
        let _ = writeln!(out, "{o:010} 00000 n ");
    }
    let _ = write!(
        out,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cross_reference_table_points_at_each_object() {
        let doc = String::from_utf8(document(&[text_op(10.0, 10.0, 12.0, "a (b) \\ c")])).unwrap();
        assert!(doc.starts_with("%PDF-1.4\n") && doc.ends_with("%%EOF\n"));
        assert!(doc.contains("(a \\(b\\) \\\\ c) Tj"));
        let xref_at: usize = doc.lines().rev().nth(1).unwrap().parse().unwrap();
        assert!(doc[xref_at..].starts_with("xref\n"));
        let entries: Vec<usize> = doc[xref_at..]
            .lines()
            .skip(3)
            .take_while(|l| l.ends_with(" n "))
            .map(|l| l[..10].parse().unwrap())
            .collect();
        assert_eq!(entries.len(), 5);
        for (i, off) in entries.iter().enumerate() {
            assert!(doc[*off..].starts_with(&format!("{} 0 obj", i + 1)));
        }
    }
}
