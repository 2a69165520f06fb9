//! compact-encoding as hypercore's header and log entries use it: unsigned varints,
//! length-prefixed buffers and strings, fixed-size arrays. Decoding never panics: a short
//! or malformed input is a [`DecodeError`].

/// A value could not be decoded: the input ended early or held an impossible length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("truncated or malformed {what}")]
pub struct DecodeError {
    pub what: &'static str,
}

fn err(what: &'static str) -> DecodeError {
    DecodeError { what }
}

/// Reads values from the front of a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// What has not been read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(err(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn byte(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// An unsigned varint: one byte below 0xfd, else a marker and 2, 4 or 8 bytes LE.
    pub fn uint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let width = match self.byte(what)? {
            0xfd => 2,
            0xfe => 4,
            0xff => 8,
            x => return Ok(x.into()),
        };
        let bytes = self.take(width, what)?;
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(bytes);
        Ok(u64::from_le_bytes(le))
    }

    pub fn fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, what)?;
        Ok(bytes.try_into().expect("length checked"))
    }

    /// A length-prefixed byte string.
    pub fn buffer(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.uint(what)?).map_err(|_| err(what))?;
        self.take(len, what)
    }

    /// A counted list of length-prefixed UTF-8 strings.
    pub fn strings(&mut self, what: &'static str) -> Result<Vec<String>, DecodeError> {
        let count = self.uint(what)?;
        // Each string takes at least one byte: a count beyond the input is malformed.
        if count > self.buf.len() as u64 {
            return Err(err(what));
        }
        (0..count)
            .map(|_| {
                let bytes = self.buffer(what)?;
                String::from_utf8(bytes.to_vec()).map_err(|_| err(what))
            })
            .collect()
    }
}

/// Append an unsigned varint.
pub fn put_uint(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Append a length-prefixed byte string.
pub fn put_buffer(out: &mut Vec<u8>, bytes: &[u8]) {
    put_uint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Append a counted list of strings.
pub fn put_strings(out: &mut Vec<u8>, strings: &[String]) {
    put_uint(out, strings.len() as u64);
    for s in strings {
        put_buffer(out, s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width_boundary() {
        for n in [
            0,
            1,
            0xfc,
            0xfd,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_uint(&mut out, n);
            let mut r = Reader::new(&out);
            assert_eq!(r.uint("n").unwrap(), n);
            assert!(r.rest().is_empty());
        }
    }

    #[test]
    fn short_or_impossible_input_is_an_error_not_a_panic() {
        assert!(Reader::new(&[0xfd, 1]).uint("n").is_err());
        assert!(Reader::new(&[5, 1, 2]).buffer("b").is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                .buffer("b")
                .is_err()
        );
        assert!(Reader::new(&[0xfe, 0, 0, 0, 1]).strings("s").is_err());
        assert!(Reader::new(&[1, 2, 0xc3, 0x28]).strings("s").is_err());
        assert!(Reader::new(&[1, 2]).fixed::<3>("f").is_err());
    }

    #[test]
    fn strings_and_buffers_round_trip() {
        let mut out = Vec::new();
        put_strings(&mut out, &["a".into(), "".into(), "ünï".into()]);
        put_buffer(&mut out, &[9; 300]);
        let mut r = Reader::new(&out);
        assert_eq!(r.strings("s").unwrap(), vec!["a", "", "ünï"]);
        assert_eq!(r.buffer("b").unwrap(), &[9; 300][..]);
    }
}
