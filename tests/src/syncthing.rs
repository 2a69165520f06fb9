//! Syncthing (Debian's package) as the baseline benchmarks measure against: an instance
//! with its own home, on loopback only (no discovery, relays, NAT traversal or reports),
//! driven through its REST API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::node::free_port;

/// Whether `syncthing` is installed.
pub fn installed() -> bool {
    Command::new("syncthing").arg("--version").output().is_ok()
}

/// A Syncthing instance: its home, GUI port and API key.
#[derive(Debug)]
pub struct Syncthing {
    pub home: PathBuf,
    gui: u16,
    /// Where it listens for its peer.
    port: u16,
    key: String,
    id: String,
    child: Option<Child>,
}

impl Drop for Syncthing {
    fn drop(&mut self) {
        // Syncthing runs as a monitor and its child: stop the whole group.
        if let Some(c) = &mut self.child {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--"])
                .arg(format!("-{}", c.id()))
                .status();
            let _ = c.wait();
        }
    }
}

/// A REST call; the response body.
fn rest(port: u16, key: &str, method: &str, path: &str, body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(
        head.starts_with("HTTP/1.1 2"),
        "{method} {path}: {head}\n{rest}"
    );
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // Join the chunks.
        let mut out = String::new();
        let mut rest = rest;
        while let Some((len, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        return out;
    }
    rest.to_string()
}

impl Syncthing {
    pub fn new(dir: &Path, name: &str) -> Syncthing {
        let home = dir.join(name);
        let out = Command::new("syncthing")
            .args([
                "generate",
                "--no-default-folder",
                "--skip-port-probing",
                "--home",
            ])
            .arg(&home)
            .output()
            .expect("syncthing runs");
        assert!(out.status.success(), "syncthing generate: {out:?}");
        let mut config = std::fs::read_to_string(home.join("config.xml")).unwrap();
        // Only loopback: no discovery, relays, NAT traversal or usage reports; listening
        // on a port of ours (set before the start: a changed listener needs a restart).
        let port = free_port();
        for (from, to) in [
            (
                "<listenAddress>default</listenAddress>".to_string(),
                format!("<listenAddress>tcp://127.0.0.1:{port}</listenAddress>"),
            ),
            (
                "<globalAnnounceEnabled>true".into(),
                "<globalAnnounceEnabled>false".into(),
            ),
            (
                "<localAnnounceEnabled>true".into(),
                "<localAnnounceEnabled>false".into(),
            ),
            ("<relaysEnabled>true".into(), "<relaysEnabled>false".into()),
            ("<natEnabled>true".into(), "<natEnabled>false".into()),
            ("<urAccepted>0<".into(), "<urAccepted>-1<".into()),
            (
                "<autoUpgradeIntervalH>12<".into(),
                "<autoUpgradeIntervalH>0<".into(),
            ),
        ] {
            config = config.replace(&from, &to);
        }
        std::fs::write(home.join("config.xml"), &config).unwrap();
        let between = |open: &str, close: &str| {
            let from = config.find(open).unwrap() + open.len();
            config[from..from + config[from..].find(close).unwrap()].to_string()
        };
        let key = between("<apikey>", "</apikey>");
        let id = between("<device id=\"", "\"");
        Syncthing {
            home,
            gui: free_port(),
            port,
            key,
            id,
            child: None,
        }
    }

    pub fn start(&mut self) {
        let child = Command::new("syncthing")
            .args([
                "serve",
                "--no-browser",
                "--no-restart",
                "--no-default-folder",
            ])
            .arg(format!("--home={}", self.home.display()))
            .arg(format!("--gui-address=127.0.0.1:{}", self.gui))
            .env("STNODEFAULTFOLDER", "1")
            .process_group(0)
            .stdout(std::fs::File::create(self.home.join("log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("syncthing starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.gui)).is_err() {
            assert!(Instant::now() < deadline, "syncthing's GUI did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    pub fn call(&self, method: &str, path: &str, body: &str) -> String {
        rest(self.gui, &self.key, method, path, body)
    }

    pub fn share(&self, other: &Syncthing, folder: &Path) {
        self.call(
            "POST",
            "/rest/config/devices",
            &format!(
                "{{\"deviceID\":\"{}\",\"name\":\"peer\",\"addresses\":[\"tcp://127.0.0.1:{}\"]}}",
                other.id, other.port
            ),
        );
        self.call(
            "POST",
            "/rest/config/folders",
            &format!(
                "{{\"id\":\"bench\",\"label\":\"bench\",\"path\":\"{}\",\"type\":\"sendreceive\",\
                 \"rescanIntervalS\":3600,\"fsWatcherEnabled\":false,\
                 \"devices\":[{{\"deviceID\":\"{}\"}},{{\"deviceID\":\"{}\"}}]}}",
                folder.display(),
                self.id,
                other.id
            ),
        );
    }

    /// Bytes received from any peer so far.
    pub fn received(&self) -> u64 {
        let text = self.call("GET", "/rest/system/connections", "");
        let at = text.find("\"total\"").unwrap_or(0);
        let tail = &text[at..];
        let from = tail.find("\"inBytesTotal\":").map(|i| i + 15).unwrap_or(0);
        tail[from..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Syncthing {
    /// Two instances sharing folder `fa` (the first's) and `fb` (the second's), started
    /// and connected.
    pub fn pair(dir: &Path, fa: &Path, fb: &Path) -> (Syncthing, Syncthing) {
        let (mut a, mut b) = (Syncthing::new(dir, "sa"), Syncthing::new(dir, "sb"));
        std::fs::create_dir_all(fa).unwrap();
        std::fs::create_dir_all(fb).unwrap();
        a.start();
        b.start();
        a.share(&b, fa);
        b.share(&a, fb);
        let deadline = Instant::now() + Duration::from_secs(120);
        // The API answers indented JSON.
        let connected = || {
            a.call("GET", "/rest/system/connections", "")
                .replace([' ', '\n'], "")
                .contains("\"connected\":true")
        };
        while !connected() {
            assert!(
                Instant::now() < deadline,
                "the Syncthing instances did not connect"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        (a, b)
    }

    /// Ask for a scan of the shared folder now.
    pub fn scan(&self) {
        self.call("POST", "/rest/db/scan?folder=bench", "");
    }
}
