//! The control API server: HTTP/JSON under `/v1` on a unix socket that only the agent's
//! user can open (mode 0600, and each connection's peer checked: the agent's user or root).
//! Request bodies are JSON (`application/json`, at most [`MAX_BODY_BYTES`], no unknown
//! fields). Reads (status, events, keys) are answered here; anything that plans or changes
//! the desired state goes to the agent's loop, one at a time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{DefaultBodyLimit, FromRequest, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::serve::IncomingStream;

use super::openapi::ops;
use base64::Engine;
use cobox_keys::KeyStore;
use cobox_schema::api::{
    self, AdminChangeRequest, AdminSignRequest, ApiError, ConfigRequest,
    Generations as GenerationsDoc, Identity, InviteInfo, InviteInspectRequest, InviteRequest,
    InviteResponse, KeyExportRequest, KeyExportResponse, MAX_BODY_BYTES, MembersRequest,
    PruneRequest, RemoteApplyRequest, RemoteStatusRequest, RestoreRequest, RollbackRequest,
    RotateRequest, SyncRequest, UsageRequest, VersionsRequest, error_code,
};
use futures::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::board::Board;
use super::generations::Generations;
use super::{Call, CallError, CallMsg, Calls};
use crate::keyops;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub board: Board,
    /// Where calls for the loop go.
    pub calls: Calls,
    pub store: KeyStore,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

/// An error answer: the HTTP status and the JSON error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub error: ApiError,
}

/// What a refusal of the loop means on the wire.
impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        use error_code::*;
        let (status, code, message, diagnostics) = match e {
            CallError::Invalid {
                message,
                diagnostics,
            } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                CONFIG_INVALID,
                message,
                diagnostics,
            ),
            CallError::NoSuchGeneration(m) => {
                (StatusCode::NOT_FOUND, NO_SUCH_GENERATION, m, vec![])
            }
            CallError::NoSuchSpace(m) => (StatusCode::NOT_FOUND, NO_SUCH_SPACE, m, vec![]),
            CallError::StillDeclared(m) => (StatusCode::CONFLICT, STILL_DECLARED, m, vec![]),
            CallError::BadRequest(m) => (StatusCode::BAD_REQUEST, BAD_REQUEST, m, vec![]),
            CallError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL, m, vec![]),
        };
        let mut f = failure(status, code, message);
        f.error.diagnostics = diagnostics;
        f
    }
}

/// An error response.
pub fn failure(status: StatusCode, code: &str, message: impl Into<String>) -> Failure {
    Failure {
        status: status.as_u16(),
        error: ApiError {
            code: code.into(),
            message: message.into(),
            diagnostics: vec![],
        },
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.error)).into_response()
    }
}

type Reply = Result<Response, Failure>;

fn json<T: serde::Serialize>(v: &T) -> Reply {
    Ok(axum::Json(v).into_response())
}

/// A JSON request body: sent as `application/json`, at most [`MAX_BODY_BYTES`], every field
/// known to the request type; `None` when the body is empty.
struct JsonBody<T>(Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Failure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Failure> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            });
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                failure(
                    status,
                    error_code::TOO_LARGE,
                    format!("request body is larger than {MAX_BODY_BYTES} bytes"),
                )
            } else {
                failure(
                    status,
                    error_code::BAD_REQUEST,
                    format!("request body: {}", e.body_text()),
                )
            }
        })?;
        if bytes.is_empty() {
            return Ok(JsonBody(None));
        }
        if !json {
            return Err(failure(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                error_code::UNSUPPORTED_MEDIA_TYPE,
                "request body must be sent as `Content-Type: application/json`",
            ));
        }
        body(&bytes).map(|v| JsonBody(Some(v)))
    }
}

impl<T> JsonBody<T> {
    /// The body, which this request must have.
    fn required(self) -> Result<T, Failure> {
        self.0.ok_or_else(|| {
            failure(
                StatusCode::BAD_REQUEST,
                error_code::BAD_REQUEST,
                "request body: empty; this request takes a JSON object",
            )
        })
    }
}

/// Who is on the other end of a connection to the socket.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    uid: Option<u32>,
}

impl Connected<IncomingStream<'_, tokio::net::UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::UnixListener>) -> Peer {
        Peer {
            uid: stream.io().peer_cred().ok().map(|c| c.uid()),
        }
    }
}

/// Only the agent's own user and root may use the API, whatever the socket's mode became.
async fn only_owner(ConnectInfo(peer): ConnectInfo<Peer>, req: Request, next: Next) -> Response {
    let me = rustix::process::geteuid().as_raw();
    match peer.uid {
        Some(uid) if uid == me || uid == 0 => next.run(req).await,
        _ => failure(
            StatusCode::FORBIDDEN,
            error_code::PERMISSION_DENIED,
            "permission denied: only the agent's own user (or root) may use the control API",
        )
        .into_response(),
    }
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Failure> {
    serde_json::from_slice(bytes).map_err(|e| {
        failure(
            StatusCode::BAD_REQUEST,
            error_code::BAD_REQUEST,
            format!("request body: {e}"),
        )
    })
}

/// One endpoint: its method and path, its handler, and its operation in the OpenAPI
/// document. The router and the document are both built from [`ROUTES`].
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    handler: fn() -> MethodRouter<ApiState>,
    pub doc: fn(&mut schemars::SchemaGenerator) -> serde_json::Value,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

macro_rules! route {
    ($method:ident, $path:literal, $handler:ident) => {
        Route {
            method: stringify!($method),
            path: $path,
            handler: || $method($handler),
            doc: ops::$handler,
        }
    };
}

/// Every endpoint of the API.
pub const ROUTES: &[Route] = &[
    route!(get, "/v1/status", status),
    route!(get, "/v1/identity", identity),
    route!(get, "/v1/generations", generations),
    route!(post, "/v1/plan", plan),
    route!(post, "/v1/apply", apply),
    route!(post, "/v1/rollback", rollback),
    route!(get, "/v1/prune", prune_candidates),
    route!(post, "/v1/prune", prune),
    route!(post, "/v1/sync", sync),
    route!(post, "/v1/files/versions", versions),
    route!(post, "/v1/files/restore", restore),
    route!(post, "/v1/spaces/usage", usage),
    route!(post, "/v1/spaces/members", members),
    route!(post, "/v1/spaces/rotate", rotate),
    route!(post, "/v1/remote/apply", remote_apply),
    route!(post, "/v1/remote/status", remote_status),
    route!(post, "/v1/admins/change", admins_change),
    route!(post, "/v1/admins/sign", admins_sign),
    route!(post, "/v1/admins/reset", admins_reset),
    route!(post, "/v1/invites", invite_create),
    route!(post, "/v1/invites/inspect", invite_inspect),
    route!(post, "/v1/keys/export", keys_export),
    route!(get, "/v1/events", events),
    route!(get, "/v1/openapi.json", openapi),
];

/// The routes.
pub fn router(state: ApiState) -> Router {
    let mut by_path: std::collections::BTreeMap<&str, MethodRouter<ApiState>> =
        std::collections::BTreeMap::new();
    for r in ROUTES {
        let handler = (r.handler)();
        let merged = match by_path.remove(r.path) {
            Some(other) => other.merge(handler),
            None => handler,
        };
        by_path.insert(r.path, merged);
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> Failure {
    failure(
        StatusCode::NOT_FOUND,
        error_code::NOT_FOUND,
        format!("no endpoint {}", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Failure {
    failure(
        StatusCode::METHOD_NOT_ALLOWED,
        error_code::METHOD_NOT_ALLOWED,
        format!("endpoint {} does not take {method}", uri.path()),
    )
}

async fn status(State(s): State<ApiState>) -> Reply {
    json(&s.board.status())
}

/// Run blocking key-store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_code::INTERNAL,
            format!("request task: {e}"),
        )
    })?
}

async fn identity(State(s): State<ApiState>) -> Reply {
    json(&identity_doc(&s).await?)
}

/// This device's identity, as `GET /v1/identity` answers it.
pub async fn identity_doc(s: &ApiState) -> Result<Identity, Failure> {
    let store = s.store.clone();
    let id = blocking(move || {
        store.identity().map_err(|e| {
            failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                error_code::INTERNAL,
                e.to_string(),
            )
        })
    })
    .await?;
    match id {
        Some(id) => Ok(Identity {
            public_key: id.public.to_string(),
        }),
        None => Err(failure(
            StatusCode::NOT_FOUND,
            error_code::NO_IDENTITY,
            "this device has no identity yet",
        )),
    }
}

async fn generations(State(s): State<ApiState>) -> Reply {
    json(&generations_doc(&s).await?)
}

/// The generations, newest first, as `GET /v1/generations` answers them.
pub async fn generations_doc(s: &ApiState) -> Result<GenerationsDoc, Failure> {
    let dir = s.store.data_dir().to_path_buf();
    let current = s.board.status().generation;
    let mut list = blocking(move || {
        Generations::new(&dir).list().map_err(|e| {
            failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                error_code::INTERNAL,
                e.to_string(),
            )
        })
    })
    .await?;
    list.reverse();
    Ok(GenerationsDoc {
        current,
        generations: list.into_iter().map(|g| g.info).collect(),
    })
}

/// The text of the running generation.
pub async fn running_text(s: &ApiState) -> Result<String, Failure> {
    let dir = s.store.data_dir().to_path_buf();
    let current = s.board.status().generation;
    blocking(move || {
        Generations::new(&dir)
            .get(current)
            .map(|g| g.text)
            .map_err(|e| {
                failure(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    error_code::INTERNAL,
                    e.to_string(),
                )
            })
    })
    .await
}

/// Hand a call to the loop and wait for its answer.
async fn call(s: &ApiState, call: Call) -> Reply {
    let value = call_value(s, call).await?;
    Ok(axum::Json(value).into_response())
}

/// Hand a call to the loop and wait for its answer, typed as the API's answer to it.
pub async fn call_as<T: DeserializeOwned>(s: &ApiState, c: Call) -> Result<T, Failure> {
    let value = call_value(s, c).await?;
    serde_json::from_value(value).map_err(|e| {
        failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_code::INTERNAL,
            format!("answer of the agent's loop: {e}"),
        )
    })
}

/// Hand a call to the loop and wait for its answer, the JSON the API sends.
pub async fn call_value(s: &ApiState, call: Call) -> Result<serde_json::Value, Failure> {
    let (reply, rx) = tokio::sync::oneshot::channel();
    let stopping = || {
        failure(
            StatusCode::SERVICE_UNAVAILABLE,
            error_code::AGENT_STOPPING,
            "the agent is stopping",
        )
    };
    if !(s.calls)(CallMsg { call, reply }) {
        return Err(stopping());
    }
    Ok(rx.await.map_err(|_| stopping())??)
}

async fn plan(State(s): State<ApiState>, req: JsonBody<ConfigRequest>) -> Reply {
    call(&s, Call::Plan(req.required()?)).await
}

async fn apply(State(s): State<ApiState>, req: JsonBody<ConfigRequest>) -> Reply {
    call(&s, Call::Apply(req.required()?)).await
}

async fn rollback(State(s): State<ApiState>, req: JsonBody<RollbackRequest>) -> Reply {
    let req = req.0.unwrap_or(RollbackRequest {
        generation: None,
        dry_run: false,
    });
    call(&s, Call::Rollback(req)).await
}

async fn prune_candidates(State(s): State<ApiState>) -> Reply {
    call(&s, Call::PruneCandidates).await
}

async fn prune(State(s): State<ApiState>, req: JsonBody<PruneRequest>) -> Reply {
    call(&s, Call::Prune(req.required()?)).await
}

async fn sync(State(s): State<ApiState>, req: JsonBody<SyncRequest>) -> Reply {
    call(&s, Call::Sync(req.required()?)).await
}

async fn versions(State(s): State<ApiState>, req: JsonBody<VersionsRequest>) -> Reply {
    call(&s, Call::Versions(req.required()?)).await
}

async fn restore(State(s): State<ApiState>, req: JsonBody<RestoreRequest>) -> Reply {
    call(&s, Call::Restore(req.required()?)).await
}

async fn usage(State(s): State<ApiState>, req: JsonBody<UsageRequest>) -> Reply {
    call(&s, Call::Usage(req.required()?)).await
}

async fn members(State(s): State<ApiState>, req: JsonBody<MembersRequest>) -> Reply {
    call(&s, Call::Members(req.required()?)).await
}

async fn rotate(State(s): State<ApiState>, req: JsonBody<RotateRequest>) -> Reply {
    call(&s, Call::Rotate(req.required()?)).await
}

async fn remote_apply(State(s): State<ApiState>, req: JsonBody<RemoteApplyRequest>) -> Reply {
    call(&s, Call::RemoteApply(req.required()?)).await
}

async fn remote_status(State(s): State<ApiState>, req: JsonBody<RemoteStatusRequest>) -> Reply {
    call(&s, Call::RemoteStatus(req.required()?)).await
}

async fn admins_change(State(s): State<ApiState>, req: JsonBody<AdminChangeRequest>) -> Reply {
    call(&s, Call::AdminsChange(req.required()?)).await
}

async fn admins_sign(State(s): State<ApiState>, req: JsonBody<AdminSignRequest>) -> Reply {
    call(&s, Call::AdminsSign(req.required()?)).await
}

async fn admins_reset(State(s): State<ApiState>) -> Reply {
    call(&s, Call::AdminsReset).await
}

fn bad(e: anyhow::Error, code: &str) -> Failure {
    failure(StatusCode::UNPROCESSABLE_ENTITY, code, format!("{e:#}"))
}

async fn invite_create(State(s): State<ApiState>, req: JsonBody<InviteRequest>) -> Reply {
    let code = invite_code(&s, req.required()?).await?;
    json(&InviteResponse { code })
}

/// A new invite code, as `POST /v1/invites` creates it (the invitee is admitted in the
/// space's roster).
pub async fn invite_code(s: &ApiState, req: InviteRequest) -> Result<String, Failure> {
    let store = s.store.clone();
    blocking(move || {
        keyops::create_invite(
            &store,
            &req.space,
            &req.invitee,
            req.role,
            req.expires.as_deref(),
        )
        .map_err(|e| bad(e, error_code::BAD_REQUEST))
    })
    .await
}

async fn invite_inspect(State(s): State<ApiState>, req: JsonBody<InviteInspectRequest>) -> Reply {
    json(&invite_info(&s, req.required()?).await?)
}

/// What an invite code grants this device, as `POST /v1/invites/inspect` answers it.
pub async fn invite_info(s: &ApiState, req: InviteInspectRequest) -> Result<InviteInfo, Failure> {
    let store = s.store.clone();
    blocking(move || {
        keyops::inspect_invite(&store, &req.code).map_err(|e| bad(e, error_code::INVALID_INVITE))
    })
    .await
}

async fn keys_export(State(s): State<ApiState>, req: JsonBody<KeyExportRequest>) -> Reply {
    let (keys, content) = key_sheet(&s, req.required()?).await?;
    json(&KeyExportResponse {
        keys,
        content_base64: base64::engine::general_purpose::STANDARD.encode(&*content),
    })
}

/// A paper-key sheet and how many keys it holds, as `POST /v1/keys/export` makes it:
/// refused unless the request says `confirm: true`.
pub async fn key_sheet(
    s: &ApiState,
    req: KeyExportRequest,
) -> Result<(usize, zeroize::Zeroizing<Vec<u8>>), Failure> {
    if !req.confirm {
        return Err(failure(
            StatusCode::BAD_REQUEST,
            error_code::NOT_CONFIRMED,
            "key export hands out secret keys: send `confirm: true` to ask for it explicitly",
        ));
    }
    let store = s.store.clone();
    let (keys, content) = blocking(move || {
        let keys = keyops::paper_keys(&store, req.space.as_deref(), req.all)
            .map_err(|e| bad(e, error_code::NO_SUCH_SPACE))?;
        Ok((keys.len(), keyops::sheet_bytes(&keys, req.format)))
    })
    .await?;
    tracing::warn!(
        keys,
        "paper keys were exported through the control API or the web dashboard"
    );
    Ok((keys, content))
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    /// Only events with a greater id.
    #[serde(default)]
    after: u64,
    /// Keep the stream open for new events.
    #[serde(default)]
    follow: bool,
}

impl EventsQuery {
    /// The events after `after` and the ones to come.
    pub(crate) fn follow_after(after: u64) -> EventsQuery {
        EventsQuery {
            after,
            follow: true,
        }
    }
}

/// `GET /v1/events`: the events after `after` as server-sent events, and with `follow` the
/// ones to come (the web dashboard streams the same).
pub(crate) async fn events(
    State(s): State<ApiState>,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let Query(q) = q.map_err(|e| {
        failure(
            StatusCode::BAD_REQUEST,
            error_code::BAD_REQUEST,
            format!("query: {e}"),
        )
    })?;
    let (past, rx) = s.board.events_after(q.after);
    let last = past.last().map_or(q.after, |e| e.id);
    let to_sse = |e: &api::Event| {
        SseEvent::default()
            .id(e.id.to_string())
            .data(serde_json::to_string(e).expect("events serialize"))
    };
    let backlog = futures::stream::iter(past.iter().map(to_sse).collect::<Vec<_>>());
    let live = futures::stream::unfold((rx, last), move |(mut rx, last)| async move {
        loop {
            match rx.recv().await {
                Ok(e) if e.id <= last => continue,
                Ok(e) => {
                    let id = e.id;
                    return Some((e, (rx, id)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .map(move |e| to_sse(&e));
    let stream = if q.follow {
        backlog.chain(live).boxed()
    } else {
        backlog.boxed()
    };
    Ok(Sse::new(stream.map(Ok::<_, std::convert::Infallible>))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

async fn openapi() -> Reply {
    json(&super::openapi::document())
}

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another agent answers on control socket {0}")]
    InUse(PathBuf),
    #[error("control socket {path} refused: {why}")]
    Refused { path: PathBuf, why: String },
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Bind the socket at `path` with mode 0600 from the start (bound under a temporary name,
/// restricted, then renamed into place). A socket left by a dead agent is replaced; a live
/// one is an error, and so is anything else at `path` (a file is never replaced) or a path
/// in the system's directories.
pub fn bind(path: &Path) -> Result<tokio::net::UnixListener, BindError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let io = |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    };
    let refused = |why: String| BindError::Refused {
        path: path.to_path_buf(),
        why,
    };
    if let Some(why) = cobox_schema::places::refusal(path, cobox_schema::places::Use::Socket, None)
    {
        return Err(refused(why));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(BindError::InUse(path.to_path_buf()));
    }
    if let Ok(m) = std::fs::symlink_metadata(path)
        && !m.file_type().is_socket()
    {
        return Err(refused(
            "something that is not a socket is there, and a file is never replaced".into(),
        ));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".coboxd-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = std::os::unix::net::UnixListener::bind(&tmp).map_err(io)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    listener.set_nonblocking(true).map_err(io)?;
    tokio::net::UnixListener::from_std(listener).map_err(io)
}

/// The running server: serves until dropped.
#[derive(Debug)]
pub struct Server {
    pub path: PathBuf,
    /// The socket's device and inode: only that file is removed at the end.
    file: Option<(u64, u64)>,
    task: tokio::task::JoinHandle<()>,
}

/// The device and inode of the socket at `path` (`None` for anything else).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_socket())
        .map(|m| (m.dev(), m.ino()))
}

impl Server {
    /// Bind `path` and serve on `rt`.
    pub fn start(
        rt: &tokio::runtime::Handle,
        path: &Path,
        state: ApiState,
    ) -> Result<Server, BindError> {
        let listener = {
            let _guard = rt.enter();
            bind(path)?
        };
        let app = router(state)
            .layer(axum::middleware::from_fn(only_owner))
            .into_make_service_with_connect_info::<Peer>();
        let task = rt.spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "control API stopped");
            }
        });
        tracing::info!(socket = %path.display(), "control API listening");
        Ok(Server {
            path: path.to_path_buf(),
            file: file_id(path),
            task,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        // Only our own socket: whatever replaced it since stays.
        if self.file.is_some() && file_id(&self.path) == self.file {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_never_replaces_a_file_and_removes_only_itself() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("precious.txt");
        std::fs::write(&victim, "keep me").unwrap();
        let _guard = rt.enter();
        let e = bind(&victim).unwrap_err();
        assert!(matches!(e, BindError::Refused { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        let dir = tmp.path().join("a-directory");
        std::fs::create_dir(&dir).unwrap();
        assert!(matches!(bind(&dir), Err(BindError::Refused { .. })));
        assert!(matches!(
            bind(Path::new("/etc/coboxd.sock")),
            Err(BindError::Refused { .. })
        ));
        assert!(!Path::new("/etc/coboxd.sock").exists());
        // A socket replaced by a file while the agent ran: the file stays at the end.
        let sock = tmp.path().join("coboxd.sock");
        let listener = bind(&sock).unwrap();
        let server = Server {
            path: sock.clone(),
            file: file_id(&sock),
            task: rt.spawn(async move { drop(listener) }),
        };
        std::fs::remove_file(&sock).unwrap();
        std::fs::write(&sock, "someone else's").unwrap();
        drop(server);
        assert_eq!(std::fs::read_to_string(&sock).unwrap(), "someone else's");
    }
}
