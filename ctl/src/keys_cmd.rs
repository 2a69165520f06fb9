//! `coboxctl keys export|restore`: paper keys of the device and its spaces.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use cobox_keys::sheet::{self, PaperKey};
use cobox_keys::{KeyStore, SpaceKeys, paper};
use cobox_schema::hexkey::Address;

use crate::cli::SheetFormat;

pub struct ExportArgs<'a> {
    pub space: Option<&'a str>,
    pub all: bool,
    pub format: SheetFormat,
    pub output: Option<&'a Path>,
    pub force: bool,
}

pub fn export(store: &KeyStore, args: ExportArgs<'_>) -> Result<()> {
    let mut keys = Vec::new();
    if args.space.is_none() {
        let parent = store.load_parent()?.with_context(|| {
            format!(
                "this device has no identity in {} to export",
                store.data_dir().display()
            )
        })?;
        let id = cobox_keys::derive::identity(&parent);
        keys.push(PaperKey {
            title: "device parent key".into(),
            details: vec![
                format!("identity {}", id.public),
                "restores this device's identity and all of its feed keys".into(),
            ],
            words: paper::to_words(&parent),
        });
    }
    let spaces: Vec<SpaceKeys> = match (args.space, args.all) {
        (Some(name), _) => vec![store.find_space(name)?.with_context(|| {
            format!(
                "space `{name}` has no keys in {}",
                store.data_dir().display()
            )
        })?],
        (None, true) => store.spaces()?,
        (None, false) => vec![],
    };
    for s in spaces {
        let Some(key) = &s.encryption_key else {
            if args.space.is_some() {
                bail!(
                    "space `{}` is seeded here: this device holds no encryption key for it",
                    s.name
                );
            }
            continue;
        };
        keys.push(PaperKey {
            title: format!("space {}", s.name),
            details: vec![
                format!("address {}", s.address),
                "the encryption key of this space".into(),
            ],
            words: paper::to_words(key),
        });
    }
    let bytes = zeroize::Zeroizing::new(match args.format {
        SheetFormat::Text => sheet::text(&keys).into_bytes(),
        SheetFormat::Html => sheet::html(&keys).into_bytes(),
        SheetFormat::Pdf => sheet::pdf(&keys),
    });
    match args.output {
        None => std::io::stdout()
            .write_all(&bytes)
            .context("cannot write the sheet")?,
        Some(path) => {
            write_private(path, &bytes, args.force)?;
            tracing::info!(file = %path.display(), keys = keys.len(), "wrote a paper-key sheet");
            eprintln!(
                "coboxctl: wrote {} key(s) to {}; print it, keep it safe, then delete the file",
                keys.len(),
                path.display()
            );
        }
    }
    Ok(())
}

/// Create `path` with mode 0600 (refusing to replace a file unless `force`).
fn write_private(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).mode(0o600);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).with_context(|| {
        if path.exists() && !force {
            format!("{} exists; pass --force to overwrite it", path.display())
        } else {
            format!("cannot create {}", path.display())
        }
    })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn read_words() -> Result<zeroize::Zeroizing<String>> {
    let mut words = zeroize::Zeroizing::new(String::new());
    if std::io::stdin().is_terminal() {
        eprint!("Enter the 24 words, separated by spaces: ");
        std::io::stdin()
            .read_line(&mut words)
            .context("cannot read the words")?;
    } else {
        std::io::stdin()
            .read_to_string(&mut words)
            .context("cannot read the words")?;
    }
    Ok(words)
}

pub fn restore(
    store: &KeyStore,
    space: Option<&str>,
    address: Option<&str>,
    force: bool,
) -> Result<()> {
    let words = read_words()?;
    let secret = paper::from_words(&words).context("cannot restore the key")?;
    match (space, address) {
        (Some(name), Some(addr)) => {
            let address: Address = addr
                .parse()
                .map_err(|e| anyhow::anyhow!("address {addr:?} {e}"))?;
            if let Some(existing) = store.load_space(&address)? {
                if existing.encryption_key.as_ref() == Some(&secret) {
                    eprintln!("coboxctl: space `{}` already has this key", existing.name);
                    return Ok(());
                }
                bail!("space {address} already has keys here; nothing was changed");
            }
            store.save_space(&SpaceKeys {
                name: name.into(),
                address,
                encryption_key: Some(secret),
            })?;
            tracing::info!(space = name, %address, "restored a space key");
            eprintln!("coboxctl: restored the key of space `{name}` ({address})");
        }
        _ => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let backup = store.restore_parent(&secret, force, now).map_err(|e| match e {
                cobox_keys::StoreError::Exists { .. } => anyhow::anyhow!(
                    "this device already has a different identity in {}; pass --force to replace it (the old key is kept)",
                    store.data_dir().display()
                ),
                other => other.into(),
            })?;
            let id = cobox_keys::derive::identity(&secret);
            tracing::info!(public_key = %id.public, "restored the device identity");
            if let Some(b) = backup {
                eprintln!(
                    "coboxctl: the previous parent key is kept at {}",
                    b.display()
                );
            }
            println!("{}", id.public);
        }
    }
    Ok(())
}
