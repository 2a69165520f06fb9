//! A config text with its name, and byte-offset to line:column translation.

use std::ops::Range;

/// The largest config text read or validated: far beyond any real config (thousands of
/// spaces), far below what could starve the agent.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// The text of a config and where it came from (a path, or `<stdin>`).
#[derive(Debug, Clone)]
pub struct Source {
    name: String,
    text: String,
    line_starts: Vec<usize>,
}

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            name: name.into(),
            text,
            line_starts,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The line and column of a byte offset (clamped to the text).
    pub fn line_col(&self, offset: usize) -> LineCol {
        let offset = self.floor_char_boundary(offset.min(self.text.len()));
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let column = self.text[self.line_starts[line]..offset].chars().count() + 1;
        LineCol {
            line: line + 1,
            column,
        }
    }

    /// The text of a 1-based line, without its line ending.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |&next| next - 1);
        self.text[start..end].trim_end_matches('\r')
    }

    /// The byte span of a whole 1-based line, for diagnostics about a line.
    pub fn line_span(&self, line: usize) -> Range<usize> {
        let start = self
            .line_starts
            .get(line.wrapping_sub(1))
            .copied()
            .unwrap_or(self.text.len());
        start..start + self.line_text(line).len()
    }

    fn floor_char_boundary(&self, mut offset: usize) -> usize {
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_one_based_lines_and_character_columns() {
        let src = Source::new("t", "a = 1\nnäme = \"x\"\n");
        assert_eq!(src.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(src.line_col(6), LineCol { line: 2, column: 1 });
        // "näme" is 5 bytes; the space after it is the 5th character.
        assert_eq!(src.line_col(11), LineCol { line: 2, column: 5 });
        assert_eq!(src.line_text(2), "näme = \"x\"");
        assert_eq!(src.line_text(9), "");
    }

    #[test]
    fn an_offset_at_the_end_is_on_the_last_line() {
        let src = Source::new("t", "a = 1\n");
        assert_eq!(src.line_col(6), LineCol { line: 2, column: 1 });
        assert_eq!(src.line_col(600), LineCol { line: 2, column: 1 });
    }
}
