//! Secret bytes: wiped from memory on drop, never printed.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// 32 secret bytes. `Debug` prints `Secret(..)`; there is no `Display`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret32([u8; 32]);

impl Secret32 {
    pub fn from_bytes(bytes: [u8; 32]) -> Secret32 {
        Secret32(bytes)
    }

    /// 32 bytes from libsodium's CSPRNG.
    pub fn random() -> Secret32 {
        crate::init();
        let mut b = [0u8; 32];
        libsodium_rs::random::fill_bytes(&mut b);
        Secret32(b)
    }

    /// Copy from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Secret32> {
        <[u8; 32]>::try_from(bytes).ok().map(Secret32)
    }

    /// The bytes, for handing to a primitive. Do not log them.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Lowercase hex of bytes (public values only).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex, if it is well formed.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let s = Secret32::from_bytes([0xab; 32]);
        let shown = format!("{s:?}");
        assert_eq!(shown, "Secret(..)");
        assert!(!shown.contains("ab"));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }
}
