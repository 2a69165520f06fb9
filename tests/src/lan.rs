//! A LAN on one machine: network namespaces for hosts, joined by a bridge in a "switch"
//! namespace. Taking a host's port on the switch down partitions it; up heals it. Needs
//! root and `ip` (iproute2). Everything is deleted when the `Lan` is dropped.

use std::process::Command;

/// The hosts' addresses are 10.X.0.(i+1)/24 on their `eth0`.
#[derive(Debug)]
pub struct Lan {
    prefix: String,
    subnet: u8,
    hosts: usize,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lan {
    /// `hosts` hosts on a switch; `subnet` picks 10.`subnet`.0.0/24 (distinct per test).
    pub fn new(hosts: usize, subnet: u8) -> Lan {
        let prefix = format!("cbx{}s{subnet}", std::process::id());
        let lan = Lan {
            prefix,
            subnet,
            hosts: 0,
        };
        let sw = lan.switch();
        ip(&["netns", "add", &sw]);
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        let mut lan = lan;
        for i in 0..hosts {
            let host = lan.host(i);
            ip(&["netns", "add", &host]);
            lan.hosts = i + 1;
            let port = format!("p{i}");
            ip(&[
                "link", "add", &port, "netns", &sw, "type", "veth", "peer", "name", "eth0",
                "netns", &host,
            ]);
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"]);
            ip(&[
                "-n",
                &host,
                "addr",
                "add",
                &format!("{}/24", lan.addr(i)),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &host, "link", "set", "eth0", "up"]);
            ip(&["-n", &host, "link", "set", "lo", "up"]);
            // mDNS needs a multicast route.
            ip(&["-n", &host, "route", "add", "224.0.0.0/4", "dev", "eth0"]);
        }
        lan
    }

    fn switch(&self) -> String {
        format!("{}sw", self.prefix)
    }

    /// The namespace name of host `i` (for `Node::netns`).
    pub fn host(&self, i: usize) -> String {
        format!("{}h{i}", self.prefix)
    }

    /// Host `i`'s address.
    pub fn addr(&self, i: usize) -> String {
        format!("10.{}.0.{}", self.subnet, i + 1)
    }

    /// Cut host `i` off the LAN.
    pub fn partition(&self, i: usize) {
        ip(&[
            "-n",
            &self.switch(),
            "link",
            "set",
            &format!("p{i}"),
            "down",
        ]);
    }

    /// Put host `i` back on the LAN.
    pub fn heal(&self, i: usize) {
        ip(&["-n", &self.switch(), "link", "set", &format!("p{i}"), "up"]);
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for i in 0..self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.host(i)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.switch()])
            .status();
    }
}
