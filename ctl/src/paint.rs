//! ANSI colours for terminal output (never when the output is not a terminal).

use cobox_schema::render::Colour;

pub const GREEN: &str = "32";
pub const YELLOW: &str = "33";
pub const RED: &str = "31";
pub const BOLD: &str = "1";

/// `text` in colour `code` when colouring.
pub fn paint(colour: Colour, code: &str, text: &str) -> String {
    match colour {
        Colour::Always => format!("\x1b[{code}m{text}\x1b[0m"),
        Colour::Never => text.to_string(),
    }
}

/// Pad `text` to `width` columns, then colour it (so escapes do not break alignment).
pub fn padded(colour: Colour, code: &str, text: &str, width: usize) -> String {
    let pad = width.saturating_sub(text.chars().count());
    format!("{}{}", paint(colour, code, text), " ".repeat(pad))
}
