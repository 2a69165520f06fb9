//! What `coboxctl` needs of a device without running its agent: finding and validating the
//! config (`config_file`), the machine facts validation asks for (`host`), key operations
//! on the data directory (`keyops`), and the client of the agent's control API (`api`).

pub mod api;
pub mod config_file;
pub mod fleet_dir;
pub mod host;
pub mod keyops;
pub mod rollout;
