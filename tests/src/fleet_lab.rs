//! A fleet on a LAN of network namespaces: two admins' devices, a seed of the fleet space
//! and a number of hubs, with the fleet directory the admins keep (a base, a canary group of
//! the first hub, groups `east` and `west` by a `site` label, one layer per hub holding its
//! invite). Used by the fleet test and the rollout benchmark.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::lan::Lan;
use crate::node::{Agent, Node, QUIET, eventually, show};

const PORT: u16 = 7420;

/// The lab; every agent is killed when it is dropped.
#[derive(Debug)]
pub struct FleetLab {
    pub lan: Lan,
    /// The two admins' devices: `a1` created the fleet space, `a2` joined it.
    pub admins: [Node; 2],
    pub seed: Node,
    pub hubs: Vec<Node>,
    /// The fleet directory.
    pub dir: PathBuf,
    /// base.toml as the lab wrote it first.
    pub base: String,
    admin_agents: Vec<Agent>,
    hub_agents: Vec<Option<Agent>>,
}

impl FleetLab {
    /// `hubs` hubs named h1…hN (the first half `site = "east"`, the rest `west`); each
    /// hub's `[admins]` has `probation` (like `"0s"` or `"10m"`). `subnet` picks the LAN.
    pub fn new(tmp: &Path, hubs: usize, subnet: u8, probation: &str) -> FleetLab {
        let lan = Lan::new(3 + hubs, subnet);
        let on = |name: &str, host: usize| {
            let mut n = Node::new(tmp, name);
            n.netns = Some(lan.host(host));
            n
        };
        let (a1, a2, seed) = (on("a1", 0), on("a2", 1), on("s", 2));
        let (k1, k2, ks) = (a1.identity(), a2.identity(), seed.identity());
        let at = |i: usize| format!("\"{}:{PORT}\"", lan.addr(i));
        let admins = format!(
            "[admins]\nkeys = [\"{k1}\", \"{k2}\"]\nfleet = \"fleet\"\nprobation = \"{probation}\"\n"
        );
        let fleet_space = |more: &str| {
            format!("[[space]]\nname = \"fleet\"\nmount = false\nseeders = [\"{ks}\"]\n{more}")
        };
        a1.write_config(&format!(
            "[network]\nlisten = [{}]\npeers = [{}]\n{QUIET}{}{admins}",
            at(0),
            at(2),
            fleet_space("")
        ));
        let mut admin_agents = vec![a1.start()];
        a1.wait_converged(60);
        let address = a1.space_address();
        seed.write_config(&format!(
            "[network]\nlisten = [{}]\n{QUIET}[[seed]]\nname = \"fleet\"\naddress = \"{address}\"\nfleet = true\n",
            at(2)
        ));
        let seed_agent = seed.start();
        let invite = |key: &str| a1.ctl_ok(&["invite", "create", "--space", "fleet", "--for", key]);
        let code = invite(&k2);
        a2.write_config(&format!(
            "[network]\nlisten = [{}]\npeers = [{}, {}]\n{QUIET}{}{admins}",
            at(1),
            at(0),
            at(2),
            fleet_space(&format!("invite = \"{code}\"\n"))
        ));
        admin_agents.push(a2.start());
        admin_agents.push(seed_agent);
        a2.wait_converged(60);
        seed.wait_converged(60);

        let dir = tmp.join("fleet");
        std::fs::create_dir_all(dir.join("devices")).unwrap();
        std::fs::create_dir_all(dir.join("groups")).unwrap();
        let mut listing = String::from(
            "[fleet]\nname = \"lab\"\n\n[[group]]\nname = \"canary\"\ndevices = [\"h1\"]\n\n\
             [[group]]\nname = \"east\"\nlabels = { site = \"east\" }\n\n\
             [[group]]\nname = \"west\"\nlabels = { site = \"west\" }\n",
        );
        let hubs: Vec<Node> = (0..hubs)
            .map(|i| on(&format!("h{}", i + 1), 3 + i))
            .collect();
        for (i, h) in hubs.iter().enumerate() {
            let key = h.identity();
            let site = if i < hubs.len() / 2 { "east" } else { "west" };
            listing.push_str(&format!(
                "\n[[device]]\nname = \"{}\"\nkey = \"{key}\"\nlabels = {{ site = \"{site}\" }}\n",
                h.name
            ));
            std::fs::write(
                dir.join(format!("devices/{}.toml", h.name)),
                format!(
                    "{}{}",
                    h.device_table(),
                    fleet_space(&format!("invite = \"{}\"\n", invite(&key)))
                ),
            )
            .unwrap();
        }
        std::fs::write(dir.join("fleet.toml"), listing).unwrap();
        let base = format!(
            "version = 1\n[network]\npeers = [{}, {}, {}]\n{QUIET}{admins}",
            at(0),
            at(1),
            at(2)
        );
        std::fs::write(dir.join("base.toml"), &base).unwrap();
        let mut lab = FleetLab {
            lan,
            admins: [a1, a2],
            seed,
            hubs,
            dir,
            base,
            admin_agents,
            hub_agents: Vec::new(),
        };
        // Each hub starts on the config the fleet renders for it.
        for i in 0..lab.hubs.len() {
            let text = lab.render(&lab.hubs[i].name);
            std::fs::write(lab.hubs[i].config(), format!("{text}\n")).unwrap();
            lab.hub_agents.push(Some(lab.hubs[i].start()));
        }
        for h in &lab.hubs {
            h.wait_converged(90);
        }
        lab.wait_status_ok("every hub reports its rendered config, converged", 120);
        lab
    }

    pub fn dir_arg(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// The config the fleet renders for device `name`.
    pub fn render(&self, name: &str) -> String {
        self.admins[0].ctl_ok(&["fleet", "render", self.dir_arg(), name])
    }

    /// `coboxctl fleet ARGS… DIR MORE…` on admin `i`.
    pub fn fleet(&self, i: usize, command: &str, more: &[&str]) -> Output {
        let mut args = vec!["fleet", command, self.dir_arg()];
        args.extend_from_slice(more);
        self.admins[i].ctl(&args)
    }

    /// `fleet apply --yes --output json` on admin `i`: the exit code and the outcome.
    pub fn apply(&self, i: usize, more: &[&str]) -> (Option<i32>, serde_json::Value) {
        let mut args = vec!["--yes", "--output", "json"];
        args.extend_from_slice(more);
        let out = self.fleet(i, "apply", &args);
        let outcome = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("fleet apply printed no outcome ({e}): {}", show(&out)));
        (out.status.code(), outcome)
    }

    /// `fleet status --output json` on admin `i`.
    pub fn status(&self, i: usize) -> serde_json::Value {
        let out = self.fleet(i, "status", &["--output", "json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    pub fn wait_status_ok(&self, what: &str, secs: u64) {
        eventually(
            what,
            secs,
            || self.fleet(0, "status", &[]).status.success(),
            || format!("{}\n{}", show(&self.fleet(0, "status", &[])), self.logs()),
        );
    }

    /// Replace base.toml with the lab's base followed by `extra`.
    pub fn write_base(&self, extra: &str) {
        std::fs::write(self.dir.join("base.toml"), format!("{}{extra}", self.base)).unwrap();
    }

    /// Write a layer (`groups/NAME.toml`, `devices/NAME.toml`).
    pub fn write_layer(&self, path: &str, text: &str) {
        std::fs::write(self.dir.join(path), text).unwrap();
    }

    /// The config hub `i` runs.
    pub fn running(&self, i: usize) -> String {
        std::fs::read_to_string(self.hubs[i].config()).unwrap()
    }

    pub fn stop_hub(&mut self, i: usize) {
        if let Some(a) = self.hub_agents[i].take() {
            a.stop();
        }
    }

    pub fn start_hub(&mut self, i: usize) {
        self.hub_agents[i] = Some(self.hubs[i].start());
    }

    /// Every agent's log, for a failure's message (the admins' and the seed's whole, the
    /// hubs' last lines).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in self.admins.iter().chain(std::iter::once(&self.seed)) {
            out.push_str(&format!("{}:\n{}\n", n.name, n.log()));
        }
        for h in &self.hubs {
            let log = h.log();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            out.push_str(&format!(
                "{} (last lines):\n{}\n",
                h.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        out
    }
}

impl Drop for FleetLab {
    fn drop(&mut self) {
        self.hub_agents.clear();
        self.admin_agents.clear();
    }
}
