//! `coboxctl` against a running `coboxd`: status, diff and apply with their exit codes, a
//! bad edit shown as ConfigInvalid while the old generation keeps running, generations and
//! rollback, events, prune, and the key and invite commands going through the agent.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cobox_schema::api::{Event, EventKind, GenerationSource, Generations, Status};
use cobox_tests::binary;

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        Env {
            config: root.join("cobox.toml"),
            root,
            _tmp: tmp,
        }
    }

    fn text(&self, spaces: &[&str]) -> String {
        let mut text = format!(
            "version = 1\n[device]\nname = \"t\"\ndata_dir = \"{}\"\nmount_root = \"{}\"\n[network]\nlan_discovery = false\ninternet_discovery = false\nrelays = []\nportmapper = false\n",
            self.root.join("data").display(),
            self.root.join("mnt").display()
        );
        for s in spaces {
            text.push_str(&format!("[[space]]\nname = \"{s}\"\n"));
        }
        text
    }

    fn mount(&self, space: &str) -> PathBuf {
        self.root.join("mnt").join(space)
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(binary("coboxctl"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("HOME", &self.root)
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Start `coboxd` on this environment's config.
    fn start_agent(&self) -> Agent {
        Agent(
            Command::new(binary("coboxd"))
                .arg("--config")
                .arg(&self.config)
                .env("HOME", &self.root)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// Wait until `coboxctl status` reports convergence (exit 0).
    fn wait_converged(&self, secs: u64) {
        eventually("the agent converges", secs, || {
            self.ctl(&["status"]).status.code() == Some(0)
        });
    }

    fn status(&self) -> Status {
        let out = self.ctl(&["status", "--output", "json"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("status json: {e}\n{}", show(&out)))
    }
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn eventually(what: &str, secs: u64, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn is_mounted(p: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&*p.to_string_lossy()))
}

fn unmount_all(paths: &[PathBuf]) {
    for p in paths {
        if is_mounted(p) {
            let _ = Command::new("fusermount3").arg("-uz").arg(p).status();
        }
    }
}

#[test]
fn diff_apply_status_rollback_events_and_prune_through_the_agent() {
    let env = Env::new();
    std::fs::write(&env.config, env.text(&["alpha"])).unwrap();
    let agent = env.start_agent();
    let (alpha, beta) = (env.mount("alpha"), env.mount("beta"));
    env.wait_converged(30);
    let s = env.status();
    assert!(s.converged && s.generation == 1, "{s:?}");
    assert!(is_mounted(&alpha));
    let sock = env.root.join("data/coboxd.sock");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the control socket is the owner's only");
    let text = String::from_utf8(env.ctl(&["status", "--color", "never"]).stdout).unwrap();
    assert!(text.contains("mount") && text.contains("Mounted"), "{text}");
    // The space's address, which a partner needs to seed it, is in the text too.
    let address = s
        .resources
        .iter()
        .find(|r| r.name == "alpha" && r.details.contains_key("address"))
        .map(|r| r.details["address"].clone())
        .unwrap();
    assert!(
        text.contains("addresses (to ask a partner to seed a space)")
            && text.contains(&format!("alpha  {address}")),
        "{text}"
    );

    // diff: nothing, something, an invalid file.
    let same = env.ctl(&["diff"]);
    assert_eq!(same.status.code(), Some(0), "{}", show(&same));
    let next = env.root.join("next.toml");
    std::fs::write(&next, env.text(&["alpha", "beta"])).unwrap();
    let d = env.ctl(&["diff", next.to_str().unwrap(), "--color", "never"]);
    assert_eq!(d.status.code(), Some(1), "{}", show(&d));
    let out = String::from_utf8_lossy(&d.stdout);
    assert!(out.contains("+ space beta"), "{out}");
    assert!(out.contains("1 to add, 0 to change, 0 to remove"), "{out}");
    let bad = env.root.join("bad.toml");
    std::fs::write(&bad, "version = 1\n[[space]]\nname = \"no good!\"\n").unwrap();
    let d = env.ctl(&["diff", bad.to_str().unwrap()]);
    assert_eq!(d.status.code(), Some(2), "{}", show(&d));
    assert!(
        String::from_utf8_lossy(&d.stderr).contains("bad.toml:3:8"),
        "{}",
        show(&d)
    );

    // apply needs --yes without a terminal, and then converges.
    let refused = env.ctl(&["apply", next.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{}", show(&refused));
    assert_eq!(env.status().generation, 1);
    let applied = env.ctl(&["apply", next.to_str().unwrap(), "--yes"]);
    assert_eq!(applied.status.code(), Some(0), "{}", show(&applied));
    assert!(is_mounted(&beta));
    assert_eq!(
        std::fs::read_to_string(&env.config).unwrap(),
        env.text(&["alpha", "beta"]),
        "the applied config is the agent's config file"
    );
    assert_eq!(env.status().generation, 2);

    // A bad edit of the file: ConfigInvalid, generation 2 keeps running.
    std::fs::write(&env.config, env.text(&["alpha", "beta"]) + "oops = 1\n").unwrap();
    eventually("status shows ConfigInvalid", 10, || {
        env.status().config_invalid.is_some()
    });
    let s = env.status();
    assert_eq!(s.generation, 2);
    let diag = &s.config_invalid.unwrap().diagnostics[0];
    assert_eq!((diag.code.as_str(), diag.line), ("unknown-key", 15));
    assert_eq!(env.ctl(&["status"]).status.code(), Some(1));
    assert!(is_mounted(&alpha) && is_mounted(&beta));

    // Rollback to generation 1: beta goes (its data stays), the file follows.
    // Like apply, it shows what it would change and wants --yes without a terminal.
    let refused = env.ctl(&["rollback", "1", "--color", "never"]);
    assert_eq!(refused.status.code(), Some(2), "{}", show(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("- space beta"),
        "{}",
        show(&refused)
    );
    assert!(is_mounted(&beta), "nothing was rolled back");
    assert_eq!(env.status().generation, 2);
    let r = env.ctl(&["rollback", "1", "--yes"]);
    assert_eq!(r.status.code(), Some(0), "{}", show(&r));
    assert!(!is_mounted(&beta) && is_mounted(&alpha));
    assert_eq!(
        std::fs::read_to_string(&env.config).unwrap(),
        env.text(&["alpha"])
    );
    let g: Generations =
        serde_json::from_slice(&env.ctl(&["generations", "-o", "json"]).stdout).unwrap();
    assert_eq!(g.current, 3);
    assert_eq!(g.generations[0].source, GenerationSource::Rollback);
    assert_eq!(g.generations[0].restores, Some(1));
    assert_eq!(g.generations[1].source, GenerationSource::Api);
    assert!(env.status().config_invalid.is_none());

    // Events tell the story in order.
    let ev = env.ctl(&["events", "-o", "json"]);
    let events: Vec<Event> = String::from_utf8_lossy(&ev.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    for k in [
        EventKind::ConfigAccepted,
        EventKind::ActionSucceeded,
        EventKind::Converged,
        EventKind::ConfigInvalid,
    ] {
        assert!(kinds.contains(&k), "{k:?} in {kinds:?}");
    }
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));

    // Prune: a declared space is refused; beta's data goes only with --yes.
    let p = env.ctl(&["prune", "alpha", "--yes"]);
    assert_ne!(p.status.code(), Some(0), "{}", show(&p));
    let spaces = || {
        std::fs::read_dir(env.root.join("data/spaces"))
            .unwrap()
            .count()
    };
    assert_eq!(spaces(), 2);
    let p = env.ctl(&["prune"]);
    assert_eq!(p.status.code(), Some(2), "{}", show(&p));
    assert_eq!(spaces(), 2);
    let p = env.ctl(&["prune", "--yes"]);
    assert_eq!(p.status.code(), Some(0), "{}", show(&p));
    assert!(String::from_utf8_lossy(&p.stdout).contains("deleted space beta"));
    assert_eq!(spaces(), 1);

    // Keys and invites go through the agent: the identity is the agent's.
    let id = env.ctl(&["identity"]);
    let id = String::from_utf8(id.stdout).unwrap().trim().to_string();
    assert_eq!(Some(id.clone()), env.status().agent.identity);
    let inv = env.ctl(&["invite", "create", "--space", "alpha", "--for", &id]);
    assert_eq!(inv.status.code(), Some(0), "{}", show(&inv));
    let code = String::from_utf8(inv.stdout).unwrap().trim().to_string();
    let open = env.ctl(&["invite", "open", &code, "-o", "json"]);
    let info: serde_json::Value = serde_json::from_slice(&open.stdout).unwrap();
    assert_eq!(info["space"], "alpha");
    let sheet = env.ctl(&["keys", "export", "--space", "alpha"]);
    assert_eq!(sheet.status.code(), Some(0), "{}", show(&sheet));
    let sheet = String::from_utf8_lossy(&sheet.stdout);
    assert!(sheet.contains("space alpha"), "{sheet}");
    let restore = env.ctl(&["keys", "restore"]);
    assert_ne!(restore.status.code(), Some(0), "{}", show(&restore));

    drop(agent);
    unmount_all(&[alpha, beta]);
}

#[test]
fn without_an_agent_the_agent_commands_exit_2_and_say_where_they_looked() {
    let env = Env::new();
    std::fs::write(&env.config, env.text(&["alpha"])).unwrap();
    for args in [
        vec!["status"],
        vec!["diff"],
        vec!["events"],
        vec!["generations"],
    ] {
        let o = env.ctl(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("no agent answers on") && err.contains("coboxd.sock"),
            "{err}"
        );
    }
}

#[test]
fn kill_9_during_an_apply_loses_nothing_and_the_restarted_agent_converges() {
    let env = Env::new();
    std::fs::write(&env.config, env.text(&["alpha"])).unwrap();
    let mut agent = env.start_agent();
    env.wait_converged(30);
    // Durable once fsync returns (a close alone is durable within the commit interval).
    let mut kept = std::fs::File::create(env.mount("alpha").join("kept.txt")).unwrap();
    std::io::Write::write_all(&mut kept, b"before the apply\n").unwrap();
    kept.sync_all().unwrap();
    drop(kept);
    let names = ["alpha", "b1", "b2", "b3", "b4", "b5", "b6"];
    let next = env.root.join("next.toml");
    std::fs::write(&next, env.text(&names)).unwrap();
    // Apply without waiting, and kill the agent while it converges.
    let applied = env.ctl(&["apply", next.to_str().unwrap(), "--yes", "--timeout", "0s"]);
    assert_ne!(applied.status.code(), Some(2), "{}", show(&applied));
    agent.0.kill().unwrap();
    agent.0.wait().unwrap();
    assert_eq!(
        std::fs::read_to_string(&env.config).unwrap(),
        env.text(&names),
        "the applied config was written before it ran"
    );
    let mounts: Vec<PathBuf> = names.iter().map(|n| env.mount(n)).collect();
    let _agent = env.start_agent();
    env.wait_converged(60);
    assert!(mounts.iter().all(|m| is_mounted(m)));
    assert_eq!(
        std::fs::read_to_string(env.mount("alpha").join("kept.txt")).unwrap(),
        "before the apply\n"
    );
    let s = env.status();
    assert_eq!(
        s.generation, 2,
        "the applied text keeps its generation number"
    );
    drop(_agent);
    unmount_all(&mounts);
}

#[test]
fn a_space_directory_deleted_by_hand_is_a_condition_not_a_crash() {
    let env = Env::new();
    std::fs::write(&env.config, env.text(&["alpha", "beta"])).unwrap();
    let mut agent = env.start_agent();
    env.wait_converged(30);
    let s = env.status();
    let address = s
        .resources
        .iter()
        .find(|r| r.name == "alpha")
        .and_then(|r| r.details.get("address").cloned())
        .unwrap();
    std::fs::remove_dir_all(env.root.join("data/spaces").join(&address)).unwrap();
    // The next reconcile (SIGHUP rather than the 10 s resync) notices.
    let pid = agent.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    eventually("alpha is reported stalled", 10, || {
        env.status()
            .resources
            .iter()
            .any(|r| r.name == "alpha" && r.is_stalled())
    });
    let s = env.status();
    let alpha = s.resources.iter().find(|r| r.name == "alpha").unwrap();
    let stalled = alpha
        .condition(cobox_schema::api::ConditionType::Stalled)
        .unwrap();
    assert_eq!(stalled.reason, "Blocked");
    assert!(stalled.message.contains("vanished"), "{}", stalled.message);
    assert!(
        s.resources.iter().any(|r| r.name == "beta" && r.is_ready()),
        "other spaces are unaffected"
    );
    assert!(
        agent.0.try_wait().unwrap().is_none(),
        "the agent still runs"
    );
    assert_eq!(
        std::fs::read_dir(env.root.join("data/spaces"))
            .unwrap()
            .count(),
        1,
        "no new space was created in its place"
    );
    drop(agent);
    unmount_all(&[env.mount("alpha"), env.mount("beta")]);
}

/// One raw HTTP/1.1 request on the agent's socket: (status, JSON body).
fn http(
    sock: &Path,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: coboxd\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // A body over the limit is refused before it is all read: the rest may not be taken.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let json = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .and_then(|b| {
            // Chunked or not: the JSON object is between the first '{' and the last '}'.
            let (start, end) = (b.find('{')?, b.rfind('}')?);
            serde_json::from_str(&b[start..=end]).ok()
        })
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[test]
fn the_api_refuses_hostile_requests_with_json_errors_and_changes_nothing() {
    let env = Env::new();
    std::fs::write(&env.config, env.text(&["alpha"])).unwrap();
    let _agent = env.start_agent();
    env.wait_converged(30);
    let sock = env.root.join("data/coboxd.sock");
    let json = "Content-Type: application/json\r\n";
    let apply = |text: &str| serde_json::to_vec(&serde_json::json!({ "config": text })).unwrap();

    // Not JSON, unknown fields, too large: each a JSON error with its code.
    let (status, e) = http(
        &sock,
        "POST",
        "/v1/apply",
        "Content-Type: text/plain\r\n",
        &apply(&env.text(&["alpha"])),
    );
    assert_eq!(
        (status, e["code"].as_str()),
        (415, Some("unsupported-media-type")),
        "{e}"
    );
    let extra =
        serde_json::to_vec(&serde_json::json!({ "config": env.text(&["alpha"]), "force": true }))
            .unwrap();
    let (status, e) = http(&sock, "POST", "/v1/apply", json, &extra);
    assert_eq!(
        (status, e["code"].as_str()),
        (400, Some("bad-request")),
        "{e}"
    );
    assert!(
        e["message"].as_str().unwrap().contains("unknown field"),
        "{e}"
    );
    let huge = vec![b' '; cobox_schema::api::MAX_BODY_BYTES + 1];
    let (status, e) = http(&sock, "POST", "/v1/apply", json, &huge);
    assert_eq!(
        (status, e["code"].as_str()),
        (413, Some("too-large")),
        "{e}"
    );
    // A config at the largest size is read and judged (here: too long), not cut off.
    let long = format!(
        "{}#{}\n",
        env.text(&["alpha"]),
        "x".repeat(cobox_schema::source::MAX_CONFIG_BYTES)
    );
    let (status, e) = http(&sock, "POST", "/v1/plan", json, &apply(&long));
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["diagnostics"][0]["code"], "too-long", "{e}");

    // A config that would replace a file with the socket, or mount on /etc: refused
    // before anything is done, the file untouched.
    let victim = env.root.join("precious.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let over_file = format!(
        "{}[api]\nsocket = \"{}\"\n",
        env.text(&["alpha"]),
        victim.display()
    );
    let (status, e) = http(&sock, "POST", "/v1/apply", json, &apply(&over_file));
    assert_eq!(
        (status, e["code"].as_str()),
        (422, Some("config-invalid")),
        "{e}"
    );
    assert_eq!(e["diagnostics"][0]["code"], "socket-over-file", "{e}");
    let on_etc = format!(
        "{}[[space]]\nname = \"beta\"\nmount = \"/etc\"\n",
        env.text(&["alpha"])
    );
    let (status, e) = http(&sock, "POST", "/v1/apply", json, &apply(&on_etc));
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["diagnostics"][0]["code"], "unsafe-place", "{e}");
    assert_eq!(env.status().generation, 1, "nothing was applied");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");

    // Another user, even with the socket opened to everyone by mistake: refused.
    use std::os::unix::fs::PermissionsExt;
    let bin = env.root.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(binary("coboxctl"), bin.join("coboxctl")).unwrap();
    for dir in [&env.root, &env.root.join("data"), &bin] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let other = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin.join("coboxctl"))
        .arg("--socket")
        .arg(&sock)
        .arg("status")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&other.stderr);
    assert_ne!(other.status.code(), Some(0), "{}", show(&other));
    assert!(err.contains("permission denied"), "{}", show(&other));
    drop(_agent);
    unmount_all(&[env.mount("alpha")]);
}
