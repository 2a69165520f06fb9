//! A QR code drawn with text: half-block characters, two module rows per line.
//!
//! Light modules (and the quiet zone) are drawn as blocks and dark modules as blanks, so the
//! code reads correctly as light-on-dark on a terminal or a serial console, where the
//! background is dark.

/// Blank modules around the code, as the QR standard asks.
const QUIET: usize = 2;

/// The QR code of `text` (error correction M), one line per two module rows, each line
/// ending with a newline.
pub fn render(text: &str) -> String {
    let (width, dark) = cobox_keys::sheet::qr_modules(&[text]);
    let size = width + 2 * QUIET;
    let is_dark = |row: usize, col: usize| -> bool {
        if row < QUIET || col < QUIET || row >= width + QUIET || col >= width + QUIET {
            return false;
        }
        dark[(row - QUIET) * width + (col - QUIET)]
    };
    let mut out = String::new();
    for row in (0..size).step_by(2) {
        for col in 0..size {
            let top = !is_dark(row, col);
            let bottom = !is_dark(row + 1, col);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the drawing back into modules: `true` for dark.
    fn modules(drawing: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in drawing.lines() {
            let (top, bottom): (Vec<bool>, Vec<bool>) = line
                .chars()
                .map(|c| match c {
                    '█' => (false, false),
                    '▀' => (false, true),
                    '▄' => (true, false),
                    ' ' => (true, true),
                    other => panic!("unexpected character {other:?}"),
                })
                .unzip();
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    #[test]
    fn the_drawing_holds_the_code_of_the_key_inside_a_light_quiet_zone() {
        let key = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
        let (width, dark) = cobox_keys::sheet::qr_modules(&[key]);
        let drawn = modules(&render(key));
        let size = width + 2 * QUIET;
        assert!(drawn.len() >= size);
        for (r, row) in drawn.iter().enumerate().take(size) {
            assert_eq!(row.len(), size);
            for (c, &d) in row.iter().enumerate() {
                let inside =
                    (QUIET..width + QUIET).contains(&r) && (QUIET..width + QUIET).contains(&c);
                let expected = inside && dark[(r - QUIET) * width + (c - QUIET)];
                assert_eq!(d, expected, "module ({r}, {c})");
            }
        }
        // The top-left finder pattern starts with a dark corner right after the quiet zone.
        assert!(drawn[QUIET][QUIET]);
        assert!(!drawn[0][0]);
    }
}
