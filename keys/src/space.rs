//! The keys of a space: its address (public to seeders) and encryption key (members only).

use cobox_schema::hexkey::Address;

use crate::derive::discovery_key;
use crate::secret::Secret32;

/// A space as this device holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct SpaceKeys {
    pub name: String,
    pub address: Address,
    /// Members hold it; seeds never do.
    pub encryption_key: Option<Secret32>,
}

impl std::fmt::Debug for SpaceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpaceKeys")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("member", &self.encryption_key.is_some())
            .finish()
    }
}

impl SpaceKeys {
    /// A new space: a random address and a random encryption key.
    pub fn generate(name: &str) -> SpaceKeys {
        SpaceKeys {
            name: name.to_string(),
            address: Address(*Secret32::random().expose()),
            encryption_key: Some(Secret32::random()),
        }
    }

    /// The discovery key: what peers announce and open channels with. It does not reveal
    /// the address.
    pub fn discovery_key(&self) -> [u8; 32] {
        discovery_key(&self.address.0)
    }
}
