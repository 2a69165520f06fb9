//! The agent converging a device onto its cobox.toml: spaces created, opened and mounted;
//! edits of the file applied live; a bad edit ignored; drift repaired; a clean stop.

use std::io::Read;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coboxd::mount::is_mounted;

struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn start(config: &Path) -> Agent {
        let log = config.with_extension("log");
        let child = Command::new(env!("CARGO_BIN_EXE_coboxd"))
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("coboxd starts");
        Agent { child, log }
    }

    /// The agent's log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, wait (at most 20 s: longer fails the test), and return the agent's log.
    fn stop(mut self) -> String {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "coboxd did not stop within 20 s of SIGTERM\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = self.log();
        assert!(status.success(), "coboxd exited with {status}\n{log}");
        log
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn eventually(what: &str, secs: u64, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write_config(path: &Path, root: &Path, spaces: &[&str], extra: &str) {
    let mut text = format!(
        "version = 1\n[device]\nname = \"test\"\ndata_dir = \"{}\"\nmount_root = \"{}\"\n[network]\nlan_discovery = false\ninternet_discovery = false\nrelays = []\nportmapper = false\n",
        root.join("data").display(),
        root.join("mnt").display()
    );
    for s in spaces {
        text.push_str(&format!("[[space]]\nname = \"{s}\"\n"));
    }
    text.push_str(extra);
    // Replace the file the way editors do: write aside, rename over.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

fn cleanup(paths: &[PathBuf]) {
    for p in paths {
        if is_mounted(p) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(p)
                .status();
        }
    }
}

#[test]
fn the_agent_converges_follows_edits_keeps_data_and_repairs_drift() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("cobox.toml");
    let (alpha, beta) = (root.join("mnt/alpha"), root.join("mnt/beta"));
    write_config(&config, root, &["alpha"], "");
    let agent = Agent::start(&config);
    eventually("alpha mounted", 30, || is_mounted(&alpha));
    std::fs::write(alpha.join("kept.txt"), "written through the mount\n").unwrap();

    write_config(&config, root, &["alpha", "beta"], "");
    eventually("beta mounted after the edit", 30, || is_mounted(&beta));

    // A bad edit changes nothing.
    write_config(
        &config,
        root,
        &["alpha", "beta"],
        "[[space]]\nname = \"bad name!\"\n",
    );
    eventually("the bad edit is refused", 30, || {
        agent.log().contains("config is invalid")
    });
    assert!(is_mounted(&alpha) && is_mounted(&beta));

    // A space leaving the config is unmounted; its data stays.
    write_config(&config, root, &["beta"], "");
    eventually("alpha unmounted", 30, || !is_mounted(&alpha));
    let spaces = std::fs::read_dir(root.join("data/spaces")).unwrap().count();
    assert_eq!(spaces, 2, "both spaces' data are still on disk");

    // Drift: a mount removed by hand comes back within a resync period.
    assert!(
        Command::new("fusermount3")
            .arg("-u")
            .arg(&beta)
            .status()
            .unwrap()
            .success()
    );
    eventually("beta mounted again", 25, || is_mounted(&beta));

    let log = agent.stop();
    assert!(!is_mounted(&beta), "a clean stop unmounts");
    assert!(log.contains("ConfigInvalid"), "{log}");
    assert!(log.contains("converged"), "{log}");
    assert!(log.contains("a mount disappeared"), "{log}");

    // Back in the config, alpha mounts again with its file intact.
    write_config(&config, root, &["alpha", "beta"], "");
    let agent = Agent::start(&config);
    eventually("alpha mounted after a restart", 30, || is_mounted(&alpha));
    assert_eq!(
        std::fs::read_to_string(alpha.join("kept.txt")).unwrap(),
        "written through the mount\n"
    );
    agent.stop();
    cleanup(&[alpha, beta]);
}

#[test]
fn an_invalid_first_config_starts_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("cobox.toml");
    std::fs::write(
        &config,
        "version = 1\n[[space]]\nname = \"x\"\nmount = \"relative\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coboxd"))
        .arg("--config")
        .arg(&config)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("relative-path")
            && err.contains(&format!("{}:4:9", config.display()))
            && err.contains("nothing was started"),
        "{err}"
    );
    // With a JSON log, the diagnostics and the end are JSON objects like every line.
    let out = Command::new(env!("CARGO_BIN_EXE_coboxd"))
        .args(["--log-format", "json", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|v| v["code"] == "relative-path" && v["path"] == "space[0].mount"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|v| v["error"]
            .as_str()
            .is_some_and(|e| e.contains("nothing was started"))),
        "{lines:?}"
    );
}

#[test]
fn under_systemd_the_agent_reports_ready_reloading_and_stopping_and_logs_json() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("cobox.toml");
    // A config with a warning: it is logged when the text is validated, once.
    let key = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
    write_config(
        &config,
        root,
        &["alpha"],
        &format!("[admins]\nkeys = [\"{key}\", \"{key}\"]\n"),
    );
    let sock_path = root.join("notify.sock");
    let notify = Notify::bind(&sock_path);
    let recv = || notify.recv();
    let mut child = Command::new(env!("CARGO_BIN_EXE_coboxd"))
        .args(["--log-format", "json", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = recv();
    assert!(
        ready.contains("READY=1") && ready.contains("STATUS=generation 1: converged"),
        "{ready}"
    );
    assert!(is_mounted(&root.join("mnt/alpha")));

    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    assert!(recv().contains("RELOADING=1"));
    assert!(recv().contains("READY=1"));

    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(recv().contains("STOPPING=1"));
    assert!(child.wait().unwrap().success());
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    assert_eq!(
        log.matches("\"code\":\"duplicate-key\"").count(),
        1,
        "the reload of an unchanged text validates nothing again\n{log}"
    );
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("timestamp").is_some(),
            "{line}"
        );
    }
    assert!(!is_mounted(&root.join("mnt/alpha")));
}

#[test]
fn kill_9_while_converging_loses_nothing_and_the_next_start_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("cobox.toml");
    let names = ["s0", "s1", "s2", "s3", "s4", "s5"];
    write_config(&config, root, &names[..1], "");
    let mounts: Vec<PathBuf> = names.iter().map(|n| root.join("mnt").join(n)).collect();
    let mut agent = Agent::start(&config);
    eventually("s0 mounted", 30, || is_mounted(&mounts[0]));
    // Durable once fsync returns (a close alone is durable within the commit interval).
    let mut f = std::fs::File::create(mounts[0].join("before.txt")).unwrap();
    f.write_all(b"committed before the crash\n").unwrap();
    f.sync_all().unwrap();
    drop(f);
    // Declare more spaces and kill the agent while it is creating and mounting them.
    write_config(&config, root, &names, "");
    eventually("the apply under way", 30, || {
        mounts[1..].iter().any(|m| is_mounted(m))
    });
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();

    // What a crash in the middle of replacing files leaves (here planted, from a process
    // that no longer exists) is swept at the next start.
    let dead = 4_194_305;
    let leftovers = [
        root.join(format!(".cobox.toml.tmp-{dead}")),
        root.join(format!("data/generations/.0000000009.json.tmp-{dead}")),
    ];
    for f in &leftovers {
        std::fs::write(f, "half written").unwrap();
    }
    // Stale mounts left by the killed agent still show in the mount table: wait for live ones.
    let live = |m: &PathBuf| is_mounted(m) && !coboxd::mount::is_stale(m);
    let agent = Agent::start(&config);
    eventually("every space mounted after the restart", 60, || {
        mounts.iter().all(live)
    });
    assert_eq!(
        std::fs::read_to_string(mounts[0].join("before.txt")).unwrap(),
        "committed before the crash\n"
    );
    let keys = std::fs::read_dir(root.join("data/spaces")).unwrap().count();
    assert_eq!(keys, names.len(), "one space each, none created twice");
    for f in &leftovers {
        assert!(!f.exists(), "{} was swept", f.display());
    }
    agent.stop();
    cleanup(&mounts);
}

#[test]
fn a_failing_action_is_retried_with_backoff_and_blocks_only_its_resource() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("cobox.toml");
    // The mount point of `blocked` is a regular file: mounting there fails until it is gone.
    let blocked = root.join("in-the-way");
    std::fs::write(&blocked, "not a directory").unwrap();
    let extra = format!(
        "[[space]]\nname = \"blocked\"\nmount = \"{}\"\n",
        blocked.join("mnt").display()
    );
    write_config(&config, root, &["fine"], &extra);
    let agent = Agent::start(&config);
    let fine = root.join("mnt/fine");
    eventually("the other space mounted", 30, || is_mounted(&fine));
    // Freed once the agent has failed twice, waiting longer the second time.
    eventually("a second failure, retried later", 30, || {
        agent.log().contains("retry_in_s=2")
    });
    std::fs::remove_file(&blocked).unwrap();
    eventually(
        "the blocked space mounted once its mount point can be made",
        30,
        || is_mounted(&blocked.join("mnt")),
    );
    let log = agent.stop();
    let failures = log.matches("action failed").count();
    assert!(
        (2..=6).contains(&failures),
        "retried with growing waits, not in a tight loop: {failures} failures\n{log}"
    );
    assert!(
        log.contains("retry_in_s=1") && log.contains("retry_in_s=2"),
        "{log}"
    );
    cleanup(&[fine, blocked.join("mnt")]);
}

#[test]
fn the_control_api_serves_its_openapi_document_answers_every_get_and_errs_in_json() {
    use coboxd::control::client::{Client, ClientError};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("cobox.toml");
    write_config(&config, root, &[], "");
    let agent = Agent::start(&config);
    let client = Client::new(&root.join("data/coboxd.sock"));
    eventually("the API answers", 30, || {
        client.get::<serde_json::Value>("/v1/status").is_ok()
    });
    let doc: serde_json::Value = client.get("/v1/openapi.json").unwrap();
    assert_eq!(doc, coboxd::control::openapi::document());
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 10);
    for (path, ops) in paths {
        if ops.get("get").is_none() || path == "/v1/events" {
            continue;
        }
        let body: serde_json::Value = client
            .get(path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        // Every property the schema requires is there.
        let schema = &ops["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.trim_start_matches("#/components/schemas/");
            let def = &doc["components"]["schemas"][name];
            for field in def["required"].as_array().into_iter().flatten() {
                let field = field.as_str().unwrap();
                assert!(
                    body.get(field).is_some(),
                    "GET {path} lacks {field}: {body}"
                );
            }
        }
    }
    match client.get::<serde_json::Value>("/v1/nope") {
        Err(ClientError::Api { status, error }) => {
            assert_eq!((status, error.code.as_str()), (404, "not-found"))
        }
        other => panic!("{other:?}"),
    }
    match client
        .post::<_, serde_json::Value>("/v1/plan", &serde_json::json!({"config": "version = 2\n"}))
    {
        Err(ClientError::Api { status, error }) => {
            assert_eq!((status, error.code.as_str()), (422, "config-invalid"));
            assert!(!error.diagnostics.is_empty());
        }
        other => panic!("{other:?}"),
    }
    match client.post::<_, serde_json::Value>("/v1/apply", &serde_json::json!({"cfg": 1})) {
        Err(ClientError::Api { status, error }) => {
            assert_eq!((status, error.code.as_str()), (400, "bad-request"))
        }
        other => panic!("{other:?}"),
    }
    let log = agent.stop();
    assert!(
        !root.join("data/coboxd.sock").exists(),
        "the socket is removed on stop\n{log}"
    );
}

/// The socket an agent started with `NOTIFY_SOCKET` reports to, as systemd's would be.
struct Notify(std::os::unix::net::UnixDatagram);

impl Notify {
    fn bind(path: &Path) -> Notify {
        let sock = std::os::unix::net::UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Notify(sock)
    }

    /// The next notification (within 30 s, or the test fails).
    fn recv(&self) -> String {
        let mut buf = vec![0u8; 4096];
        let n = self.0.recv(&mut buf).expect("a notification arrives");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// A FIFO at `path` that nobody writes to.
fn make_fifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

#[test]
fn configs_that_cannot_be_read_are_refused_without_blocking_and_shown_as_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let check = |path: &Path| {
        Command::new(env!("CARGO_BIN_EXE_coboxd"))
            .args(["--check", "--config"])
            .arg(path)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    // A device, a FIFO (nobody writing), a huge file: refused at once with the reason.
    let fifo = root.join("fifo.toml");
    make_fifo(&fifo);
    let huge = root.join("huge.toml");
    std::fs::write(&huge, vec![b'#'; 2 << 20]).unwrap();
    let latin1 = root.join("latin1.toml");
    std::fs::write(&latin1, b"version = 1\n[device]\nname = \"caf\xe9\"\n").unwrap();
    for (path, says) in [
        (Path::new("/dev/zero"), "is a device, not a regular file"),
        (&fifo, "is a FIFO, not a regular file"),
        (&huge, "is larger than 1048576 bytes"),
        (&latin1, "latin1.toml:3:12 is not UTF-8 text"),
    ] {
        let out = check(path);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{}", path.display());
        assert!(err.contains(says), "{}: {err}", path.display());
    }

    // The running agent: its config replaced by a FIFO, removed, or made not UTF-8 is
    // ConfigInvalid while the running generation goes on, and the next valid edit applies.
    let config = root.join("cobox.toml");
    write_config(&config, root, &["alpha"], "");
    let agent = Agent::start(&config);
    let alpha = root.join("mnt/alpha");
    eventually("alpha mounted", 30, || is_mounted(&alpha));
    let said = |what: &'static str| {
        let agent = &agent;
        move || {
            agent
                .log()
                .lines()
                .any(|l| l.contains("config is unreadable") && l.contains(what))
        }
    };
    std::fs::remove_file(&config).unwrap();
    make_fifo(&config);
    eventually("the FIFO is refused", 30, said("is a FIFO"));
    std::fs::remove_file(&config).unwrap();
    eventually("the missing file is refused", 30, said("No such file"));
    std::fs::write(&config, b"version = 1\n# \xff\n").unwrap();
    eventually(
        "the bytes that are not UTF-8 are refused",
        30,
        said(":2:3 is not UTF-8 text"),
    );
    assert!(is_mounted(&alpha), "the running generation goes on");
    write_config(&config, root, &["alpha", "beta"], "");
    eventually("the next valid edit applies", 30, || {
        is_mounted(&root.join("mnt/beta"))
    });
    agent.stop();
    cleanup(&[alpha, root.join("mnt/beta")]);
}

#[test]
fn a_window_of_a_hundred_years_converges_at_once_and_sigterm_stops_the_agent() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("cobox.toml");
    write_config(
        &config,
        root,
        &[],
        "[[space]]\nname = \"alpha\"\nwindows = [{ when = \"0 22 * * *\", for = \"100y\" }]\n\
         [[space]]\nname = \"beta\"\nwindows = [{ when = \"* * * * * *\", for = \"300000y\", action = \"deny\" }]\n",
    );
    let agent = Agent::start(&config);
    let (alpha, beta) = (root.join("mnt/alpha"), root.join("mnt/beta"));
    eventually("both spaces mounted", 30, || {
        is_mounted(&alpha) && is_mounted(&beta)
    });
    let log = agent.stop();
    assert!(log.contains("window-always-open"), "{log}");
    cleanup(&[alpha, beta]);
}

#[test]
fn an_invite_sealed_for_another_device_is_stalled_and_not_retried() {
    use cobox_keys::{Secret32, SigningKeyPair};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // A valid invite, for some other device.
    let inviter = SigningKeyPair::from_seed(&Secret32::from_bytes([5; 32]));
    let other = SigningKeyPair::from_seed(&Secret32::from_bytes([6; 32]));
    let code = cobox_keys::invite::Invite {
        space_name: "theirs".into(),
        address: cobox_schema::hexkey::Address([7; 32]),
        encryption_key: Some(Secret32::from_bytes([8; 32])),
        role: cobox_keys::invite::Role::Member,
        expires: None,
        inviter: inviter.public,
        invitee: other.public,
    }
    .create(&inviter)
    .unwrap();
    let config = root.join("cobox.toml");
    write_config(
        &config,
        root,
        &["mine"],
        &format!("[[space]]\nname = \"theirs\"\ninvite = \"{code}\"\nmount = false\n"),
    );
    let sock_path = root.join("notify.sock");
    let notify = Notify::bind(&sock_path);
    let recv = || notify.recv();
    let log = config.with_extension("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_coboxd"))
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env_remove("RUST_LOG")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    assert!(recv().contains("READY=1"));
    let failures = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("not retried until the config changes"))
            .count()
    };
    eventually("the invite is refused", 30, || failures() >= 1);
    // Three more reconciles (each reload is followed by one, then READY): no retry.
    let pid = rustix::process::Pid::from_child(&child);
    for _ in 0..3 {
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
        while !recv().contains("READY=1") {}
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(failures(), 1, "tried once only\n{text}");
    assert!(text.contains("sealed for another device"), "{text}");
    assert!(is_mounted(&root.join("mnt/mine")), "the other space runs");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(child.wait().unwrap().success());
    cleanup(&[root.join("mnt/mine")]);
}
