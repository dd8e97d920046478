//! The API's one error type and its one body shape: `{code, message, fields?}`.
//!
//! Every message is written in both languages ([`Msg`]); the response is rendered in the
//! language the request asked for (`Accept-Language`; zh-CN by default, English when the client
//! prefers it) by the [`localize`] middleware, because `IntoResponse` cannot see the request.
//! Internal details (SQL text, file paths) never reach a client: a database error is logged
//! and answered with a generic 500.

use axum::Json;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::central::db::RepoError;
pub use crate::central::validate::FieldError;
use crate::domain::PlateError;
use crate::i18n::{Lang, Msg};

/// Collects field errors; [`Fields::finish`] turns any into a 422.
#[derive(Debug, Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// A refused plate in `field`: code [`PlateError::code`] and [`Msg::plate`], so a bad plate
    /// gives one code and one message whichever route it was sent to.
    pub fn plate(&mut self, field: impl Into<String>, e: &PlateError) {
        self.add(field, e.code(), Msg::plate(e));
    }

    pub fn add(&mut self, field: impl Into<String>, code: &'static str, message: Msg) {
        self.0.push(FieldError {
            field: field.into(),
            code,
            message,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` if no field was wrong, else the 422 with every error.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// Everything an API call can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 401: no valid session or token.
    Unauthenticated,
    /// 401 on sign-in: wrong user name or password (which of the two is not said).
    LoginFailed,
    /// 403: signed in, but the role may not do this (or not for this gate).
    Forbidden,
    /// 404.
    NotFound(Msg),
    /// 409: a uniqueness or state rule.
    Conflict(Msg),
    /// 409 `stale_version`: the row changed since it was read.
    Stale { current: i64 },
    /// 422: invalid fields.
    Validation(Vec<FieldError>),
    /// 400: the request itself is malformed.
    BadRequest(Msg),
    /// 413: the body is over `limit` bytes, the limit of the route it was sent to.
    PayloadTooLarge { limit: usize },
    /// 429.
    TooManyRequests(Msg),
    /// 500: details are logged, never sent.
    Internal,
}

/// Results of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// The error body, as documented in the OpenAPI document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code: unauthenticated, login_failed, forbidden, not_found, conflict, stale_version,
    /// validation_failed, bad_request, payload_too_large, too_many_requests, internal.
    pub code: String,
    /// Human message in the requested language.
    pub message: String,
    /// Per-field errors (validation_failed only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldErrorBody>>,
    /// The current version (stale_version only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
}

/// One field error in a body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldErrorBody {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl ApiError {
    /// 404 for an entity, with a standard message.
    pub fn not_found() -> ApiError {
        ApiError::NotFound(Msg::new("未找到该记录", "No such record"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated | ApiError::LoginFailed => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::Stale { .. } => StatusCode::CONFLICT,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body in `lang`.
    pub fn body(&self, lang: Lang) -> ErrorBody {
        let (code, msg) = match self {
            ApiError::Unauthenticated => (
                "unauthenticated",
                Msg::new("请先登录", "Please sign in first"),
            ),
            ApiError::LoginFailed => (
                "login_failed",
                Msg::new("用户名或密码错误", "Wrong user name or password"),
            ),
            ApiError::Forbidden => (
                "forbidden",
                Msg::new("您的角色无权执行此操作", "Your role may not do this"),
            ),
            ApiError::NotFound(m) => ("not_found", m.clone()),
            ApiError::Conflict(m) => ("conflict", m.clone()),
            ApiError::Stale { current } => (
                "stale_version",
                Msg::new(
                    format!("该记录已被他人修改（当前版本 {current}），请刷新后重试"),
                    format!(
                        "Someone else changed this record (now version {current}); reload and try again"
                    ),
                ),
            ),
            ApiError::Validation(fields) => (
                "validation_failed",
                Msg::new(
                    format!("有 {} 处输入不正确", fields.len()),
                    format!(
                        "{} field{} invalid",
                        fields.len(),
                        if fields.len() == 1 { " is" } else { "s are" }
                    ),
                ),
            ),
            ApiError::BadRequest(m) => ("bad_request", m.clone()),
            ApiError::PayloadTooLarge { limit } => {
                let size = if limit % (1024 * 1024) == 0 {
                    format!("{} MiB", limit / (1024 * 1024))
                } else {
                    format!("{} KiB", limit.div_ceil(1024))
                };
                (
                    "payload_too_large",
                    Msg::new(
                        format!("请求内容超过此接口 {size} 的上限"),
                        format!("The request body is over this route's {size} limit"),
                    ),
                )
            }
            ApiError::TooManyRequests(m) => ("too_many_requests", m.clone()),
            ApiError::Internal => (
                "internal",
                Msg::new(
                    "服务器内部错误，请联系管理员",
                    "Internal server error; please contact the administrator",
                ),
            ),
        };
        ErrorBody {
            code: code.into(),
            message: msg.get(lang).into(),
            fields: match self {
                ApiError::Validation(fields) => Some(
                    fields
                        .iter()
                        .map(|f| FieldErrorBody {
                            field: f.field.clone(),
                            code: f.code.into(),
                            message: f.message.get(lang).into(),
                        })
                        .collect(),
                ),
                _ => None,
            },
            current_version: match self {
                ApiError::Stale { current } => Some(*current),
                _ => None,
            },
        }
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> ApiError {
        match e {
            RepoError::NotFound => ApiError::not_found(),
            RepoError::Conflict(detail) => {
                tracing::debug!(%detail, "unique conflict");
                ApiError::Conflict(Msg::new(
                    "该记录与已有记录重复",
                    "This duplicates an existing record",
                ))
            }
            RepoError::Stale { current } => ApiError::Stale { current },
            RepoError::Reference(detail) => {
                tracing::debug!(%detail, "reference conflict");
                ApiError::Conflict(Msg::new(
                    "该记录引用了不存在的记录，或仍被其他记录引用",
                    "This refers to a record that does not exist, or is still referred to by others",
                ))
            }
            RepoError::Database(e) => {
                tracing::error!(error = %e, "database error");
                ApiError::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Rendered in zh-CN here; `localize` re-renders it in the request's language.
        let mut response = (self.status(), Json(self.body(Lang::Zh))).into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Middleware: renders [`ApiError`] responses in the request's language, and turns bare 4xx
/// responses from axum's own layers (unknown route, wrong method, body too large) into the
/// API's body shape.
pub async fn localize(request: Request, next: Next) -> Response {
    let lang = Lang::from_headers(request.headers());
    let response = next.run(request).await;
    let error = response.extensions().get::<ApiError>().cloned();
    let error = match error {
        Some(e) => e,
        None => match response.status() {
            // Routes with a larger limit map their own 413 (`bulk::start_import`).
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
                limit: super::BODY_LIMIT,
            },
            StatusCode::NOT_FOUND
                if response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .is_none_or(|v| {
                        // A page's own 404 (HTML: the pass page's, the slip's) is kept.
                        !v.as_bytes().starts_with(b"application/json")
                            && !v.as_bytes().starts_with(b"text/html")
                    }) =>
            {
                ApiError::NotFound(Msg::new("没有这个接口", "No such route"))
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                let mut r = (
                    StatusCode::METHOD_NOT_ALLOWED,
                    Json(ErrorBody {
                        code: "method_not_allowed".into(),
                        message: Msg::new(
                            "该接口不支持此方法",
                            "This route does not take this method",
                        )
                        .get(lang)
                        .into(),
                        fields: None,
                        current_version: None,
                    }),
                )
                    .into_response();
                if let Some(allow) = response.headers().get(header::ALLOW) {
                    r.headers_mut().insert(header::ALLOW, allow.clone());
                }
                return r;
            }
            _ => return response,
        },
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&error.body(lang)).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    parts.status = error.status();
    Response::from_parts(parts, axum::body::Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_error_lists_every_field_in_the_requested_language() {
        let mut f = Fields::new();
        f.add(
            "plate",
            "invalid_plate",
            Msg::new("车牌号无效", "Invalid plate"),
        );
        f.add(
            "valid_until",
            "reversed_window",
            Msg::new("结束早于开始", "Ends before it starts"),
        );
        let err = f.finish().unwrap_err();
        let body = err.body(Lang::En);
        assert_eq!(body.code, "validation_failed");
        assert_eq!(body.message, "2 fields are invalid");
        let fields = body.fields.unwrap();
        assert_eq!(fields[0].field, "plate");
        assert_eq!(fields[1].message, "Ends before it starts");
        assert_eq!(err.body(Lang::Zh).fields.unwrap()[0].message, "车牌号无效");
    }
}
