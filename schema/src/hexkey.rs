//! 32-byte public keys and space addresses, written as 64 hex characters.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Why a hex key did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexKeyError {
    #[error("has {0} characters, not 64")]
    Length(usize),
    #[error("has a non-hex character {0:?} at position {1}")]
    NotHex(char, usize),
}

fn parse_hex32(text: &str) -> Result<[u8; 32], HexKeyError> {
    if let Some((i, c)) = text.char_indices().find(|(_, c)| !c.is_ascii_hexdigit())
        && (text.len() == 64 || c.is_ascii_alphanumeric())
    {
        return Err(HexKeyError::NotHex(c, text[..i].chars().count() + 1));
    }
    if text.len() != 64 {
        return Err(HexKeyError::Length(text.chars().count()));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("checked hex digits");
    }
    Ok(out)
}

fn write_hex(bytes: &[u8; 32], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

macro_rules! hex32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl FromStr for $name {
            type Err = HexKeyError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex32(s).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                write_hex(&self.0, f)?;
                f.write_str(")")
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

hex32!(
    /// An ed25519 public key: a device identity.
    PublicKey
);
hex32!(
    /// A space address: public to seeders, the root of the space's capability.
    Address
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_in_lowercase() {
        let text = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff";
        let key: PublicKey = text.parse().unwrap();
        assert_eq!(key.to_string(), text.to_lowercase());
    }

    #[test]
    fn wrong_length_and_bad_characters_are_told_apart() {
        assert_eq!("abcd".parse::<Address>(), Err(HexKeyError::Length(4)));
        let bad = format!("{}g", "0".repeat(63));
        assert_eq!(bad.parse::<Address>(), Err(HexKeyError::NotHex('g', 64)));
        let short_bad = "zz";
        assert_eq!(
            short_bad.parse::<Address>(),
            Err(HexKeyError::NotHex('z', 1))
        );
    }
}
