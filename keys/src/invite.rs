//! Invites: a space's address and key (for members), signed by the inviter and sealed to
//! the invitee, as a checksummed text code that only the invitee can open.
//!
//! Text: bech32m with the prefix `coboxinvite1` (a typo is caught by the checksum before
//! any decryption). Inside: `crypto_box_seal` to the invitee's x25519 key (converted from
//! its identity key) of the payload, version 1:
//!
//! ```text
//! version u8 = 1 ‖ role u8 (1 member, 2 seeder) ‖ expires u64 LE (unix seconds, 0 = never)
//! ‖ name length u8 ‖ name (UTF-8) ‖ address [32] ‖ key length u8 (32 member, 0 seeder)
//! ‖ encryption key ‖ inviter [32] ‖ invitee [32]
//! ‖ signature [64]: ed25519 by the inviter of "cobox-invite-v1" ‖ everything before it
//! ```

use cobox_schema::hexkey::{Address, PublicKey};
use cobox_schema::invite_code::{self, CodeError};

use crate::derive::{SigningKeyPair, verify};
use crate::secret::Secret32;

pub const VERSION: u8 = 1;
const SIGN_DOMAIN: &[u8] = b"cobox-invite-v1";
const MAX_NAME: usize = 64;

/// What an invite lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read and write: the invite carries the encryption key.
    Member,
    /// Store and serve ciphertext only: the invite carries no encryption key.
    Seeder,
}

/// The content of an invite.
#[derive(Clone, PartialEq, Eq)]
pub struct Invite {
    pub space_name: String,
    pub address: Address,
    /// Present for members, absent for seeders.
    pub encryption_key: Option<Secret32>,
    pub role: Role,
    /// Unix seconds after which the invite is refused; `None`: never.
    pub expires: Option<u64>,
    pub inviter: PublicKey,
    pub invitee: PublicKey,
}

impl std::fmt::Debug for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invite")
            .field("space_name", &self.space_name)
            .field("address", &self.address)
            .field("role", &self.role)
            .field("expires", &self.expires)
            .field("inviter", &self.inviter)
            .field("invitee", &self.invitee)
            .finish_non_exhaustive()
    }
}

/// Why an invite code could not be created or opened. Each check has its own error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// The text is not a well-formed code (prefix, checksum).
    #[error(transparent)]
    Code(#[from] CodeError),
    #[error("invite is malformed: {0}")]
    Malformed(String),
    #[error("invite was sealed for another device, or is damaged: this device cannot open it")]
    NotForThisDevice,
    #[error("invite has format version {0}, which this program does not know")]
    UnsupportedVersion(u8),
    #[error("invite names device {0} as its recipient, not this device")]
    WrongRecipient(PublicKey),
    #[error("invite signature does not verify: it was altered or not made by {0}")]
    BadSignature(PublicKey),
    #[error("invite expired at {}; ask for a new one", utc(*.0))]
    Expired(u64),
    #[error("space name is {0} bytes; an invite holds at most {MAX_NAME}")]
    NameTooLong(usize),
    #[error("a member invite needs the space's encryption key")]
    MissingKey,
}

/// Unix seconds as an RFC 3339 UTC time.
fn utc(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || format!("{secs} (unix time)"),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
}

impl Invite {
    fn payload(&self) -> Result<Vec<u8>, InviteError> {
        let name = self.space_name.as_bytes();
        if name.len() > MAX_NAME {
            return Err(InviteError::NameTooLong(name.len()));
        }
        let mut p = Vec::with_capacity(256);
        p.push(VERSION);
        p.push(match self.role {
            Role::Member => 1,
            Role::Seeder => 2,
        });
        p.extend_from_slice(&self.expires.unwrap_or(0).to_le_bytes());
        p.push(name.len() as u8);
        p.extend_from_slice(name);
        p.extend_from_slice(&self.address.0);
        match (&self.role, &self.encryption_key) {
            (Role::Member, Some(k)) => {
                p.push(32);
                p.extend_from_slice(k.expose());
            }
            (Role::Member, None) => return Err(InviteError::MissingKey),
            (Role::Seeder, _) => p.push(0),
        }
        p.extend_from_slice(&self.inviter.0);
        p.extend_from_slice(&self.invitee.0);
        Ok(p)
    }

    /// The signed payload: what is sealed.
    #[doc(hidden)]
    pub fn signed_payload(&self, inviter: &SigningKeyPair) -> Result<Vec<u8>, InviteError> {
        let mut p = self.payload()?;
        let sig = inviter.sign(&[SIGN_DOMAIN, &p].concat());
        p.extend_from_slice(&sig);
        Ok(p)
    }

    /// Sign as `inviter`, seal to the invitee and encode as text.
    pub fn create(&self, inviter: &SigningKeyPair) -> Result<String, InviteError> {
        crate::init();
        let signed = self.signed_payload(inviter)?;
        let sealed = crate::sealed::seal(&self.invitee.0, &signed).map_err(|_| {
            InviteError::Malformed("invitee key is not a valid ed25519 point".into())
        })?;
        Ok(invite_code::encode(&sealed)?)
    }
}

/// Open an invite code with this device's identity, at time `now` (unix seconds).
pub fn open(code: &str, me: &SigningKeyPair, now: u64) -> Result<Invite, InviteError> {
    crate::init();
    let sealed = invite_code::decode(code)?;
    let signed = crate::sealed::open(me, &sealed).map_err(|_| InviteError::NotForThisDevice)?;
    let invite = parse_signed(&signed)?;
    if invite.invitee != me.public {
        return Err(InviteError::WrongRecipient(invite.invitee));
    }
    if let Some(t) = invite.expires.filter(|&t| now >= t) {
        return Err(InviteError::Expired(t));
    }
    Ok(invite)
}

/// Parse and verify a signed payload (everything but the seal and the recipient/expiry checks).
pub fn parse_signed(bytes: &[u8]) -> Result<Invite, InviteError> {
    let mut r = Reader(bytes);
    let version = r.u8()?;
    if version != VERSION {
        return Err(InviteError::UnsupportedVersion(version));
    }
    let role = match r.u8()? {
        1 => Role::Member,
        2 => Role::Seeder,
        other => return Err(InviteError::Malformed(format!("unknown role {other}"))),
    };
    let expires = u64::from_le_bytes(r.array()?);
    let name_len = r.u8()? as usize;
    let name = std::str::from_utf8(r.take(name_len)?)
        .map_err(|_| InviteError::Malformed("space name is not UTF-8".into()))?
        .to_string();
    let address = Address(r.array()?);
    let key = match (r.u8()?, role) {
        (32, Role::Member) => Some(Secret32::from_bytes(r.array()?)),
        (0, Role::Seeder) => None,
        (n, _) => {
            return Err(InviteError::Malformed(format!(
                "key length {n} does not fit the role"
            )));
        }
    };
    let inviter = PublicKey(r.array()?);
    let invitee = PublicKey(r.array()?);
    let signed_len = bytes.len() - r.0.len();
    let signature: [u8; 64] = r.array()?;
    if !r.0.is_empty() {
        return Err(InviteError::Malformed(format!(
            "{} trailing bytes",
            r.0.len()
        )));
    }
    if !verify(
        &inviter,
        &[SIGN_DOMAIN, &bytes[..signed_len]].concat(),
        &signature,
    ) {
        return Err(InviteError::BadSignature(inviter));
    }
    Ok(Invite {
        space_name: name,
        address,
        encryption_key: key,
        role,
        expires: (expires != 0).then_some(expires),
        inviter,
        invitee,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], InviteError> {
        if self.0.len() < n {
            return Err(InviteError::Malformed("payload ends early".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, InviteError> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], InviteError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::identity;

    fn device(b: u8) -> SigningKeyPair {
        identity(&Secret32::from_bytes([b; 32]))
    }

    fn invite_for(invitee: &SigningKeyPair, inviter: &SigningKeyPair) -> Invite {
        Invite {
            space_name: "accounts".into(),
            address: Address([0x11; 32]),
            encryption_key: Some(Secret32::from_bytes([0x22; 32])),
            role: Role::Member,
            expires: Some(2_000_000_000),
            inviter: inviter.public,
            invitee: invitee.public,
        }
    }

    #[test]
    fn the_invitee_opens_what_the_inviter_sealed() {
        let (alice, bob) = (device(1), device(2));
        let invite = invite_for(&bob, &alice);
        let code = invite.create(&alice).unwrap();
        assert!(code.starts_with("coboxinvite1"));
        let opened = open(&code, &bob, 1_900_000_000).unwrap();
        assert_eq!(opened, invite);
        // Codes survive case changes (as when typed from a QR code in upper case).
        assert_eq!(open(&code.to_uppercase(), &bob, 0).unwrap(), invite);
    }

    #[test]
    fn each_failed_check_has_its_own_error() {
        let (alice, bob, carol) = (device(1), device(2), device(3));
        let code = invite_for(&bob, &alice).create(&alice).unwrap();
        assert_eq!(open(&code, &carol, 0), Err(InviteError::NotForThisDevice));
        assert_eq!(
            open(&code, &bob, 2_000_000_000),
            Err(InviteError::Expired(2_000_000_000))
        );
        assert_eq!(
            InviteError::Expired(2_000_000_000).to_string(),
            "invite expired at 2033-05-18T03:33:20Z; ask for a new one"
        );
        assert_eq!(
            open("hello", &bob, 0),
            Err(InviteError::Code(CodeError::NotAnInvite))
        );
        // One changed character: caught by the checksum before any decryption.
        let mut typo: Vec<char> = code.chars().collect();
        let i = typo.len() / 2;
        typo[i] = if typo[i] == 'q' { 'p' } else { 'q' };
        let typo: String = typo.into_iter().collect();
        assert_eq!(
            open(&typo, &bob, 0),
            Err(InviteError::Code(CodeError::Checksum))
        );
        assert!(matches!(
            open("coboxinvite1b!!", &bob, 0),
            Err(InviteError::Code(CodeError::Malformed(_)))
        ));
    }

    #[test]
    fn a_payload_resealed_by_someone_else_is_caught() {
        let (alice, bob, mallory) = (device(1), device(2), device(4));
        // Mallory signs in Alice's name: the signature does not verify.
        let mut forged = invite_for(&bob, &alice).signed_payload(&mallory).unwrap();
        assert_eq!(
            parse_signed(&forged),
            Err(InviteError::BadSignature(alice.public))
        );
        // A valid payload for Carol, re-sealed to Bob: the recipient check catches it.
        let carol = device(3);
        let for_carol = invite_for(&carol, &alice).signed_payload(&alice).unwrap();
        let sealed = crate::sealed::seal(&bob.public.0, &for_carol).unwrap();
        let code = invite_code::encode(&sealed).unwrap();
        assert_eq!(
            open(&code, &bob, 0),
            Err(InviteError::WrongRecipient(carol.public))
        );
        // A flipped payload byte after signing breaks the signature.
        forged = invite_for(&bob, &alice).signed_payload(&alice).unwrap();
        forged[12] ^= 1;
        assert_eq!(
            parse_signed(&forged),
            Err(InviteError::BadSignature(alice.public))
        );
        forged[0] = 9;
        assert_eq!(
            parse_signed(&forged),
            Err(InviteError::UnsupportedVersion(9))
        );
    }

    #[test]
    fn a_seeder_invite_never_carries_the_encryption_key() {
        let (alice, hub) = (device(1), device(5));
        let mut invite = invite_for(&hub, &alice);
        invite.role = Role::Seeder;
        let code = invite.create(&alice).unwrap();
        let opened = open(&code, &hub, 0).unwrap();
        assert_eq!(opened.role, Role::Seeder);
        assert!(opened.encryption_key.is_none());
        assert_eq!(opened.address, invite.address);
    }

    #[test]
    fn a_real_code_passes_config_validation_and_a_damaged_one_does_not() {
        let code = invite_for(&device(2), &device(1))
            .create(&device(1))
            .unwrap();
        let host = cobox_schema::FixedHost::example();
        let config =
            |c: &str| format!("version = 1\n[[space]]\nname = \"accounts\"\ninvite = \"{c}\"\n");
        let ok = cobox_schema::validate(&cobox_schema::Source::new("c", config(&code)), &host);
        assert!(ok.diagnostics.is_empty(), "{:?}", ok.diagnostics);
        let damaged = code.replacen('q', "p", 1);
        let bad = cobox_schema::validate(&cobox_schema::Source::new("c", config(&damaged)), &host);
        assert_eq!(bad.diagnostics[0].code, "invalid-invite");
    }

    #[test]
    fn debug_output_leaves_out_the_key() {
        let invite = invite_for(&device(2), &device(1));
        assert!(!format!("{invite:?}").contains("2222"));
    }
}
