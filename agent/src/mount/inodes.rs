//! Inode numbers for drive paths, stable for the life of a mount.
//!
//! The kernel names files by inode; the drive names them by path. Numbers are handed out
//! on first sight and follow renames. Root is inode 1 and the empty path.

use std::collections::{BTreeMap, HashMap};

pub const ROOT: u64 = 1;

/// The two-way map between inode numbers and paths.
#[derive(Debug)]
pub struct Inodes {
    by_ino: HashMap<u64, String>,
    by_path: BTreeMap<String, u64>,
    next: u64,
}

impl Default for Inodes {
    fn default() -> Self {
        let mut i = Inodes {
            by_ino: HashMap::new(),
            by_path: BTreeMap::new(),
            next: ROOT + 1,
        };
        i.by_ino.insert(ROOT, String::new());
        i.by_path.insert(String::new(), ROOT);
        i
    }
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl Inodes {
    pub fn path(&self, ino: u64) -> Option<&str> {
        self.by_ino.get(&ino).map(String::as_str)
    }

    /// The inode of `path`, if it has one.
    pub fn lookup(&self, path: &str) -> Option<&u64> {
        self.by_path.get(path)
    }

    /// The inode of `path`, assigning one if it has none.
    pub fn ino(&mut self, path: &str) -> u64 {
        if let Some(&i) = self.by_path.get(path) {
            return i;
        }
        let i = self.next;
        self.next += 1;
        self.by_ino.insert(i, path.to_string());
        self.by_path.insert(path.to_string(), i);
        i
    }

    /// Move `from` and everything under it to `to` (replacing whatever was at `to`).
    pub fn rename(&mut self, from: &str, to: &str) {
        self.forget_path(to);
        let moved: Vec<(String, u64)> = self
            .at_or_under(from)
            .into_iter()
            .map(|p| {
                let i = self.by_path[&p];
                (p, i)
            })
            .collect();
        for (old, ino) in moved {
            self.by_path.remove(&old);
            let new = format!("{to}{}", &old[from.len()..]);
            self.by_ino.insert(ino, new.clone());
            self.by_path.insert(new, ino);
        }
    }

    /// The known paths equal to `path` or beneath it (`path/…`; not `path-other`).
    fn at_or_under(&self, path: &str) -> Vec<String> {
        let prefix = format!("{path}/");
        self.by_path
            .range(path.to_string()..format!("{path}0"))
            .filter(|(p, _)| p.as_str() == path || p.starts_with(&prefix))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Drop the numbers of `path` and everything under it (it no longer exists).
    pub fn forget_path(&mut self, path: &str) {
        if path.is_empty() {
            return;
        }
        for p in self.at_or_under(path) {
            if let Some(i) = self.by_path.remove(&p) {
                self.by_ino.remove(&i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_and_follow_renames_of_whole_subtrees() {
        let mut m = Inodes::default();
        assert_eq!(m.ino(""), ROOT);
        let d = m.ino("docs");
        let f = m.ino("docs/a.txt");
        let other = m.ino("docs-old/x");
        assert_eq!(m.ino("docs/a.txt"), f);
        m.rename("docs", "papers");
        assert_eq!(m.path(d), Some("papers"));
        assert_eq!(m.path(f), Some("papers/a.txt"));
        assert_eq!(
            m.path(other),
            Some("docs-old/x"),
            "a sibling with a common prefix stays"
        );
        assert_eq!(m.ino("papers/a.txt"), f);
        m.forget_path("papers");
        assert_eq!(m.path(f), None);
        assert_eq!(m.path(other), Some("docs-old/x"));
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a", "b"), "a/b");
    }

    #[test]
    fn renaming_onto_an_existing_path_replaces_it() {
        let mut m = Inodes::default();
        let a = m.ino("a");
        let b = m.ino("b");
        m.rename("a", "b");
        assert_eq!(m.path(a), Some("b"));
        assert_eq!(m.path(b), None);
    }
}
