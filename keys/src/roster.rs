//! Who takes part in a space, readable without its encryption key: signed statements that
//! bind members' feeds to their identities and admit identities, exchanged between peers
//! and kept in a file beside the space's (or seed's) feeds.
//!
//! A member device trusts itself and, from there, every identity admitted by an identity
//! it trusts (an invitee admits its inviter; an inviter admits its invitee; a member
//! admits the space's declared seeders); it accepts the feeds of trusted identities only.
//! A seed holds no root of trust: anyone who proved knowledge of the address may hand it
//! statements, and once it holds any, only the identities they name are served.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use crate::SigningKeyPair;
use cobox_schema::hexkey::PublicKey;

/// A role in a space's allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Seeder,
}

impl Role {
    /// The role's byte in log messages and roster statements.
    pub fn byte(self) -> u8 {
        match self {
            Role::Member => 1,
            Role::Seeder => 2,
        }
    }

    pub fn from_byte(b: u8) -> Option<Role> {
        match b {
            1 => Some(Role::Member),
            2 => Some(Role::Seeder),
            _ => None,
        }
    }
}

/// What a member's identity signs to bind its log and content feeds to it in a space.
pub fn member_statement(address: &[u8; 32], log: &[u8; 32], content: &[u8; 32]) -> Vec<u8> {
    [b"cobox-member-v1".as_slice(), address, log, content].concat()
}

const VERSION: u8 = 1;
const MEMBER: u8 = 1;
const ALLOW: u8 = 2;
const ALLOW_DOMAIN: &[u8] = b"cobox-allow-v1";
/// Statements in one message or file, at most.
pub const MAX_STATEMENTS: usize = 65_536;

/// A signed statement about a space.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Statement {
    /// `identity` writes the feeds `log` and `content` (signed by `identity`).
    Member {
        identity: [u8; 32],
        log: [u8; 32],
        content: [u8; 32],
        signature: [u8; 64],
    },
    /// `by` admits `identity` with `role` (signed by `by`).
    Allow {
        role: Role,
        identity: [u8; 32],
        by: [u8; 32],
        signature: [u8; 64],
    },
}

/// Why bytes are not statements.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    #[error("roster statement ends early")]
    Truncated,
    #[error("roster statement of version {0} is not supported")]
    Version(u8),
    #[error("roster statement of unknown type {0}")]
    Type(u8),
    #[error("roster statement has an unknown role {0}")]
    Role(u8),
    #[error("roster statement's signature does not verify")]
    Signature,
    #[error("roster message holds more than {MAX_STATEMENTS} statements")]
    TooMany,
}

fn allow_statement(address: &[u8; 32], role: Role, identity: &[u8; 32]) -> Vec<u8> {
    [ALLOW_DOMAIN, address, &[role.byte()], identity].concat()
}

fn take<const N: usize>(bytes: &mut &[u8]) -> Result<[u8; N], RosterError> {
    if bytes.len() < N {
        return Err(RosterError::Truncated);
    }
    let (head, rest) = bytes.split_at(N);
    *bytes = rest;
    Ok(head.try_into().expect("length checked"))
}

impl Statement {
    /// `me`'s statement that it writes `log` and `content` in the space at `address`.
    pub fn member(
        me: &SigningKeyPair,
        address: &[u8; 32],
        log: [u8; 32],
        content: [u8; 32],
    ) -> Statement {
        Statement::Member {
            identity: me.public.0,
            log,
            content,
            signature: me.sign(&member_statement(address, &log, &content)),
        }
    }

    /// `me`'s admission of `identity` with `role` to the space at `address`.
    pub fn allow(me: &SigningKeyPair, address: &[u8; 32], role: Role, identity: [u8; 32]) -> Self {
        Statement::Allow {
            role,
            identity,
            by: me.public.0,
            signature: me.sign(&allow_statement(address, role, &identity)),
        }
    }

    /// Whether the signature holds for the space at `address`.
    pub fn verifies(&self, address: &[u8; 32]) -> bool {
        let (signer, message, signature) = match self {
            Statement::Member {
                identity,
                log,
                content,
                signature,
            } => (identity, member_statement(address, log, content), signature),
            Statement::Allow {
                role,
                identity,
                by,
                signature,
            } => (by, allow_statement(address, *role, identity), signature),
        };
        crate::derive::verify(&PublicKey(*signer), &message, signature)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        match self {
            Statement::Member {
                identity,
                log,
                content,
                signature,
            } => {
                out.push(MEMBER);
                for part in [&identity[..], log, content, signature] {
                    out.extend_from_slice(part);
                }
            }
            Statement::Allow {
                role,
                identity,
                by,
                signature,
            } => {
                out.push(ALLOW);
                out.push(role.byte());
                for part in [&identity[..], by, signature] {
                    out.extend_from_slice(part);
                }
            }
        }
    }

    /// Decode one statement from the front of `bytes` (signature not checked).
    pub fn decode(bytes: &mut &[u8]) -> Result<Statement, RosterError> {
        let [version, kind] = take::<2>(bytes)?;
        if version != VERSION {
            return Err(RosterError::Version(version));
        }
        match kind {
            MEMBER => Ok(Statement::Member {
                identity: take(bytes)?,
                log: take(bytes)?,
                content: take(bytes)?,
                signature: take(bytes)?,
            }),
            ALLOW => {
                let [role] = take::<1>(bytes)?;
                let role = Role::from_byte(role).ok_or(RosterError::Role(role))?;
                Ok(Statement::Allow {
                    role,
                    identity: take(bytes)?,
                    by: take(bytes)?,
                    signature: take(bytes)?,
                })
            }
            k => Err(RosterError::Type(k)),
        }
    }
}

/// Encode statements one after another (a message or a file).
pub fn encode_all<'a>(statements: impl IntoIterator<Item = &'a Statement>) -> Vec<u8> {
    let mut out = Vec::new();
    for s in statements {
        s.encode(&mut out);
    }
    out
}

/// Decode a message of statements; any malformed byte refuses the whole message.
pub fn decode_all(mut bytes: &[u8]) -> Result<Vec<Statement>, RosterError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if out.len() == MAX_STATEMENTS {
            return Err(RosterError::TooMany);
        }
        out.push(Statement::decode(&mut bytes)?);
    }
    Ok(out)
}

/// The feeds one member writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemberFeeds {
    pub identity: [u8; 32],
    pub log: [u8; 32],
    pub content: [u8; 32],
}

/// The statements known about one space and what they allow.
#[derive(Debug, Clone)]
pub struct Roster {
    address: [u8; 32],
    /// Identities trusted without a statement (a member device: itself). None: a seed.
    roots: Option<BTreeSet<[u8; 32]>>,
    statements: BTreeSet<Statement>,
}

impl Roster {
    /// The roster of a member device whose identity is `me`.
    pub fn member(address: [u8; 32], me: [u8; 32]) -> Roster {
        Roster {
            address,
            roots: Some(BTreeSet::from([me])),
            statements: BTreeSet::new(),
        }
    }

    /// The roster of a seed: it trusts whatever verifies.
    pub fn seed(address: [u8; 32]) -> Roster {
        Roster {
            address,
            roots: None,
            statements: BTreeSet::new(),
        }
    }

    pub fn address(&self) -> &[u8; 32] {
        &self.address
    }

    /// Keep `statement` if it verifies; `Ok(true)` when it is new.
    pub fn add(&mut self, statement: Statement) -> Result<bool, RosterError> {
        if !statement.verifies(&self.address) {
            return Err(RosterError::Signature);
        }
        Ok(self.statements.insert(statement))
    }

    pub fn statements(&self) -> impl Iterator<Item = &Statement> {
        self.statements.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Every identity allowed in the space, with its role (a member wins over a seeder).
    pub fn allowed(&self) -> BTreeMap<[u8; 32], Role> {
        let mut allowed: BTreeMap<[u8; 32], Role> = BTreeMap::new();
        let Some(roots) = &self.roots else {
            for s in &self.statements {
                let (identity, role) = match s {
                    Statement::Member { identity, .. } => (identity, Role::Member),
                    Statement::Allow { identity, role, .. } => (identity, *role),
                };
                let entry = allowed.entry(*identity).or_insert(role);
                *entry = (*entry).min(role);
            }
            return allowed;
        };
        for r in roots {
            allowed.insert(*r, Role::Member);
        }
        // Admissions by admitted identities, until nothing changes.
        loop {
            let mut grew = false;
            for s in &self.statements {
                if let Statement::Allow {
                    role, identity, by, ..
                } = s
                    && allowed.contains_key(by)
                {
                    let entry = allowed.entry(*identity).or_insert_with(|| {
                        grew = true;
                        *role
                    });
                    if *role < *entry {
                        *entry = *role;
                        grew = true;
                    }
                }
            }
            if !grew {
                return allowed;
            }
        }
    }

    /// Whether `identity` may be served this space. A seed that knows no statement yet
    /// serves anyone who proves knowledge of the address.
    pub fn admits(&self, identity: &[u8; 32]) -> bool {
        (self.roots.is_none() && self.statements.is_empty())
            || self.allowed().contains_key(identity)
    }

    /// The feeds of allowed members, sorted.
    pub fn members(&self) -> Vec<MemberFeeds> {
        let allowed = self.allowed();
        let mut out: Vec<MemberFeeds> = self
            .statements
            .iter()
            .filter_map(|s| match s {
                Statement::Member {
                    identity,
                    log,
                    content,
                    ..
                } if allowed.contains_key(identity) => Some(MemberFeeds {
                    identity: *identity,
                    log: *log,
                    content: *content,
                }),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Load the statements kept in `file` (missing: none). A torn or invalid tail, left by
    /// a crash during an append, is cut off so later appends stay readable.
    pub fn load(&mut self, file: &Path) -> std::io::Result<()> {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let at = bytes.len() - rest.len();
            match Statement::decode(&mut rest) {
                Ok(s) => {
                    let _ = self.add(s);
                }
                Err(_) => {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(file)?
                        .set_len(at as u64)?;
                    break;
                }
            }
        }
        Ok(())
    }

    /// Add statements, appending the new ones to `file` (synced before returning).
    /// Returns the new ones.
    pub fn add_and_keep(
        &mut self,
        file: &Path,
        statements: impl IntoIterator<Item = Statement>,
    ) -> std::io::Result<Vec<Statement>> {
        let new = self.add_new(statements);
        keep(file, &new)?;
        Ok(new)
    }

    /// Add what verifies and is new; returns those statements (to keep, to pass on).
    pub fn add_new(&mut self, statements: impl IntoIterator<Item = Statement>) -> Vec<Statement> {
        statements
            .into_iter()
            .filter(|s| !self.statements.contains(s) && matches!(self.add(s.clone()), Ok(true)))
            .collect()
    }
}

/// Append `statements` to the roster file `file`, synced (nothing to do for none).
pub fn keep(file: &Path, statements: &[Statement]) -> std::io::Result<()> {
    if statements.is_empty() {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    f.write_all(&encode_all(statements))?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret32;

    fn id(n: u8) -> SigningKeyPair {
        crate::derive::identity(&Secret32::from_bytes([n; 32]))
    }

    const ADDR: [u8; 32] = [9; 32];

    #[test]
    fn statements_round_trip_and_hostile_bytes_are_refused() {
        let (a, b) = (id(1), id(2));
        let all = vec![
            Statement::member(&a, &ADDR, [1; 32], [2; 32]),
            Statement::allow(&a, &ADDR, Role::Seeder, b.public.0),
        ];
        let bytes = encode_all(&all);
        assert_eq!(decode_all(&bytes).unwrap(), all);
        assert!(all.iter().all(|s| s.verifies(&ADDR)));
        assert!(!all[0].verifies(&[8; 32]), "bound to the address");
        for cut in 0..bytes.len() {
            let r = decode_all(&bytes[..cut]);
            assert!(cut == 0 || cut == 162 || r.is_err(), "cut at {cut}");
        }
        assert_eq!(decode_all(&[2, 1]), Err(RosterError::Version(2)));
        assert_eq!(decode_all(&[1, 7]), Err(RosterError::Type(7)));
        let mut bad_role = bytes[162..].to_vec();
        bad_role[2] = 9;
        assert_eq!(decode_all(&bad_role), Err(RosterError::Role(9)));
    }

    #[test]
    fn a_member_trusts_itself_and_whom_trusted_identities_admit() {
        let (me, inviter, other, stranger, seed) = (id(1), id(2), id(3), id(4), id(5));
        let mut r = Roster::member(ADDR, me.public.0);
        // A stranger's own statements admit nobody.
        r.add(Statement::member(&stranger, &ADDR, [4; 32], [5; 32]))
            .unwrap();
        r.add(Statement::allow(
            &stranger,
            &ADDR,
            Role::Member,
            other.public.0,
        ))
        .unwrap();
        assert!(!r.admits(&stranger.public.0));
        assert!(!r.admits(&other.public.0));
        assert!(r.members().is_empty());
        // Admitting the inviter makes whom the inviter admits trusted too.
        r.add(Statement::allow(&me, &ADDR, Role::Member, inviter.public.0))
            .unwrap();
        r.add(Statement::allow(
            &inviter,
            &ADDR,
            Role::Member,
            other.public.0,
        ))
        .unwrap();
        r.add(Statement::allow(&other, &ADDR, Role::Seeder, seed.public.0))
            .unwrap();
        r.add(Statement::member(&other, &ADDR, [6; 32], [7; 32]))
            .unwrap();
        assert!(r.admits(&inviter.public.0));
        assert!(r.admits(&other.public.0));
        assert_eq!(r.allowed()[&seed.public.0], Role::Seeder);
        assert!(!r.admits(&stranger.public.0));
        assert_eq!(
            r.members(),
            vec![MemberFeeds {
                identity: other.public.0,
                log: [6; 32],
                content: [7; 32]
            }]
        );
        // A forged signature is refused and changes nothing.
        let mut forged = Statement::allow(&me, &ADDR, Role::Member, stranger.public.0);
        if let Statement::Allow { signature, .. } = &mut forged {
            signature[0] ^= 1;
        }
        assert_eq!(r.add(forged), Err(RosterError::Signature));
        assert!(!r.admits(&stranger.public.0));
    }

    #[test]
    fn a_seed_serves_anyone_until_it_knows_the_roster_then_only_those_named() {
        let (a, b, c) = (id(1), id(2), id(3));
        let mut r = Roster::seed(ADDR);
        assert!(r.admits(&c.public.0));
        r.add(Statement::member(&a, &ADDR, [1; 32], [2; 32]))
            .unwrap();
        r.add(Statement::allow(&a, &ADDR, Role::Seeder, b.public.0))
            .unwrap();
        assert!(r.admits(&a.public.0) && r.admits(&b.public.0));
        assert!(!r.admits(&c.public.0));
        assert_eq!(r.members().len(), 1);
    }

    #[test]
    fn the_file_keeps_statements_and_ignores_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("roster");
        let a = id(1);
        let mut r = Roster::member(ADDR, a.public.0);
        let s1 = Statement::member(&a, &ADDR, [1; 32], [2; 32]);
        let s2 = Statement::allow(&a, &ADDR, Role::Seeder, [3; 32]);
        assert_eq!(r.add_and_keep(&file, [s1.clone()]).unwrap().len(), 1);
        assert_eq!(
            r.add_and_keep(&file, [s1.clone(), s2.clone()]).unwrap(),
            vec![s2.clone()]
        );
        // A crash during an append leaves part of a statement.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(&[1, 1, 5, 5]).unwrap();
        let mut again = Roster::member(ADDR, a.public.0);
        again.load(&file).unwrap();
        // Later appends stay readable.
        let s3 = Statement::allow(&a, &ADDR, Role::Member, [4; 32]);
        again.add_and_keep(&file, [s3.clone()]).unwrap();
        let mut third = Roster::member(ADDR, a.public.0);
        third.load(&file).unwrap();
        assert_eq!(third.statements().cloned().collect::<Vec<_>>(), {
            let mut v = vec![s1, s2, s3];
            v.sort();
            v
        });
    }
}
