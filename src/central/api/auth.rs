//! Who is calling: sign-in, sessions, roles.
//!
//! - Passwords are hashed with argon2id on the blocking pool (never on the async threads) and
//!   never logged; an unknown user name costs the same hash as a wrong password. New passwords
//!   must pass [`crate::password::policy`] (no common or site-derived passwords).
//! - A session is a random 256-bit token. Browsers get it in an `HttpOnly; SameSite=Strict`
//!   cookie and must echo the session's CSRF token in `X-CSRF-Token` on every unsafe request;
//!   API clients send it as `Authorization: Bearer`. Only its SHA-256 is stored. A session ends
//!   at its absolute expiry (`server.session_hours`, a shift) or after
//!   `server.session_idle_minutes` without a request, whichever comes first.
//! - Sign-in throttling never locks an account: failures are counted per (client address,
//!   account) in `login_throttle` and, from the [`ACCOUNT_AFTER`]th, each next attempt from that
//!   address for that account must wait twice as long (2 s, 4 s, … up to 15 min); one failure
//!   is forgotten every 10 minutes. A stranger's guesses from elsewhere therefore never stop the
//!   administrator signing in from their own desk. A source's failures across accounts are
//!   slowed the same way from the [`SOURCE_AFTER`]th (guessing one password on many accounts).
//!   The count lives in the database, not per instance: instances sharing one PostgreSQL
//!   throttle together, and an administrator's unlock (or password reset) reaches them all.
//!   Each attempt is claimed (counted) atomically *before* its password is checked, so
//!   parallel guesses cannot slip past the delay. The 5th consecutive failure of an account
//!   (from anywhere) raises a `login_alarm` audit entry (GB 50396).
//! - The client address is the socket peer's, unless the peer is one of
//!   `server.trusted_proxies`: then it is the right-most `X-Forwarded-For` entry that is not a
//!   trusted proxy ([`client_ip`]). Nobody else can choose their address by a header.
//! - Sign-in (success and failure, never the password) and sign-out are audited.
//! - [`Authed`] is the extractor of a handler that needs to know the operator. Which roles reach
//!   a route is said once, in the policy table ([`super::policy`]); [`Authed::require`] is for
//!   the finer checks that depend on the request itself (a walk-in booking is the booth's).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::ApiJson;
use crate::central::db::{Actor, Db, RepoError, audit, now_ms};
use crate::central::repo::operators::{self, Operator, OperatorChange};
use crate::central::state::AppState;
use crate::i18n::Msg;
use crate::password::{hash_password_blocking, verify_password_blocking};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "gh_session";
/// The header carrying the CSRF token on unsafe requests of cookie sessions.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Failures for one (source, account) before each next attempt must wait.
pub const ACCOUNT_AFTER: i64 = 5;
/// Failures from one source across accounts before each next attempt must wait.
pub const SOURCE_AFTER: i64 = 20;
/// Consecutive failures of an account (from anywhere) that raise a `login_alarm`.
pub const ALARM_AFTER: i64 = 5;
/// The longest wait between attempts.
pub const MAX_DELAY_MS: i64 = 15 * 60_000;
/// One failure is forgotten per this long.
pub const DECAY_MS: i64 = 10 * 60_000;
/// The most failures remembered (beyond it the delay is capped anyway).
const MAX_FAILURES: i64 = 30;
/// How often a session's last use is written (not on every request).
const TOUCH_EVERY_MS: i64 = 60_000;

pub use crate::central::config::AuthSettings;

/// What an operator may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 系统管理员: everything, including operators.
    Admin,
    /// 保卫处: permits, lists, gate modes, audit.
    Security,
    /// 门卫: the booth of their own gates.
    Guard,
    /// 部门审批人: their department's applications and bookings.
    Approver,
    /// 查看: statistics and records, read only.
    Viewer,
    /// 申请人: a staff member or student (linked to their person record) applying for exit
    /// passes for their own vehicles.
    Applicant,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Security,
        Role::Guard,
        Role::Approver,
        Role::Viewer,
        Role::Applicant,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Security => "security",
            Role::Guard => "guard",
            Role::Approver => "approver",
            Role::Viewer => "viewer",
            Role::Applicant => "applicant",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A signed-in operator, as every protected handler sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authed {
    pub operator_id: i64,
    pub username: String,
    pub roles: Vec<Role>,
    /// Gates a guard works at.
    pub gates: Vec<i64>,
    /// An approver's department.
    pub department: String,
}

impl Authed {
    /// 403 unless the operator has one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), ApiError> {
        if self.roles.iter().any(|r| allowed.contains(r)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// May this operator see this gate's data? Admin, security and viewers see every gate;
    /// guards only their own.
    pub fn can_see_gate(&self, gate_id: i64) -> bool {
        self.has(Role::Admin)
            || self.has(Role::Security)
            || self.has(Role::Viewer)
            || (self.has(Role::Guard) && self.gates.contains(&gate_id))
    }

    /// May this operator see full ID-card and phone numbers?
    pub fn sees_personal_ids(&self) -> bool {
        self.has(Role::Admin) || self.has(Role::Security)
    }

    /// Who to write in the audit log.
    pub fn actor(&self) -> Actor {
        Actor {
            operator_id: Some(self.operator_id),
            name: self.username.clone(),
        }
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Hashes a password on the blocking pool.
pub async fn hash_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || hash_password_blocking(&password))
        .await
        .map_err(|_| ApiError::Internal)
}

/// Checks a password against a stored hash, on the blocking pool.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password_blocking(&password, &hash))
        .await
        .unwrap_or(false)
}

/// A hash of nothing anyone knows, verified against when the user name is unknown, so that an
/// unknown name takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password_blocking(&random_token()))
}

/// A new session's secrets.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub csrf_token: String,
    pub expires_ms: i64,
}

/// Opens a session for an operator.
pub async fn create_session(
    db: &Db,
    operator_id: i64,
    ttl_ms: i64,
) -> Result<NewSession, RepoError> {
    let session = NewSession {
        token: random_token(),
        csrf_token: random_token(),
        expires_ms: now_ms() + ttl_ms,
    };
    sqlx::query(
        "INSERT INTO sessions (token_hash, operator_id, csrf_token, created_ms, expires_ms, \
         last_used_ms) VALUES ($1, $2, $3, $4, $5, $4)",
    )
    .bind(sha256_hex(&session.token))
    .bind(operator_id)
    .bind(&session.csrf_token)
    .bind(now_ms())
    .bind(session.expires_ms)
    .execute(db.pool())
    .await?;
    Ok(session)
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    crate::http_cookie::cookie(headers, SESSION_COOKIE)
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim().to_string()).filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(authed) = parts.extensions.get::<Authed>() {
            return Ok(authed.clone());
        }
        let (token, via_cookie) = match bearer_token(&parts.headers) {
            Some(t) => (t, false),
            None => (
                cookie_token(&parts.headers).ok_or(ApiError::Unauthenticated)?,
                true,
            ),
        };
        let token_hash = sha256_hex(&token);
        let row = sqlx::query(
            "SELECT operator_id, csrf_token, expires_ms, last_used_ms FROM sessions \
             WHERE token_hash = $1",
        )
        .bind(&token_hash)
        .fetch_optional(state.db.pool())
        .await
        .map_err(RepoError::from)?
        .ok_or(ApiError::Unauthenticated)?;
        let now = now_ms();
        let last_used: i64 = row.get("last_used_ms");
        if row.get::<i64, _>("expires_ms") <= now || now - last_used >= state.auth.idle_ms {
            // Ended: absolute expiry or idle. Forget it, so it cannot come back.
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(&token_hash)
                .execute(state.db.pool())
                .await
                .map_err(RepoError::from)?;
            return Err(ApiError::Unauthenticated);
        }
        if now - last_used >= TOUCH_EVERY_MS {
            sqlx::query("UPDATE sessions SET last_used_ms = $2 WHERE token_hash = $1")
                .bind(&token_hash)
                .bind(now)
                .execute(state.db.pool())
                .await
                .map_err(RepoError::from)?;
        }
        let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if via_cookie && unsafe_method {
            let csrf: String = row.get("csrf_token");
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if sent != Some(csrf.as_str()) {
                return Err(ApiError::Forbidden);
            }
        }
        let operator = match operators::get(&state.db, row.get("operator_id")).await {
            Ok(op) if op.enabled => op,
            _ => return Err(ApiError::Unauthenticated),
        };
        let authed = authed_of(&operator);
        parts.extensions.insert(authed.clone());
        Ok(authed)
    }
}

fn authed_of(op: &Operator) -> Authed {
    Authed {
        operator_id: op.id,
        username: op.username.clone(),
        roles: op.roles.iter().filter_map(|r| Role::parse(r)).collect(),
        gates: op.gates.clone(),
        department: op.department.clone(),
    }
}

/// The client's address: the socket peer's, or, behind a trusted proxy, the one it forwarded
/// ([`client_ip`]); "unknown" when the server was called without a socket (tests).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip());
        Ok(ClientAddr(
            client_ip(peer, &parts.headers, &state.auth.trusted_proxies)
                .map_or_else(|| "unknown".into(), |ip| ip.to_canonical().to_string()),
        ))
    }
}

/// Who the client is: `peer` unless it is a trusted proxy; then the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy (entries left of it were written
/// by the client and prove nothing). An entry that does not parse ends the walk at the last
/// trusted hop; if every entry is trusted, the left-most.
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&ip.to_canonical()));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let parsed = entry
            .parse::<IpAddr>()
            .ok()
            .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()));
        let Some(ip) = parsed else {
            return Some(client);
        };
        client = ip;
        if !is_trusted(ip) {
            return Some(ip);
        }
    }
    Some(client)
}

/// Sign-in request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Who is signed in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Me {
    pub operator: Operator,
    /// Echo it in `X-CSRF-Token` on unsafe requests made with the session cookie.
    pub csrf_token: String,
}

/// A new session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LoginResponse {
    /// For `Authorization: Bearer` (browsers use the cookie instead).
    pub token: String,
    pub csrf_token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub operator: Operator,
}

/// Failures left after decay: one is forgotten per [`DECAY_MS`] since the last.
pub fn decayed(failures: i64, last_ms: i64, now: i64) -> i64 {
    (failures - (now - last_ms).max(0) / DECAY_MS).max(0)
}

/// The wait after `failures` (decayed) failures once `after` is reached: 2 s, doubling per
/// further failure, at most [`MAX_DELAY_MS`]; 0 below `after`.
pub fn delay_ms(failures: i64, after: i64) -> i64 {
    if failures < after {
        return 0;
    }
    let doublings = (failures - after).min(20) as u32;
    (2_000i64 << doublings).min(MAX_DELAY_MS)
}

/// The 429 answer, with `Retry-After`.
fn too_many(until_ms: i64, now: i64) -> Response {
    let secs = ((until_ms - now + 999) / 1000).max(1);
    let mut response = ApiError::TooManyRequests(Msg::new(
        format!("登录失败次数过多，请在 {secs} 秒后重试"),
        format!("Too many failed sign-ins; try again in {secs} s"),
    ))
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// The key of a source's failures across accounts.
const WHOLE_SOURCE: &str = "";

/// Claims one attempt for (`source`, `key`) (an account's [`operators::throttle_key`], or
/// [`WHOLE_SOURCE`]): refuses it (`Err(until)`) while the key
/// must wait, or counts it as a failure in advance (a success gives it back). A
/// compare-and-swap on the row, so that parallel attempts — on this instance or another —
/// each see the ones before them.
async fn claim(
    db: &Db,
    source: &str,
    key: &str,
    after: i64,
    now: i64,
) -> Result<Result<(), i64>, RepoError> {
    for _ in 0..8 {
        let row = sqlx::query(
            "SELECT failures, last_ms FROM login_throttle WHERE source = $1 AND username = $2",
        )
        .bind(source)
        .bind(key)
        .fetch_optional(db.pool())
        .await?;
        let changed = match row {
            None => sqlx::query(
                "INSERT INTO login_throttle (source, username, failures, last_ms) \
                 VALUES ($1, $2, 1, $3) ON CONFLICT DO NOTHING",
            )
            .bind(source)
            .bind(key)
            .bind(now)
            .execute(db.pool())
            .await?
            .rows_affected(),
            Some(row) => {
                let (failures, last): (i64, i64) = (row.get("failures"), row.get("last_ms"));
                let left = decayed(failures, last, now);
                let until = last + delay_ms(left, after);
                if until > now {
                    return Ok(Err(until));
                }
                sqlx::query(
                    "UPDATE login_throttle SET failures = $3, last_ms = $4 \
                     WHERE source = $1 AND username = $2 AND failures = $5 AND last_ms = $6",
                )
                .bind(source)
                .bind(key)
                .bind((left + 1).min(MAX_FAILURES))
                .bind(now)
                .bind(failures)
                .bind(last)
                .execute(db.pool())
                .await?
                .rows_affected()
            }
        };
        if changed == 1 {
            return Ok(Ok(()));
        }
    }
    // Lost the race eight times running: someone is hammering this key.
    Ok(Err(now + 1_000))
}

/// A successful sign-in: the (source, account) history is cleared and the source's count
/// gets back the attempt claimed for it (but not the failures before it, so a valid account
/// of one's own does not reset guessing at others).
async fn claim_succeeded(db: &Db, source: &str, key: &str) -> Result<(), RepoError> {
    sqlx::query("DELETE FROM login_throttle WHERE source = $1 AND username = $2")
        .bind(source)
        .bind(key)
        .execute(db.pool())
        .await?;
    sqlx::query(
        "UPDATE login_throttle SET failures = failures - 1 \
         WHERE source = $1 AND username = $2 AND failures > 0",
    )
    .bind(source)
    .bind(WHOLE_SOURCE)
    .execute(db.pool())
    .await?;
    // Forget what has fully decayed, so the table stays the size of recent trouble.
    sqlx::query("DELETE FROM login_throttle WHERE last_ms < $1")
        .bind(now_ms() - MAX_FAILURES * DECAY_MS)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Who signs in, for the audit log: nobody yet.
fn anonymous() -> Actor {
    Actor {
        operator_id: None,
        name: "anonymous".into(),
    }
}

/// Writes one audit entry on its own connection.
async fn audit_now(
    db: &Db,
    actor: &Actor,
    action: &str,
    entity_id: impl ToString,
    after: serde_json::Value,
) -> Result<(), RepoError> {
    let mut conn = db.pool().acquire().await?;
    audit(
        &mut conn,
        actor,
        action,
        "operator",
        entity_id,
        None,
        Some(&after),
    )
    .await
}

/// Sign in with a user name and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let mut f = Fields::new();
    if req.username.trim().is_empty() {
        f.add(
            "username",
            "required",
            Msg::new("请输入用户名", "Enter a user name"),
        );
    }
    if req.password.is_empty() {
        f.add(
            "password",
            "required",
            Msg::new("请输入密码", "Enter a password"),
        );
    }
    f.finish()?;
    let now = now_ms();
    let username = req.username.trim();
    let key = operators::throttle_key(username);
    // The source as a whole first, then this account from this source; a refusal costs no
    // hash and changes nothing.
    if let Err(until) = claim(&state.db, &source, WHOLE_SOURCE, SOURCE_AFTER, now).await? {
        return Ok(too_many(until, now));
    }
    if let Err(until) = claim(&state.db, &source, &key, ACCOUNT_AFTER, now).await? {
        return Ok(too_many(until, now));
    }
    let account = operators::credentials(&state.db, username).await?;
    let hash = account
        .as_ref()
        .map_or_else(|| decoy_hash().to_string(), |a| a.password_hash.clone());
    let ok = verify_password(req.password, hash).await;
    match account {
        Some(acc) if ok && acc.operator.enabled => {
            operators::login_succeeded(&state.db, acc.operator.id).await?;
            claim_succeeded(&state.db, &source, &key).await?;
            let session = create_session(&state.db, acc.operator.id, state.session_ttl_ms).await?;
            let actor = authed_of(&acc.operator).actor();
            audit_now(
                &state.db,
                &actor,
                "sign_in",
                acc.operator.id,
                serde_json::json!({ "source": source }),
            )
            .await?;
            let cookie = format!(
                "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
                session.token,
                state.session_ttl_ms / 1000,
                if state.secure_cookies { "; Secure" } else { "" }
            );
            let body = LoginResponse {
                token: session.token,
                csrf_token: session.csrf_token,
                expires_at: chrono::DateTime::from_timestamp_millis(session.expires_ms)
                    .unwrap_or_default(),
                operator: acc.operator,
            };
            let mut response = ApiJson(body).into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&cookie).map_err(|_| ApiError::Internal)?,
            );
            Ok(response)
        }
        Some(acc) => {
            let reason = if ok { "disabled" } else { "wrong_password" };
            let failures = operators::login_failed(&state.db, acc.operator.id).await?;
            audit_now(
                &state.db,
                &anonymous(),
                "sign_in_failed",
                acc.operator.id,
                serde_json::json!({ "source": source, "reason": reason, "failures": failures }),
            )
            .await?;
            if failures == ALARM_AFTER {
                tracing::warn!(username = %acc.operator.username, %source, "login alarm: {ALARM_AFTER} consecutive failures");
                audit_now(
                    &state.db,
                    &Actor::system(),
                    "login_alarm",
                    acc.operator.id,
                    serde_json::json!({ "failures": failures, "source": source }),
                )
                .await?;
            }
            Err(ApiError::LoginFailed)
        }
        None => {
            // The name typed is not kept: it is often a password typed in the wrong field.
            audit_now(
                &state.db,
                &anonymous(),
                "sign_in_failed",
                "unknown",
                serde_json::json!({ "source": source, "reason": "unknown_user" }),
            )
            .await?;
            Err(ApiError::LoginFailed)
        }
    }
}

/// Sign out: ends this session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    authed: Authed,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(token) = bearer_token(&headers).or_else(|| cookie_token(&headers)) {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(sha256_hex(&token))
            .execute(state.db.pool())
            .await
            .map_err(RepoError::from)?;
    }
    audit_now(
        &state.db,
        &authed.actor(),
        "sign_out",
        authed.operator_id,
        serde_json::json!({ "source": source }),
    )
    .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("gh_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(response)
}

/// Who is signed in, and the session's CSRF token.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(
    State(state): State<AppState>,
    authed: Authed,
    headers: HeaderMap,
) -> ApiResult<ApiJson<Me>> {
    let token = bearer_token(&headers)
        .or_else(|| cookie_token(&headers))
        .ok_or(ApiError::Unauthenticated)?;
    let csrf_token: String =
        sqlx::query_scalar("SELECT csrf_token FROM sessions WHERE token_hash = $1")
            .bind(sha256_hex(&token))
            .fetch_one(state.db.pool())
            .await
            .map_err(RepoError::from)?;
    Ok(ApiJson(Me {
        operator: operators::get(&state.db, authed.operator_id).await?,
        csrf_token,
    }))
}

/// A password change by its owner.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Checks a new password with no account or site to compare against (the booth's guards in
/// `gate.toml`); `field` names it in the error.
pub fn check_password_strength(password: &str, field: &str, f: &mut Fields) {
    check_password(password, "", &[], field, f);
}

/// Checks a new password for the account `username` on a site whose own words are `site`
/// ([`crate::password::policy`]); `field` names it in the error.
pub fn check_password(
    password: &str,
    username: &str,
    site: &[String],
    field: &str,
    f: &mut Fields,
) {
    if let Some(weakness) = crate::password::policy::weakness(password, username, site) {
        let (zh, en) = weakness.message();
        f.add(field, weakness.code(), Msg::new(zh, en));
    }
}

/// Change one's own password (ends one's other sessions).
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn change_password(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(req): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    let acc = operators::credentials(&state.db, &authed.username)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let mut f = Fields::new();
    if !verify_password(req.current_password, acc.password_hash).await {
        f.add(
            "current_password",
            "wrong_password",
            Msg::new("当前密码不正确", "The current password is wrong"),
        );
    }
    check_password(
        &req.new_password,
        &authed.username,
        &state.auth.site_words,
        "new_password",
        &mut f,
    );
    f.finish()?;
    let hash = hash_password(req.new_password).await?;
    operators::update(
        &state.db,
        &authed.actor(),
        authed.operator_id,
        OperatorChange {
            password_hash: Some(hash),
            ..OperatorChange::default()
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What an unlock cleared.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Unlocked {
    /// Source addresses that were being slowed down for this account.
    pub sources: i64,
}

/// Lets an operator sign in again at once: clears their sign-in failures from every source
/// (and those sources' counts across accounts). Audited as `unlock`.
#[utoipa::path(post, path = "/api/v1/operators/{id}/unlock", tag = "operators",
    params(("id" = i64, Path, description = "Operator id")),
    responses((status = 200, body = Unlocked), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn unlock(
    State(state): State<AppState>,
    authed: Authed,
    super::extract::ApiPath(id): super::extract::ApiPath<i64>,
) -> ApiResult<ApiJson<Unlocked>> {
    let sources = operators::unlock(&state.db, &authed.actor(), id).await?;
    Ok(ApiJson(Unlocked { sources }))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(unlock))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        assert_eq!(
            client_ip(ip("203.0.113.5"), &xff(&["198.51.100.1"]), &[]),
            ip("203.0.113.5")
        );
        assert_eq!(client_ip(None, &xff(&["198.51.100.1"]), &[]), None);
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_forwarded_entry_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "::1/128"]);
        // The client wrote "1.1.1.1" itself; the proxy appended the address it saw.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &xff(&["1.1.1.1, 198.51.100.7"]), &trusted),
            ip("198.51.100.7")
        );
        // Two proxies, the header split over two lines.
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                &xff(&["198.51.100.7", "10.0.0.9"]),
                &trusted
            ),
            ip("198.51.100.7")
        );
        // A port, an IPv6 peer.
        assert_eq!(
            client_ip(ip("::1"), &xff(&["198.51.100.7:5555"]), &trusted),
            ip("198.51.100.7")
        );
        // Garbage stops the walk at the last trusted hop; no header leaves the proxy.
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                &xff(&["198.51.100.7, bogus, 10.0.0.2"]),
                &trusted
            ),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        // An IPv4-mapped IPv6 peer matches an IPv4 range.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &xff(&["198.51.100.7"]), &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn delays_double_from_the_threshold_up_to_the_cap_and_failures_decay() {
        assert_eq!(delay_ms(4, ACCOUNT_AFTER), 0);
        assert_eq!(delay_ms(5, ACCOUNT_AFTER), 2_000);
        assert_eq!(delay_ms(6, ACCOUNT_AFTER), 4_000);
        assert_eq!(delay_ms(13, ACCOUNT_AFTER), 512_000);
        assert_eq!(delay_ms(14, ACCOUNT_AFTER), MAX_DELAY_MS);
        assert_eq!(delay_ms(MAX_FAILURES, ACCOUNT_AFTER), MAX_DELAY_MS);
        assert_eq!(decayed(8, 0, DECAY_MS - 1), 8);
        assert_eq!(decayed(8, 0, 3 * DECAY_MS), 5);
        assert_eq!(decayed(8, 0, 100 * DECAY_MS), 0);
        assert_eq!(decayed(8, 10, 0), 8, "a clock step back forgets nothing");
    }
}
