//! Who may call which route: one table, enforced by a route layer **before any request body is
//! read**, so a role that may not call a route gets 403 whatever it sends (a malformed body
//! from an unauthorised caller is not validated, and teaches it nothing about the schema).
//!
//! Every route must be in [`POLICY`] (`tests/api/matrix.rs` fails otherwise), so every endpoint
//! has an owner role; a request the table does not name is for administrators only.
//! The table is the only place that says which roles reach a route: handlers make only the
//! finer checks the table cannot (an approver's department, a guard's gates, an applicant's
//! own records).
//!
//! [`admit`] is the one access decision, for the API's routes here and for the pages' own
//! table (`crate::web::PAGES`): each side only answers a refusal its own way (the API with a
//! 401/403 body, the pages with the sign-in redirect or a 403 page).

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::{Authed, Role};
use super::error::ApiError;
use crate::central::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (signing in).
    Public,
    /// Anyone signed in (their own session).
    SignedIn,
    /// Operators with one of these roles.
    Roles(&'static [Role]),
}

impl Access {
    /// Whether a signed-in operator passes this rule.
    pub fn admits(self, authed: &Authed) -> bool {
        match self {
            Access::Public | Access::SignedIn => true,
            Access::Roles(roles) => authed.roles.iter().any(|r| roles.contains(r)),
        }
    }
}

use Role::{Admin, Applicant, Approver, Guard, Security, Viewer};

const ADMIN: Access = Access::Roles(&[Admin]);
const OFFICE: Access = Access::Roles(&[Admin, Security]);
const BOOTH_READ: Access = Access::Roles(&[Admin, Security, Guard, Viewer]);
/// Traffic statistics: the security office, the administration (viewers) and administrators.
const STATS: Access = Access::Roles(&[Admin, Security, Viewer]);
/// Exit-pass applications: the office, departments' approvers, and applicants (staff and
/// students, for their own vehicles — checked in the handler).
const APPLY: Access = Access::Roles(&[Admin, Security, Approver, Applicant]);
const ALL_READ: Access = Access::Roles(&[Admin, Security, Guard, Viewer, Approver]);

/// (method, route, access) for every route of the API.
pub const POLICY: &[(&str, &str, Access)] = &[
    ("POST", "/api/v1/auth/login", Access::Public),
    ("POST", "/api/v1/auth/logout", Access::SignedIn),
    ("GET", "/api/v1/auth/me", Access::SignedIn),
    ("POST", "/api/v1/auth/password", Access::SignedIn),
    // Operators and roles: administrators only.
    ("GET", "/api/v1/operators", ADMIN),
    ("POST", "/api/v1/operators", ADMIN),
    ("GET", "/api/v1/operators/{id}", ADMIN),
    ("PUT", "/api/v1/operators/{id}", ADMIN),
    ("DELETE", "/api/v1/operators/{id}", ADMIN),
    ("POST", "/api/v1/operators/{id}/unlock", ADMIN),
    // People: approvers read their own department's (checked in the handler).
    ("GET", "/api/v1/persons", ALL_READ),
    ("POST", "/api/v1/persons", OFFICE),
    ("GET", "/api/v1/persons/{id}", ALL_READ),
    ("PUT", "/api/v1/persons/{id}", OFFICE),
    ("DELETE", "/api/v1/persons/{id}", OFFICE),
    // Vehicles and tags: the booth looks them up.
    ("GET", "/api/v1/vehicles", BOOTH_READ),
    ("POST", "/api/v1/vehicles", OFFICE),
    ("GET", "/api/v1/vehicles/by-plate/{plate}", BOOTH_READ),
    ("GET", "/api/v1/vehicles/{id}", BOOTH_READ),
    ("PUT", "/api/v1/vehicles/{id}", OFFICE),
    ("DELETE", "/api/v1/vehicles/{id}", OFFICE),
    ("GET", "/api/v1/credentials", BOOTH_READ),
    ("POST", "/api/v1/credentials", OFFICE),
    ("GET", "/api/v1/credentials/{id}", BOOTH_READ),
    ("PUT", "/api/v1/credentials/{id}", OFFICE),
    ("DELETE", "/api/v1/credentials/{id}", OFFICE),
    // Permits (exit passes): the security office issues and withdraws them.
    ("GET", "/api/v1/permits", ALL_READ),
    ("POST", "/api/v1/permits", OFFICE),
    ("GET", "/api/v1/permits/{id}", ALL_READ),
    ("PUT", "/api/v1/permits/{id}", OFFICE),
    ("DELETE", "/api/v1/permits/{id}", ADMIN),
    ("POST", "/api/v1/permits/{id}/suspend", OFFICE),
    ("POST", "/api/v1/permits/{id}/revoke", OFFICE),
    ("POST", "/api/v1/permits/{id}/reactivate", OFFICE),
    // Visitor bookings: hosts' departments approve, guards register arrivals and walk-ins.
    ("GET", "/api/v1/bookings", ALL_READ),
    (
        "POST",
        "/api/v1/bookings",
        Access::Roles(&[Admin, Security, Approver, Guard]),
    ),
    ("GET", "/api/v1/bookings/{id}", ALL_READ),
    (
        "PUT",
        "/api/v1/bookings/{id}",
        Access::Roles(&[Admin, Security, Approver]),
    ),
    (
        "POST",
        "/api/v1/bookings/{id}/approve",
        // A host (applicant) decides their own visitors' requests (checked in the handler).
        Access::Roles(&[Admin, Security, Approver, Applicant]),
    ),
    (
        "POST",
        "/api/v1/bookings/{id}/reject",
        // A host (applicant) decides their own visitors' requests (checked in the handler).
        Access::Roles(&[Admin, Security, Approver, Applicant]),
    ),
    (
        "POST",
        "/api/v1/bookings/{id}/cancel",
        Access::Roles(&[Admin, Security, Approver]),
    ),
    (
        "POST",
        "/api/v1/bookings/{id}/arrive",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    (
        "POST",
        "/api/v1/bookings/{id}/leave",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    (
        "POST",
        "/api/v1/bookings/{id}/no-show",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    // A booking's visitor pass: the office and the booking's department (checked in the
    // handler).
    (
        "GET",
        "/api/v1/bookings/{id}/pass",
        Access::Roles(&[Admin, Security, Approver]),
    ),
    // Lists: the security office keeps them; the booth must see them.
    ("GET", "/api/v1/blacklist", BOOTH_READ),
    ("POST", "/api/v1/blacklist", OFFICE),
    ("GET", "/api/v1/blacklist/{id}", BOOTH_READ),
    ("PUT", "/api/v1/blacklist/{id}", OFFICE),
    ("DELETE", "/api/v1/blacklist/{id}", OFFICE),
    ("POST", "/api/v1/blacklist/{id}/lift", OFFICE),
    ("GET", "/api/v1/locks", BOOTH_READ),
    ("POST", "/api/v1/locks", OFFICE),
    ("GET", "/api/v1/locks/{id}", BOOTH_READ),
    ("PUT", "/api/v1/locks/{id}", OFFICE),
    ("DELETE", "/api/v1/locks/{id}", OFFICE),
    ("POST", "/api/v1/locks/{id}/lift", OFFICE),
    // Gates and lanes: guards see their own (checked in the handler); modes by the office.
    ("GET", "/api/v1/gates", BOOTH_READ),
    ("POST", "/api/v1/gates", ADMIN),
    ("GET", "/api/v1/gates/{id}", BOOTH_READ),
    ("PUT", "/api/v1/gates/{id}", ADMIN),
    ("DELETE", "/api/v1/gates/{id}", ADMIN),
    ("POST", "/api/v1/gates/{id}/mode", OFFICE),
    ("GET", "/api/v1/gates/{id}/lanes", BOOTH_READ),
    ("POST", "/api/v1/gates/{id}/lanes", ADMIN),
    ("GET", "/api/v1/gates/{id}/lanes/{lane_id}", BOOTH_READ),
    ("PUT", "/api/v1/gates/{id}/lanes/{lane_id}", ADMIN),
    ("DELETE", "/api/v1/gates/{id}/lanes/{lane_id}", ADMIN),
    // Gate and lane names in Chinese and English (issue 20): administrators.
    ("PUT", "/api/v1/gates/{id}/names", ADMIN),
    ("PUT", "/api/v1/gates/{id}/lanes/{lane_id}/names", ADMIN),
    // Records.
    ("GET", "/api/v1/events", BOOTH_READ),
    // A misread plate corrected (guards at their own gates, checked in the handler).
    (
        "POST",
        "/api/v1/events/{gate_id}/{journal_no}/{seq}/plate",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    // Camera photos: whoever sees events (a guard only their gates', checked in the handler).
    ("GET", "/api/v1/photos/{sha256}", BOOTH_READ),
    ("GET", "/api/v1/audit", OFFICE),
    // Gate sync: health for the booth (a guard's own gates, filtered in the handler); the
    // campus-wide mode by the office.
    ("GET", "/api/v1/sync/gates", BOOTH_READ),
    ("POST", "/api/v1/sync/campus-mode", OFFICE),
    // Exit-pass applications: entered by the office (or a department's approver for their
    // own people), decided by the department's approver, issued by the security office.
    ("GET", "/api/v1/applications", APPLY),
    ("POST", "/api/v1/applications", APPLY),
    ("GET", "/api/v1/applications/{id}", APPLY),
    (
        "POST",
        "/api/v1/applications/{id}/approve",
        Access::Roles(&[Admin, Approver]),
    ),
    (
        "POST",
        "/api/v1/applications/{id}/reject",
        Access::Roles(&[Admin, Approver]),
    ),
    ("POST", "/api/v1/applications/{id}/cancel", APPLY),
    ("POST", "/api/v1/applications/{id}/issue", OFFICE),
    // The person and vehicle pickers of the permit and application forms (each caller within
    // the applications' scope, checked in the handler).
    ("GET", "/api/v1/pickers/persons", APPLY),
    ("GET", "/api/v1/pickers/vehicles", APPLY),
    // Bulk import and export of people, vehicles and permits: the security office.
    ("POST", "/api/v1/bulk/{kind}/import", OFFICE),
    ("GET", "/api/v1/bulk/jobs/{id}", OFFICE),
    ("GET", "/api/v1/bulk/{kind}/export", OFFICE),
    // Retention: purging passage events past the kept days (never under 365).
    ("POST", "/api/v1/retention/purge", ADMIN),
    // Traffic statistics and their exports.
    ("GET", "/api/v1/stats/flows", STATS),
    ("GET", "/api/v1/stats/occupancy", STATS),
    ("GET", "/api/v1/stats/overstays", STATS),
    ("GET", "/api/v1/stats/visitors", STATS),
    ("GET", "/api/v1/stats/denials", STATS),
    ("GET", "/api/v1/stats/manual-opens", STATS),
    ("GET", "/api/v1/stats/peak-hours", STATS),
    ("GET", "/api/v1/stats/weekly", STATS),
    ("GET", "/api/v1/stats/export", STATS),
    ("GET", "/api/v1/stats/daily-report", STATS),
    // Outside vehicles and the passage search (卡口过车记录): the booth searches its own
    // gates' passages (checked in the handler); the figures are the security office's.
    ("GET", "/api/v1/stats/outside-vehicles", OFFICE),
    ("GET", "/api/v1/stats/outside-vehicles/export", OFFICE),
    ("GET", "/api/v1/outside-vehicles", OFFICE),
    (
        "GET",
        "/api/v1/passages",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    (
        "GET",
        "/api/v1/passages/export",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    // The guard booth console: guards act at their own gates (checked in the handlers).
    (
        "POST",
        "/api/v1/console/gates/{id}/lanes/{lane}/command",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    ("GET", "/api/v1/console/plates", BOOTH_READ),
    ("GET", "/api/v1/console/manual-opens", OFFICE),
    (
        "POST",
        "/api/v1/visits",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    ("GET", "/api/v1/visits", BOOTH_READ),
    (
        "POST",
        "/api/v1/visits/{id}/leave",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    (
        "POST",
        "/api/v1/duty/sign-in",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    (
        "POST",
        "/api/v1/duty/sign-off",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    (
        "POST",
        "/api/v1/duty/notes",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    // Issue 20, item 7: a duty's shift report (the guard who held it, the guards of its gate,
    // the office: checked in the handler) and a visitor slip's serial.
    (
        "GET",
        "/api/v1/duty/{id}/report",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    (
        "POST",
        "/api/v1/visits/{id}/slip",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    (
        "POST",
        "/api/v1/alarms",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    ("GET", "/api/v1/alarms", OFFICE),
    ("POST", "/api/v1/alarms/{id}/acknowledge", OFFICE),
    ("POST", "/api/v1/alarms/{id}/give-up", OFFICE),
    ("GET", "/api/v1/alarms/webhook", ADMIN),
    ("PUT", "/api/v1/alarms/webhook", ADMIN),
    (
        "POST",
        "/api/v1/alarms/{id}/withdraw",
        Access::Roles(&[Admin, Security, Guard]),
    ),
    // Site settings: the office reads them, administrators change them.
    ("GET", "/api/v1/settings", OFFICE),
    ("PUT", "/api/v1/settings", ADMIN),
    // Self-booking (issue 21): a visitor asks to visit and reads where the request stands, no
    // sign-in (rate-limited per source in the handlers); a host books their own visitor.
    ("POST", "/api/v1/public/visit-requests", Access::Public),
    (
        "GET",
        "/api/v1/public/visit-requests/{token}",
        Access::Public,
    ),
    ("POST", "/api/v1/host/visits", Access::Roles(&[Applicant])),
    // The notification outbox (e-mail, group webhook): administrators, read-only.
    ("GET", "/api/v1/notifications", ADMIN),
];

/// The access rule of a route, if it has one.
pub fn access(method: &Method, route: &str) -> Option<Access> {
    POLICY
        .iter()
        .find(|(m, r, _)| *m == method.as_str() && *r == route)
        .map(|(_, _, a)| *a)
}

/// Whoever a route's rule is checked against: a signed-in operator as the API sees them
/// ([`Authed`]) or as the pages do (with the session's CSRF token). Its rejection is how a
/// request without a valid session is answered.
pub trait Caller: FromRequestParts<AppState> {
    /// The operator behind the request.
    fn authed(&self) -> &Authed;
}

impl Caller for Authed {
    fn authed(&self) -> &Authed {
        self
    }
}

/// Why a request may not reach its route.
#[derive(Debug)]
pub enum Refusal<R> {
    /// No valid session (or, for the API, an unsafe cookie request without its CSRF token):
    /// the caller's own rejection.
    NotSignedIn(R),
    /// Signed in, but the rule does not admit any of the operator's roles.
    Forbidden,
}

/// The access decision of a route, for the API and the pages alike: a public route passes
/// without looking for a session (`Ok(None)`); any other needs a caller, whose roles `access`
/// must admit.
pub async fn admit<C: Caller>(
    access: Access,
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<C>, Refusal<C::Rejection>> {
    if access == Access::Public {
        return Ok(None);
    }
    let caller = C::from_request_parts(parts, state)
        .await
        .map_err(Refusal::NotSignedIn)?;
    if !access.admits(caller.authed()) {
        return Err(Refusal::Forbidden);
    }
    Ok(Some(caller))
}

/// The route of a request as axum matched it (`/api/v1/gates/{id}`), empty if none.
pub fn matched_route(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default()
}

/// The route layer: authenticates and checks the role ([`admit`]) before the handler's
/// extractors run.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = matched_route(&request);
    // A method the route does not have reaches here too (axum answers it 405 after this layer);
    // a handler missing from the table would as well. Either way: administrators only, the
    // safest rule that still lets axum answer 405. (The matrix test fails for a handler missing
    // from the table.)
    let access = access(request.method(), &route).unwrap_or_else(|| {
        if !POLICY.iter().any(|(_, r, _)| *r == route) {
            tracing::error!(method = %request.method(), %route, "route has no access rule");
        }
        Access::Roles(&[Admin])
    });
    let (mut parts, body) = request.into_parts();
    match admit::<Authed>(access, &mut parts, &state).await {
        Ok(_) => next.run(Request::from_parts(parts, body)).await,
        Err(Refusal::NotSignedIn(e)) => e.into_response(),
        Err(Refusal::Forbidden) => ApiError::Forbidden.into_response(),
    }
}
