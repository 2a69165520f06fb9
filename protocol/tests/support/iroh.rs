//! Iroh endpoints on loopback with nothing but direct addresses (no relays, no lookup, no
//! port mapping), shared by the iroh transport tests and benchmark.

#![allow(dead_code)]

use std::sync::Arc;

use cobox_keys::Secret32;
use cobox_protocol::transport::iroh::{Allow, IrohOptions, IrohStream, IrohTransport, Relays};

/// The identity seed and public key of device number `n`, derived as the agent does.
pub fn identity(n: u8) -> ([u8; 32], [u8; 32]) {
    let keys = cobox_keys::derive::identity(&Secret32::from_bytes([n; 32]));
    let seed = keys.secret_bytes()[..32].try_into().unwrap();
    (seed, keys.public.0)
}

/// Options for an endpoint on 127.0.0.1 that talks to nobody it is not told about.
pub fn loopback(n: u8) -> IrohOptions {
    IrohOptions {
        identity_seed: identity(n).0,
        bind: Some("127.0.0.1:0".parse().unwrap()),
        relays: Relays::Disabled,
        portmapper: false,
        mdns: false,
        mainline: false,
    }
}

pub fn allow_all() -> Allow {
    Arc::new(|_| true)
}

/// Device `b` dials device `a` on loopback; returns both endpoints and the two stream ends
/// (`a`'s accepted one first) with the identity `a` saw.
pub async fn pair(
    a: u8,
    b: u8,
) -> (
    IrohTransport,
    IrohTransport,
    IrohStream,
    IrohStream,
    [u8; 32],
) {
    let ta = IrohTransport::bind(loopback(a), allow_all()).await.unwrap();
    let tb = IrohTransport::bind(loopback(b), allow_all()).await.unwrap();
    let a_addrs = ta.local_addrs();
    let (accepted, dialled) = tokio::join!(ta.accept(), tb.dial(ta.id(), &a_addrs));
    let (seen, sa) = accepted.unwrap().unwrap();
    (ta, tb, sa, dialled.unwrap(), seen)
}
