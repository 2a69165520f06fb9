//! Who takes part in a space, readable without its encryption key: signed statements that
//! bind members' feeds to their identities and admit identities, exchanged between peers
//! and kept in a file beside the space's (or seed's) feeds.
//!
//! A member device trusts itself and, from there, every identity admitted by an identity
//! it trusts (an invitee admits its inviter; an inviter admits its invitee; a member
//! admits the space's declared seeders); it accepts the feeds of trusted identities only.
//! A seed holds no root of trust: anyone who proved knowledge of the address may hand it
//! statements, and once it holds any, only the identities they name are served.
//!
//! **Removals.** A member removes an identity with a signed `Remove`; it stays a fact (the
//! statement set only grows). Which removals count is a function of the set of statements,
//! not of the order they arrived in, so every device holding the same statements agrees:
//! a removal counts when its author is in the space (a member not itself removed); two
//! removals of each other's authors (A removes B while B removes A) both count, so both
//! are out until a third member sides with one. Siding is a `Readmit` of X *over* R: it
//! names the removal it overrides, so R's removal of X counts no more (ed25519 signatures
//! are deterministic: R has exactly one removal of X, and it stays overridden); R may
//! retract its own removal so, and nobody readmits themselves. An
//! admission never brings a removed identity back — only a readmission naming the removal
//! does — and admissions by a removed identity count no more (whom only it admitted must
//! be admitted again by someone still in). Precisely, with identities as arguments and
//! removals as attacks, the identities in are the grounded extension: in when every
//! author of a removal of it that counts is out, out when one is in, and left undecided
//! (a cycle) counts as out; overriding readmissions count only when their author is in by
//! the same rule computed with every readmission, and the whole is computed again with
//! the admissions of those out dropped, a bounded number of times.

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
const REMOVE: u8 = 3;
const READMIT: u8 = 4;
const ALLOW_DOMAIN: &[u8] = b"cobox-allow-v1";
const REMOVE_DOMAIN: &[u8] = b"cobox-remove-v1";
const READMIT_DOMAIN: &[u8] = b"cobox-readmit-v1";

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
    /// `by` removes `identity` from the space (signed by `by`).
    Remove {
        identity: [u8; 32],
        by: [u8; 32],
        signature: [u8; 64],
    },
    /// `by` admits `identity` with `role` again, overriding `over`'s removal of it.
    Readmit {
        role: Role,
        identity: [u8; 32],
        over: [u8; 32],
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

fn remove_statement(address: &[u8; 32], identity: &[u8; 32]) -> Vec<u8> {
    [REMOVE_DOMAIN, address, identity].concat()
}

fn readmit_statement(
    address: &[u8; 32],
    role: Role,
    identity: &[u8; 32],
    over: &[u8; 32],
) -> Vec<u8> {
    [READMIT_DOMAIN, address, &[role.byte()], identity, over].concat()
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

    /// `me`'s removal of `identity` from the space at `address`.
    pub fn remove(me: &SigningKeyPair, address: &[u8; 32], identity: [u8; 32]) -> Self {
        Statement::Remove {
            identity,
            by: me.public.0,
            signature: me.sign(&remove_statement(address, &identity)),
        }
    }

    /// `me`'s readmission of `identity` with `role`, overriding `over`'s removal of it.
    pub fn readmit(
        me: &SigningKeyPair,
        address: &[u8; 32],
        role: Role,
        identity: [u8; 32],
        over: [u8; 32],
    ) -> Self {
        Statement::Readmit {
            role,
            identity,
            over,
            by: me.public.0,
            signature: me.sign(&readmit_statement(address, role, &identity, &over)),
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
            Statement::Remove {
                identity,
                by,
                signature,
            } => (by, remove_statement(address, identity), signature),
            Statement::Readmit {
                role,
                identity,
                over,
                by,
                signature,
            } => (
                by,
                readmit_statement(address, *role, identity, over),
                signature,
            ),
        };
        crate::derive::verify(&PublicKey(*signer), &message, signature)
    }

    /// BLAKE2b-256 of the statement's encoding: how a key epoch names the removals it
    /// answers.
    pub fn digest(&self) -> [u8; 32] {
        let mut bytes = Vec::new();
        self.encode(&mut bytes);
        libsodium_rs::crypto_generichash::generichash(&bytes, None, 32)
            .expect("32-byte hash")
            .try_into()
            .expect("32 bytes")
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
            Statement::Remove {
                identity,
                by,
                signature,
            } => {
                out.push(REMOVE);
                for part in [&identity[..], by, signature] {
                    out.extend_from_slice(part);
                }
            }
            Statement::Readmit {
                role,
                identity,
                over,
                by,
                signature,
            } => {
                out.push(READMIT);
                out.push(role.byte());
                for part in [&identity[..], over, by, signature] {
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
            REMOVE => Ok(Statement::Remove {
                identity: take(bytes)?,
                by: take(bytes)?,
                signature: take(bytes)?,
            }),
            READMIT => {
                let [role] = take::<1>(bytes)?;
                let role = Role::from_byte(role).ok_or(RosterError::Role(role))?;
                Ok(Statement::Readmit {
                    role,
                    identity: take(bytes)?,
                    over: take(bytes)?,
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

/// Where an identity stands in a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    In,
    /// A removal that counts names it.
    Removed,
    /// Admitted only by identities that are out (or caught in a removal cycle).
    Out,
}

/// One identity a roster names: its role, where it stands, who admitted and who removed
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub identity: [u8; 32],
    /// `None`: only named by removals (never admitted here).
    pub role: Option<Role>,
    pub standing: Standing,
    /// Authors of admissions and readmissions of it, sorted.
    pub admitted_by: Vec<[u8; 32]>,
    /// Authors of removals of it, sorted.
    pub removed_by: Vec<[u8; 32]>,
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

    /// Every identity allowed in the space, with its role (a member wins over a seeder):
    /// admitted and not removed.
    pub fn allowed(&self) -> BTreeMap<[u8; 32], Role> {
        let (mut admitted, out) = self.standing();
        admitted.retain(|k, _| !out.contains(k));
        admitted
    }

    /// The identities removed from the space (by removals that count), sorted.
    /// (Targets of removals by members in, or out themselves, that are not in.)
    pub fn removed(&self) -> BTreeSet<[u8; 32]> {
        let (admitted, out) = self.standing();
        let counts = |by: &[u8; 32]| admitted.contains_key(by);
        self.statements
            .iter()
            .filter_map(|s| match s {
                Statement::Remove { identity, by, .. }
                    if counts(by)
                        && (out.contains(identity) || !admitted.contains_key(identity)) =>
                {
                    Some(*identity)
                }
                _ => None,
            })
            .collect()
    }

    /// Every identity admitted (the removed among them) and those out: removed, or
    /// admitted only by identities that are out.
    fn standing(&self) -> (BTreeMap<[u8; 32], Role>, BTreeSet<[u8; 32]>) {
        let admitted = self.admitted();
        // Readmissions override only when their author is in, by the same rule computed
        // with every readmission.
        let first = self.label(&admitted, &|_| true);
        let out = self.label(&admitted, &|by| !first.contains(by));
        (admitted, out)
    }

    /// Identities admitted by the roots, or on a seed named, through every admission and
    /// readmission: the ones that could be in.
    fn admitted(&self) -> BTreeMap<[u8; 32], Role> {
        let mut allowed: BTreeMap<[u8; 32], Role> = BTreeMap::new();
        let Some(roots) = &self.roots else {
            for s in &self.statements {
                let (identity, role) = match s {
                    Statement::Member { identity, .. } => (identity, Role::Member),
                    Statement::Allow { identity, role, .. }
                    | Statement::Readmit { identity, role, .. } => (identity, *role),
                    Statement::Remove { .. } => continue,
                };
                let entry = allowed.entry(*identity).or_insert(role);
                *entry = (*entry).min(role);
            }
            return allowed;
        };
        // Admissions by admitted identities, breadth first from the roots: each
        // statement is looked at once, however long the chains of admissions.
        let mut by_author: BTreeMap<[u8; 32], Vec<([u8; 32], Role)>> = BTreeMap::new();
        for s in &self.statements {
            if let Statement::Allow {
                role, identity, by, ..
            }
            | Statement::Readmit {
                role, identity, by, ..
            } = s
            {
                by_author.entry(*by).or_default().push((*identity, *role));
            }
        }
        let mut queue: std::collections::VecDeque<[u8; 32]> = roots.iter().copied().collect();
        for r in roots {
            allowed.insert(*r, Role::Member);
        }
        while let Some(author) = queue.pop_front() {
            for (identity, role) in by_author.get(&author).into_iter().flatten() {
                match allowed.get_mut(identity) {
                    Some(known) => *known = (*known).min(*role),
                    None => {
                        allowed.insert(*identity, *role);
                        queue.push_back(*identity);
                    }
                }
            }
        }
        allowed
    }

    /// Of the `admitted`, those out (see the module's text), counting the readmissions by
    /// authors `overriding` accepts.
    fn label(
        &self,
        admitted: &BTreeMap<[u8; 32], Role>,
        overriding: &dyn Fn(&[u8; 32]) -> bool,
    ) -> BTreeSet<[u8; 32]> {
        let member = |k: &[u8; 32]| admitted.get(k) == Some(&Role::Member);
        let mut attacks = BTreeSet::new();
        let mut supporters: BTreeMap<[u8; 32], BTreeSet<[u8; 32]>> = BTreeMap::new();
        for s in &self.statements {
            match s {
                Statement::Remove { identity, by, .. } if member(by) => {
                    attacks.insert((*by, *identity));
                }
                Statement::Allow { identity, by, .. } | Statement::Readmit { identity, by, .. }
                    if admitted.contains_key(by) =>
                {
                    supporters.entry(*identity).or_default().insert(*by);
                }
                _ => {}
            }
        }
        for s in &self.statements {
            if let Statement::Readmit {
                identity, over, by, ..
            } = s
                && member(by)
                && by != identity
                && overriding(by)
            {
                attacks.remove(&(*over, *identity));
            }
        }
        if attacks.is_empty() {
            return BTreeSet::new();
        }
        // A root, and on a seed anyone named, needs no admission to be in.
        let free = |k: &[u8; 32]| self.roots.as_ref().is_none_or(|r| r.contains(k));
        grounded(admitted.keys().copied(), &attacks, &supporters, &free)
    }

    /// Every identity the roster names (the roots included), sorted by identity.
    pub fn entries(&self) -> Vec<Entry> {
        let (admitted, out) = self.standing();
        let removed = self.removed();
        // Per identity: who admitted it, who removed it.
        type Authors = (Vec<[u8; 32]>, Vec<[u8; 32]>);
        let mut by: BTreeMap<[u8; 32], Authors> = admitted
            .keys()
            .map(|k| (*k, (Vec::new(), Vec::new())))
            .collect();
        for s in &self.statements {
            match s {
                Statement::Allow {
                    identity, by: b, ..
                }
                | Statement::Readmit {
                    identity, by: b, ..
                } => by.entry(*identity).or_default().0.push(*b),
                Statement::Remove {
                    identity, by: b, ..
                } => by.entry(*identity).or_default().1.push(*b),
                Statement::Member { .. } => {}
            }
        }
        by.into_iter()
            .map(|(identity, (mut admitted_by, mut removed_by))| {
                admitted_by.sort();
                admitted_by.dedup();
                removed_by.sort();
                removed_by.dedup();
                let standing = if removed.contains(&identity) {
                    Standing::Removed
                } else if out.contains(&identity) || !admitted.contains_key(&identity) {
                    Standing::Out
                } else {
                    Standing::In
                };
                Entry {
                    identity,
                    role: admitted.get(&identity).copied(),
                    standing,
                    admitted_by,
                    removed_by,
                }
            })
            .collect()
    }

    /// Whether this device (a member roster's root) is out of the space.
    pub fn me_out(&self) -> bool {
        self.roots.as_ref().is_some_and(|roots| {
            let allowed = self.allowed();
            roots.iter().any(|r| !allowed.contains_key(r))
        })
    }

    /// What `me` (a member) signs so that the space admits exactly `seeders` as its seeders
    /// by `me` and removes `removed`: admissions of new seeders (a readmission of one `me`
    /// removed before), removals of the identities removed and of the seeders `me` no
    /// longer declares. Only statements not yet known.
    pub fn declare(
        &self,
        me: &SigningKeyPair,
        seeders: &[[u8; 32]],
        removed: &[[u8; 32]],
    ) -> Vec<Statement> {
        let mine = me.public.0;
        let address = self.address;
        let removed_by_me = |k: &[u8; 32]| {
            self.statements
                .iter()
                .any(|s| matches!(s, Statement::Remove { identity, by, .. } if identity == k && *by == mine))
        };
        let mut out = Vec::new();
        for s in seeders {
            if removed.contains(s) {
                continue;
            }
            out.push(Statement::allow(me, &address, Role::Seeder, *s));
            if removed_by_me(s) {
                out.push(Statement::readmit(me, &address, Role::Seeder, *s, mine));
            }
        }
        let dropped = self.statements.iter().filter_map(|s| match s {
            Statement::Allow {
                role: Role::Seeder,
                identity,
                by,
                ..
            } if *by == mine && !seeders.contains(identity) => Some(*identity),
            _ => None,
        });
        let gone: BTreeSet<[u8; 32]> = removed.iter().copied().chain(dropped).collect();
        for k in gone {
            if k != mine {
                out.push(Statement::remove(me, &address, k));
            }
        }
        out.retain(|s| !self.statements.contains(s));
        out
    }

    /// Whether `identity` may be served this space. A seed that knows no statement yet
    /// serves anyone who proves knowledge of the address.
    pub fn admits(&self, identity: &[u8; 32]) -> bool {
        (self.roots.is_none() && self.statements.is_empty())
            || self.allowed().contains_key(identity)
    }

    /// The feeds of members, sorted: of every identity admitted, removed ones included (what
    /// they wrote before stays part of the space; they are not served, so nothing new of
    /// theirs arrives).
    pub fn members(&self) -> Vec<MemberFeeds> {
        let allowed = self.admitted();
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

/// The identities out of `nodes` under `attacks` (author, target) and admissions
/// (`supporters` of each; `free` ones need none): in when every attacker is out and, unless
/// free, a supporter is in; out when an attacker is in or, unless free, every supporter is
/// out; what stays undecided (a cycle) counts as out. A worklist: each identity is decided
/// once and each attack and admission looked at a bounded number of times, so statements a
/// peer hands over cannot make this quadratic.
fn grounded(
    nodes: impl IntoIterator<Item = [u8; 32]>,
    attacks: &BTreeSet<([u8; 32], [u8; 32])>,
    supporters: &BTreeMap<[u8; 32], BTreeSet<[u8; 32]>>,
    free: &dyn Fn(&[u8; 32]) -> bool,
) -> BTreeSet<[u8; 32]> {
    #[derive(Default)]
    struct Node {
        /// Attackers and supporters not (yet) out.
        attackers_left: usize,
        supporters_left: usize,
        attacked_by_in: bool,
        supported_by_in: bool,
        free: bool,
        /// Decided: `Some(true)` in, `Some(false)` out.
        label: Option<bool>,
        /// Whom it attacks and whom it admits.
        targets: Vec<[u8; 32]>,
        supports: Vec<[u8; 32]>,
    }
    let mut g: BTreeMap<[u8; 32], Node> = nodes
        .into_iter()
        .map(|n| {
            (
                n,
                Node {
                    free: free(&n),
                    ..Node::default()
                },
            )
        })
        .collect();
    for (by, target) in attacks {
        if g.contains_key(by) && g.contains_key(target) {
            g.get_mut(target).expect("checked").attackers_left += 1;
            g.get_mut(by).expect("checked").targets.push(*target);
        }
    }
    for (target, by) in supporters {
        for b in by {
            if g.contains_key(b) && g.contains_key(target) {
                g.get_mut(target).expect("checked").supporters_left += 1;
                g.get_mut(b).expect("checked").supports.push(*target);
            }
        }
    }
    let decide = |n: &Node| -> Option<bool> {
        if n.label.is_some() {
            None
        } else if n.attacked_by_in || (!n.free && n.supporters_left == 0) {
            Some(false)
        } else if n.attackers_left == 0 && (n.free || n.supported_by_in) {
            Some(true)
        } else {
            None
        }
    };
    let mut queue: Vec<[u8; 32]> = g.keys().copied().collect();
    while let Some(k) = queue.pop() {
        let Some(label) = decide(&g[&k]) else {
            continue;
        };
        let node = g.get_mut(&k).expect("a node");
        node.label = Some(label);
        let (targets, supports) = (node.targets.clone(), node.supports.clone());
        for t in targets {
            let n = g.get_mut(&t).expect("a node");
            if label {
                n.attacked_by_in = true;
            } else {
                n.attackers_left -= 1;
            }
            queue.push(t);
        }
        for s in supports {
            let n = g.get_mut(&s).expect("a node");
            if label {
                n.supported_by_in = true;
            } else {
                n.supporters_left -= 1;
            }
            queue.push(s);
        }
    }
    g.into_iter()
        .filter(|(_, n)| n.label != Some(true))
        .map(|(k, _)| k)
        .collect()
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
mod tests;
