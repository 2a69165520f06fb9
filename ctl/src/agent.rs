//! Finding the running agent: `--config FILE` (its `[api] socket`), else `--socket PATH`,
//! else the default config file's socket (or the embedded default's).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cobox_client::api::{Client, ClientError};
use cobox_client::config_file;
use cobox_client::host::SystemHost;
use cobox_schema::Source;

/// The socket to talk to.
pub fn socket(config: Option<&Path>, socket: Option<&Path>, host: &SystemHost) -> Result<PathBuf> {
    let from_config = |path: &Path| -> Result<PathBuf> {
        let source = config_file::read(path)?;
        socket_of(&source, host)
            .with_context(|| format!("cannot find the agent's socket through {}", path.display()))
    };
    if let Some(path) = config {
        return from_config(path);
    }
    if let Some(s) = socket {
        return Ok(s.to_path_buf());
    }
    match config_file::default_path().filter(|p| p.exists()) {
        Some(path) => from_config(&path),
        None => socket_of(
            &Source::new(
                config_file::DEFAULT_CONFIG_NAME,
                config_file::DEFAULT_CONFIG,
            ),
            host,
        ),
    }
}

fn socket_of(source: &Source, host: &SystemHost) -> Result<PathBuf> {
    match config_file::check(source, host).config {
        Some(c) => Ok(c.api.socket),
        // An invalid edit must not hide the agent still running the last good one: take
        // the socket the text names, as far as it can be read.
        None => lenient_socket(source.text(), host).with_context(|| {
            format!(
                "config {} is invalid and names no usable socket (run `coboxctl validate {}`); pass --socket",
                source.name(),
                source.name()
            )
        }),
    }
}

/// `[api] socket`, else `[device] data_dir`/coboxd.sock, else the default data dir's, read
/// from a config that does not validate.
fn lenient_socket(text: &str, host: &SystemHost) -> Option<PathBuf> {
    use cobox_schema::Host;
    let table: toml::Table = text.parse().ok()?;
    let path = |v: Option<&toml::Value>| -> Option<PathBuf> {
        let t = v?.as_str()?;
        if let Some(rest) = t.strip_prefix("~/") {
            return Some(host.home()?.join(rest));
        }
        Path::new(t).is_absolute().then(|| PathBuf::from(t))
    };
    let api = table.get("api").and_then(|a| a.get("socket"));
    if api.is_some() {
        return path(api);
    }
    let dir = match table.get("device").and_then(|d| d.get("data_dir")) {
        Some(d) => path(Some(d))?,
        None => host.default_data_dir(),
    };
    Some(dir.join("coboxd.sock"))
}

/// A client of the agent, when one answers on `socket`.
pub fn running(socket: &Path) -> Option<Client> {
    let client = Client::new(socket);
    match client.get::<serde_json::Value>("/v1/status") {
        Ok(_) => Some(client),
        Err(ClientError::Unreachable { .. }) => None,
        Err(_) => Some(client),
    }
}

/// A client of the agent, or an error saying none runs there.
pub fn require(socket: &Path) -> Result<Client> {
    running(socket).with_context(|| {
        format!(
            "no agent answers on {} (is coboxd running? pass --config or --socket)",
            socket.display()
        )
    })
}
