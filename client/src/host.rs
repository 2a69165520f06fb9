//! The real machine as validation sees it: home, XDG directories, disk sizes, the clock.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use cobox_schema::Host;

/// Facts read from the environment and the file system.
#[derive(Debug, Clone)]
pub struct SystemHost {
    home: Option<PathBuf>,
    data_home: Option<PathBuf>,
}

impl SystemHost {
    pub fn from_env() -> SystemHost {
        let var = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        SystemHost {
            home: var("HOME"),
            data_home: var("XDG_DATA_HOME"),
        }
    }
}

impl Host for SystemHost {
    fn home(&self) -> Option<PathBuf> {
        self.home.clone()
    }

    fn default_data_dir(&self) -> PathBuf {
        match (&self.data_home, &self.home) {
            (Some(d), _) => d.join("cobox"),
            (None, Some(h)) => h.join(".local/share/cobox"),
            (None, None) => PathBuf::from("/var/lib/cobox"),
        }
    }

    fn default_mount_root(&self) -> PathBuf {
        match &self.home {
            Some(h) => h.join("cobox"),
            None => PathBuf::from("/var/lib/cobox/mnt"),
        }
    }

    fn disk_capacity(&self, path: &Path) -> Option<u64> {
        let existing = path.ancestors().find(|p| p.exists())?;
        let st = rustix::fs::statvfs(existing).ok()?;
        Some(st.f_blocks.saturating_mul(st.f_frsize))
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn path_kind(&self, path: &Path) -> Option<cobox_schema::host::PathKind> {
        use cobox_schema::host::PathKind;
        use std::os::unix::fs::FileTypeExt;
        let kind = std::fs::symlink_metadata(path).ok()?.file_type();
        Some(if kind.is_dir() {
            PathKind::Directory
        } else if kind.is_socket() {
            PathKind::Socket
        } else {
            PathKind::Other
        })
    }
}

/// A host that also knows the device a config is for (its identity, from its data
/// directory): invites are checked against it.
#[derive(Debug, Clone)]
pub struct Device<H> {
    pub host: H,
    pub identity: cobox_keys::SigningKeyPair,
}

impl<H: Host> Host for Device<H> {
    fn home(&self) -> Option<PathBuf> {
        self.host.home()
    }
    fn default_data_dir(&self) -> PathBuf {
        self.host.default_data_dir()
    }
    fn default_mount_root(&self) -> PathBuf {
        self.host.default_mount_root()
    }
    fn disk_capacity(&self, path: &Path) -> Option<u64> {
        self.host.disk_capacity(path)
    }
    fn now(&self) -> DateTime<Utc> {
        self.host.now()
    }
    fn path_kind(&self, path: &Path) -> Option<cobox_schema::host::PathKind> {
        self.host.path_kind(path)
    }
    fn invite_refusal(&self, code: &str) -> Option<String> {
        let now = u64::try_from(self.now().timestamp()).unwrap_or(0);
        cobox_keys::invite::open(code, &self.identity, now)
            .err()
            .map(|e| e.to_string())
    }
}

/// A host that knows nothing machine-specific beyond paths and the clock: validating with
/// it checks a config as it would be on any machine.
#[derive(Debug, Clone)]
pub struct Portable<H>(pub H);

impl<H: Host> Host for Portable<H> {
    fn home(&self) -> Option<PathBuf> {
        self.0.home()
    }
    fn default_data_dir(&self) -> PathBuf {
        self.0.default_data_dir()
    }
    fn default_mount_root(&self) -> PathBuf {
        self.0.default_mount_root()
    }
    fn disk_capacity(&self, _path: &Path) -> Option<u64> {
        None
    }
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
}
