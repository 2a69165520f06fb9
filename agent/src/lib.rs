//! The cobox agent: converges a device onto its declared `cobox.toml`.

pub mod atomic_file;
pub mod config_file;
pub mod control;
pub mod feed;
pub mod host;
pub mod keyops;
pub mod mount;
pub mod net;
pub mod plan;
pub mod replicate;
pub mod run;
pub mod run_mount;
pub mod space;
pub mod transport;
