//! Space log messages: a versioned binary encoding.
//!
//! Every entry of a member's log feed is one message (sealed with the space's block key
//! before it is appended). Layout: `version u8 = 1 ‖ type u8 ‖ body`. A type this program
//! does not know decodes to [`Decoded::Unknown`]: the reader skips and counts it, so older
//! agents keep working with logs written by newer ones.

/// The format version written by this program.
pub const VERSION: u8 = 1;

/// A message in a space log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The writer's device name, for people.
    About { device_name: String },
    /// The writer's feeds, bound to its identity by the identity's signature over
    /// `"cobox-member-v1" ‖ address ‖ log ‖ content`.
    Member {
        identity: [u8; 32],
        log: [u8; 32],
        content: [u8; 32],
        signature: [u8; 64],
    },
    /// An allow-list entry: `identity` may take part in the space with `role`.
    Allow { role: Role, identity: [u8; 32] },
    /// An invite was sent to `invitee`.
    InviteAnnounced {
        invitee: [u8; 32],
        role: Role,
        expires: u64,
    },
    /// A drive operation (its own versioned encoding).
    Drive(Vec<u8>),
    /// What the writer knew, at `at` (unix seconds), of the other devices' copies of the
    /// space: so members see the seeds' state even when not connected to them.
    Health { at: u64, seen: Vec<Seen> },
    /// A config envelope an admin published (`cobox_keys::envelope`, its own encoding).
    Envelope(Vec<u8>),
    /// A change of the admin set (`cobox_keys::authority::Entry`, its own encoding).
    Authority(Vec<u8>),
    /// A managed device's status report to its admins (JSON, at most
    /// [`MAX_STATUS`] bytes).
    Status(Vec<u8>),
    /// The genesis of an admin's authority (`Authority::encode_genesis`), so a device
    /// baked with the set in force later can find the chain that leads to it.
    Genesis(Vec<u8>),
    /// A new key epoch of the space (`cobox_keys::epoch::Epoch`, its own encoding): sealed
    /// under the space's first key, so every member reads it before it holds later keys.
    Epoch(Vec<u8>),
    /// Epoch keys given to a member (`cobox_keys::epoch::Grant`), sealed like `Epoch`.
    Grant(Vec<u8>),
}

/// One device's copy of a space, as a member saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub peer: [u8; 32],
    /// `None` when not in the writer's roster.
    pub role: Option<Role>,
    pub connected: bool,
    /// Blocks it lacked of what the writer held.
    pub behind_blocks: u64,
    /// When the writer last heard from it (unix seconds).
    pub last_seen: u64,
}

pub use cobox_keys::roster::Role;

/// What a log entry decoded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Known(Message),
    /// A message of a newer format or type: skipped and counted.
    Unknown {
        version: u8,
        kind: u8,
    },
}

/// Why a log entry is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("log entry is empty")]
    Empty,
    #[error("log entry of type {kind} ends early")]
    Truncated { kind: u8 },
    #[error("log entry of type {kind} has {extra} trailing bytes")]
    Trailing { kind: u8, extra: usize },
    #[error("log entry of type {kind} has an invalid field: {what}")]
    Invalid { kind: u8, what: &'static str },
}

const ABOUT: u8 = 1;
const MEMBER: u8 = 2;
const ALLOW: u8 = 3;
const INVITE: u8 = 4;
const DRIVE: u8 = 5;
const HEALTH: u8 = 6;
const ENVELOPE: u8 = 7;
const AUTHORITY: u8 = 8;
const STATUS: u8 = 9;
const GENESIS: u8 = 10;
const EPOCH: u8 = 11;
const GRANT: u8 = 12;
/// The longest status report: it may carry the running config (at most 1 MiB).
pub const MAX_STATUS: usize = cobox_keys::envelope::MAX_TEXT + 64 * 1024;
/// Most devices in one health report.
pub const MAX_SEEN: usize = 255;
/// Longest device name kept.
const MAX_NAME: usize = 255;

impl Message {
    /// Whether the body is bytes of an encoding of its own (a drive operation, an
    /// envelope, an authority entry, a report), checked by that encoding's decoder.
    pub fn carries_its_own_encoding(&self) -> bool {
        matches!(
            self,
            Message::Drive(_)
                | Message::Envelope(_)
                | Message::Authority(_)
                | Message::Status(_)
                | Message::Genesis(_)
                | Message::Epoch(_)
                | Message::Grant(_)
        )
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        match self {
            Message::About { device_name } => {
                out.push(ABOUT);
                let name = &device_name.as_bytes()[..device_name.len().min(MAX_NAME)];
                out.push(name.len() as u8);
                out.extend_from_slice(name);
            }
            Message::Member {
                identity,
                log,
                content,
                signature,
            } => {
                out.push(MEMBER);
                out.extend_from_slice(identity);
                out.extend_from_slice(log);
                out.extend_from_slice(content);
                out.extend_from_slice(signature);
            }
            Message::Allow { role, identity } => {
                out.push(ALLOW);
                out.push(role.byte());
                out.extend_from_slice(identity);
            }
            Message::InviteAnnounced {
                invitee,
                role,
                expires,
            } => {
                out.push(INVITE);
                out.extend_from_slice(invitee);
                out.push(role.byte());
                out.extend_from_slice(&expires.to_le_bytes());
            }
            Message::Drive(op) => {
                out.push(DRIVE);
                out.extend_from_slice(op);
            }
            Message::Envelope(b)
            | Message::Authority(b)
            | Message::Status(b)
            | Message::Genesis(b)
            | Message::Epoch(b)
            | Message::Grant(b) => {
                out.push(match self {
                    Message::Envelope(_) => ENVELOPE,
                    Message::Authority(_) => AUTHORITY,
                    Message::Genesis(_) => GENESIS,
                    Message::Epoch(_) => EPOCH,
                    Message::Grant(_) => GRANT,
                    _ => STATUS,
                });
                out.extend_from_slice(b);
            }
            Message::Health { at, seen } => {
                out.push(HEALTH);
                out.extend_from_slice(&at.to_le_bytes());
                let seen = &seen[..seen.len().min(MAX_SEEN)];
                out.push(seen.len() as u8);
                for s in seen {
                    out.extend_from_slice(&s.peer);
                    out.push(s.role.map_or(0, Role::byte));
                    out.push(u8::from(s.connected));
                    out.extend_from_slice(&s.behind_blocks.to_le_bytes());
                    out.extend_from_slice(&s.last_seen.to_le_bytes());
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Decoded, MessageError> {
        let (&version, rest) = bytes.split_first().ok_or(MessageError::Empty)?;
        let Some((&kind, body)) = rest.split_first() else {
            return Err(MessageError::Truncated { kind: 0 });
        };
        if version != VERSION {
            return Ok(Decoded::Unknown { version, kind });
        }
        let mut r = Reader { buf: body, kind };
        let msg = match kind {
            ABOUT => {
                let n = r.u8()? as usize;
                let name = std::str::from_utf8(r.take(n)?)
                    .map_err(|_| r.invalid("device name is not UTF-8"))?;
                Message::About {
                    device_name: name.to_string(),
                }
            }
            MEMBER => Message::Member {
                identity: r.array()?,
                log: r.array()?,
                content: r.array()?,
                signature: r.array()?,
            },
            ALLOW => Message::Allow {
                role: r.role()?,
                identity: r.array()?,
            },
            INVITE => Message::InviteAnnounced {
                invitee: r.array()?,
                role: r.role()?,
                expires: u64::from_le_bytes(r.array()?),
            },
            DRIVE => Message::Drive(r.take(r.buf.len())?.to_vec()),
            ENVELOPE => Message::Envelope(r.take(r.buf.len())?.to_vec()),
            AUTHORITY => Message::Authority(r.take(r.buf.len())?.to_vec()),
            STATUS if r.buf.len() > MAX_STATUS => return Err(r.invalid("status report too long")),
            STATUS => Message::Status(r.take(r.buf.len())?.to_vec()),
            GENESIS => Message::Genesis(r.take(r.buf.len())?.to_vec()),
            EPOCH => Message::Epoch(r.take(r.buf.len())?.to_vec()),
            GRANT => Message::Grant(r.take(r.buf.len())?.to_vec()),
            HEALTH => {
                let at = u64::from_le_bytes(r.array()?);
                let n = r.u8()? as usize;
                let mut seen = Vec::with_capacity(n);
                for _ in 0..n {
                    let peer = r.array()?;
                    let role = match r.u8()? {
                        0 => None,
                        b => Some(Role::from_byte(b).ok_or_else(|| r.invalid("unknown role"))?),
                    };
                    let connected = match r.u8()? {
                        0 => false,
                        1 => true,
                        _ => return Err(r.invalid("connected is not 0 or 1")),
                    };
                    seen.push(Seen {
                        peer,
                        role,
                        connected,
                        behind_blocks: u64::from_le_bytes(r.array()?),
                        last_seen: u64::from_le_bytes(r.array()?),
                    });
                }
                Message::Health { at, seen }
            }
            other => {
                return Ok(Decoded::Unknown {
                    version,
                    kind: other,
                });
            }
        };
        if !r.buf.is_empty() {
            return Err(MessageError::Trailing {
                kind,
                extra: r.buf.len(),
            });
        }
        Ok(Decoded::Known(msg))
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    kind: u8,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        if self.buf.len() < n {
            return Err(MessageError::Truncated { kind: self.kind });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, MessageError> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], MessageError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }
    fn role(&mut self) -> Result<Role, MessageError> {
        let b = self.u8()?;
        Role::from_byte(b).ok_or_else(|| self.invalid("unknown role"))
    }
    fn invalid(&self, what: &'static str) -> MessageError {
        MessageError::Invalid {
            kind: self.kind,
            what,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Message> {
        vec![
            Message::About {
                device_name: "ada-laptop".into(),
            },
            Message::Member {
                identity: [1; 32],
                log: [2; 32],
                content: [3; 32],
                signature: [4; 64],
            },
            Message::Allow {
                role: Role::Seeder,
                identity: [5; 32],
            },
            Message::InviteAnnounced {
                invitee: [6; 32],
                role: Role::Member,
                expires: 1_800_000_000,
            },
            Message::Drive(vec![1, 2, 3]),
            Message::Envelope(vec![4, 5]),
            Message::Authority(vec![6]),
            Message::Status(b"{}".to_vec()),
            Message::Genesis(vec![1, 0]),
            Message::Epoch(vec![1, 2]),
            Message::Grant(vec![3]),
            Message::Health {
                at: 1_800_000_000,
                seen: vec![
                    Seen {
                        peer: [7; 32],
                        role: Some(Role::Seeder),
                        connected: true,
                        behind_blocks: 0,
                        last_seen: 1_799_999_990,
                    },
                    Seen {
                        peer: [8; 32],
                        role: None,
                        connected: false,
                        behind_blocks: 12,
                        last_seen: 1_700_000_000,
                    },
                ],
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in samples() {
            assert_eq!(Message::decode(&m.encode()), Ok(Decoded::Known(m.clone())));
        }
    }

    #[test]
    fn unknown_types_and_versions_are_skippable_not_errors() {
        assert_eq!(
            Message::decode(&[1, 99, 0, 0]),
            Ok(Decoded::Unknown {
                version: 1,
                kind: 99
            })
        );
        assert_eq!(
            Message::decode(&[2, 1]),
            Ok(Decoded::Unknown {
                version: 2,
                kind: 1
            })
        );
    }

    #[test]
    fn every_truncation_of_every_message_is_an_error_not_a_panic() {
        for m in samples() {
            let bytes = m.encode();
            for cut in 0..bytes.len() {
                let r = Message::decode(&bytes[..cut]);
                if let Ok(Decoded::Known(d)) = &r {
                    // Only a body with an encoding of its own can end anywhere (its own
                    // decoder checks it).
                    assert!(d.carries_its_own_encoding(), "{m:?} cut at {cut} decoded");
                }
            }
            let mut long = bytes.clone();
            long.push(0);
            if !m.carries_its_own_encoding() {
                assert!(matches!(
                    Message::decode(&long),
                    Err(MessageError::Trailing { extra: 1, .. })
                ));
            }
        }
        assert_eq!(Message::decode(&[]), Err(MessageError::Empty));
        assert_eq!(
            Message::decode(&[1, 3, 9]),
            Err(MessageError::Invalid {
                kind: 3,
                what: "unknown role"
            })
        );
    }
}
