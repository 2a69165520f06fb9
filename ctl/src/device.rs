//! Which data directory a command acts on, and the device's key store there.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use cobox_client::config_file;
use cobox_keys::KeyStore;
use cobox_schema::Host;

/// `--data-dir`, else the `[device] data_dir` of `--config` (or of the default config file
/// when it exists), else the host's default.
pub fn data_dir(
    data_dir: Option<PathBuf>,
    config: Option<PathBuf>,
    host: &dyn Host,
) -> Result<PathBuf> {
    if let Some(d) = data_dir {
        return Ok(d);
    }
    let config = config.or_else(|| config_file::default_path().filter(|p| p.exists()));
    let Some(path) = config else {
        return Ok(host.default_data_dir());
    };
    let source = config_file::read(&path)?;
    let validation = config_file::check(&source, host);
    match validation.config {
        Some(c) => Ok(c.device.data_dir),
        None => bail!(
            "config {} is invalid (run `coboxctl validate {}`); pass --data-dir to act anyway",
            path.display(),
            path.display()
        ),
    }
}

pub fn store(dir: PathBuf) -> KeyStore {
    KeyStore::new(dir)
}

/// The device's identity, created on first use like the agent does on its first start.
pub fn identity_creating(store: &KeyStore) -> Result<cobox_keys::SigningKeyPair> {
    let (parent, created) = store.load_or_create_parent().with_context(|| {
        format!(
            "cannot set up an identity in {}",
            store.data_dir().display()
        )
    })?;
    let id = cobox_keys::derive::identity(&parent);
    if created {
        tracing::info!(data_dir = %store.data_dir().display(), public_key = %id.public, "created a new device identity");
        eprintln!(
            "coboxctl: created a new identity in {}",
            store.data_dir().display()
        );
    }
    Ok(id)
}
