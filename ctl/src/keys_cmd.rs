//! `coboxctl keys export|restore`: paper keys of the device and its spaces.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine;
use cobox_client::api::Client;
use cobox_client::keyops;
use cobox_keys::{KeyStore, SpaceKeys, paper};
use cobox_schema::api;
use cobox_schema::hexkey::Address;

use crate::cli::SheetFormat;

pub struct ExportArgs<'a> {
    pub space: Option<&'a str>,
    pub all: bool,
    pub format: SheetFormat,
    pub output: Option<&'a Path>,
    pub force: bool,
}

pub fn export(
    agent: Option<&Client>,
    store: impl FnOnce() -> Result<KeyStore>,
    args: ExportArgs<'_>,
) -> Result<()> {
    let format = match args.format {
        SheetFormat::Text => api::SheetFormat::Text,
        SheetFormat::Html => api::SheetFormat::Html,
        SheetFormat::Pdf => api::SheetFormat::Pdf,
    };
    let (count, bytes) = match agent {
        Some(client) => {
            let resp: api::KeyExportResponse = client.post(
                "/v1/keys/export",
                &api::KeyExportRequest {
                    space: args.space.map(str::to_string),
                    all: args.all,
                    format,
                    confirm: true,
                },
            )?;
            let bytes = zeroize::Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(resp.content_base64.as_bytes())
                    .context("the agent sent a sheet that is not base64")?,
            );
            (resp.keys, bytes)
        }
        None => {
            let keys = keyops::paper_keys(&store()?, args.space, args.all)?;
            (keys.len(), keyops::sheet_bytes(&keys, format))
        }
    };
    match args.output {
        None => std::io::stdout()
            .write_all(&bytes)
            .context("cannot write the sheet")?,
        Some(path) => {
            write_private(path, &bytes, args.force)?;
            tracing::info!(file = %path.display(), keys = count, "wrote a paper-key sheet");
            eprintln!(
                "coboxctl: wrote {count} key(s) to {}; print it, keep it safe, then delete the file",
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
            let now = cobox_client::keyops::unix_now();
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
            outln!("{}", id.public);
        }
    }
    Ok(())
}
