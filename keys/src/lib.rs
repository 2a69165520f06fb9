//! Key material of a cobox device and its spaces, on libsodium: derivation from the parent
//! key, key files, block encryption, invites and paper keys.

pub mod atomic_file;
pub mod authority;
pub mod block;
pub mod derive;
pub mod envelope;
pub mod epoch;
pub mod follow;
pub mod invite;
pub mod paper;
mod pdf;
pub mod roster;
pub mod sealed;
pub mod secret;
pub mod seen;
pub mod sheet;
pub mod space;
pub mod store;

pub use derive::SigningKeyPair;
pub use secret::Secret32;
pub use space::SpaceKeys;
pub use store::{KeyStore, StoreError};

/// Initialise libsodium once per process (idempotent, thread-safe).
pub fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| libsodium_rs::ensure_init().expect("libsodium initialises"));
}
