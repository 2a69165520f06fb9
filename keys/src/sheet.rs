//! Printable paper-key sheets: plain text, standalone HTML, or PDF, with a QR code per key.

use std::fmt::Write;

use qrcode::{Color, EcLevel, QrCode};

/// One key on a sheet.
#[derive(Clone)]
pub struct PaperKey {
    /// What the key is, like "Device identity" or "Space accounts".
    pub title: String,
    /// Public facts printed with it (public key, address), one per line.
    pub details: Vec<String>,
    /// The 24 words.
    pub words: Vec<&'static str>,
}

impl std::fmt::Debug for PaperKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaperKey")
            .field("title", &self.title)
            .finish_non_exhaustive()
    }
}

const WARNING: &str = "Anyone holding these words holds this key. Print this sheet, keep it somewhere safe, \
and delete the file.";

/// The modules of a key's QR code (it encodes the words, space-separated), row by row.
pub fn qr_modules(words: &[&str]) -> (usize, Vec<bool>) {
    let code = QrCode::with_error_correction_level(words.join(" "), EcLevel::M)
        .expect("24 words fit in a QR code");
    let width = code.width();
    (
        width,
        code.to_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect(),
    )
}

/// Plain text: the words numbered in four columns.
pub fn text(keys: &[PaperKey]) -> String {
    let mut out = String::new();
    for key in keys {
        let _ = writeln!(out, "cobox paper key: {}", key.title);
        for d in &key.details {
            let _ = writeln!(out, "  {d}");
        }
        out.push('\n');
        for row in 0..6 {
            let line: Vec<String> = (0..4)
                .map(|col| {
                    let i = col * 6 + row;
                    format!("{:>2}. {:<10}", i + 1, key.words[i])
                })
                .collect();
            let _ = writeln!(out, "  {}", line.join(" ").trim_end());
        }
        let _ = writeln!(out, "\n{WARNING}\n");
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The QR code of `parts` joined as one SVG path of its dark modules inside a 4-module
/// quiet zone: (the side of the square it fills, the path's `d`).
pub fn qr_path(parts: &[&str]) -> (usize, String) {
    let (w, dark) = qr_modules(parts);
    let quiet = 4;
    let mut path = String::new();
    for (i, d) in dark.iter().enumerate() {
        if *d {
            let _ = write!(path, "M{} {}h1v1h-1z", i % w + quiet, i / w + quiet);
        }
    }
    (w + 2 * quiet, path)
}

fn svg(words: &[&str]) -> String {
    let (size, path) = qr_path(words);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"200\" height=\"200\" \
         shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    )
}

/// A standalone HTML page (no external resources), one key per printed page.
pub fn html(keys: &[PaperKey]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>cobox paper keys</title>\n<style>\
         body{font-family:sans-serif;margin:2em}section{page-break-after:always;max-width:42em}\
         ol{columns:4;font-family:monospace;font-size:1.1em;line-height:1.8}code{word-break:break-all}\
         .warn{border:2px solid #000;padding:.6em}</style></head><body>\n",
    );
    for key in keys {
        let _ = writeln!(
            out,
            "<section><h1>cobox paper key: {}</h1>",
            escape(&key.title)
        );
        for d in &key.details {
            let _ = writeln!(out, "<p><code>{}</code></p>", escape(d));
        }
        out.push_str("<ol>");
        for w in &key.words {
            let _ = write!(out, "<li>{w}</li>");
        }
        out.push_str("</ol>\n");
        out.push_str(&svg(&key.words));
        let _ = writeln!(out, "\n<p class=\"warn\">{}</p></section>", escape(WARNING));
    }
    out.push_str("</body></html>\n");
    out
}

/// A PDF, one A4 page per key.
pub fn pdf(keys: &[PaperKey]) -> Vec<u8> {
    let pages: Vec<String> = keys.iter().map(pdf_page).collect();
    crate::pdf::document(&pages)
}

fn pdf_page(key: &PaperKey) -> String {
    use crate::pdf::text_op;
    let mut ops = String::new();
    ops.push_str(&text_op(
        56.0,
        780.0,
        18.0,
        &format!("cobox paper key: {}", key.title),
    ));
    let mut y = 756.0;
    for d in &key.details {
        ops.push_str(&text_op(56.0, y, 8.0, d));
        y -= 14.0;
    }
    y -= 16.0;
    for row in 0..6 {
        for col in 0..4 {
            let i = col * 6 + row;
            ops.push_str(&text_op(
                56.0 + col as f32 * 125.0,
                y,
                12.0,
                &format!("{:>2}. {}", i + 1, key.words[i]),
            ));
        }
        y -= 22.0;
    }
    let (w, dark) = qr_modules(&key.words);
    let module = 4.0f32;
    let (x0, y0) = (56.0f32, y - 20.0);
    ops.push_str("0 g\n");
    for (i, d) in dark.iter().enumerate() {
        if *d {
            let (cx, cy) = ((i % w) as f32, (i / w) as f32);
            let _ = writeln!(
                ops,
                "{:.1} {:.1} {module:.1} {module:.1} re f",
                x0 + cx * module,
                y0 - (cy + 1.0) * module
            );
        }
    }
    let bottom = y0 - w as f32 * module - 30.0;
    ops.push_str(&text_op(56.0, bottom, 9.0, WARNING));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PaperKey {
        let secret = crate::secret::Secret32::from_bytes([1; 32]);
        PaperKey {
            title: "Space <accounts>".into(),
            details: vec!["address 11".into()],
            words: crate::paper::to_words(&secret),
        }
    }

    #[test]
    fn text_lists_all_24_words_numbered() {
        let k = key();
        let t = text(std::slice::from_ref(&k));
        for (i, w) in k.words.iter().enumerate() {
            assert!(t.contains(&format!("{}. {w}", i + 1)), "{t}");
        }
    }

    #[test]
    fn html_is_standalone_and_escapes_titles() {
        let h = html(&[key()]);
        assert!(h.contains("Space &lt;accounts&gt;"));
        assert!(!h.contains("src=\"http"), "no external resources");
        assert_eq!(h.matches("<li>").count(), 24);
        assert!(h.contains("<svg"));
    }

    #[test]
    fn the_qr_code_encodes_the_words() {
        let k = key();
        let (w, dark) = qr_modules(&k.words);
        assert_eq!(dark.len(), w * w);
        // Finder pattern: the top-left 7x7 corner starts with a dark row.
        assert!(dark[..7].iter().all(|d| *d));
    }
}
