//! The web pages: the guard booth console (`/console`), visitor registration
//! (`/console/visitors`), the passage search (`/passages`), the security office's page
//! (`/office`), sign-in (`/login`) and the language switch (`/lang`), with their CSS/JS embedded
//! in the binary (no CDN, no Node.js).
//!
//! - Pages are rendered on the server (maud: compile-time checked, auto-escaping) in zh-CN by
//!   default or English ([`i18n`]); live parts are pushed as server-sent events carrying
//!   re-rendered HTML, so there is one rendering path for the first paint and every update.
//! - Every state change goes through the JSON API (`/api/v1/…`) by `fetch` with the session's
//!   CSRF token in `X-CSRF-Token`: the API's role table, CSRF check and localized errors apply.
//!   The pages themselves only read.
//! - Every page route has a row in [`PAGES`], enforced by [`enforce`] before the handler runs:
//!   no session → to the sign-in page; wrong role → 403. `tests/web` walks the table.
//!
//! What it never does: change data on a GET, trust a role the table does not grant, or load
//! anything from outside the server.

pub mod access;
pub mod admin;
pub mod alarms;
pub mod assets;
pub mod console;
pub mod duty;
pub mod duty_records;
pub mod evidence;
pub mod layout;
pub mod login;
pub mod names;
pub mod office;
pub mod pass;
pub mod passages;
pub mod shift;
pub mod slip;
pub mod visit_request;
pub mod visitors;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Offset;
use sha2::{Digest, Sha256};

use crate::central::api::auth::{Authed, Role, SESSION_COOKIE};
use crate::central::api::policy::{self, Access, Caller, Refusal};
use crate::central::state::AppState;
use crate::http_cookie::cookie;
use crate::i18n::{self, Lang, lang_of};

use Role::{Admin, Guard, Security};

pub use access::{BOOTH, OFFICE};

/// (route, access) for every page route. GET only: pages never change anything.
pub const PAGES: &[(&str, Access)] = &[
    ("/", Access::SignedIn),
    ("/login", Access::Public),
    ("/lang", Access::Public),
    ("/assets/{file}", Access::Public),
    ("/console", BOOTH),
    ("/console/live", BOOTH),
    ("/console/visitors", BOOTH),
    ("/passages", BOOTH),
    ("/office", OFFICE),
    ("/office/live", OFFICE),
    ("/admin", admin::HOME),
    ("/admin/persons", admin::RECORDS),
    ("/admin/vehicles", admin::RECORDS),
    ("/admin/permits", admin::RECORDS),
    ("/admin/applications", admin::APPLY),
    ("/admin/bookings", admin::BOOKINGS),
    ("/admin/lists", admin::OFFICE),
    ("/admin/gates", admin::OFFICE),
    ("/admin/operators", admin::ADMIN),
    ("/admin/audit", admin::OFFICE),
    ("/admin/import", admin::OFFICE),
    ("/admin/stats", admin::STATS),
    ("/admin/stats/daily", admin::STATS),
    // Issue 20, item 7: the booth's figures and paperwork, the office's duty records.
    ("/console/figures", BOOTH),
    ("/console/shift", BOOTH),
    ("/console/shift/{duty_id}", BOOTH),
    ("/console/visitors/{visit_id}/slip", BOOTH),
    ("/office/duty", OFFICE),
    ("/alarms/live", BOOTH),
    ("/admin/settings", admin::OFFICE),
    // Issue 21: the visitor's pass page, reached by its unguessable link only.
    ("/pass/{secret}", Access::Public),
    // Issue 21, item 3: self-booking on a phone (no sign-in; rate-limited) and a host's visitors.
    ("/visit", Access::Public),
    ("/visit/s/{token}", Access::Public),
    ("/admin/visits", admin::host_visits::HOST),
];

/// The centre's whole site: the API, health and OpenAPI document
/// ([`crate::central::server::app`]) with these pages.
pub fn site(state: AppState) -> axum::Router {
    crate::central::server::app(state.clone(), router(state))
}

/// The pages as a router (merged into the server's app next to the API).
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/", get(home))
        .route("/login", get(login::page))
        .route("/lang", get(login::switch_language))
        .route("/assets/{file}", get(assets::serve))
        .route("/console", get(console::page))
        .route("/console/live", get(console::live))
        .route("/console/visitors", get(visitors::page))
        .route("/passages", get(passages::page))
        .route("/office", get(office::page))
        .route("/office/live", get(office::live))
        .route("/console/figures", get(duty::figures_part))
        .route("/console/shift", get(shift::current))
        .route("/console/shift/{duty_id}", get(shift::page))
        .route("/console/visitors/{visit_id}/slip", get(slip::page))
        .route("/office/duty", get(duty_records::page))
        .route("/alarms/live", get(alarms::live))
        .route("/pass/{secret}", get(pass::page))
        .route("/visit", get(visit_request::page))
        .route("/visit/s/{token}", get(visit_request::status))
        .merge(admin::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), enforce))
        .with_state(state)
}

/// Who is looking at a page, with what they need to act from it.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub authed: Authed,
    /// The session's CSRF token, for the page's `fetch` calls.
    pub csrf: String,
    /// The operator's display name (门卫 李师傅), shown instead of the user name; the user
    /// name when no display name was given.
    pub display_name: String,
    pub lang: Lang,
    /// The site zone's offset from UTC now (`+08:00`): the admin forms send the local times
    /// typed into them with it.
    pub utc_offset: String,
}

impl Viewer {
    /// Whether the viewer may see every gate (not only their own).
    pub fn sees_all_gates(&self) -> bool {
        self.authed.has(Admin) || self.authed.has(Security) || self.authed.has(Role::Viewer)
    }

    pub fn is_office(&self) -> bool {
        self.authed.has(Admin) || self.authed.has(Security)
    }
}

impl Caller for Viewer {
    fn authed(&self) -> &Authed {
        &self.authed
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = lang_of(&parts.headers);
        // Pages are GETs: the API's extractor validates the session (and checks no CSRF token,
        // which only unsafe requests need).
        let authed = Authed::from_request_parts(parts, state)
            .await
            .map_err(|_| to_login(parts))?;
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(|| to_login(parts))?;
        let hash = hex::encode(Sha256::digest(token.as_bytes()));
        let (csrf, display_name): (String, String) = sqlx::query_as(
            "SELECT s.csrf_token, o.display_name FROM sessions s \
             JOIN operators o ON o.id = s.operator_id WHERE s.token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(state.db.pool())
        .await
        .ok()
        .flatten()
        .ok_or_else(|| to_login(parts))?;
        let utc_offset = chrono::Utc::now()
            .with_timezone(&state.site_tz)
            .offset()
            .fix()
            .to_string();
        Ok(Viewer {
            display_name: names::shown(&display_name, &authed.username).to_string(),
            authed,
            csrf,
            lang,
            utc_offset,
        })
    }
}

/// The gates the viewer may see, in id order.
pub async fn visible_gates(
    state: &crate::central::state::AppState,
    viewer: &Viewer,
) -> Result<Vec<crate::central::repo::gates::Gate>, crate::central::db::RepoError> {
    use crate::central::db::Page;
    use crate::central::repo::gates::{self, GateQuery};
    let query = GateQuery {
        only: (!viewer.sees_all_gates()).then(|| viewer.authed.gates.clone()),
        ..GateQuery::default()
    };
    let mut gates = gates::search(
        &state.db,
        &query,
        Page {
            limit: 100,
            offset: 0,
        },
    )
    .await?
    .items;
    gates.sort_by_key(|g| g.id);
    Ok(gates)
}

fn to_login(parts: &Parts) -> Response {
    let next = parts.uri.path();
    let next = if next.starts_with('/') && !next.starts_with("//") {
        next
    } else {
        "/"
    };
    Redirect::to(&format!("/login?next={}", urlencode(next))).into_response()
}

/// Percent-encodes a query value.
pub fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The page route layer: session required and role checked ([`policy::admit`]), from
/// [`PAGES`]; no session → to the sign-in page, a role the row does not admit → a 403 page.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = policy::matched_route(&request);
    let access = PAGES
        .iter()
        .find(|(r, _)| *r == route)
        .map_or(Access::Roles(&[Admin]), |(_, a)| *a);
    let (mut parts, body) = request.into_parts();
    match policy::admit::<Viewer>(access, &mut parts, &state).await {
        Ok(Some(viewer)) => {
            parts.extensions.insert(viewer);
        }
        Ok(None) => {}
        Err(Refusal::NotSignedIn(redirect)) => return redirect,
        Err(Refusal::Forbidden) => return forbidden(lang_of(&parts.headers)),
    }
    next.run(Request::from_parts(parts, body)).await
}

fn forbidden(lang: Lang) -> Response {
    let body = layout::bare(
        lang,
        i18n::t(lang, "无权访问", "Not allowed"),
        maud::html! {
            main.narrow {
                h1 { (i18n::t(lang, "无权访问", "Not allowed")) }
                p { (i18n::t(lang, "您的角色无权查看此页面。", "Your role may not see this page.")) }
                p { a href="/" { (i18n::t(lang, "返回首页", "Back to the start")) } }
            }
        },
    );
    (StatusCode::FORBIDDEN, body).into_response()
}

/// `/`: the booth for guards, the office page for the office.
async fn home(viewer: axum::Extension<Viewer>) -> Redirect {
    if viewer.is_office() {
        Redirect::to("/office")
    } else if viewer.authed.has(Guard) {
        Redirect::to("/console")
    } else if admin::allowed(&viewer, admin::HOME) {
        Redirect::to("/admin")
    } else {
        Redirect::to("/login")
    }
}

/// The one error type of the page handlers: a database failure, logged and answered with a
/// plain 500 page (no details reach the browser).
#[derive(Debug)]
pub struct PageError(crate::central::db::RepoError);

impl From<crate::central::db::RepoError> for PageError {
    fn from(e: crate::central::db::RepoError) -> PageError {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "page failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "服务器内部错误，请联系管理员 / Internal server error; please contact the administrator",
        )
            .into_response()
    }
}
