//! The checks a config from the admins must pass before it is applied: it must not cut
//! the branch the device sits on (DESIGN §6). Pure.

use cobox_keys::authority::Authority;
use cobox_schema::Config;
use cobox_schema::config::Relays;

/// Why `candidate` may not replace `current` when it comes from the admins, if it may not.
pub fn refusal(current: &Config, candidate: &Config, authority: &Authority) -> Option<String> {
    let fleet = current.admins.fleet.as_deref()?;
    if candidate.admins.fleet.as_deref() != Some(fleet) {
        return Some(format!(
            "it stops following the fleet `{fleet}` (`admins.fleet` is {})",
            candidate
                .admins
                .fleet
                .as_deref()
                .map_or("absent".to_string(), |f| format!("`{f}`"))
        ));
    }
    let space = |c: &Config| {
        c.spaces
            .iter()
            .find(|s| s.name == fleet)
            .map(|s| (s.address, s.invite.clone()))
    };
    if space(candidate) != space(current) {
        return Some(format!(
            "it changes the address or invite of the fleet space `{fleet}`"
        ));
    }
    let named = candidate
        .admins
        .keys
        .iter()
        .filter(|k| authority.keys.contains(&k.0))
        .count();
    if named < authority.threshold as usize {
        return Some(format!(
            "its `[admins]` names {named} of the {} admins in force, fewer than the threshold {}",
            authority.keys.len(),
            authority.threshold
        ));
    }
    let n = &candidate.network;
    if n.listen.is_empty()
        && n.peers.is_empty()
        && !n.lan_discovery
        && !n.internet_discovery
        && n.relays == Relays::Disabled
    {
        return Some(
            "it leaves no way onto the network (no listen address, no peer, no discovery, no relay)"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use cobox_schema::{FixedHost, Source, validate};

    const ADMIN: &str = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
    const OTHER: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn config(body: &str) -> Config {
        let text = format!(
            "version = 1\n[device]\ndata_dir = \"/var/lib/cobox\"\nmount_root = \"/srv/cobox\"\n{body}"
        );
        let v = validate(&Source::new("t.toml", text), &FixedHost::example());
        v.config.unwrap_or_else(|| panic!("{:?}", v.diagnostics))
    }

    fn hub(admins: &str, network: &str) -> Config {
        config(&format!(
            "[network]\n{network}\n[[space]]\nname = \"fleet\"\naddress = \"{}\"\nmount = false\n[admins]\nkeys = [{admins}]\nfleet = \"fleet\"\n",
            "ab".repeat(32)
        ))
    }

    fn authority(keys: &[&str]) -> Authority {
        Authority::genesis(
            keys.iter()
                .map(|k| k.parse::<cobox_schema::hexkey::PublicKey>().unwrap().0)
                .collect(),
            1,
        )
        .unwrap()
    }

    #[test]
    fn a_config_that_keeps_the_fleet_admins_and_network_passes() {
        let now = hub(&format!("\"{ADMIN}\""), "listen = [\"0.0.0.0:7070\"]");
        let next = hub(&format!("\"{ADMIN}\""), "peers = [\"hub.example:7070\"]");
        assert_eq!(refusal(&now, &next, &authority(&[ADMIN])), None);
    }

    #[test]
    fn a_config_that_cuts_the_device_off_is_refused() {
        let now = hub(&format!("\"{ADMIN}\""), "listen = [\"0.0.0.0:7070\"]");
        let auth = authority(&[ADMIN]);
        let cut = hub(
            &format!("\"{ADMIN}\""),
            "relays = []\nlan_discovery = false\ninternet_discovery = false",
        );
        assert!(
            refusal(&now, &cut, &auth)
                .unwrap()
                .contains("no way onto the network")
        );
        let no_admins = hub(&format!("\"{OTHER}\""), "listen = [\"0.0.0.0:7070\"]");
        assert!(
            refusal(&now, &no_admins, &auth)
                .unwrap()
                .contains("fewer than the threshold")
        );
        let unfollowed = config("[network]\nlisten = [\"0.0.0.0:7070\"]\n");
        assert!(
            refusal(&now, &unfollowed, &auth)
                .unwrap()
                .contains("stops following")
        );
    }
}
