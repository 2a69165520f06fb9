//! When this device first learnt each roster statement, beside the roster file
//! (`roster.seen`: one line `DIGEST UNIX_SECONDS` per statement, appended): statements carry
//! no time of their own, so `coboxctl members` says when an admission or a removal reached
//! this device. Damaged lines are ignored; a statement noted twice keeps its first time.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::roster::Statement;
use crate::secret::{hex, unhex};

/// The file beside roster `roster`.
pub fn path(roster: &Path) -> PathBuf {
    roster.with_extension("seen")
}

/// Note that `statements` reached this device at `now` (unix seconds).
pub fn note(roster: &Path, statements: &[Statement], now: u64) -> std::io::Result<()> {
    if statements.is_empty() {
        return Ok(());
    }
    let mut lines = String::new();
    for s in statements {
        lines.push_str(&format!("{} {now}\n", hex(&s.digest())));
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path(roster))?;
    f.write_all(lines.as_bytes())
}

/// When each statement noted first reached this device, by digest.
pub fn load(roster: &Path) -> BTreeMap<[u8; 32], u64> {
    let text = std::fs::read_to_string(path(roster)).unwrap_or_default();
    let mut out: BTreeMap<[u8; 32], u64> = BTreeMap::new();
    for line in text.lines() {
        let Some((d, t)) = line.split_once(' ') else {
            continue;
        };
        let (Some(d), Ok(t)) = (unhex(d), t.parse::<u64>()) else {
            continue;
        };
        let Ok(d) = <[u8; 32]>::try_from(d.as_slice()) else {
            continue;
        };
        out.entry(d).and_modify(|x| *x = (*x).min(t)).or_insert(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret32;
    use crate::roster::Role;

    #[test]
    fn the_first_time_a_statement_was_noted_is_kept_and_damage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let roster = dir.path().join("roster");
        let me = crate::derive::identity(&Secret32::from_bytes([1; 32]));
        let a = Statement::allow(&me, &[9; 32], Role::Member, [2; 32]);
        let b = Statement::remove(&me, &[9; 32], [2; 32]);
        assert!(load(&roster).is_empty());
        note(&roster, std::slice::from_ref(&a), 100).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(path(&roster))
            .unwrap()
            .write_all(b"zz 5\nshort\n")
            .unwrap();
        note(&roster, &[a.clone(), b.clone()], 200).unwrap();
        let seen = load(&roster);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[&a.digest()], 100);
        assert_eq!(seen[&b.digest()], 200);
    }
}
