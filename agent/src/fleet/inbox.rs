//! Reading what was written to the fleet's logs since the last read: envelopes, changes of
//! the admin set and status reports, each log from where the state's cursor left it.

use cobox_keys::authority::Entry;
use cobox_keys::envelope::Envelope;
use cobox_schema::api::DeviceReport;
use cobox_schema::hexkey::PublicKey;

use super::state::FleetState;
use crate::space::message::{Decoded, Message};
use crate::space::{EntryError, Space, SpaceError};

/// Entries, and bytes of the fleet's messages, read in one pass at most (the rest the next
/// time): what a pass holds in memory stays bounded however long the logs are.
const MAX_READ: u64 = 4_096;
const MAX_READ_BYTES: usize = 16 << 20;

/// What one pass found.
#[derive(Debug, Default)]
pub struct Found {
    pub envelopes: Vec<Envelope>,
    pub entries: Vec<Entry>,
    /// Reports whose log belongs to the device they are about.
    pub reports: Vec<DeviceReport>,
    /// Admins' published geneses: (keys, threshold).
    pub geneses: Vec<(std::collections::BTreeSet<[u8; 32]>, u8)>,
    /// Entries that did not decode, skipped.
    pub invalid: u64,
    /// Whether every log was read to its end (the budget did not run out).
    pub caught_up: bool,
}

/// How many entries the fleet's logs hold in all: a change means something to read.
pub async fn total(space: &mut Space) -> Result<u64, SpaceError> {
    let mut n = 0;
    for key in space.log_keys() {
        n += space.log_len(&key).await?;
    }
    Ok(n)
}

/// Read every log entry past the cursors, moving them. Reports are read only on an admin's
/// device (`state.admin`).
pub async fn read_new(space: &mut Space, state: &mut FleetState) -> Result<Found, SpaceError> {
    let address = space.keys().address;
    state.follow_fleet(&address.to_string());
    let mut found = Found::default();
    let mut budget = MAX_READ;
    let mut bytes_left = MAX_READ_BYTES;
    for key in space.log_keys() {
        let hex = PublicKey(key).to_string();
        let from = state.cursors.get(&hex).copied().unwrap_or(0);
        let len = space.log_len(&key).await?;
        let mut at = from;
        while at < len && budget > 0 && bytes_left > 0 {
            let Some(entry) = space.log_entry(&key, at).await? else {
                break;
            };
            if let Err(EntryError::NoKey(_)) = entry {
                // Sealed under a key epoch not held yet: read again once it is.
                break;
            }
            at += 1;
            budget -= 1;
            if let Ok(Decoded::Known(
                Message::Envelope(b)
                | Message::Genesis(b)
                | Message::Authority(b)
                | Message::Status(b),
            )) = &entry
            {
                bytes_left = bytes_left.saturating_sub(b.len());
            }
            match entry {
                Ok(Decoded::Known(Message::Member {
                    identity,
                    log,
                    content,
                    signature,
                })) if log == key => {
                    let statement =
                        cobox_keys::roster::member_statement(&address.0, &log, &content);
                    if cobox_keys::derive::verify(&PublicKey(identity), &statement, &signature) {
                        state
                            .owners
                            .insert(hex.clone(), PublicKey(identity).to_string());
                    }
                }
                Ok(Decoded::Known(Message::Envelope(bytes))) => match Envelope::decode(&bytes) {
                    Ok(e) => found.envelopes.push(e),
                    Err(_) => found.invalid += 1,
                },
                Ok(Decoded::Known(Message::Genesis(bytes))) => {
                    match cobox_keys::authority::Authority::decode_genesis(&bytes) {
                        Some(g) => found.geneses.push(g),
                        None => found.invalid += 1,
                    }
                }
                Ok(Decoded::Known(Message::Authority(bytes))) => match Entry::decode(&bytes) {
                    Ok(e) => found.entries.push(e),
                    Err(_) => found.invalid += 1,
                },
                // Only an admin's device reads the devices' reports.
                Ok(Decoded::Known(Message::Status(_))) if !state.admin => {}
                Ok(Decoded::Known(Message::Status(bytes))) => {
                    match serde_json::from_slice::<DeviceReport>(&bytes) {
                        // Only a device's own log speaks for it.
                        Ok(r) if state.owners.get(&hex) == Some(&r.device) => found.reports.push(r),
                        _ => found.invalid += 1,
                    }
                }
                Ok(_) => {}
                Err(_) => found.invalid += 1,
            }
        }
        state.cursors.insert(hex, at);
    }
    found.caught_up = budget > 0 && bytes_left > 0;
    Ok(found)
}
