//! Paper keys: a 32-byte secret as 24 BIP39 words, and back.

use bip39::{Language, Mnemonic};

use crate::secret::Secret32;

/// Why words did not restore a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaperError {
    #[error("expected 24 words, found {0}")]
    WordCount(usize),
    #[error("word {position} {word:?} is not in the BIP39 English list{}", suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    UnknownWord {
        position: usize,
        word: String,
        suggestion: Option<String>,
    },
    #[error("the words' checksum does not match: a word is wrong or the words are out of order")]
    Checksum,
    #[error("the pasted sheet {0}: paste the 24 numbered words of one key")]
    Sheet(String),
}

/// The words of a pasted sheet, in order: the tokens after `1.` to `24.`, wherever they
/// stand on their lines (the printed sheet runs them in columns). `None` when the text has
/// no numbered words (plain words, in order).
fn sheet_words(text: &str) -> Option<Result<Vec<String>, PaperError>> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut numbered: Vec<(usize, String)> = tokens
        .windows(2)
        .filter_map(|w| {
            let n: usize = w[0].strip_suffix('.')?.parse().ok()?;
            Some((n, w[1].to_lowercase()))
        })
        .collect();
    if numbered.is_empty() {
        return None;
    }
    numbered.sort_by_key(|(n, _)| *n);
    let numbers: Vec<usize> = numbered.iter().map(|(n, _)| *n).collect();
    Some(if numbers == (1..=24).collect::<Vec<_>>() {
        Ok(numbered.into_iter().map(|(_, w)| w).collect())
    } else if numbers.len() > 24 {
        Err(PaperError::Sheet(format!(
            "holds {} numbered words, more than one key",
            numbers.len()
        )))
    } else {
        Err(PaperError::Sheet(format!(
            "holds words numbered {:?}, not 1 to 24",
            numbers
        )))
    })
}

/// The 24 words of a secret.
pub fn to_words(secret: &Secret32) -> Vec<&'static str> {
    let m = Mnemonic::from_entropy(secret.expose()).expect("32 bytes is valid BIP39 entropy");
    m.words().collect()
}

/// The secret written as `words` (separated by any white space, any case).
pub fn from_words(words: &str) -> Result<Secret32, PaperError> {
    let normalized: Vec<String> = match sheet_words(words) {
        Some(sheet) => sheet?,
        None => words.split_whitespace().map(str::to_lowercase).collect(),
    };
    if normalized.len() != 24 {
        return Err(PaperError::WordCount(normalized.len()));
    }
    let list = Language::English.word_list();
    if let Some((i, w)) = normalized
        .iter()
        .enumerate()
        .find(|(_, w)| list.binary_search(&w.as_str()).is_err())
    {
        return Err(PaperError::UnknownWord {
            position: i + 1,
            word: w.clone(),
            suggestion: closest_word(w),
        });
    }
    let m = Mnemonic::parse_in_normalized(Language::English, &normalized.join(" ")).map_err(
        |e| match e {
            bip39::Error::InvalidChecksum => PaperError::Checksum,
            bip39::Error::BadWordCount(n) => PaperError::WordCount(n),
            bip39::Error::UnknownWord(i) => PaperError::UnknownWord {
                position: i + 1,
                word: normalized.get(i).cloned().unwrap_or_default(),
                suggestion: None,
            },
            _ => PaperError::Checksum,
        },
    )?;
    let entropy = zeroize::Zeroizing::new(m.to_entropy());
    Ok(Secret32::from_slice(&entropy).expect("24 words carry 32 bytes"))
}

/// The list word nearest to a mistyped one (BIP39 words are unique in their first four
/// letters, so a prefix match wins).
fn closest_word(word: &str) -> Option<String> {
    let list = Language::English.word_list();
    if word.len() >= 4 {
        let mut by_prefix = Language::English.words_by_prefix_iter(&word[..4]);
        if let (Some(only), None) = (by_prefix.next(), by_prefix.next()) {
            return Some(only.to_string());
        }
    }
    list.iter()
        .map(|w| (strsim_distance(word, w), *w))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, w)| w.to_string())
}

/// Levenshtein distance (words are short; the quadratic table is fine).
fn strsim_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_sheet_gives_its_numbered_words_in_order() {
        let secret = Secret32::from_bytes([9; 32]);
        let words = to_words(&secret);
        // In columns, as printed: 1. 7. 13. 19. on the first line, and so on.
        let mut sheet = String::from("cobox paper key: device parent key\n  identity ab12\n\n");
        for row in 0..6 {
            for col in 0..4 {
                let i = col * 6 + row;
                sheet.push_str(&format!("{:>4}. {:<10}", i + 1, words[i]));
            }
            sheet.push('\n');
        }
        sheet.push_str("Anyone holding these words holds this key.\n");
        assert_eq!(from_words(&sheet).unwrap().expose(), secret.expose());
        let two = format!("{sheet}{sheet}");
        assert!(matches!(from_words(&two), Err(PaperError::Sheet(m)) if m.contains("48")));
    }

    #[test]
    fn a_secret_survives_the_trip_to_paper_and_back() {
        let s = Secret32::from_bytes(*b"0123456789abcdef0123456789abcdef");
        let words = to_words(&s);
        assert_eq!(words.len(), 24);
        assert_eq!(from_words(&words.join(" ")).unwrap(), s);
        // Line breaks, extra spaces and capitals from a handwritten copy do not matter.
        let messy = words
            .chunks(6)
            .map(|c| c.join("  ").to_uppercase())
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(from_words(&messy).unwrap(), s);
    }

    #[test]
    fn mistakes_are_named() {
        let s = Secret32::from_bytes([42; 32]);
        let mut words: Vec<String> = to_words(&s).iter().map(|w| w.to_string()).collect();
        assert_eq!(
            from_words(&words[..23].join(" ")),
            Err(PaperError::WordCount(23))
        );

        let original = words[4].clone();
        words[4] = format!("{}x", &original[..original.len() - 1]);
        match from_words(&words.join(" ")) {
            Err(PaperError::UnknownWord {
                position: 5,
                suggestion,
                ..
            }) => {
                assert_eq!(suggestion.as_deref(), Some(original.as_str()))
            }
            other => panic!("{other:?}"),
        }
        words[4] = original;
        words.swap(0, 1);
        if words[0] != words[1] {
            assert_eq!(from_words(&words.join(" ")), Err(PaperError::Checksum));
        }
    }
}
