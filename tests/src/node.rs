//! A test device: its own directory, config file and `coboxd`, driven with `coboxctl`;
//! optionally inside a network namespace (started with `nsenter --net`, so its FUSE
//! mounts stay visible to the test).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::binary;

/// Keys for a test's `[network]` table: no mDNS, DHT, relays or port mapping, so tests
/// make no traffic beyond their own addresses.
pub const QUIET: &str =
    "lan_discovery = false\ninternet_discovery = false\nrelays = []\nportmapper = false\n";

/// A running agent, killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Agent(pub Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Agent {
    /// Stop the agent with SIGTERM (clean unmount) and wait for it; the test fails when
    /// it does not stop within 20 s or exits with a failure.
    pub fn stop(mut self) {
        let pid = self.0.id();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                assert!(status.success(), "coboxd (pid {pid}) exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("coboxd (pid {pid}) did not stop within 20 s of SIGTERM");
    }
}

/// One device of a test.
#[derive(Debug)]
pub struct Node {
    pub root: PathBuf,
    pub name: String,
    /// The network namespace its processes run in, if any.
    pub netns: Option<String>,
}

impl Node {
    /// A device named `name` under `dir`, with a config of only its `[device]` table.
    pub fn new(dir: &Path, name: &str) -> Node {
        let root = dir.join(name);
        std::fs::create_dir_all(&root).unwrap();
        let node = Node {
            root,
            name: name.into(),
            netns: None,
        };
        node.write_config("");
        node
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("cobox.toml")
    }

    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn mount(&self, space: &str) -> PathBuf {
        self.root.join("mnt").join(space)
    }

    /// The `[device]` table every config of this node starts with.
    pub fn device_table(&self) -> String {
        format!(
            "version = 1\n[device]\nname = \"{}\"\ndata_dir = \"{}\"\nmount_root = \"{}\"\n",
            self.name,
            self.data().display(),
            self.root.join("mnt").display()
        )
    }

    /// Write the config: the device table followed by `rest`.
    pub fn write_config(&self, rest: &str) {
        std::fs::write(self.config(), format!("{}{rest}", self.device_table())).unwrap();
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}")).arg(program);
                c
            }
            None => Command::new(program),
        };
        c.env("HOME", &self.root).env_remove("XDG_CONFIG_HOME");
        c
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        self.command(&binary("coboxctl"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Run `coboxctl` and return its standard output, failing the test when it fails.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "coboxctl {args:?} on {}: {}",
            self.name,
            show(&out)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// The device's identity public key (created on first use).
    pub fn identity(&self) -> String {
        self.ctl_ok(&["identity"])
    }

    /// Start `coboxd` on the config; its log goes to `agent.log` in the node's directory.
    pub fn start(&self) -> Agent {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("agent.log"))
            .unwrap();
        Agent(
            self.command(&binary("coboxd"))
                .arg("--config")
                .arg(self.config())
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }

    /// The agent's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("agent.log")).unwrap_or_default()
    }

    /// Wait until `coboxctl status` reports convergence.
    pub fn wait_converged(&self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.ctl(&["status"]).status.code() != Some(0) {
            assert!(
                Instant::now() < deadline,
                "{} did not converge within {secs} s; log:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until this seed's roster for `address` names `identity` (hex): an admission
    /// made on a member has reached it.
    pub fn wait_admitted(&self, address: &str, identity: &str, context: impl Fn() -> String) {
        let key = crate::files::unhex(identity);
        let roster = self.data().join("seeds").join(address).join("roster");
        eventually(
            &format!("{} learns that {identity} is admitted", self.name),
            60,
            || std::fs::read(&roster).is_ok_and(|r| r.windows(32).any(|w| w == key.as_slice())),
            context,
        );
    }

    /// `coboxctl status ARGS`, converged or not: it exits 1 until the generation running
    /// now has converged, and anything else fails the test.
    fn status_out(&self, args: &[&str]) -> Output {
        let mut all = vec!["status"];
        all.extend_from_slice(args);
        let out = self.ctl(&all);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "coboxctl status on {}: {}",
            self.name,
            show(&out)
        );
        out
    }

    /// `coboxctl status` as text without colours, converged or not.
    pub fn status_text(&self) -> String {
        let out = self.status_out(&["--color", "never"]);
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// `coboxctl status --output json`, converged or not.
    pub fn status(&self) -> serde_json::Value {
        let out = self.status_out(&["--output", "json"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("coboxctl status on {}: {e}: {}", self.name, show(&out)))
    }

    /// The identities this device has a session with now (none when it does not answer).
    pub fn peers(&self) -> Vec<String> {
        let out = self.ctl(&["status", "--output", "json"]);
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        s["network"]["peers"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| p["identity"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The status of resource `kind` `name`.
    pub fn resource(&self, kind: &str, name: &str) -> serde_json::Value {
        let s = self.status();
        s["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == kind && r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} {name} in {s}"))
    }

    /// The address of the space this device created or joined first (its directory name).
    pub fn space_address(&self) -> String {
        let mut names: Vec<String> = std::fs::read_dir(self.data().join("spaces"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.len() == 64)
            .collect();
        names.sort();
        names.into_iter().next().expect("a space on disk")
    }
}

/// A command's exit and output, for failure messages.
pub fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Wait (polling, bounded) until `check` holds; fail with `what` and `context()` if not.
pub fn eventually(what: &str, secs: u64, check: impl Fn() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} within {secs} s\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A free TCP port on loopback (bound and released: free unless taken in between).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two members of a new space `home`: `a` listens on loopback, `b` joins by invite and
/// dials it; both started and converged. `extra` goes into both `[[space]]` tables.
pub fn two_members(dir: &Path, extra: &str) -> ((Node, Agent), (Node, Agent)) {
    let (a, b) = (Node::new(dir, "a"), Node::new(dir, "b"));
    let pa = free_port();
    a.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{pa}\"]\n{QUIET}[[space]]\nname = \"home\"\n{extra}"
    ));
    let agent_a = a.start();
    a.wait_converged(60);
    let code = a.ctl_ok(&[
        "invite",
        "create",
        "--space",
        "home",
        "--for",
        &b.identity(),
    ]);
    b.write_config(&format!(
        "[network]\npeers = [\"127.0.0.1:{pa}\"]\n{QUIET}\
         [[space]]\nname = \"home\"\ninvite = \"{code}\"\n{extra}"
    ));
    let agent_b = b.start();
    b.wait_converged(60);
    ((a, agent_a), (b, agent_b))
}

/// Two members of a space `home` and a seed of it, running and converged.
#[derive(Debug)]
pub struct Trio {
    pub a: Node,
    pub b: Node,
    pub s: Node,
    /// A's, B's and the seed's agents, in that order.
    pub agents: [Agent; 3],
    /// The space's address.
    pub address: String,
}

/// `a` creates the space and dials the seed `s`; `b` joins by invite and dials `a`; both
/// declare `s` a seeder; `extra` goes into both members' `[[space]]` tables.
pub fn two_members_and_a_seed(dir: &Path, extra: &str) -> Trio {
    let (a, b, s) = (
        Node::new(dir, "a"),
        Node::new(dir, "b"),
        Node::new(dir, "s"),
    );
    let (pa, ps) = (free_port(), free_port());
    let (kb, ks) = (b.identity(), s.identity());
    let space =
        |more: &str| format!("[[space]]\nname = \"home\"\nseeders = [\"{ks}\"]\n{extra}{more}");
    a.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{pa}\"]\npeers = [\"127.0.0.1:{ps}\"]\n{QUIET}{}",
        space("")
    ));
    let agent_a = a.start();
    a.wait_converged(60);
    let address = a.space_address();
    let code = a.ctl_ok(&["invite", "create", "--space", "home", "--for", &kb]);
    b.write_config(&format!(
        "[network]\npeers = [\"127.0.0.1:{pa}\"]\n{QUIET}{}",
        space(&format!("invite = \"{code}\"\n"))
    ));
    s.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{ps}\"]\n{QUIET}\
         [[seed]]\nname = \"home\"\naddress = \"{address}\"\n"
    ));
    let (agent_b, agent_s) = (b.start(), s.start());
    b.wait_converged(60);
    s.wait_converged(60);
    Trio {
        a,
        b,
        s,
        agents: [agent_a, agent_b, agent_s],
        address,
    }
}

impl Trio {
    /// The three agents' logs, for a failure's message.
    pub fn logs(&self) -> String {
        format!(
            "a:\n{}\nb:\n{}\ns:\n{}",
            self.a.log(),
            self.b.log(),
            self.s.log()
        )
    }

    /// Where A, B and the seed keep the space's feeds.
    pub fn feeds(&self) -> [PathBuf; 3] {
        [
            self.a
                .data()
                .join("spaces")
                .join(&self.address)
                .join("feeds"),
            self.b
                .data()
                .join("spaces")
                .join(&self.address)
                .join("feeds"),
            self.s.data().join("seeds").join(&self.address),
        ]
    }

    /// Stop the three agents cleanly (SIGTERM), the seed first.
    pub fn stop(self) {
        let [a, b, s] = self.agents;
        s.stop();
        b.stop();
        a.stop();
    }
}
