//! The opt-in web dashboard (`[api] web`): server-rendered pages over plain HTTP on their
//! own TCP listener, built on the same board and the same calls to the agent's loop as the
//! control API on the unix socket (`control::server`), so a page shows and changes exactly
//! what `coboxctl` would. The checks (`guard.rs`, `auth.rs`) and the rendering (`html.rs`,
//! `pages.rs`) are pure; `routes.rs` wires them to requests; `assets.rs` embeds the one
//! stylesheet and the one script.

pub mod assets;
pub mod auth;
pub mod guard;
pub mod html;
pub mod lag;
pub mod pages;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::control::server::ApiState;

/// The running dashboard: serves until dropped.
#[derive(Debug)]
pub struct WebServer {
    /// Where it listens (the port resolved).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

/// What the dashboard is started with.
#[derive(Debug, Clone)]
pub struct WebConfig {
    pub addr: SocketAddr,
    /// The device's name, shown on every page.
    pub device: String,
    pub login: auth::Login,
}

impl WebServer {
    /// Listen on `config.addr` and serve the dashboard on `rt`, answering from `api`.
    pub fn start(
        rt: &tokio::runtime::Handle,
        config: WebConfig,
        api: ApiState,
    ) -> std::io::Result<WebServer> {
        let listener = {
            let _guard = rt.enter();
            let std = std::net::TcpListener::bind(config.addr)?;
            std.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(std)?
        };
        let bound = listener.local_addr()?;
        let shared = routes::Shared {
            listen: bound,
            device: config.device,
            secret: guard::Secret::random(),
            sessions: auth::Sessions::default(),
            login: config.login,
        };
        let app = routes::router(routes::WebState {
            api,
            shared: Arc::new(shared),
        })
        .into_make_service_with_connect_info::<routes::Conn>();
        let task = rt.spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "web dashboard stopped");
            }
        });
        tracing::info!(address = %bound, "serving the web dashboard");
        Ok(WebServer { addr: bound, task })
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
