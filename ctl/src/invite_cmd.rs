//! `coboxctl invite create|open`: through the agent's API when it runs, else on the data
//! directory.

use anyhow::Result;
use cobox_client::api::Client;
use cobox_client::keyops;
use cobox_keys::KeyStore;
use cobox_schema::api::{
    InviteInfo, InviteInspectRequest, InviteRequest, InviteResponse, InviteRole,
};

use crate::cli::{Output, RoleArg};
use crate::device::identity_creating;

fn role(r: RoleArg) -> InviteRole {
    match r {
        RoleArg::Member => InviteRole::Member,
        RoleArg::Seeder => InviteRole::Seeder,
    }
}

pub fn create(
    agent: Option<&Client>,
    store: impl FnOnce() -> Result<KeyStore>,
    space: &str,
    invitee: &str,
    r: RoleArg,
    expires: &str,
) -> Result<()> {
    let code = match agent {
        Some(client) => {
            let resp: InviteResponse = client.post(
                "/v1/invites",
                &InviteRequest {
                    space: space.into(),
                    invitee: invitee.into(),
                    role: role(r),
                    expires: Some(expires.into()),
                },
            )?;
            resp.code
        }
        None => {
            let store = store()?;
            identity_creating(&store)?;
            keyops::create_invite(&store, space, invitee, role(r), Some(expires))?
        }
    };
    outln!("{code}");
    Ok(())
}

pub fn open(
    agent: Option<&Client>,
    store: impl FnOnce() -> Result<KeyStore>,
    code: &str,
    output: Output,
) -> Result<()> {
    let inv: InviteInfo = match agent {
        Some(client) => client.post(
            "/v1/invites/inspect",
            &InviteInspectRequest { code: code.into() },
        )?,
        None => keyops::inspect_invite(&store()?, code)?,
    };
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&inv)?),
        Output::Text => {
            let role = match inv.role {
                InviteRole::Member => "member (read and write)",
                InviteRole::Seeder => "seeder (stores encrypted data, cannot read it)",
            };
            outln!("space    {}", inv.space);
            outln!("address  {}", inv.address);
            outln!("role     {role}");
            outln!("inviter  {}", inv.inviter);
            match inv.expires {
                Some(t) => outln!("expires  {} (unix time {t})", in_time(t)),
                None => outln!("expires  never"),
            }
            outln!(
                "\nTo join, add to cobox.toml:\n\n[[space]]\nname = \"{}\"\ninvite = \"{code}\"",
                inv.space
            );
        }
    }
    Ok(())
}

fn in_time(t: u64) -> String {
    let left = t.saturating_sub(keyops::unix_now());
    format!(
        "in {}",
        cobox_schema::units::format_duration(std::time::Duration::from_secs(left))
    )
}
