//! Sizes, rates and durations as people write them: `50 GiB`, `2 MiB/s`, `8h`.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

/// A number of bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(pub u64);

const UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("pb", 1_000_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
    ("pib", 1 << 50),
    ("k", 1 << 10),
    ("m", 1 << 20),
    ("g", 1 << 30),
    ("t", 1 << 40),
];

/// Why a size, rate or duration did not parse, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(pub String);

impl Size {
    /// Parse `50 GiB`, `500MB`, `1.5 TiB`, `0`. A bare number is bytes only when it is 0.
    pub fn parse(text: &str) -> Result<Size, UnitError> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let number = number.replace('_', "");
        if number.is_empty() {
            return Err(UnitError(format!(
                "size {text:?} does not start with a number"
            )));
        }
        let unit = unit.trim();
        if unit.starts_with(['e', 'E'])
            && unit[1..].starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
        {
            return Err(UnitError(format!(
                "size {text:?} has an exponent: write the number out, like \"500 GiB\""
            )));
        }
        let multiplier = if unit.is_empty() {
            if number.parse::<f64>().ok() == Some(0.0) {
                1
            } else {
                return Err(UnitError(format!("size {text:?} has no unit")));
            }
        } else {
            UNITS
                .iter()
                .find(|(u, _)| u.eq_ignore_ascii_case(unit))
                .map(|(_, m)| *m)
                .ok_or_else(|| UnitError(format!("size {text:?} has an unknown unit {unit:?}")))?
        };
        let bytes = if let Ok(n) = number.parse::<u64>() {
            n.checked_mul(multiplier)
        } else {
            let n: f64 = number
                .parse()
                .map_err(|_| UnitError(format!("size {text:?} has a malformed number")))?;
            let v = n * multiplier as f64;
            (v.is_finite() && v < u64::MAX as f64).then_some(v.round() as u64)
        };
        bytes
            .map(Size)
            .ok_or_else(|| UnitError(format!("size {text:?} is too large")))
    }
}

impl Rate {
    /// Parse `2 MiB/s`, `500 KB/s`, `10MB/s`.
    pub fn parse(text: &str) -> Result<Rate, UnitError> {
        let t = text.trim();
        let Some(size) = t.strip_suffix("/s") else {
            return Err(UnitError(format!("rate {text:?} does not end in \"/s\"")));
        };
        // Said of the whole rate as written, not of the size inside it.
        let size = Size::parse(size).map_err(|e| {
            UnitError(e.0.replacen(&format!("size {size:?}"), &format!("rate {text:?}"), 1))
        })?;
        Ok(Rate(size.0))
    }
}

/// Parse a duration like `8h`, `90m`, `1h30m`, `45s`, `2d`.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        UnitError(format!(
            "duration {text:?} is not valid ({})",
            lower_first(&e.to_string())
        ))
    })
}

/// A duration in the shortest form that reads back to it, like `1h30m`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= len {
            out.push_str(&format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    out
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

fn human(bytes: u64) -> String {
    const BIN: &[(&str, u64)] = &[
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    match BIN.iter().find(|(_, m)| bytes >= *m) {
        Some((unit, m)) if bytes.is_multiple_of(*m) => format!("{} {unit}", bytes / m),
        Some((unit, m)) => format!("{:.2} {unit}", bytes as f64 / *m as f64),
        None => format!("{bytes} B"),
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human(self.0))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", human(self.0))
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_decimal_and_binary_units() {
        assert_eq!(Size::parse("50 GiB"), Ok(Size(50 << 30)));
        assert_eq!(Size::parse("500MB"), Ok(Size(500_000_000)));
        assert_eq!(Size::parse("1.5 KiB"), Ok(Size(1536)));
        assert_eq!(Size::parse("1_000 B"), Ok(Size(1000)));
        assert_eq!(Size::parse("0"), Ok(Size(0)));
        assert_eq!(Size::parse("2 gib"), Ok(Size(2 << 30)));
    }

    #[test]
    fn malformed_sizes_say_what_is_wrong() {
        assert!(Size::parse("50").unwrap_err().0.contains("no unit"));
        assert!(Size::parse("GiB").unwrap_err().0.contains("number"));
        assert!(
            Size::parse("5 GBs")
                .unwrap_err()
                .0
                .contains("unknown unit \"GBs\"")
        );
        assert!(Size::parse("1.2.3 MB").unwrap_err().0.contains("malformed"));
        assert!(
            Size::parse("99999999 PiB")
                .unwrap_err()
                .0
                .contains("too large")
        );
    }

    #[test]
    fn rates_are_sizes_per_second() {
        assert_eq!(Rate::parse("2 MiB/s"), Ok(Rate(2 << 20)));
        assert_eq!(Rate::parse("10MB/s"), Ok(Rate(10_000_000)));
        assert!(Rate::parse("2 MiB").unwrap_err().0.contains("/s"));
        assert!(Rate::parse("x/s").unwrap_err().0.starts_with("rate"));
        let inf = Rate::parse("inf MiB/s").unwrap_err().0;
        assert!(inf.starts_with("rate \"inf MiB/s\""), "{inf}");
        let exp = Size::parse("1e309 GiB").unwrap_err().0;
        assert!(exp.contains("has an exponent"), "{exp}");
    }

    #[test]
    fn durations_round_trip_through_their_short_form() {
        for (text, secs) in [
            ("8h", 8 * 3600),
            ("90m", 5400),
            ("1h30m", 5400),
            ("2d", 172_800),
            ("45s", 45),
        ] {
            let d = parse_duration(text).unwrap();
            assert_eq!(d.as_secs(), secs, "{text}");
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert!(parse_duration("8 hours later").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(Size(50 << 30).to_string(), "50 GiB");
        assert_eq!(Size(1536).to_string(), "1.50 KiB");
        assert_eq!(Size(12).to_string(), "12 B");
        assert_eq!(Rate(2 << 20).to_string(), "2 MiB/s");
    }
}
