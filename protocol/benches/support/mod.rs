//! Helpers shared by the benchmarks.

pub mod copy;
#[path = "../../tests/support/tcp.rs"]
pub mod tcp;
