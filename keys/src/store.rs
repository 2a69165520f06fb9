//! Key files in the data directory: the parent key and each space's keys.
//!
//! ```text
//! DATA_DIR/                 0700
//!   keys/                   0700
//!     parent.key            0600  "cobox-parent-key 1\nkey HEX\n"
//!   spaces/                 0700
//!     ADDRESS/              0700
//!       space.key           0600  "cobox-space-keys 1\nname NAME\naddress HEX\nkey HEX\n"
//! ```
//!
//! Files are created whole or not at all (written to a temporary file, synced, then linked
//! into place, which fails if the target exists). A key file readable by group or others is
//! refused, as ssh does.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cobox_schema::hexkey::Address;

use crate::derive::{SigningKeyPair, identity};
use crate::secret::{Secret32, hex, unhex};
use crate::space::SpaceKeys;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "permissions {mode:04o} on {path} are too open: only its owner may read it (run `chmod 600 {path}`)"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("key file {path} is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} already exists")]
    Exists { path: PathBuf },
    #[error("this device has no identity yet in {0}")]
    NoIdentity(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The key files of one data directory.
#[derive(Debug, Clone)]
pub struct KeyStore {
    data_dir: PathBuf,
}

impl KeyStore {
    pub fn new(data_dir: impl Into<PathBuf>) -> KeyStore {
        KeyStore {
            data_dir: data_dir.into(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn parent_path(&self) -> PathBuf {
        self.data_dir.join("keys").join("parent.key")
    }

    pub fn space_path(&self, address: &Address) -> PathBuf {
        self.data_dir
            .join("spaces")
            .join(address.to_string())
            .join("space.key")
    }

    /// The signed statements of who takes part in the space at `address` (see
    /// [`crate::roster`]), beside its key.
    pub fn roster_path(&self, address: &Address) -> PathBuf {
        self.data_dir
            .join("spaces")
            .join(address.to_string())
            .join("roster")
    }

    /// The parent key, if the device has one.
    pub fn load_parent(&self) -> Result<Option<Secret32>, StoreError> {
        let path = self.parent_path();
        let Some(fields) = read_fields(&path, "cobox-parent-key 1")? else {
            return Ok(None);
        };
        Ok(Some(secret_field(&path, &fields, "key")?))
    }

    /// The device identity, if the device has one.
    pub fn identity(&self) -> Result<Option<SigningKeyPair>, StoreError> {
        Ok(self.load_parent()?.map(|p| identity(&p)))
    }

    /// The identity, or an error saying there is none.
    pub fn require_identity(&self) -> Result<SigningKeyPair, StoreError> {
        self.identity()?
            .ok_or_else(|| StoreError::NoIdentity(self.data_dir.clone()))
    }

    /// The parent key, created (random) when the device has none. `true` when created.
    pub fn load_or_create_parent(&self) -> Result<(Secret32, bool), StoreError> {
        if let Some(p) = self.load_parent()? {
            return Ok((p, false));
        }
        let parent = Secret32::random();
        match self.write_parent(&parent) {
            Ok(()) => Ok((parent, true)),
            // Another process created it first: use theirs.
            Err(StoreError::Exists { .. }) => Ok((self.load_parent()?.expect("it exists"), false)),
            Err(e) => Err(e),
        }
    }

    /// Install `parent` as the device's parent key. With an existing, different key this
    /// fails unless `force`, in which case the old file is kept beside it as
    /// `parent.key.replaced-UNIXTIME` and its path returned.
    pub fn restore_parent(
        &self,
        parent: &Secret32,
        force: bool,
        now: u64,
    ) -> Result<Option<PathBuf>, StoreError> {
        let path = self.parent_path();
        match self.load_parent()? {
            None => self.write_parent(parent).map(|()| None),
            Some(existing) if existing == *parent => Ok(None),
            Some(_) if !force => Err(StoreError::Exists { path }),
            Some(_) => {
                let backup = path.with_file_name(format!("parent.key.replaced-{now}"));
                fs::rename(&path, &backup).map_err(io(&path))?;
                sync_dir(path.parent().expect("has a parent"))?;
                self.write_parent(parent)?;
                Ok(Some(backup))
            }
        }
    }

    fn write_parent(&self, parent: &Secret32) -> Result<(), StoreError> {
        let body = zeroize::Zeroizing::new(format!(
            "cobox-parent-key 1\nkey {}\n",
            hex(parent.expose())
        ));
        create_file(&self.parent_path(), body.as_bytes())
    }

    /// Write a space's keys; an existing file for that address is an error.
    pub fn save_space(&self, keys: &SpaceKeys) -> Result<(), StoreError> {
        let mut body = format!(
            "cobox-space-keys 1\nname {}\naddress {}\n",
            keys.name, keys.address
        );
        if let Some(k) = &keys.encryption_key {
            body.push_str(&format!("key {}\n", hex(k.expose())));
        }
        let body = zeroize::Zeroizing::new(body);
        let path = self.space_path(&keys.address);
        let dir = path
            .parent()
            .expect("a space key lives in its space's directory");
        if dir.exists() {
            // Joining made the directory first (for the roster): the key is added to it.
            return create_file(&path, body.as_bytes());
        }
        // A new space's directory appears whole, key inside, or not at all: a crash
        // leaves at most a hidden temporary directory, swept by the next listing.
        let spaces = dir.parent().expect("space directories live under spaces/");
        let tmp = spaces.join(format!(
            ".{}.tmp-{}-{}",
            keys.address,
            std::process::id(),
            libsodium_rs::random::u32()
        ));
        create_file(&tmp.join("space.key"), body.as_bytes())?;
        let renamed = fs::rename(&tmp, dir).map_err(io(dir));
        if renamed.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        renamed?;
        fs::File::open(spaces)
            .and_then(|d| d.sync_all())
            .map_err(io(spaces))
    }

    pub fn load_space(&self, address: &Address) -> Result<Option<SpaceKeys>, StoreError> {
        let path = self.space_path(address);
        let Some(fields) = read_fields(&path, "cobox-space-keys 1")? else {
            return Ok(None);
        };
        let corrupt = |reason: &str| StoreError::Corrupt {
            path: path.clone(),
            reason: reason.into(),
        };
        let name = field(&fields, "name")
            .ok_or_else(|| corrupt("no name"))?
            .to_string();
        let stored: Address = field(&fields, "address")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| corrupt("no valid address"))?;
        if stored != *address {
            return Err(corrupt(
                "the address inside differs from the directory name",
            ));
        }
        let encryption_key = match field(&fields, "key") {
            Some(_) => Some(secret_field(&path, &fields, "key")?),
            None => None,
        };
        Ok(Some(SpaceKeys {
            name,
            address: stored,
            encryption_key,
        }))
    }

    /// Every space with keys here, sorted by name then address.
    pub fn spaces(&self) -> Result<Vec<SpaceKeys>, StoreError> {
        let dir = self.data_dir.join("spaces");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => {
                return Err(StoreError::Io {
                    path: dir,
                    source: e,
                });
            }
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&dir))?;
            let name = entry.file_name();
            let name = name.to_str().unwrap_or_default();
            if let Some(pid) = temp_owner(name)
                && !Path::new("/proc").join(pid.to_string()).exists()
            {
                // Left by a process that died while creating a space: nothing in it counts.
                let _ = fs::remove_dir_all(entry.path());
                continue;
            }
            let Some(address) = name.parse::<Address>().ok() else {
                continue;
            };
            if let Some(keys) = self.load_space(&address)? {
                out.push(keys);
            }
        }
        out.sort_by(|a, b| (&a.name, a.address).cmp(&(&b.name, b.address)));
        Ok(out)
    }

    /// The space of that name, if exactly one has it (several: the first by address).
    pub fn find_space(&self, name: &str) -> Result<Option<SpaceKeys>, StoreError> {
        Ok(self.spaces()?.into_iter().find(|s| s.name == name))
    }
}

/// The process that made temporary space directory `name` (`.ADDRESS.tmp-PID-N`).
fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.split_once(".tmp-")?.1;
    rest.split('-').next()?.parse().ok()
}

/// Create directories up to `dir` with mode 0700 (existing ones are left as they are).
fn create_private_dirs(dir: &Path) -> Result<(), StoreError> {
    let mut missing = Vec::new();
    let mut d = dir;
    while !d.exists() {
        missing.push(d);
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
    for d in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(0o700).create(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(StoreError::Io {
                    path: d.to_path_buf(),
                    source: e,
                });
            }
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))
}

/// Write `body` to `path` (mode 0600) all or nothing; fails if `path` exists.
fn create_file(path: &Path, body: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().expect("key files live in a directory");
    create_private_dirs(dir)?;
    crate::atomic_file::create(path, body, 0o600).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => StoreError::Exists {
            path: path.to_path_buf(),
        },
        _ => StoreError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })
}

type Fields = Vec<(String, String)>;

/// Read a `header\nkey value\n…` file; `None` when it does not exist.
fn read_fields(path: &Path, header: &str) -> Result<Option<Fields>, StoreError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = zeroize::Zeroizing::new(fs::read_to_string(path).map_err(io(path))?);
    let mut lines = text.lines();
    if lines.next() != Some(header) {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("first line is not {header:?}"),
        });
    }
    Ok(Some(
        lines
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ))
}

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn secret_field(path: &Path, fields: &Fields, name: &str) -> Result<Secret32, StoreError> {
    let bytes = field(fields, name)
        .and_then(unhex)
        .map(zeroize::Zeroizing::new)
        .ok_or_else(|| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("{name} is not hex"),
        })?;
    Secret32::from_slice(&bytes).ok_or_else(|| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("{name} is not 32 bytes"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_parent_key_is_created_once_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("data"));
        assert!(store.identity().unwrap().is_none());
        let (p1, created) = store.load_or_create_parent().unwrap();
        assert!(created);
        let (p2, created) = store.load_or_create_parent().unwrap();
        assert!(!created);
        assert_eq!(p1, p2);
        assert_eq!(mode(&store.parent_path()), 0o600);
        assert_eq!(mode(&dir.path().join("data/keys")), 0o700);
        assert_eq!(mode(&dir.path().join("data")), 0o700);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("data/keys"))
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary files remain");
    }

    #[test]
    fn a_space_half_created_by_a_dead_process_is_swept_and_never_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let keys = SpaceKeys::generate("home");
        let spaces = dir.path().join("spaces");
        // What a process killed before the rename leaves (pid 4294967 is beyond pid_max).
        let stray = spaces.join(format!(".{}.tmp-4294967-7", keys.address));
        fs::create_dir_all(&stray).unwrap();
        fs::write(stray.join("space.key"), "cobox-space-keys 1\n").unwrap();
        assert!(store.spaces().unwrap().is_empty());
        assert!(!stray.exists(), "the leftover is swept");
        store.save_space(&keys).unwrap();
        let names: Vec<String> = fs::read_dir(&spaces)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            vec![keys.address.to_string()],
            "only the space, whole"
        );
        assert_eq!(
            store.find_space("home").unwrap().unwrap().address,
            keys.address
        );
        assert!(matches!(
            store.save_space(&keys),
            Err(StoreError::Exists { .. })
        ));
    }

    #[test]
    fn a_readable_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        store.load_or_create_parent().unwrap();
        fs::set_permissions(store.parent_path(), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            store.load_parent(),
            Err(StoreError::TooOpen { mode: 0o644, .. })
        ));
    }

    #[test]
    fn restoring_over_another_identity_needs_force_and_keeps_the_old_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let (old, _) = store.load_or_create_parent().unwrap();
        let new = Secret32::from_bytes([9; 32]);
        assert!(matches!(
            store.restore_parent(&new, false, 1),
            Err(StoreError::Exists { .. })
        ));
        assert_eq!(store.load_parent().unwrap().unwrap(), old);
        let backup = store.restore_parent(&new, true, 1).unwrap().unwrap();
        assert_eq!(store.load_parent().unwrap().unwrap(), new);
        assert_eq!(
            KeyStore::new(dir.path()).load_parent().unwrap().unwrap(),
            new
        );
        let kept = fs::read_to_string(backup).unwrap();
        assert!(kept.contains(&hex(old.expose())));
        // Restoring the key already in place is a no-op.
        assert_eq!(store.restore_parent(&new, false, 2).unwrap(), None);
    }

    #[test]
    fn space_keys_round_trip_and_are_found_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let a = SpaceKeys::generate("accounts");
        let b = SpaceKeys {
            name: "hub-copy".into(),
            address: Address([3; 32]),
            encryption_key: None,
        };
        store.save_space(&a).unwrap();
        store.save_space(&b).unwrap();
        assert!(matches!(
            store.save_space(&a),
            Err(StoreError::Exists { .. })
        ));
        assert_eq!(store.load_space(&a.address).unwrap().unwrap(), a);
        assert_eq!(store.find_space("hub-copy").unwrap().unwrap(), b);
        assert_eq!(store.spaces().unwrap().len(), 2);
        assert_eq!(mode(&store.space_path(&a.address)), 0o600);
        assert_eq!(mode(store.space_path(&a.address).parent().unwrap()), 0o700);
    }

    #[test]
    fn a_damaged_file_is_reported_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        store.load_or_create_parent().unwrap();
        fs::write(store.parent_path(), "cobox-parent-key 1\nkey 1234\n").unwrap();
        assert!(matches!(
            store.load_parent(),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
