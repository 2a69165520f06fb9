//! Authenticated byte streams between devices, for the replication layer to run on.

pub mod iroh;
