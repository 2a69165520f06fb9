//! What replication messages cost and look like: a request, the bytes a block takes on
//! disk and on the wire, and one-line summaries for the trace log.

use hypercore_protocol::Message;
use hypercore_protocol::schema::{Data, Request};
use hypercore_schema::{RequestBlock, RequestUpgrade};

use super::error::hex;

pub fn request(
    id: u64,
    fork: u64,
    block: Option<RequestBlock>,
    upgrade: Option<RequestUpgrade>,
) -> Message {
    Message::Request(Request {
        id,
        fork,
        block,
        hash: None,
        seek: None,
        upgrade,
        manifest: false,
        priority: 0,
    })
}

/// Bytes of one tree node in a feed's tree file.
const TREE_NODE: u64 = 40;

/// What a block of `bytes` takes on disk: the block and its two tree nodes.
pub fn on_disk(bytes: u64) -> u64 {
    bytes + 2 * TREE_NODE
}

/// About what a data message takes on the wire: the block, its proof nodes, the rest.
pub fn wire_size(d: &Data) -> u64 {
    let block = d
        .block
        .as_ref()
        .map_or(0, |b| b.value.len() + b.nodes.len() * TREE_NODE as usize);
    let upgrade = d.upgrade.as_ref().map_or(0, |u| {
        (u.nodes.len() + u.additional_nodes.len()) * TREE_NODE as usize + u.signature.len()
    });
    (block + upgrade + 16) as u64
}

pub fn short(key: &[u8; 32]) -> String {
    hex(&key[..4])
}

/// A message in one line, without block contents.
pub fn summary(m: &Message) -> String {
    match m {
        Message::Synchronize(s) => format!("sync length {}", s.length),
        Message::Range(r) => format!("range {}+{} drop {}", r.start, r.length, r.drop),
        Message::Request(r) => format!(
            "request {} block {:?} upgrade {:?}",
            r.id,
            r.block.as_ref().map(|b| b.index),
            r.upgrade.as_ref().map(|u| (u.start, u.length))
        ),
        Message::Data(d) => format!(
            "data {} block {:?} upgrade {:?}",
            d.request,
            d.block.as_ref().map(|b| b.index),
            d.upgrade.as_ref().map(|u| (u.start, u.length))
        ),
        Message::NoData(n) => format!("no data {}", n.request),
        other => format!("{other:?}").chars().take(60).collect(),
    }
}
