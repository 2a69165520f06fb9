//! Files written through the mount and not yet recorded in the log: a file's creation, its
//! content, its metadata and a rename of a new file made within one commit interval become
//! one put, recorded (with every other put waiting) when the space commits, before an
//! operation that could depend on them, or before another writer's entries are applied.
//! Nothing else observed the states in between: peers are offered only what is committed,
//! and processes on this device read the waiting puts over the drive.

use std::collections::{BTreeMap, VecDeque};

use cobox_drive::FileMeta;

use super::tree::Node;

/// Puts waiting to be recorded, by path.
#[derive(Debug, Default)]
pub struct Pending {
    puts: BTreeMap<String, FileMeta>,
}

fn node_of(meta: &FileMeta) -> Node {
    Node::from(cobox_drive::Node::File(meta.clone()))
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty()
    }

    /// The file waiting at `path`, if any.
    pub fn node(&self, path: &str) -> Option<Node> {
        self.puts.get(path).map(node_of)
    }

    /// Put `meta` at `path`, replacing what waited there.
    pub fn put(&mut self, path: &str, meta: FileMeta) {
        self.puts.insert(path.to_string(), meta);
    }

    pub fn remove(&mut self, path: &str) -> Option<FileMeta> {
        self.puts.remove(path)
    }

    /// Every put, in path order (they stay until each is recorded).
    pub fn all(&self) -> VecDeque<(String, FileMeta)> {
        self.puts
            .iter()
            .map(|(p, m)| (p.clone(), m.clone()))
            .collect()
    }

    /// `entries` (a directory's children, sorted by name) with the files waiting in
    /// directory `dir` over them, still sorted.
    pub fn overlay(&self, dir: &str, entries: &mut Vec<(String, Node)>) {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut added = false;
        for (path, meta) in self.puts.range(prefix.clone()..) {
            let Some(name) = path.strip_prefix(&prefix) else {
                break;
            };
            if name.contains('/') {
                continue;
            }
            match entries.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
                Ok(i) => entries[i].1 = node_of(meta),
                Err(_) => {
                    entries.push((name.to_string(), node_of(meta)));
                    added = true;
                }
            }
        }
        if added {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64) -> FileMeta {
        FileMeta {
            size,
            mode: 0o644,
            mtime: 1,
            runs: vec![],
            inline: None,
        }
    }

    #[test]
    fn waiting_files_show_over_a_directory_listing_in_name_order() {
        let mut p = Pending::default();
        p.put("docs/b.txt", file(2));
        p.put("docs/sub/deep.txt", file(3));
        p.put("docsx", file(4));
        p.put("a.txt", file(5));
        let dir = |size| node_of(&file(size));
        let mut entries = vec![("a.txt".to_string(), dir(0)), ("c.txt".to_string(), dir(0))];
        p.overlay("docs", &mut entries);
        let names: Vec<_> = entries.iter().map(|(n, e)| (n.as_str(), e.size)).collect();
        assert_eq!(names, [("a.txt", 0), ("b.txt", 2), ("c.txt", 0)]);
        let mut top = vec![("docs".to_string(), dir(0))];
        p.overlay("", &mut top);
        let names: Vec<_> = top.iter().map(|(n, e)| (n.as_str(), e.size)).collect();
        assert_eq!(names, [("a.txt", 5), ("docs", 0), ("docsx", 4)]);
    }

    #[test]
    fn a_put_replaces_what_waited_and_all_lists_in_path_order() {
        let mut p = Pending::default();
        p.put("z", file(1));
        p.put("a", file(1));
        p.put("z", file(9));
        assert_eq!(p.node("z").map(|n| n.size), Some(9));
        let all: Vec<_> = p
            .all()
            .into_iter()
            .map(|(path, m)| (path, m.size))
            .collect();
        assert_eq!(all, [("a".to_string(), 1), ("z".to_string(), 9)]);
        p.remove("a");
        p.remove("z");
        assert!(p.is_empty());
    }
}
