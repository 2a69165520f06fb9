//! Semantic validation: from a structurally sound [`RawConfig`] to a [`Config`], checking
//! every value and every relation between values, and reporting all problems at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::net::SocketAddr;

use crate::config::{
    Admins, Api, COMMIT_INTERVAL, Config, Device, Limit, MAX_COMMIT_INTERVAL, Network, Peer,
    Relays, Seed, Space, Storage, Versions, WebLogin,
};
use crate::convert::Ctx;
use crate::hexkey::{Address, PublicKey};
use crate::raw::{RawConfig, RawMount, RawVersions, RawWindow, WindowAction};
use crate::tree::{index_path, key_path};
use crate::units::Size;
use crate::window::{Recurring, Window, deny_covers_allow};

/// The only config format version.
pub const VERSION: u32 = 1;
/// Longest path a unix socket can have (`sun_path` less its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;
/// How far ahead schedules are examined for "never fires" and "always denied".
const HORIZON: Duration = Duration::from_secs(366 * 86_400);

pub fn config(ctx: &mut Ctx<'_>, raw: &RawConfig) -> Config {
    if raw.version != VERSION {
        ctx.error(
            "unsupported-version",
            "version",
            format!("config version {} is not supported", raw.version),
        )
        .help = Some(format!("this program reads version {VERSION}"));
    }
    let device = device(ctx, raw);
    let network = network(ctx, raw);
    let storage = storage(ctx, raw);
    let spaces: Vec<Space> = raw
        .spaces
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let p = index_path("space", i);
            let mount = match &s.mount {
                None | Some(RawMount::Enabled(true)) => Some(device.mount_root.join(&s.name)),
                Some(RawMount::Enabled(false)) => None,
                Some(RawMount::Path(text)) => ctx.path(&key_path(&p, "mount"), text),
            };
            let address = s
                .address
                .as_deref()
                .and_then(|a| ctx.address(&key_path(&p, "address"), a));
            if let Some(invite) = &s.invite {
                invite_text(ctx, &key_path(&p, "invite"), invite);
            }
            Space {
                name: name(ctx, &p, &s.name),
                address,
                invite: s.invite.clone(),
                mount,
                seeders: keys(ctx, &key_path(&p, "seeders"), &s.seeders),
                removed: removed(ctx, &p, s),
                min_replicas: s.min_replicas.unwrap_or(0),
                windows: windows(ctx, &key_path(&p, "windows"), &s.windows),
                upload: ctx.rate(&key_path(&p, "upload"), s.upload.as_deref()),
                download: ctx.rate(&key_path(&p, "download"), s.download.as_deref()),
                versions: versions(ctx, &key_path(&p, "versions"), s.versions.as_ref()),
            }
        })
        .collect();
    let seeds: Vec<Seed> = raw
        .seeds
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let p = index_path("seed", i);
            Seed {
                name: name(ctx, &p, &s.name),
                address: ctx
                    .address(&key_path(&p, "address"), &s.address)
                    .unwrap_or(Address([0; 32])),
                quota: quota(ctx, &key_path(&p, "quota"), s.quota.as_deref()),
                windows: windows(ctx, &key_path(&p, "windows"), &s.windows),
                upload: ctx.rate(&key_path(&p, "upload"), s.upload.as_deref()),
                download: ctx.rate(&key_path(&p, "download"), s.download.as_deref()),
                fleet: s.fleet.unwrap_or(false),
            }
        })
        .collect();
    let admins = admins(ctx, raw);
    fleet_unlimited(ctx, raw);
    let api = api(ctx, raw, &device);

    let config = Config {
        device,
        network,
        storage,
        spaces,
        seeds,
        admins,
        api,
    };
    cross_checks(ctx, raw, &config);
    config
}

/// A fleet's control traffic is never held back: limits set on it are ignored, said once.
fn fleet_unlimited(ctx: &mut Ctx<'_>, raw: &RawConfig) {
    let limited = |windows: &[RawWindow], up: &Option<String>, down: &Option<String>| {
        if !windows.is_empty() {
            Some("windows")
        } else if up.is_some() {
            Some("upload")
        } else if down.is_some() {
            Some("download")
        } else {
            None
        }
    };
    let fleet = raw.admins.fleet.as_deref();
    let spaces = raw
        .spaces
        .iter()
        .enumerate()
        .filter(|(_, s)| Some(s.name.as_str()) == fleet);
    let mut found: Vec<(String, &str)> = spaces
        .filter_map(|(i, s)| {
            let key = limited(&s.windows, &s.upload, &s.download)?;
            Some((key_path(&index_path("space", i), key), "space"))
        })
        .collect();
    found.extend(
        raw.seeds
            .iter()
            .enumerate()
            .filter(|(_, s)| s.fleet == Some(true))
            .filter_map(|(i, s)| {
                let key = if s.quota.is_some() {
                    "quota"
                } else {
                    limited(&s.windows, &s.upload, &s.download)?
                };
                Some((key_path(&index_path("seed", i), key), "seed"))
            }),
    );
    for (path, what) in found {
        ctx.warning(
            "fleet-unlimited",
            &path,
            format!("this {what} is a fleet: its control traffic is never held back, so this limit is ignored"),
        )
        .help = Some("remove the limit; caps, windows and quotas apply to every other space and seed".into());
    }
}

/// The admin set and the fleet: a threshold the keys can meet, a fleet this config declares.
fn admins(ctx: &mut Ctx<'_>, raw: &RawConfig) -> Admins {
    let a = &raw.admins;
    let keys = keys(ctx, "admins.keys", &a.keys);
    let threshold = a.threshold.unwrap_or(1);
    if a.threshold.is_some() && threshold as usize > a.keys.len() {
        ctx.error(
            "admin-threshold",
            "admins.threshold",
            format!(
                "a threshold of {threshold} needs at least {threshold} admin keys, and `admins.keys` has {}",
                a.keys.len()
            ),
        )
        .help = Some("list more keys, or lower the threshold".into());
    }
    if let Some(fleet) = &a.fleet
        && !raw.spaces.iter().any(|s| s.name == *fleet)
    {
        let known: Vec<&str> = raw.spaces.iter().map(|s| s.name.as_str()).collect();
        ctx.error(
            "unknown-fleet",
            "admins.fleet",
            format!("`admins.fleet` names space `{fleet}`, which this config does not declare"),
        )
        .help = Some(if known.is_empty() {
            "declare the fleet as a `[[space]]` (joined with the invite an admin made for this device)".into()
        } else {
            format!("declared spaces: {}", known.join(", "))
        });
    }
    if !a.keys.is_empty() && a.fleet.is_none() {
        ctx.warning(
            "admins-without-fleet",
            "admins.keys",
            "admins are listed but no `admins.fleet`: they have no way to reach this device"
                .to_string(),
        )
        .help = Some("name the `[[space]]` the admins publish in as `admins.fleet`".into());
    }
    let probation = match &a.probation {
        Some(text) => match crate::units::parse_duration(text) {
            Ok(d) => d,
            Err(e) => {
                ctx.error(
                    "invalid-duration",
                    "admins.probation",
                    format!("`admins.probation`: {e}"),
                )
                .help = Some("write a duration like \"10m\", or \"0s\" for none".into());
                crate::config::PROBATION
            }
        },
        None => crate::config::PROBATION,
    };
    Admins {
        keys,
        threshold,
        fleet: a.fleet.clone(),
        probation,
    }
}

/// The longest device name, in characters.
const MAX_DEVICE_NAME: usize = 64;

/// How long a space keeps earlier versions: `keep` is a duration (zero keeps none) or
/// `"forever"`.
fn versions(ctx: &mut Ctx<'_>, path: &str, raw: Option<&RawVersions>) -> Versions {
    let default = Versions::default();
    let Some(raw) = raw else {
        return default;
    };
    let keep = match raw.keep.as_deref().map(str::trim) {
        None => default.keep,
        Some("forever") => None,
        Some(text) => {
            let at = key_path(path, "keep");
            match crate::units::parse_duration(text) {
                Ok(d) => Some(d),
                Err(e) => {
                    ctx.error("invalid-duration", &at, format!("`{at}`: {e}"))
                        .help = Some(
                        "write how long, like \"30d\" or \"12h\"; \"0s\" keeps no earlier version, \"forever\" keeps all".into(),
                    );
                    default.keep
                }
            }
        }
    };
    Versions {
        keep,
        min: raw.min.unwrap_or(default.min),
    }
}

/// A quota that is set must hold something.
fn quota(ctx: &mut Ctx<'_>, path: &str, text: Option<&str>) -> Option<Size> {
    let size = ctx.size(path, text)?;
    if size.0 == 0 {
        ctx.error(
            "zero-quota",
            path,
            format!("a quota of {:?} stores nothing", text.unwrap_or_default()),
        )
        .help = Some("give a size like \"50 GiB\", or leave the quota out for none".into());
        return None;
    }
    Some(size)
}

fn device(ctx: &mut Ctx<'_>, raw: &RawConfig) -> Device {
    let d = &raw.device;
    if let Some(name) = &d.name {
        let chars = name.chars().count();
        if chars > MAX_DEVICE_NAME {
            ctx.error(
                "too-long",
                "device.name",
                format!("device name is {chars} characters, more than {MAX_DEVICE_NAME}"),
            )
            .help = Some("a short name people recognise, like \"ana-laptop\"".into());
        } else if name.trim().is_empty() || name.chars().any(char::is_control) {
            ctx.error(
                "invalid-name",
                "device.name",
                format!("device name {name:?} is empty or holds control characters"),
            );
        }
    }
    Device {
        name: d.name.clone(),
        data_dir: match &d.data_dir {
            Some(t) => ctx.path("device.data_dir", t),
            None => Some(ctx.host.default_data_dir()),
        }
        .unwrap_or_default(),
        mount_root: match &d.mount_root {
            Some(t) => ctx.path("device.mount_root", t),
            None => Some(ctx.host.default_mount_root()),
        }
        .unwrap_or_default(),
        commit_interval: commit_interval(ctx, d.commit_interval.as_deref()),
    }
}

/// How soon a closed file is durable: zero or up to [`MAX_COMMIT_INTERVAL`].
fn commit_interval(ctx: &mut Ctx<'_>, text: Option<&str>) -> Duration {
    const PATH: &str = "device.commit_interval";
    let Some(text) = text else {
        return COMMIT_INTERVAL;
    };
    match crate::units::parse_duration(text) {
        Ok(d) if d > MAX_COMMIT_INTERVAL => {
            ctx.error(
                "too-long",
                PATH,
                format!("`{PATH}` is {text:?}, longer than 60s: closed files could be lost for that long"),
            )
            .help = Some("a second or a few (\"1s\", \"5s\"), or \"0s\" to make every close durable".into());
            COMMIT_INTERVAL
        }
        Ok(d) => d,
        Err(e) => {
            ctx.error("invalid-duration", PATH, format!("`{PATH}`: {e}"))
                .help = Some("write how long, like \"1s\" or \"500ms\"".into());
            COMMIT_INTERVAL
        }
    }
}

fn network(ctx: &mut Ctx<'_>, raw: &RawConfig) -> Network {
    let n = &raw.network;
    let listen = n
        .listen
        .iter()
        .enumerate()
        .filter_map(|(i, l)| ctx.socket_addr(&index_path("network.listen", i), l))
        .collect();
    let peers = n
        .peers
        .iter()
        .enumerate()
        .filter_map(|(i, p)| peer(ctx, &index_path("network.peers", i), p))
        .collect();
    let relays = match &n.relays {
        None => Relays::Default,
        Some(list) if list.is_empty() => Relays::Disabled,
        Some(list) => Relays::Custom(
            list.iter()
                .enumerate()
                .filter(|(i, url)| relay_url(ctx, &index_path("network.relays", *i), url))
                .map(|(_, url)| url.clone())
                .collect(),
        ),
    };
    let limits = n
        .limit
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let p = index_path("network.limit", i);
            let period = recurring(ctx, &p, &l.when, &l.duration, l.zone.as_deref());
            let upload = ctx.rate(&key_path(&p, "upload"), l.upload.as_deref());
            let download = ctx.rate(&key_path(&p, "download"), l.download.as_deref());
            if l.upload.is_none() && l.download.is_none() {
                ctx.error(
                    "empty-limit",
                    &p,
                    format!("`{p}` caps neither upload nor download"),
                )
                .help = Some("add `upload = \"…/s\"` and/or `download = \"…/s\"`".into());
            }
            Some(Limit {
                period: period?,
                upload,
                download,
            })
        })
        .collect();
    Network {
        listen,
        peers,
        lan_discovery: n.lan_discovery.unwrap_or(true),
        internet_discovery: n.internet_discovery.unwrap_or(true),
        relays,
        portmapper: n.portmapper.unwrap_or(true),
        upload: ctx.rate("network.upload", n.upload.as_deref()),
        download: ctx.rate("network.download", n.download.as_deref()),
        limits,
    }
}

fn storage(ctx: &mut Ctx<'_>, raw: &RawConfig) -> Storage {
    let s = &raw.storage;
    Storage {
        quota: quota(ctx, "storage.quota", s.quota.as_deref()),
        when_full: s.when_full.unwrap_or_default(),
        min_free: ctx
            .size("storage.min_free", s.min_free.as_deref())
            .unwrap_or(Size(1 << 30)),
    }
}

fn api(ctx: &mut Ctx<'_>, raw: &RawConfig, device: &Device) -> Api {
    let socket = match &raw.api.socket {
        Some(t) => ctx.path("api.socket", t).unwrap_or_default(),
        None => device.data_dir.join("coboxd.sock"),
    };
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        let path = if raw.api.socket.is_some() {
            "api.socket"
        } else {
            "device.data_dir"
        };
        ctx.error(
            "socket-path-too-long",
            path,
            format!("control socket path {} is {len} bytes, longer than the {MAX_SOCKET_PATH} a unix socket allows", socket.display()),
        )
        .help = Some("set a shorter `[api] socket`".into());
    }
    let (web, web_login) = web(ctx, raw);
    Api {
        socket,
        metrics: raw
            .api
            .metrics
            .as_deref()
            .and_then(|m| ctx.socket_addr("api.metrics", m)),
        web,
        web_login,
    }
}

/// The dashboard's address and login: a hash that is an argon2 PHC string, a token file
/// that is a path, and a login whenever the address is not loopback.
fn web(ctx: &mut Ctx<'_>, raw: &RawConfig) -> (Option<SocketAddr>, WebLogin) {
    let a = &raw.api;
    let web = a.web.as_deref().and_then(|w| ctx.socket_addr("api.web", w));
    let password_hash = a.web_password_hash.as_ref().and_then(|h| {
        if crate::web_login::is_argon2_phc(h) {
            Some(h.clone())
        } else {
            ctx.error(
                "invalid-password-hash",
                "api.web_password_hash",
                "web_password_hash is not an argon2 PHC string",
            )
            .help = Some(
                "write the hash of the password, like \"$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH\" (Debian's `argon2` prints one: `printf %s PASSWORD | argon2 SALTSALT -id -e`)"
                    .into(),
            );
            None
        }
    });
    let token_file = a
        .web_token_file
        .as_deref()
        .and_then(|t| ctx.path("api.web_token_file", t));
    let login = WebLogin {
        password_hash,
        token_file,
    };
    let asked = a.web_password_hash.is_some() || a.web_token_file.is_some();
    if let Some(addr) = web
        && !addr.ip().is_loopback()
        && !asked
    {
        ctx.error(
            "web-without-login",
            "api.web",
            format!("the web dashboard on {addr} is reachable beyond this device but asks for no login"),
        )
        .help = Some(
            "set `[api] web_password_hash` or `web_token_file`, or listen on loopback, like \"127.0.0.1:8384\""
                .into(),
        );
    }
    (web, login)
}

fn name(ctx: &mut Ctx<'_>, item: &str, text: &str) -> String {
    let ok = (1..=64).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        let p = key_path(item, "name");
        ctx.error(
            "invalid-name",
            &p,
            format!("name {text:?} is not a valid name"),
        )
        .help = Some(
            "use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit".into(),
        );
    }
    text.to_string()
}

/// A space's `removed` keys; one also among its `seeders` is an error.
fn removed(ctx: &mut Ctx<'_>, space: &str, s: &crate::raw::RawSpace) -> Vec<PublicKey> {
    let path = key_path(space, "removed");
    let out = keys(ctx, &path, &s.removed);
    for (i, t) in s.seeders.iter().enumerate() {
        if let Ok(k) = t.parse::<PublicKey>()
            && out.contains(&k)
        {
            let at = index_path(&key_path(space, "seeders"), i);
            ctx.error(
                "removed-seeder",
                &at,
                format!(
                    "public key {k} is a seeder of space `{}` and removed from it",
                    s.name
                ),
            )
            .help = Some("take it out of `seeders` (the removal stays)".into());
        }
    }
    out
}

fn keys(ctx: &mut Ctx<'_>, path: &str, texts: &[String]) -> Vec<PublicKey> {
    let mut seen: BTreeMap<PublicKey, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let p = index_path(path, i);
        if let Some(k) = ctx.public_key(&p, t) {
            if let Some(first) = seen.insert(k, i) {
                ctx.warning(
                    "duplicate-key",
                    &p,
                    format!("public key {k} is listed twice in `{path}`"),
                )
                .help = Some(format!("it is already `{}`", index_path(path, first)));
            } else {
                out.push(k);
            }
        }
    }
    out
}

fn peer(ctx: &mut Ctx<'_>, path: &str, text: &str) -> Option<Peer> {
    let (key, hostport) = match text.split_once('@') {
        Some((k, rest)) => (Some(k), rest),
        None => (None, text),
    };
    let key = match key {
        Some(k) => Some(ctx.public_key(path, k)?),
        None => None,
    };
    let parsed = split_host_port(hostport);
    let Some((host, port)) = parsed else {
        ctx.error(
            "invalid-peer",
            path,
            format!("peer {text:?} is not host:port or KEY@host:port"),
        )
        .help = Some("like \"hub.example.org:7070\" or \"[2001:db8::1]:7070\"".into());
        return None;
    };
    Some(Peer { host, port, key })
}

fn split_host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        (h, p)
    } else {
        text.rsplit_once(':')?
    };
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && (host.contains(':')
            || host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }));
    host_ok.then(|| (host.to_string(), port))
}

fn relay_url(ctx: &mut Ctx<'_>, path: &str, url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.contains(char::is_whitespace)
    });
    if !ok {
        ctx.error(
            "invalid-url",
            path,
            format!("relay {url:?} is not an http(s) URL"),
        )
        .help = Some("like \"https://relay.example.org\"; use `relays = []` for no relays".into());
    }
    ok
}

fn invite_text(ctx: &mut Ctx<'_>, path: &str, text: &str) {
    if let Err(e) = crate::invite_code::decode(text) {
        ctx.error("invalid-invite", path, e.to_string()).help =
            Some("paste the code exactly as `coboxctl invite create` printed it".into());
    } else if let Some(why) = ctx.host.invite_refusal(text) {
        ctx.error("invalid-invite", path, why).help = Some(
            "ask for an invite to this device's identity (`coboxctl identity` shows it)".into(),
        );
    }
}

fn recurring(
    ctx: &mut Ctx<'_>,
    item: &str,
    when: &str,
    duration: &str,
    zone: Option<&str>,
) -> Option<Recurring> {
    let when_path = key_path(item, "when");
    let cron = ctx.cron(&when_path, when);
    let length = ctx.duration(&key_path(item, "for"), duration);
    let zone = ctx.zone(&key_path(item, "zone"), zone);
    let period = Recurring {
        when: cron?,
        duration: length?,
        zone: zone?,
    };
    if period.next_start(ctx.host.now()).is_none() {
        ctx.error(
            "window-never-fires",
            &when_path,
            format!(
                "cron expression {when:?} never fires after {}",
                ctx.host.now().format("%Y-%m-%d")
            ),
        )
        .help =
            Some("check the day, month and year fields (for example, February has no 30th)".into());
        return None;
    }
    if period.always_open(ctx.host.now(), HORIZON) {
        ctx.warning(
            "window-always-open",
            &key_path(item, "for"),
            format!(
                "`for = {duration:?}` is at least as long as the gap between the starts of {when:?}: once begun, it never ends"
            ),
        )
        .help = Some("shorten it below the gap between starts, or drop the window to mean always".into());
    }
    Some(period)
}

fn windows(ctx: &mut Ctx<'_>, path: &str, raw: &[RawWindow]) -> Vec<Window> {
    let windows: Vec<Window> = raw
        .iter()
        .enumerate()
        .filter_map(|(i, w)| {
            let p = index_path(path, i);
            let period = recurring(ctx, &p, &w.when, &w.duration, w.zone.as_deref())?;
            Some(Window {
                action: w.action.unwrap_or(WindowAction::Allow),
                period,
            })
        })
        .collect();
    if windows.len() == raw.len() && deny_covers_allow(&windows, ctx.host.now(), HORIZON) {
        ctx.warning(
            "allow-windows-denied",
            path,
            format!("deny windows in `{path}` cover every allow window: it will never replicate"),
        )
        .help = Some("shorten or move the deny windows, or remove them".into());
    }
    windows
}

fn cross_checks(ctx: &mut Ctx<'_>, raw: &RawConfig, config: &Config) {
    duplicates(
        ctx,
        "space",
        raw.spaces.iter().map(|s| s.name.as_str()),
        "name",
        "duplicate-name",
        "space name",
    );
    duplicates(
        ctx,
        "seed",
        raw.seeds.iter().map(|s| s.name.as_str()),
        "name",
        "duplicate-name",
        "seed name",
    );
    let space_addresses: Vec<Option<Address>> = config.spaces.iter().map(|s| s.address).collect();
    let space_addr_text: Vec<String> = space_addresses
        .iter()
        .map(|a| a.map(|a| a.to_string()).unwrap_or_default())
        .collect();
    duplicates(
        ctx,
        "space",
        space_addr_text.iter().map(String::as_str),
        "address",
        "duplicate-address",
        "space address",
    );
    let seed_addr_text: Vec<String> = raw
        .seeds
        .iter()
        .map(|s| {
            s.address
                .parse::<Address>()
                .map(|a| a.to_string())
                .unwrap_or_default()
        })
        .collect();
    duplicates(
        ctx,
        "seed",
        seed_addr_text.iter().map(String::as_str),
        "address",
        "duplicate-address",
        "seed address",
    );
    for (i, seed) in raw.seeds.iter().enumerate() {
        let Ok(addr) = seed.address.parse::<Address>() else {
            continue;
        };
        if let Some(j) = space_addresses.iter().position(|a| *a == Some(addr)) {
            let p = key_path(&index_path("seed", i), "address");
            ctx.error(
                "seed-is-space",
                &p,
                format!(
                    "seed `{}` has the address of space `{}`",
                    seed.name, raw.spaces[j].name
                ),
            )
            .help =
                Some("this device is a member of that space: it already keeps a full copy".into());
        }
    }
    mounts(ctx, raw, config);
    places(ctx, raw, config);
    quotas(ctx, raw, config);
}

/// Report every value that repeats an earlier one (empty values are not compared).
fn duplicates<'v>(
    ctx: &mut Ctx<'_>,
    list: &str,
    values: impl Iterator<Item = &'v str>,
    field: &str,
    code: &'static str,
    what: &str,
) {
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, v) in values.enumerate() {
        if v.is_empty() {
            continue;
        }
        if let Some(&j) = first.get(v) {
            let p = key_path(&index_path(list, i), field);
            ctx.error(code, &p, format!("{what} {v:?} is declared twice"))
                .help = Some(format!(
                "`{}` already has it",
                key_path(&index_path(list, j), field)
            ));
        } else {
            first.insert(v, i);
        }
    }
}

fn mounts(ctx: &mut Ctx<'_>, raw: &RawConfig, config: &Config) {
    let data_dir = &config.device.data_dir;
    let mounted: Vec<(usize, &Path)> = config
        .spaces
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.mount.as_deref()?)))
        .collect();
    let where_ = |i: usize| -> String {
        let p = index_path("space", i);
        match raw.spaces[i].mount {
            Some(RawMount::Path(_)) => key_path(&p, "mount"),
            _ => key_path(&p, "name"),
        }
    };
    for (a, (i, pi)) in mounted.iter().enumerate() {
        if data_dir.as_os_str().is_empty() || pi.as_os_str().is_empty() {
            continue;
        }
        if pi.starts_with(data_dir) || data_dir.starts_with(pi) {
            let how = if pi.starts_with(data_dir) {
                "inside"
            } else {
                "around"
            };
            ctx.error(
                "mount-in-data-dir",
                &where_(*i),
                format!(
                    "mount {} of space `{}` is {how} the data directory {}",
                    pi.display(),
                    raw.spaces[*i].name,
                    data_dir.display()
                ),
            )
            .help = Some("mount spaces outside `[device] data_dir`".into());
        }
        for (j, pj) in mounted.iter().take(a) {
            // Two defaulted mounts of one name collide because the name is duplicated,
            // which is reported already.
            let explicit = |k: usize| matches!(raw.spaces[k].mount, Some(RawMount::Path(_)));
            if !explicit(*i) && !explicit(*j) && raw.spaces[*i].name == raw.spaces[*j].name {
                continue;
            }
            if pi.starts_with(pj) || pj.starts_with(pi) {
                let (inner, outer) = if pi.starts_with(pj) {
                    (*i, *j)
                } else {
                    (*j, *i)
                };
                let (si, so) = (&raw.spaces[inner].name, &raw.spaces[outer].name);
                let inner_path = config.spaces[inner].mount.clone().unwrap_or_default();
                let outer_path: PathBuf = config.spaces[outer].mount.clone().unwrap_or_default();
                let message = if inner_path == outer_path {
                    format!(
                        "spaces `{si}` and `{so}` are both mounted at {}",
                        inner_path.display()
                    )
                } else {
                    format!(
                        "mount {} of space `{si}` is inside mount {} of space `{so}`",
                        inner_path.display(),
                        outer_path.display()
                    )
                };
                ctx.error("nested-mount", &where_(inner.max(outer)), message)
                    .help = Some("give each space its own directory, none inside another".into());
            }
        }
    }
}

/// Mounts, the data directory and the socket only where [`places::refusal`] allows, and the
/// socket only where no other kind of file is.
fn places(ctx: &mut Ctx<'_>, raw: &RawConfig, config: &Config) {
    use crate::places::{Use, refusal};
    let home = ctx.host.home();
    let home = home.as_deref();
    let explain = "cobox never mounts, keeps data or binds a socket on the system's directories or on the home directory; choose a directory of its own, like `~/cobox/NAME` or `/srv/cobox/NAME`";
    let dir = &config.device.data_dir;
    if !dir.as_os_str().is_empty()
        && let Some(why) = refusal(dir, Use::DataDir, home)
    {
        let at = if raw.device.data_dir.is_some() {
            "device.data_dir"
        } else {
            "device"
        };
        ctx.error("unsafe-place", at, why).help = Some(explain.into());
    }
    for (i, s) in config.spaces.iter().enumerate() {
        let Some(mount) = s.mount.as_deref().filter(|m| !m.as_os_str().is_empty()) else {
            continue;
        };
        if let Some(why) = refusal(mount, Use::Mount, home) {
            let p = index_path("space", i);
            let at = match raw.spaces[i].mount {
                Some(RawMount::Path(_)) => key_path(&p, "mount"),
                _ if raw.device.mount_root.is_some() => "device.mount_root".to_string(),
                _ => key_path(&p, "name"),
            };
            ctx.error(
                "unsafe-place",
                &at,
                format!("space `{}`: {why}", raw.spaces[i].name),
            )
            .help = Some(explain.into());
        }
    }
    let socket = &config.api.socket;
    if socket.as_os_str().is_empty() {
        return;
    }
    let at = if raw.api.socket.is_some() {
        "api.socket"
    } else {
        "device.data_dir"
    };
    if let Some(why) = refusal(socket, Use::Socket, home) {
        ctx.error("unsafe-place", at, why).help = Some(explain.into());
    } else if let Some(kind) = ctx.host.path_kind(socket)
        && kind != crate::host::PathKind::Socket
    {
        ctx.error(
            "socket-over-file",
            at,
            format!(
                "{} exists and is {}: the control socket never replaces a file",
                socket.display(),
                kind.word()
            ),
        )
        .help = Some("name a path where nothing is, or where an old socket of coboxd is".into());
    }
}

fn quotas(ctx: &mut Ctx<'_>, raw: &RawConfig, config: &Config) {
    let disk = ctx.host.disk_capacity(&config.device.data_dir);
    let check = |ctx: &mut Ctx<'_>, path: &str, quota: Size| {
        if let Some(cap) = disk.filter(|&cap| quota.0 > cap) {
            ctx.warning(
                "quota-exceeds-disk",
                path,
                format!(
                    "`{path}` is {quota}, more than the {} disk holding {}",
                    Size(cap),
                    config.device.data_dir.display()
                ),
            );
        }
    };
    if let Some(q) = config.storage.quota {
        check(ctx, "storage.quota", q);
    }
    for (i, seed) in config.seeds.iter().enumerate() {
        let Some(q) = seed.quota else { continue };
        let p = key_path(&index_path("seed", i), "quota");
        check(ctx, &p, q);
        if let Some(total) = config.storage.quota.filter(|t| q > *t) {
            ctx.warning(
                "seed-quota-exceeds-total",
                &p,
                format!(
                    "seed `{}` may use {q}, more than the total quota of {total}",
                    raw.seeds[i].name
                ),
            )
            .help = Some("the total `[storage] quota` stops it first".into());
        }
    }
}
