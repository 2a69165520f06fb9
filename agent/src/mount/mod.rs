//! Mounting a space with FUSE: mount, unmount, and repair of a stale mount left by a crash.

pub mod fs;
pub mod handles;
pub mod inodes;
pub mod staging;
pub mod stream;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cobox_schema::places::Use;
use fuser::{BackgroundSession, Config, MountOption};

use crate::space::Space;

/// Why a space could not be mounted.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("cannot prepare mount point {path}: {source}")]
    MountPoint {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mount point {0} is in use by another file system")]
    Busy(PathBuf),
    #[error("mount point {path} refused: {why}")]
    Refused { path: PathBuf, why: String },
    #[error(
        "mount point {path} is not empty ({entries}): a mount would hide what is there, so cobox never mounts over files; move them away (or into the space once it is mounted) and it mounts at the next try"
    )]
    NotEmpty { path: PathBuf, entries: String },
    #[error("cannot mount at {path}: {source}")]
    Mount {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot unmount {path}: {source}")]
    Unmount {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A mounted space; dropping it unmounts.
#[derive(Debug)]
pub struct Mounted {
    path: PathBuf,
    session: Option<BackgroundSession>,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmount and wait for the file system to stop.
    pub fn unmount(mut self) -> Result<(), MountError> {
        match self.session.take() {
            Some(s) => s.umount_and_join().map_err(|source| MountError::Unmount {
                path: self.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.umount_and_join();
        }
    }
}

/// Whether `path` is a mount point whose file system process is gone (`ENOTCONN`).
pub fn is_stale(path: &Path) -> bool {
    matches!(std::fs::metadata(path), Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTCONN.raw_os_error()))
}

/// Whether something is mounted at `path`.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let target = path.to_string_lossy();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| unescape(m) == target))
}

fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Lazily detach whatever is mounted at `path` (used for stale mounts).
fn detach(path: &Path) -> Result<(), MountError> {
    if rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH).is_ok() {
        return Ok(());
    }
    let status = Command::new("fusermount3")
        .arg("-u")
        .arg("-z")
        .arg(path)
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(_) | Err(_) => Err(MountError::Unmount {
            path: path.to_path_buf(),
            source: std::io::Error::other("fusermount3 -u -z failed"),
        }),
    }
}

/// Mount `space` at `path`, repairing a stale mount left there by a crash first.
pub fn mount(
    space: Arc<tokio::sync::Mutex<Space>>,
    rt: tokio::runtime::Handle,
    path: &Path,
    staging: PathBuf,
) -> Result<Mounted, MountError> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if let Some(why) = cobox_schema::places::refusal(path, Use::Mount, home.as_deref()) {
        return Err(MountError::Refused {
            path: path.to_path_buf(),
            why,
        });
    }
    if is_stale(path) {
        tracing::warn!(path = %path.display(), "repairing a stale mount left by a previous run");
        detach(path)?;
    } else if is_mounted(path) {
        return Err(MountError::Busy(path.to_path_buf()));
    }
    if let Some(entries) = occupied(path) {
        return Err(MountError::NotEmpty {
            path: path.to_path_buf(),
            entries,
        });
    }
    std::fs::create_dir_all(path).map_err(|source| MountError::MountPoint {
        path: path.to_path_buf(),
        source,
    })?;
    let fs = fs::SpaceFs::new(space, rt, staging);
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("cobox".into()),
        MountOption::Subtype("cobox".into()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    config.n_threads = Some(4);
    let session = fuser::spawn_mount(fs, path, &config).map_err(|source| MountError::Mount {
        path: path.to_path_buf(),
        source,
    })?;
    raise_readahead(path);
    Ok(Mounted {
        path: path.to_path_buf(),
        session: Some(session),
    })
}

/// What a directory holds, shown as a few names and a count, when it holds anything.
fn occupied(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .take(1001)
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return None;
    }
    names.sort();
    let count = if names.len() > 1000 {
        "over 1000".to_string()
    } else {
        names.len().to_string()
    };
    let shown: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
    let more = if names.len() > 3 { ", …" } else { "" };
    Some(format!("{count} entries: {}{more}", shown.join(", ")))
}

/// Readahead asked of a mount, in KiB: several content blocks, so sequential reads reach
/// the file system as large requests, many in flight, decrypted on every core.
const READAHEAD_KIB: u32 = 4096;

/// Raise the readahead of the mount at `path` above the kernel's 128 KiB default for FUSE
/// (which the file system cannot raise itself at init). Needs write access to
/// `/sys/class/bdi`; without it reads still work, in smaller requests.
fn raise_readahead(path: &Path) {
    let Ok(st) = rustix::fs::stat(path) else {
        return;
    };
    let (major, minor) = (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev));
    let knob = format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb");
    if let Err(e) = std::fs::write(&knob, format!("{READAHEAD_KIB}\n")) {
        tracing::debug!(knob, error = %e, "cannot raise the mount's readahead");
    }
}
