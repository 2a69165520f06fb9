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
}

/// The 24 words of a secret.
pub fn to_words(secret: &Secret32) -> Vec<&'static str> {
    let m = Mnemonic::from_entropy(secret.expose()).expect("32 bytes is valid BIP39 entropy");
    m.words().collect()
}

/// The secret written as `words` (separated by any white space, any case).
pub fn from_words(words: &str) -> Result<Secret32, PaperError> {
    let normalized: Vec<String> = words.split_whitespace().map(str::to_lowercase).collect();
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
