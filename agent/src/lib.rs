//! The cobox agent: converges a device onto its declared `cobox.toml`.

pub use cobox_client::{config_file, host, keyops};
pub use cobox_keys::atomic_file;
pub use cobox_protocol::{feed, replicate, transport};

pub mod backoff;
pub mod control;
pub mod fleet;
pub mod mount;
pub mod net;
pub mod plan;
pub mod quiet_repeats;
pub mod run;
pub mod run_mount;
pub mod space;
pub mod web;
