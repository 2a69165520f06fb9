//! The dashboard's routes: every request passes the guard (the `Host` check, the login
//! off loopback, the security headers), every POST its CSRF check, and each page is read
//! from the status board or asked of the agent's loop through the control API's own
//! functions (`control::server`), never computed a second way.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use cobox_schema::api::{
    ApplyResponse, ConfigRequest, InviteInspectRequest, InviteRequest, InviteRole,
    KeyExportRequest, MembersRequest, MembersResponse, PlanResponse, ResourceKind, RollbackRequest,
    SheetFormat, ToFetch,
};
use serde::Deserialize;

use super::auth::{Login, Sessions};
use super::guard::{self, Secret};
use super::html::{Frame, page};
use super::{assets, auth, pages};
use crate::control::Call;
use crate::control::server::{self, ApiState, EventsQuery, Failure};

/// How large a form may be: a config at its largest, percent-encoded.
const MAX_FORM_BYTES: usize = 3 * cobox_schema::source::MAX_CONFIG_BYTES + 4096;

/// What every request of one dashboard shares.
#[derive(Debug)]
pub struct Shared {
    /// Where it listens.
    pub listen: SocketAddr,
    pub device: String,
    pub secret: Secret,
    pub sessions: Sessions,
    pub login: Login,
}

/// The handlers' state: the control API's, and the dashboard's own.
#[derive(Debug, Clone)]
pub struct WebState {
    pub api: ApiState,
    pub shared: Arc<Shared>,
}

/// Both ends of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Conn {
        let remote = *stream.remote_addr();
        Conn {
            remote,
            local: stream.io().local_addr().unwrap_or(remote),
        }
    }
}

/// Who is asking, as the guard found.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The open session of the request's cookie.
    pub session: Option<String>,
}

/// The routes, behind the guard.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/space/{name}", get(space))
        .route("/seed/{name}", get(seed))
        .route("/events", get(events))
        .route("/peers", get(peers))
        .route("/config", get(config))
        .route("/config/apply", post(apply))
        .route("/config/rollback", post(rollback))
        .route("/invites", get(invites).post(invite_create))
        .route("/invites/open", post(invite_open))
        .route("/identity", get(identity))
        .route("/identity/paper-key", post(paper_key))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/live", get(live))
        .route("/assets/{name}", get(asset))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Headers of every answer: the content security policy, no sniffing, no framing, no
/// referrer, no caching.
fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(guard::CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The guard: a foreign `Host` is refused (403); off loopback, a request without an open
/// session may only see the login page and the assets.
async fn guard(
    State(st): State<WebState>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    mut req: Request,
    next: Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let mut res = if !guard::host_allowed(host, st.shared.listen, conn.local) {
        tracing::warn!(host = ?host, peer = %conn.remote, "web dashboard refused a request for another host");
        plain(
            StatusCode::FORBIDDEN,
            "forbidden: this dashboard answers only to its own address or localhost",
        )
    } else {
        let cookies = req
            .headers()
            .get(header::COOKIE)
            .and_then(|h| h.to_str().ok());
        let session = guard::cookie(cookies, guard::SESSION_COOKIE)
            .filter(|id| st.shared.sessions.is_open(id))
            .map(str::to_string);
        let path = req.uri().path();
        let open = path == "/login" || path.starts_with("/assets/");
        if conn.remote.ip().is_loopback() || session.is_some() || open {
            req.extensions_mut().insert(Viewer { session });
            next.run(req).await
        } else if req.method() == axum::http::Method::GET {
            Redirect::to("/login").into_response()
        } else {
            plain(StatusCode::FORBIDDEN, "forbidden: log in first")
        }
    };
    secure(res.headers_mut());
    res
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

impl WebState {
    fn csrf(&self, v: &Viewer) -> String {
        self.shared.secret.csrf(v.session.as_deref())
    }

    /// A whole page around `body`.
    fn page(&self, v: &Viewer, title: &str, current: &str, live: bool, body: &str) -> Html<String> {
        let csrf = self.csrf(v);
        Html(page(
            Frame {
                title,
                current,
                device: &self.shared.device,
                logout_csrf: v.session.as_ref().map(|_| csrf.as_str()),
                live,
            },
            body,
        ))
    }

    /// An error page.
    fn error(&self, v: &Viewer, status: StatusCode, body: &str) -> Response {
        (status, self.page(v, "Refused", "", false, body)).into_response()
    }

    /// A refusal of the loop or the API, as a page with its diagnostics.
    fn failure(&self, v: &Viewer, f: Failure) -> Response {
        let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.error(
            v,
            status,
            &pages::refused(
                &format!("{}: {}", f.error.code, f.error.message),
                &f.error.diagnostics,
            ),
        )
    }

    /// Whether a form's CSRF token is this viewer's; a refusal page when not.
    fn check_csrf(&self, v: &Viewer, given: Option<&str>) -> Result<(), Box<Response>> {
        if self.shared.secret.csrf_ok(v.session.as_deref(), given) {
            Ok(())
        } else {
            tracing::warn!("web dashboard refused a form without a valid CSRF token");
            Err(Box::new(self.error(
                v,
                StatusCode::FORBIDDEN,
                "<p class=\"notice red\" role=\"alert\">This form did not carry a valid token: nothing was changed. Reload the page and try again.</p>",
            )))
        }
    }
}

type Viewed = axum::Extension<Viewer>;

async fn overview(State(st): State<WebState>, axum::Extension(v): Viewed) -> Response {
    let status = st.api.board.status();
    let body = pages::overview(&status, &st.shared.device);
    st.page(&v, "Overview", "/", true, &body).into_response()
}

async fn space(st: State<WebState>, v: Viewed, Path(name): Path<String>) -> Response {
    resource(st, v, ResourceKind::Space, name).await
}

async fn seed(st: State<WebState>, v: Viewed, Path(name): Path<String>) -> Response {
    resource(st, v, ResourceKind::Seed, name).await
}

/// A space's or seed's page; a space's members as `coboxctl members` has them.
async fn resource(
    State(st): State<WebState>,
    axum::Extension(v): Viewed,
    kind: ResourceKind,
    name: String,
) -> Response {
    let status = st.api.board.status();
    let Some(r) = status
        .resources
        .iter()
        .find(|r| r.kind == kind && r.name == name)
    else {
        return st.error(
            &v,
            StatusCode::NOT_FOUND,
            &format!(
                "<p>This device declares no {kind} {}.</p>",
                super::html::escape(&name)
            ),
        );
    };
    let (members, sections) = if kind == ResourceKind::Space {
        let members = server::call_as::<MembersResponse>(
            &st.api,
            Call::Members(MembersRequest {
                space: name.clone(),
            }),
        )
        .await
        .ok();
        let copies =
            server::call_as::<Vec<(String, String)>>(&st.api, Call::Conflicts(name.clone()))
                .await
                .ok();
        let waiting = server::call_as::<ToFetch>(&st.api, Call::ToFetch(name.clone()))
            .await
            .ok();
        let sections = pages::files_to_fetch(waiting.as_ref())
            + &super::lag::chart(&st.api.board.lag(kind, &name))
            + &pages::conflicts(copies.as_deref(), crate::control::CONFLICTS_LISTED);
        (members, sections)
    } else {
        (None, super::lag::chart(&st.api.board.lag(kind, &name)))
    };
    let body = pages::resource(r, members.as_ref(), &sections);
    st.page(&v, &format!("{kind} {name}"), "/", true, &body)
        .into_response()
}

/// How many events the events page shows.
const EVENTS_SHOWN: usize = 200;

/// `GET /events?kind=&q=`: the last events passing the filter.
async fn events(
    State(st): State<WebState>,
    axum::Extension(v): Viewed,
    filter: Result<Query<pages::EventFilter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let filter = filter.map(|Query(f)| f).unwrap_or_default();
    let (all, _) = st.api.board.events_after(0);
    let mut kinds: Vec<String> = all.iter().map(|e| pages::kind_name(e.kind)).collect();
    kinds.sort();
    kinds.dedup();
    let shown: Vec<&cobox_schema::api::Event> = all.iter().filter(|e| filter.matches(e)).collect();
    let from = shown.len().saturating_sub(EVENTS_SHOWN);
    let body = pages::events(&shown[from..], &filter, &kinds);
    st.page(&v, "Events", "/events", true, &body)
        .into_response()
}

async fn peers(State(st): State<WebState>, axum::Extension(v): Viewed) -> Response {
    let body = pages::peers(&st.api.board.status().network);
    st.page(&v, "Peers", "/peers", true, &body).into_response()
}

async fn config(State(st): State<WebState>, axum::Extension(v): Viewed) -> Response {
    let (text, gens) = match (
        server::running_text(&st.api).await,
        server::generations_doc(&st.api).await,
    ) {
        (Ok(t), Ok(g)) => (t, g),
        (Err(f), _) | (_, Err(f)) => return st.failure(&v, f),
    };
    let body = pages::config(&text, &gens, &st.csrf(&v));
    st.page(&v, "Config", "/config", false, &body)
        .into_response()
}

/// The fields of the dashboard's forms; which ones a form has depends on the form.
#[derive(Debug, Default, Deserialize)]
pub struct Fields {
    csrf: Option<String>,
    config: Option<String>,
    confirm: Option<String>,
    generation: Option<String>,
    secret: Option<String>,
    space: Option<String>,
    invitee: Option<String>,
    role: Option<String>,
    expires: Option<String>,
    code: Option<String>,
}

impl Fields {
    /// The invite forms' fields as they were filled.
    fn invite_form(&self) -> pages::InviteForm {
        let text = |f: &Option<String>| f.clone().unwrap_or_default();
        pages::InviteForm {
            space: text(&self.space),
            invitee: text(&self.invitee),
            role: text(&self.role),
            expires: text(&self.expires),
            code: text(&self.code),
        }
    }
}

/// A posted form that carried the viewer's CSRF token: a handler taking one runs only for
/// such a form. Any other is answered before it: unreadable (400) or without the token
/// (403).
#[derive(Debug)]
pub struct Checked(Fields);

impl FromRequest<WebState> for Checked {
    type Rejection = Response;

    async fn from_request(req: Request, st: &WebState) -> Result<Checked, Response> {
        // The guard gives every request its viewer; one without is nobody's session.
        let v = req
            .extensions()
            .get::<Viewer>()
            .cloned()
            .unwrap_or(Viewer { session: None });
        let Form(fields) =
            Form::<Fields>::from_request(req, st)
                .await
                .map_err(|e: FormRejection| {
                    st.error(
                    &v,
                    e.status(),
                    &format!(
                        "<p class=\"notice red\" role=\"alert\">The form could not be read: {}</p>",
                        super::html::escape(&e.body_text())
                    ),
                )
                })?;
        st.check_csrf(&v, fields.csrf.as_deref()).map_err(|r| *r)?;
        Ok(Checked(fields))
    }
}

fn confirmed(f: &Fields) -> bool {
    f.confirm.as_deref() == Some("yes")
}

/// `POST /config/apply`: without `confirm=yes` the plan of the pasted config (the page
/// asks for the confirmation), with it the apply, both the calls `coboxctl diff` and
/// `coboxctl apply` make.
async fn apply(
    State(st): State<WebState>,
    axum::Extension(v): Viewed,
    Checked(f): Checked,
) -> Response {
    // Browsers send a textarea's line ends as CRLF.
    let text = f.config.clone().unwrap_or_default().replace("\r\n", "\n");
    let req = ConfigRequest {
        config: text.clone(),
        name: Some("web".into()),
    };
    let csrf = st.csrf(&v);
    if !confirmed(&f) {
        return match server::call_as::<PlanResponse>(&st.api, Call::Plan(req)).await {
            Ok(p) => st
                .page(
                    &v,
                    "Apply this config?",
                    "/config",
                    false,
                    &pages::confirm_apply(&p, &text, &csrf),
                )
                .into_response(),
            Err(e) => st.failure(&v, e),
        };
    }
    match server::call_as::<ApplyResponse>(&st.api, Call::Apply(req)).await {
        Ok(a) => st
            .page(&v, "Applied", "/config", false, &pages::applied(&a))
            .into_response(),
        Err(e) => st.failure(&v, e),
    }
}

/// `POST /config/rollback`: without `confirm=yes` what the rollback would change, with it
/// the rollback, the calls of `coboxctl rollback`.
async fn rollback(
    State(st): State<WebState>,
    axum::Extension(v): Viewed,
    Checked(f): Checked,
) -> Response {
    let Some(generation) = f.generation.as_deref().and_then(|g| g.parse::<u64>().ok()) else {
        return st.error(
            &v,
            StatusCode::BAD_REQUEST,
            "<p class=\"notice red\" role=\"alert\">The form named no generation.</p>",
        );
    };
    let csrf = st.csrf(&v);
    let req = |dry_run| RollbackRequest {
        generation: Some(generation),
        dry_run,
    };
    if !confirmed(&f) {
        return match server::call_as::<PlanResponse>(&st.api, Call::Rollback(req(true))).await {
            Ok(p) => st
                .page(
                    &v,
                    &format!("Roll back to generation {generation}?"),
                    "/config",
                    false,
                    &pages::confirm_rollback(&p, generation, &csrf),
                )
                .into_response(),
            Err(e) => st.failure(&v, e),
        };
    }
    match server::call_as::<ApplyResponse>(&st.api, Call::Rollback(req(false))).await {
        Ok(a) => st
            .page(&v, "Rolled back", "/config", false, &pages::applied(&a))
            .into_response(),
        Err(e) => st.failure(&v, e),
    }
}

async fn identity(State(st): State<WebState>, axum::Extension(v): Viewed) -> Response {
    identity_page(&st, &v, false).await
}

/// The identity page; `refused`: a paper-key form came without its confirmation (400).
async fn identity_page(st: &WebState, v: &Viewer, refused: bool) -> Response {
    match server::identity_doc(&st.api).await {
        Ok(id) => {
            let qr = pages::qr_svg(&id.public_key, "QR code of the public key");
            let body = pages::identity(&id.public_key, Some(&qr), &st.csrf(v), refused);
            let status = if refused {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            (status, st.page(v, "Identity", "/identity", false, &body)).into_response()
        }
        Err(f) => st.failure(v, f),
    }
}

/// `POST /identity/paper-key`: with `confirm=yes` the device's paper key as
/// `coboxctl keys export` prints it (the control API's export), never cached; without it,
/// the identity page again and no key.
async fn paper_key(
    State(st): State<WebState>,
    axum::Extension(v): Viewed,
    Checked(f): Checked,
) -> Response {
    if !confirmed(&f) {
        return identity_page(&st, &v, true).await;
    }
    let req = KeyExportRequest {
        space: None,
        all: false,
        format: SheetFormat::Text,
        confirm: true,
    };
    match server::key_sheet(&st.api, req).await {
        Ok((_, sheet)) => {
            let body = pages::paper_key(&String::from_utf8_lossy(&sheet));
            (
                [(header::CACHE_CONTROL, "no-store")],
                st.page(&v, "Paper key", "/identity", false, &body),
            )
                .into_response()
        }
        Err(e) => st.failure(&v, e),
    }
}

/// The names of the spaces open on this device.
fn open_spaces(st: &WebState) -> Vec<String> {
    st.api
        .board
        .status()
        .resources
        .into_iter()
        .filter(|r| r.kind == ResourceKind::Space)
        .map(|r| r.name)
        .collect()
}

/// The invites page with `form` filled in and `outcome` shown, answered with `status`.
fn invites_page(
    st: &WebState,
    v: &Viewer,
    status: StatusCode,
    form: &pages::InviteForm,
    outcome: pages::InviteOutcome<'_>,
) -> Response {
    let body = pages::invites(&open_spaces(st), form, outcome, &st.csrf(v));
    (status, st.page(v, "Invites", "/invites", false, &body)).into_response()
}

async fn invites(State(st): State<WebState>, axum::Extension(v): Viewed) -> Response {
    let form = pages::InviteForm::default();
    invites_page(
        &st,
        &v,
        StatusCode::OK,
        &form,
        pages::InviteOutcome::Nothing,
    )
}

/// An invite role as the form names it.
fn invite_role(text: &str) -> Result<InviteRole, String> {
    match text.trim() {
        "member" => Ok(InviteRole::Member),
        "seeder" => Ok(InviteRole::Seeder),
        other => Err(format!(
            "invite role {other:?} is neither member nor seeder"
        )),
    }
}

/// `POST /invites`: an invite to the chosen space for the pasted identity, made by the
/// control API's call (`coboxctl invite create`).
async fn invite_create(
    State(st): State<WebState>,
    axum::Extension(v): Viewed,
    Checked(f): Checked,
) -> Response {
    let filled = f.invite_form();
    let role = match invite_role(&filled.role) {
        Ok(r) => r,
        Err(m) => {
            let outcome = pages::InviteOutcome::CreateRefused(&m);
            return invites_page(&st, &v, StatusCode::BAD_REQUEST, &filled, outcome);
        }
    };
    let expires = filled.expires.trim();
    let req = InviteRequest {
        space: filled.space.clone(),
        invitee: filled.invitee.trim().to_string(),
        role,
        expires: (!expires.is_empty()).then(|| expires.to_string()),
    };
    match server::invite_code(&st.api, req).await {
        Ok(code) => {
            let qr = pages::qr_svg(&code, "QR code of the invite code");
            let outcome = pages::InviteOutcome::Created {
                code: &code,
                qr: &qr,
            };
            let form = pages::InviteForm {
                space: filled.space,
                ..Default::default()
            };
            invites_page(&st, &v, StatusCode::OK, &form, outcome)
        }
        Err(e) => refused_invite(&st, &v, &filled, e, true),
    }
}

/// The invites page saying why the API refused the create form (`create`) or the open
/// form.
fn refused_invite(
    st: &WebState,
    v: &Viewer,
    filled: &pages::InviteForm,
    e: Failure,
    create: bool,
) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    let outcome = if create {
        pages::InviteOutcome::CreateRefused(&e.error.message)
    } else {
        pages::InviteOutcome::OpenRefused(&e.error.message)
    };
    invites_page(st, v, status, filled, outcome)
}

/// `POST /invites/open`: what a pasted code grants this device, by the control API's
/// call (`coboxctl invite open`); nothing is joined.
async fn invite_open(
    State(st): State<WebState>,
    axum::Extension(v): Viewed,
    Checked(f): Checked,
) -> Response {
    let filled = f.invite_form();
    let code = filled.code.trim().to_string();
    match server::invite_info(&st.api, InviteInspectRequest { code: code.clone() }).await {
        Ok(info) => {
            let outcome = pages::InviteOutcome::Opened {
                info: &info,
                code: &code,
                now: crate::keyops::unix_now(),
            };
            invites_page(&st, &v, StatusCode::OK, &filled, outcome)
        }
        Err(e) => refused_invite(&st, &v, &filled, e, false),
    }
}

async fn login_page(State(st): State<WebState>, axum::Extension(v): Viewed) -> Response {
    if v.session.is_some() {
        return Redirect::to("/").into_response();
    }
    let body = pages::login(&st.csrf(&v), false);
    st.page(&v, "Log in", "", false, &body).into_response()
}

/// `POST /login`: the password or token opens a session (a fresh id in an `HttpOnly`,
/// `SameSite=Strict` cookie).
async fn login(
    State(st): State<WebState>,
    axum::Extension(v): Viewed,
    Checked(f): Checked,
) -> Response {
    let secret = f.secret.unwrap_or_default();
    let shared = st.shared.clone();
    let ok = tokio::task::spawn_blocking(move || auth::login_ok(&shared.login, &secret))
        .await
        .unwrap_or(false);
    if !ok {
        tracing::warn!("web dashboard login refused");
        let body = pages::login(&st.csrf(&v), true);
        return (
            StatusCode::UNAUTHORIZED,
            st.page(&v, "Log in", "", false, &body),
        )
            .into_response();
    }
    let id = st.shared.sessions.open();
    (
        [(header::SET_COOKIE, guard::session_cookie(&id))],
        Redirect::to("/"),
    )
        .into_response()
}

async fn logout(State(st): State<WebState>, axum::Extension(v): Viewed, _: Checked) -> Response {
    if let Some(id) = &v.session {
        st.shared.sessions.close(id);
    }
    (
        [(header::SET_COOKIE, guard::cleared_cookie())],
        Redirect::to("/login"),
    )
        .into_response()
}

/// `GET /live`: the events to come, as server-sent events: the control API's stream.
async fn live(State(st): State<WebState>) -> Response {
    let after = st.api.board.last_event_id();
    match server::events(
        State(st.api.clone()),
        Ok(Query(EventsQuery::follow_after(after))),
    )
    .await
    {
        Ok(r) => r,
        Err(f) => f.into_response(),
    }
}

async fn asset(Path(name): Path<String>) -> Response {
    match assets::get(&name) {
        Some((kind, text)) => ([(header::CONTENT_TYPE, kind)], text).into_response(),
        None => plain(StatusCode::NOT_FOUND, "no such asset"),
    }
}

async fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "no such page")
}
