//! `coboxd mount`: one space mounted in the foreground, for use and for tests.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cobox_keys::{KeyStore, SpaceKeys};

use crate::space::Space;

/// Open (or create) the space `name` of the device in `data_dir` and mount it at
/// `mountpoint` until SIGINT or SIGTERM; then unmount and close cleanly.
pub fn run(
    data_dir: &Path,
    name: &str,
    create: bool,
    device_name: &str,
    commit_interval: std::time::Duration,
    mountpoint: &Path,
) -> Result<()> {
    let store = KeyStore::new(data_dir);
    let (parent, _) = store
        .load_or_create_parent()
        .context("cannot load or create the device identity")?;
    let keys = match store.find_space(name)? {
        Some(k) => k,
        None if create => {
            let k = SpaceKeys::generate(name);
            store.save_space(&k)?;
            tracing::info!(space = name, address = %k.address, "created a new space");
            k
        }
        None => bail!(
            "this device has no space `{name}` in {} (pass --create to make one)",
            data_dir.display()
        ),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut space = rt.block_on(Space::open(data_dir, &parent, keys, device_name))?;
    let interval = crate::space::flush::CommitInterval::new(commit_interval);
    space.set_commit_interval(interval.clone());
    let staging = space.layout().staging();
    let space = Arc::new(tokio::sync::Mutex::new(space));
    crate::space::flush::spawn_flusher(rt.handle(), Arc::downgrade(&space), interval);
    let mounted = crate::mount::mount(space.clone(), rt.handle().clone(), mountpoint, staging)?;
    eprintln!("coboxd: mounted space `{name}` at {}", mountpoint.display());
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        Ok::<(), std::io::Error>(())
    })?;
    mounted.unmount()?;
    rt.block_on(async { space.lock().await.checkpoint().await })?;
    eprintln!("coboxd: unmounted {}", mountpoint.display());
    Ok(())
}
