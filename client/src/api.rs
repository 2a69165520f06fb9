//! A blocking client of the control API (for `coboxctl` and tests): one HTTP/1.1 request
//! per connection over the agent's unix socket.

use std::path::{Path, PathBuf};

use cobox_schema::api::{ApiError, Event};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no agent answers on control socket {socket}: {source}")]
    Unreachable {
        socket: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "permission denied on control socket {socket}: only the agent's own user (or root) may use it"
    )]
    Denied { socket: PathBuf },
    #[error("{}", .error.message)]
    Api { status: u16, error: ApiError },
    #[error("control socket {socket}: {message}")]
    Protocol { socket: PathBuf, message: String },
}

/// A client of one agent.
#[derive(Debug)]
pub struct Client {
    socket: PathBuf,
    rt: tokio::runtime::Runtime,
}

impl Client {
    pub fn new(socket: &Path) -> Client {
        Client {
            socket: socket.to_path_buf(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds"),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn protocol(&self, message: impl std::fmt::Display) -> ClientError {
        ClientError::Protocol {
            socket: self.socket.clone(),
            message: message.to_string(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::PermissionDenied {
                    ClientError::Denied {
                        socket: self.socket.clone(),
                    }
                } else {
                    ClientError::Unreachable {
                        socket: self.socket.clone(),
                        source,
                    }
                }
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.protocol(e))?;
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "coboxd")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| self.protocol(e))?;
        sender.send_request(req).await.map_err(|e| self.protocol(e))
    }

    fn request<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        self.rt.block_on(async {
            let resp = self.send(method, path, body).await?;
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| self.protocol(e))?
                .to_bytes();
            if !(200..300).contains(&status) {
                let error = serde_json::from_slice::<ApiError>(&bytes).map_err(|_| {
                    self.protocol(format!(
                        "status {status}: {}",
                        String::from_utf8_lossy(&bytes)
                    ))
                })?;
                if error.code == cobox_schema::api::error_code::PERMISSION_DENIED {
                    return Err(ClientError::Denied {
                        socket: self.socket.clone(),
                    });
                }
                return Err(ClientError::Api { status, error });
            }
            serde_json::from_slice(&bytes).map_err(|e| self.protocol(format!("response: {e}")))
        })
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.request("GET", path, None)
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| self.protocol(e))?;
        self.request("POST", path, Some(bytes))
    }

    /// Read events after `after`; with `follow`, keep reading until `on` returns false or
    /// the agent goes away.
    pub fn events(
        &self,
        after: u64,
        follow: bool,
        mut on: impl FnMut(Event) -> bool,
    ) -> Result<(), ClientError> {
        self.rt.block_on(async {
            let path = format!("/v1/events?after={after}&follow={follow}");
            let resp = self.send("GET", &path, None).await?;
            if !resp.status().is_success() {
                return Err(self.protocol(format!("status {}", resp.status())));
            }
            let mut body = resp.into_body();
            let mut buf = String::new();
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                let Some(data) = frame.data_ref() else {
                    continue;
                };
                buf.push_str(&String::from_utf8_lossy(data));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let data: String = block
                        .lines()
                        .filter_map(|l| l.strip_prefix("data:"))
                        .map(|d| d.trim_start())
                        .collect::<Vec<_>>()
                        .join("\n");
                    if data.is_empty() {
                        continue; // keep-alive comment
                    }
                    let event: Event = serde_json::from_str(&data)
                        .map_err(|e| self.protocol(format!("event: {e}")))?;
                    if !on(event) {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })
    }
}
