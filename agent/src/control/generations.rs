//! The generations store: every accepted config with its number, time and source, one
//! JSON file per generation under `DATA_DIR/generations/`, written whole (temp file,
//! fsync, rename) so a crash leaves either the old set or the new one.

use std::fs;
use std::path::{Path, PathBuf};

use cobox_schema::api::{Generation, GenerationSource};
use serde::{Deserialize, Serialize};

/// How many generations are kept; older ones are deleted.
pub const KEEP: usize = 100;

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GenerationsError {
    #[error("generations store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("generation {0} is not stored")]
    Missing(u64),
    #[error("generation {0} is stored but unreadable")]
    Damaged(u64),
}

/// A stored generation: its record and the config text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    #[serde(flatten)]
    pub info: Generation,
    pub text: String,
}

/// The generations of one device.
#[derive(Debug)]
pub struct Generations {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> GenerationsError + '_ {
    move |source| GenerationsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// BLAKE3 of a config text, hex.
pub fn digest(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

impl Generations {
    pub fn new(data_dir: &Path) -> Generations {
        Generations {
            dir: data_dir.join("generations"),
        }
    }

    fn path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{n:010}.json"))
    }

    /// Every readable stored generation, oldest first. A damaged file (a crash cannot make
    /// one, a hand edit can) is skipped with a warning.
    pub fn list(&self) -> Result<Vec<Stored>, GenerationsError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&self.dir))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            if stem.parse::<u64>().is_err() {
                continue;
            }
            let parsed = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Stored>(&b).ok());
            match parsed {
                Some(s) => out.push(s),
                None => {
                    tracing::warn!(file = %path.display(), "skipping an unreadable generation")
                }
            }
        }
        out.sort_by_key(|s| s.info.number);
        Ok(out)
    }

    /// The newest generation.
    pub fn latest(&self) -> Result<Option<Stored>, GenerationsError> {
        Ok(self.list()?.pop())
    }

    /// One generation.
    pub fn get(&self, n: u64) -> Result<Stored, GenerationsError> {
        let path = self.path(n);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(GenerationsError::Missing(n));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|_| GenerationsError::Damaged(n))
    }

    /// Store `text` as the next generation and return its record.
    pub fn record(
        &self,
        text: &str,
        source: GenerationSource,
        name: &str,
        restores: Option<u64>,
        time: &str,
    ) -> Result<Generation, GenerationsError> {
        if !self.dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(io(&self.dir))?;
        }
        let all = self.list()?;
        let number = all.last().map_or(1, |s| s.info.number + 1);
        let stored = Stored {
            info: Generation {
                number,
                time: time.to_string(),
                source,
                name: name.to_string(),
                restores,
                digest: digest(text),
            },
            text: text.to_string(),
        };
        let path = self.path(number);
        let bytes = serde_json::to_vec_pretty(&stored).expect("generations serialize");
        crate::atomic_file::replace(&path, &bytes).map_err(io(&path))?;
        if all.len() + 1 > KEEP {
            for old in &all[..all.len() + 1 - KEEP] {
                let _ = fs::remove_file(self.path(old.info.number));
            }
        }
        Ok(stored.info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_increase_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let g = Generations::new(dir.path());
        assert!(g.latest().unwrap().is_none());
        let a = g
            .record(
                "version = 1\n",
                GenerationSource::File,
                "a.toml",
                None,
                "t1",
            )
            .unwrap();
        let b = g
            .record("version = 1 # b\n", GenerationSource::Api, "b", None, "t2")
            .unwrap();
        assert_eq!((a.number, b.number), (1, 2));
        let again = Generations::new(dir.path());
        let latest = again.latest().unwrap().unwrap();
        assert_eq!(latest.info.number, 2);
        assert_eq!(latest.text, "version = 1 # b\n");
        assert_eq!(latest.info.digest, digest("version = 1 # b\n"));
        assert_eq!(again.get(1).unwrap().info.source, GenerationSource::File);
        assert!(matches!(again.get(7), Err(GenerationsError::Missing(7))));
    }

    #[test]
    fn only_the_newest_are_kept_and_damaged_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let g = Generations::new(dir.path());
        for i in 0..KEEP + 3 {
            g.record(&format!("# {i}\n"), GenerationSource::File, "f", None, "t")
                .unwrap();
        }
        let all = g.list().unwrap();
        assert_eq!(all.len(), KEEP);
        assert_eq!(all[0].info.number, 4);
        fs::write(dir.path().join("generations/0000000200.json"), b"{oops").unwrap();
        assert_eq!(g.latest().unwrap().unwrap().info.number, KEEP as u64 + 3);
        let next = g
            .record("x", GenerationSource::Rollback, "f", Some(5), "t")
            .unwrap();
        assert_eq!(next.number, KEEP as u64 + 4);
    }
}
