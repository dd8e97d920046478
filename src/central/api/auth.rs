//! Who is calling: sign-in, sessions, roles.
//!
//! - Passwords are hashed with argon2id on the blocking pool (never on the async threads) and
//!   never logged; an unknown user name costs the same hash as a wrong password.
//! - A session is a random 256-bit token. Browsers get it in an `HttpOnly; SameSite=Strict`
//!   cookie and must echo the session's CSRF token in `X-CSRF-Token` on every unsafe request;
//!   API clients send it as `Authorization: Bearer`. Only its SHA-256 is stored.
//! - Login throttling (GB 50396 wants an alarm after at most 5 failures): from the 5th
//!   consecutive failure an account is locked for 1 minute, doubling per further failure up to
//!   15 minutes, and the 5th raises a `login_alarm` audit entry; a source address is slowed the
//!   same way, so guessing across accounts is slowed too.
//! - [`Authed`] is the extractor every protected handler takes; [`Authed::require`] is the role
//!   check each handler states explicitly, so every route has an owner role.

use std::net::SocketAddr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
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

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorBody, Fields, Msg};
use super::extract::ApiJson;
use crate::central::db::{Actor, Db, RepoError, audit, now_ms};
use crate::central::repo::operators::{self, Operator, OperatorChange};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "gh_session";
/// The header carrying the CSRF token on unsafe requests of cookie sessions.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Consecutive failures before an account or a source is slowed down.
pub const LOCK_AFTER: i64 = 5;

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

/// Hashes a password with argon2id (blocking: call from `spawn_blocking` or a CLI).
pub fn hash_password_blocking(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password")
        .to_string()
}

/// Hashes a password on the blocking pool.
pub async fn hash_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || hash_password_blocking(&password))
        .await
        .map_err(|_| ApiError::Internal)
}

/// Checks a password against a stored hash, on the blocking pool.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
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
        "INSERT INTO sessions (token_hash, operator_id, csrf_token, created_ms, expires_ms) \
         VALUES ($1, $2, $3, $4, $5)",
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
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE && !value.is_empty()).then(|| value.to_string())
        })
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
        let row = sqlx::query(
            "SELECT operator_id, csrf_token, expires_ms FROM sessions WHERE token_hash = $1",
        )
        .bind(sha256_hex(&token))
        .fetch_optional(state.db.pool())
        .await
        .map_err(RepoError::from)?
        .ok_or(ApiError::Unauthenticated)?;
        if row.get::<i64, _>("expires_ms") <= now_ms() {
            return Err(ApiError::Unauthenticated);
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

/// The client's address, when the server knows it (it does behind `into_make_service_with_connect_info`).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".into(), |ci| ci.0.ip().to_string()),
        ))
    }
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

fn lock_duration_ms(failures: i64) -> i64 {
    if failures < LOCK_AFTER {
        return 0;
    }
    let doublings = (failures - LOCK_AFTER).min(4) as u32;
    (60_000i64 << doublings).min(15 * 60_000)
}

fn too_many(until_ms: i64) -> ApiError {
    let secs = ((until_ms - now_ms()) / 1000).max(1);
    ApiError::TooManyRequests(Msg::new(
        format!("登录失败次数过多，请在 {secs} 秒后重试"),
        format!("Too many failed sign-ins; try again in {secs} s"),
    ))
}

/// Records a failure from a source address; returns until when it is slowed down.
async fn source_failed(db: &Db, source: &str) -> Result<i64, RepoError> {
    let now = now_ms();
    let failures: i64 = sqlx::query_scalar(
        "INSERT INTO login_failures (source, failures, last_ms) VALUES ($1, 1, $2) \
         ON CONFLICT (source) DO UPDATE SET failures = CASE WHEN login_failures.last_ms < $3 \
         THEN 1 ELSE login_failures.failures + 1 END, last_ms = $2 RETURNING failures",
    )
    .bind(source)
    .bind(now)
    .bind(now - 15 * 60_000)
    .fetch_one(db.pool())
    .await?;
    Ok(now + lock_duration_ms(failures))
}

async fn source_locked_until(db: &Db, source: &str) -> Result<i64, RepoError> {
    let row = sqlx::query("SELECT failures, last_ms FROM login_failures WHERE source = $1")
        .bind(source)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map_or(0, |r| {
        r.get::<i64, _>("last_ms") + lock_duration_ms(r.get::<i64, _>("failures"))
    }))
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
    let source_until = source_locked_until(&state.db, &source).await?;
    if source_until > now {
        return Err(too_many(source_until));
    }
    let account = operators::credentials(&state.db, req.username.trim()).await?;
    if let Some(acc) = &account
        && acc.locked_until_ms > now
    {
        return Err(too_many(acc.locked_until_ms));
    }
    let hash = account
        .as_ref()
        .map_or_else(|| decoy_hash().to_string(), |a| a.password_hash.clone());
    let ok = verify_password(req.password, hash).await;
    match account {
        Some(acc) if ok && acc.operator.enabled => {
            operators::login_succeeded(&state.db, acc.operator.id).await?;
            sqlx::query("DELETE FROM login_failures WHERE source = $1")
                .bind(&source)
                .execute(state.db.pool())
                .await
                .map_err(RepoError::from)?;
            let session = create_session(&state.db, acc.operator.id, state.session_ttl_ms).await?;
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
        other => {
            source_failed(&state.db, &source).await?;
            if let Some(acc) = other {
                let failures = acc.failed_logins + 1;
                let until = if failures >= LOCK_AFTER {
                    now + lock_duration_ms(failures)
                } else {
                    0
                };
                operators::login_failed(&state.db, acc.operator.id, until).await?;
                if failures == LOCK_AFTER {
                    tracing::warn!(username = %acc.operator.username, %source, "login alarm: {LOCK_AFTER} consecutive failures");
                    let mut conn = state.db.pool().acquire().await.map_err(RepoError::from)?;
                    audit(
                        &mut conn,
                        &Actor::system(),
                        "login_alarm",
                        "operator",
                        acc.operator.id,
                        None,
                        Some(&serde_json::json!({ "failures": failures, "source": source })),
                    )
                    .await?;
                }
            }
            Err(ApiError::LoginFailed)
        }
    }
}

/// Sign out: ends this session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    _authed: Authed,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(token) = bearer_token(&headers).or_else(|| cookie_token(&headers)) {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(sha256_hex(&token))
            .execute(state.db.pool())
            .await
            .map_err(RepoError::from)?;
    }
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

/// Checks a new password's strength; `field` names it in the error.
pub fn check_password_strength(password: &str, field: &str, f: &mut Fields) {
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    if password.chars().count() < 10 || classes.iter().filter(|c| **c).count() < 3 {
        f.add(
            field,
            "weak_password",
            Msg::new(
                "密码至少 10 位，且包含大写字母、小写字母、数字、符号中的三类",
                "A password needs at least 10 characters from three of: upper case, lower case, digits, symbols",
            ),
        );
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
    check_password_strength(&req.new_password, "new_password", &mut f);
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

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
}
