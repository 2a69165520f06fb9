//! Key operations shared by the control API and `coboxctl` (which acts on the data
//! directory itself when no agent runs): creating and inspecting invites, paper-key sheets.

use anyhow::{Context, Result, anyhow, bail};
use cobox_keys::invite::{self, Invite, Role};
use cobox_keys::sheet::{self, PaperKey};
use cobox_keys::{KeyStore, SpaceKeys, paper};
use cobox_schema::api::{InviteInfo, InviteRole, SheetFormat};
use cobox_schema::hexkey::PublicKey;
use cobox_schema::units::parse_duration;

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Create an invite code to `space` that only `invitee` can open. `expires` is a
/// duration like `7d`, or `never`/`None`.
pub fn create_invite(
    store: &KeyStore,
    space: &str,
    invitee: &str,
    role: InviteRole,
    expires: Option<&str>,
) -> Result<String> {
    let invitee: PublicKey = invitee
        .parse()
        .map_err(|e| anyhow!("invitee key {invitee:?} {e}; ask them for `coboxctl identity`"))?;
    let expires = match expires {
        None | Some("never") => None,
        Some(text) => {
            let d = parse_duration(text).map_err(|e| anyhow!("expiry {text:?}: {e}"))?;
            if d.is_zero() {
                bail!("expiry must be longer than zero");
            }
            Some(unix_now() + d.as_secs())
        }
    };
    let me = store
        .require_identity()
        .context("this device has no identity yet")?;
    let keys = store.find_space(space)?.with_context(|| {
        format!(
            "space `{space}` has no keys in {}",
            store.data_dir().display()
        )
    })?;
    let role = match role {
        InviteRole::Member => Role::Member,
        InviteRole::Seeder => Role::Seeder,
    };
    if role == Role::Member && keys.encryption_key.is_none() {
        bail!("space `{space}` is seeded here: a seed cannot invite members");
    }
    let code = Invite {
        space_name: keys.name.clone(),
        address: keys.address,
        encryption_key: keys.encryption_key.clone(),
        role,
        expires,
        inviter: me.public,
        invitee,
    }
    .create(&me)?;
    // The inviter admits the invitee in the space's roster, so peers let it in.
    let roster = store.roster_path(&keys.address);
    let roster_role = match role {
        Role::Member => cobox_keys::roster::Role::Member,
        Role::Seeder => cobox_keys::roster::Role::Seeder,
    };
    if let Some(dir) = roster.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    cobox_keys::roster::Roster::member(keys.address.0, me.public.0)
        .add_and_keep(
            &roster,
            [cobox_keys::roster::Statement::allow(
                &me,
                &keys.address.0,
                roster_role,
                invitee.0,
            )],
        )
        .with_context(|| format!("cannot write {}", roster.display()))?;
    tracing::info!(space, %invitee, ?role, "created an invite");
    Ok(code)
}

/// What an invite code grants this device, without joining.
pub fn inspect_invite(store: &KeyStore, code: &str) -> Result<InviteInfo> {
    let me = store
        .require_identity()
        .context("cannot open an invite without an identity (run `coboxctl identity` first)")?;
    let inv = invite::open(code, &me, unix_now()).context("cannot open the invite")?;
    Ok(InviteInfo {
        space: inv.space_name,
        address: inv.address.to_string(),
        role: match inv.role {
            Role::Member => InviteRole::Member,
            Role::Seeder => InviteRole::Seeder,
        },
        inviter: inv.inviter.to_string(),
        invitee: inv.invitee.to_string(),
        expires: inv.expires,
    })
}

/// The paper keys of the device: the parent key (unless `space` is given), one space's key,
/// or (`all`) the parent and every space's key.
pub fn paper_keys(store: &KeyStore, space: Option<&str>, all: bool) -> Result<Vec<PaperKey>> {
    let mut keys = Vec::new();
    if space.is_none() {
        let parent = store.load_parent()?.with_context(|| {
            format!(
                "this device has no identity in {} to export",
                store.data_dir().display()
            )
        })?;
        let id = cobox_keys::derive::identity(&parent);
        keys.push(PaperKey {
            title: "device parent key".into(),
            details: vec![
                format!("identity {}", id.public),
                "restores this device's identity and all of its feed keys".into(),
            ],
            words: paper::to_words(&parent),
        });
    }
    let spaces: Vec<SpaceKeys> = match (space, all) {
        (Some(name), _) => vec![store.find_space(name)?.with_context(|| {
            format!(
                "space `{name}` has no keys in {}",
                store.data_dir().display()
            )
        })?],
        (None, true) => store.spaces()?,
        (None, false) => vec![],
    };
    for s in spaces {
        let Some(key) = &s.encryption_key else {
            if space.is_some() {
                bail!(
                    "space `{}` is seeded here: this device holds no encryption key for it",
                    s.name
                );
            }
            continue;
        };
        keys.push(PaperKey {
            title: format!("space {}", s.name),
            details: vec![
                format!("address {}", s.address),
                "the encryption key of this space".into(),
            ],
            words: paper::to_words(key),
        });
    }
    Ok(keys)
}

/// A sheet of paper keys in `format`.
pub fn sheet_bytes(keys: &[PaperKey], format: SheetFormat) -> zeroize::Zeroizing<Vec<u8>> {
    zeroize::Zeroizing::new(match format {
        SheetFormat::Text => sheet::text(keys).into_bytes(),
        SheetFormat::Html => sheet::html(keys).into_bytes(),
        SheetFormat::Pdf => sheet::pdf(keys),
    })
}
