//! `coboxctl invite create|open`.

use anyhow::{Context, Result, bail};
use cobox_keys::KeyStore;
use cobox_keys::invite::{self, Invite, Role};
use cobox_schema::hexkey::PublicKey;
use cobox_schema::units::parse_duration;

use crate::cli::{Output, RoleArg};
use crate::device::identity_creating;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn create(
    store: &KeyStore,
    space: &str,
    invitee: &str,
    role: RoleArg,
    expires: &str,
) -> Result<()> {
    let invitee: PublicKey = invitee.parse().map_err(|e| {
        anyhow::anyhow!("invitee key {invitee:?} {e}; ask them for `coboxctl identity`")
    })?;
    let expires = match expires {
        "never" => None,
        text => {
            let d = parse_duration(text).map_err(|e| anyhow::anyhow!("--expires: {e}"))?;
            if d.is_zero() {
                bail!("--expires must be longer than zero");
            }
            Some(now() + d.as_secs())
        }
    };
    let me = identity_creating(store)?;
    let keys = store.find_space(space)?.with_context(|| {
        format!(
            "space `{space}` has no keys in {}",
            store.data_dir().display()
        )
    })?;
    let role = match role {
        RoleArg::Member => Role::Member,
        RoleArg::Seeder => Role::Seeder,
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
    tracing::info!(space, %invitee, ?role, "created an invite");
    println!("{code}");
    Ok(())
}

pub fn open(store: &KeyStore, code: &str, output: Output) -> Result<()> {
    let me = store
        .require_identity()
        .context("cannot open an invite without an identity (run `coboxctl identity` first)")?;
    let inv = invite::open(code, &me, now()).context("cannot open the invite")?;
    let role = match inv.role {
        Role::Member => "member (read and write)",
        Role::Seeder => "seeder (stores encrypted data, cannot read it)",
    };
    match output {
        Output::Json => {
            let doc = serde_json::json!({
                "space": inv.space_name,
                "address": inv.address,
                "role": inv.role,
                "inviter": inv.inviter,
                "invitee": inv.invitee,
                "expires": inv.expires,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Output::Text => {
            println!("space    {}", inv.space_name);
            println!("address  {}", inv.address);
            println!("role     {role}");
            println!("inviter  {}", inv.inviter);
            match inv.expires {
                Some(t) => println!("expires  {} (unix time {t})", humantime_ago(t)),
                None => println!("expires  never"),
            }
            println!(
                "\nTo join, add to cobox.toml:\n\n[[space]]\nname = \"{}\"\ninvite = \"{code}\"",
                inv.space_name
            );
        }
    }
    Ok(())
}

fn humantime_ago(t: u64) -> String {
    let left = t.saturating_sub(now());
    format!(
        "in {}",
        cobox_schema::units::format_duration(std::time::Duration::from_secs(left))
    )
}
