//! The text form of an invite: bech32m with the prefix `coboxinvite1`. Checking it needs no
//! key, so a mistyped code in a config is caught by validation.

use bech32::primitives::decode::{CheckedHrpstring, CheckedHrpstringError};
use bech32::{Bech32m, Hrp};

pub const PREFIX: &str = "coboxinvite";

/// Why a text is not a well-formed invite code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("invite code does not start with `{PREFIX}1`")]
    NotAnInvite,
    #[error("invite code has a typo: its checksum does not match (check every character)")]
    Checksum,
    #[error("invite code is malformed: {0}")]
    Malformed(String),
}

/// Encode sealed invite bytes as text.
pub fn encode(sealed: &[u8]) -> Result<String, CodeError> {
    let hrp = Hrp::parse(PREFIX).expect("valid prefix");
    bech32::encode::<Bech32m>(hrp, sealed).map_err(|e| CodeError::Malformed(e.to_string()))
}

/// The sealed bytes inside an invite code, after checking prefix and checksum.
pub fn decode(code: &str) -> Result<Vec<u8>, CodeError> {
    let code = code.trim();
    if !code.to_ascii_lowercase().starts_with(&format!("{PREFIX}1")) {
        return Err(CodeError::NotAnInvite);
    }
    let checked = CheckedHrpstring::new::<Bech32m>(code).map_err(|e| match e {
        CheckedHrpstringError::Checksum(_) => CodeError::Checksum,
        other => CodeError::Malformed(other.to_string()),
    })?;
    if !checked.hrp().as_str().eq_ignore_ascii_case(PREFIX) {
        return Err(CodeError::NotAnInvite);
    }
    Ok(checked.byte_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_in_either_case() {
        let code = encode(&[1, 2, 3, 250]).unwrap();
        assert!(code.starts_with("coboxinvite1"));
        assert_eq!(decode(&code).unwrap(), [1, 2, 3, 250]);
        assert_eq!(decode(&code.to_uppercase()).unwrap(), [1, 2, 3, 250]);
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let code = encode(&[9; 100]).unwrap();
        let mut chars: Vec<char> = code.chars().collect();
        let i = chars.len() / 2;
        chars[i] = if chars[i] == 'q' { 'p' } else { 'q' };
        assert_eq!(
            decode(&chars.into_iter().collect::<String>()),
            Err(CodeError::Checksum)
        );
        assert_eq!(decode("hello"), Err(CodeError::NotAnInvite));
        assert!(matches!(
            decode("coboxinvite1!!"),
            Err(CodeError::Malformed(_))
        ));
    }
}
