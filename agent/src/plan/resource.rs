//! Naming what the device runs: a resource is a kind and a name (`space home`, `mount
//! /srv/cobox/home`, `listener 0.0.0.0:7411`); failures, retries, events and conditions are
//! keyed by it.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

pub use cobox_schema::api::ResourceKind;

/// One resource of the device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId {
    pub kind: ResourceKind,
    pub name: String,
}

impl ResourceId {
    pub fn new(kind: ResourceKind, name: impl Into<String>) -> ResourceId {
        ResourceId {
            kind,
            name: name.into(),
        }
    }

    /// The device's identity (there is one).
    pub fn identity() -> ResourceId {
        ResourceId::new(ResourceKind::Identity, "device")
    }

    /// The traffic and storage policy (there is one).
    pub fn policy() -> ResourceId {
        ResourceId::new(ResourceKind::Policy, "traffic")
    }

    /// The iroh endpoint (there is one).
    pub fn endpoint() -> ResourceId {
        ResourceId::new(ResourceKind::Endpoint, "iroh")
    }

    /// Following the admins in the fleet space `space`.
    pub fn fleet(space: &str) -> ResourceId {
        ResourceId::new(ResourceKind::Fleet, space)
    }

    pub fn space(name: &str) -> ResourceId {
        ResourceId::new(ResourceKind::Space, name)
    }

    pub fn mount(path: &Path) -> ResourceId {
        ResourceId::new(ResourceKind::Mount, path.display().to_string())
    }

    pub fn seed(name: &str) -> ResourceId {
        ResourceId::new(ResourceKind::Seed, name)
    }

    pub fn listener(address: &SocketAddr) -> ResourceId {
        ResourceId::new(ResourceKind::Listener, address.to_string())
    }

    pub fn dialer(peer: &str) -> ResourceId {
        ResourceId::new(ResourceKind::Dialer, peer)
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}
