//! What validation needs to know about the machine, supplied by the caller.
//!
//! The schema crate does no I/O: the binaries implement [`Host`] over the real system,
//! tests use [`FixedHost`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// Facts about the machine a config is validated for.
pub trait Host {
    /// The user's home directory, for paths starting with `~/`.
    fn home(&self) -> Option<PathBuf>;
    /// Where data lives when `[device] data_dir` is absent.
    fn default_data_dir(&self) -> PathBuf;
    /// Where spaces are mounted when `[device] mount_root` is absent.
    fn default_mount_root(&self) -> PathBuf;
    /// The size in bytes of the file system holding `path` (or its nearest existing parent).
    fn disk_capacity(&self, path: &Path) -> Option<u64>;
    /// The current time, for schedules that may have no future firing.
    fn now(&self) -> DateTime<Utc>;
    /// What is at `path` (not following a last symbolic link), if anything.
    fn path_kind(&self, _path: &Path) -> Option<PathKind> {
        None
    }
    /// Why invite `code` cannot be opened by the device the config is for, when that
    /// device is known (`None`: it can, or the device is not known).
    fn invite_refusal(&self, _code: &str) -> Option<String> {
        None
    }
}

/// What a path names on the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Directory,
    Socket,
    /// A regular file, a link, a device, a FIFO.
    Other,
}

impl PathKind {
    pub fn word(self) -> &'static str {
        match self {
            PathKind::Directory => "a directory",
            PathKind::Socket => "a socket",
            PathKind::Other => "a file",
        }
    }
}

/// A host whose every fact is given: for tests and for validating a config meant for
/// another machine.
#[derive(Debug, Clone)]
pub struct FixedHost {
    pub home: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub mount_root: PathBuf,
    pub disk_capacity: Option<u64>,
    pub now: DateTime<Utc>,
    /// What exists at given paths (nothing elsewhere).
    pub paths: BTreeMap<PathBuf, PathKind>,
}

impl FixedHost {
    /// A host with home `/home/user`, no known disk size, at 2026-01-01T00:00:00Z.
    pub fn example() -> FixedHost {
        FixedHost {
            home: Some("/home/user".into()),
            data_dir: "/home/user/.local/share/cobox".into(),
            mount_root: "/home/user/cobox".into(),
            disk_capacity: None,
            now: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            paths: BTreeMap::new(),
        }
    }
}

impl Host for FixedHost {
    fn home(&self) -> Option<PathBuf> {
        self.home.clone()
    }
    fn default_data_dir(&self) -> PathBuf {
        self.data_dir.clone()
    }
    fn default_mount_root(&self) -> PathBuf {
        self.mount_root.clone()
    }
    fn disk_capacity(&self, _path: &Path) -> Option<u64> {
        self.disk_capacity
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
    fn path_kind(&self, path: &Path) -> Option<PathKind> {
        self.paths.get(path).copied()
    }
}
