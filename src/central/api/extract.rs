//! Request extractors that answer bad input the API's way: a malformed body is a 400, a body or
//! query string of the wrong shape is a 422 naming the field (serde's path to the error), a
//! path segment that does not parse is a 400 naming the parameter, all with bilingual messages. Also pagination: [`PageQuery`] in, [`PageOf`] out.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, Fields};
use crate::central::db::{MAX_PAGE, Page, Paged};
use crate::i18n::Msg;

/// A JSON request body (or response).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

fn field_name(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." || text.is_empty() {
        "body".into()
    } else {
        text
    }
}

/// Deserialises JSON bytes with the API's error mapping.
pub fn from_json_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every request body of the API is an object. serde also reads a struct from an array of
    // its fields in order (`[null, null]`), which the OpenAPI document does not allow and no
    // client means (found by schemathesis): refused before it is read.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        let mut f = Fields::new();
        f.add(
            "",
            "invalid_type",
            Msg::new(
                "请求体须为 JSON 对象 {…}，不能是数组",
                "The request body must be a JSON object {…}, not an array",
            ),
        );
        return Err(f.finish().unwrap_err());
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize::<_, T>(&mut de);
    // Trailing bytes after the value are a syntax error of the whole body.
    if parsed.is_ok()
        && let Err(e) = de.end()
    {
        return Err(ApiError::BadRequest(Msg::new(
            format!("请求体不是有效的 JSON：{e}"),
            format!("The request body is not valid JSON: {e}"),
        )));
    }
    match parsed {
        Ok(v) => {
            unprintable_fields(bytes)?;
            Ok(v)
        }
        Err(e) => {
            let field = field_name(e.path());
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let detail = inner.to_string();
                    let code = if detail.starts_with("unknown field") {
                        "unknown_field"
                    } else if detail.starts_with("missing field") {
                        "missing_field"
                    } else if detail.starts_with("invalid type") {
                        "invalid_type"
                    } else {
                        "invalid_value"
                    };
                    let mut f = Fields::new();
                    f.add(
                        field.clone(),
                        code,
                        Msg::new(
                            format!("字段 {field} 无效：{detail}"),
                            format!("{field}: {detail}"),
                        ),
                    );
                    Err(f.finish().unwrap_err())
                }
                _ => Err(ApiError::BadRequest(Msg::new(
                    format!("请求体不是有效的 JSON：{inner}"),
                    format!("The request body is not valid JSON: {inner}"),
                ))),
            }
        }
    }
}

/// Fields whose text is typed in a text area and may hold line breaks (notes, reasons, purposes,
/// comments); every other string field is one line.
const MULTILINE_FIELDS: &[&str] = &["note", "reason", "purpose", "comment"];

/// Refuses control characters (and bidirectional overrides) in every string of a JSON body —
/// names, plates, notes — with a 422 naming each field: such text is invisible on the pages,
/// breaks CSV rows and logs, and can make one plate look like another
/// ([`crate::domain::text::unprintable_char`]).
fn unprintable_fields(bytes: &[u8]) -> Result<(), ApiError> {
    fn walk(value: &serde_json::Value, path: &str, key: &str, f: &mut Fields) {
        match value {
            serde_json::Value::String(text) => {
                let multiline = MULTILINE_FIELDS.contains(&key);
                if let Some(c) = crate::domain::text::unprintable_char(text, multiline) {
                    let code = format!("U+{:04X}", c as u32);
                    let path = if path.is_empty() { "body" } else { path };
                    f.add(
                        path.to_string(),
                        "control_character",
                        Msg::new(
                            format!("{path} 含有不可见的控制字符（{code}），请删除后重试"),
                            format!(
                                "{path} contains an invisible control character ({code}); remove it"
                            ),
                        ),
                    );
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"), key, f);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    let child = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(item, &child, k, f);
                }
            }
            _ => {}
        }
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    let mut f = Fields::new();
    walk(&value, "", "body", &mut f);
    f.finish()
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !is_json {
            return Err(ApiError::BadRequest(Msg::new(
                "请求体须为 JSON（Content-Type: application/json）",
                "The request body must be JSON (Content-Type: application/json)",
            )));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge {
                    limit: super::BODY_LIMIT,
                }
            } else {
                ApiError::BadRequest(Msg::new(
                    "无法读取请求体",
                    "The request body cannot be read",
                ))
            }
        })?;
        from_json_bytes(&bytes).map(ApiJson)
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize::<_, T>(de)
            .map(ApiQuery)
            .map_err(|e| {
                let field = field_name(e.path());
                let detail = e.into_inner().to_string();
                let mut f = Fields::new();
                f.add(
                    field.clone(),
                    "invalid_query",
                    Msg::new(
                        format!("查询参数 {field} 无效：{detail}"),
                        format!("query {field}: {detail}"),
                    ),
                );
                f.finish().unwrap_err()
            })
    }
}

/// Path parameters (`/persons/{id}`). A segment that does not parse (`/persons/abc`,
/// `/persons/99999999999999999999`) is a 400 in the API's body shape, naming the parameter,
/// not axum's plain-text rejection.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let (name, value) = match e.kind() {
                    ErrorKind::ParseErrorAtKey { key, value, .. } => (key.clone(), value.clone()),
                    ErrorKind::ParseError { value, .. } => ("id".to_string(), value.clone()),
                    ErrorKind::ParseErrorAtIndex { index, value, .. } => {
                        (format!("#{index}"), value.clone())
                    }
                    ErrorKind::InvalidUtf8InPathParam { key } => (key.clone(), String::new()),
                    _ => ("path".to_string(), String::new()),
                };
                Err(ApiError::BadRequest(Msg::new(
                    format!("路径参数 {name} 无效：“{value}”不是合法的值（编号须为整数）"),
                    format!(
                        "path parameter {name}: {value:?} is not a valid value (ids are whole numbers)"
                    ),
                )))
            }
            Err(e) => {
                tracing::error!(error = %e, "path parameters missing on a route");
                Err(ApiError::Internal)
            }
        }
    }
}

/// `?page=&per_page=`: 1-based page, 1–500 per page (50 by default).
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page number, from 1.
    pub page: Option<i64>,
    /// Items per page, 1–500 (default 50).
    pub per_page: Option<i64>,
}

/// The deepest offset served: beyond it a client should narrow its search.
const MAX_OFFSET: i64 = 10_000_000;

impl PageQuery {
    /// Validates the bounds; absurd values are a 422 naming the parameter.
    pub fn page(&self) -> Result<Page, ApiError> {
        let mut f = Fields::new();
        let page = self.page.unwrap_or(1);
        let per_page = self.per_page.unwrap_or(50);
        if page < 1 {
            f.add(
                "page",
                "out_of_range",
                Msg::new("页码须从 1 开始", "page starts at 1"),
            );
        }
        if !(1..=MAX_PAGE).contains(&per_page) {
            f.add(
                "per_page",
                "out_of_range",
                Msg::new(
                    format!("每页条数须在 1 到 {MAX_PAGE} 之间"),
                    format!("per_page must be between 1 and {MAX_PAGE}"),
                ),
            );
        }
        f.finish()?;
        let offset = (page - 1).saturating_mul(per_page);
        if offset > MAX_OFFSET {
            let mut f = Fields::new();
            f.add(
                "page",
                "out_of_range",
                Msg::new(
                    "页码过大，请缩小查询范围",
                    "page is too deep; narrow the search",
                ),
            );
            f.finish()?;
        }
        Ok(Page {
            limit: per_page,
            offset,
        })
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PageOf<T> {
    pub items: Vec<T>,
    /// Matching items in all pages.
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// Wraps repository results with the page that was asked for.
pub fn paged<T>(result: Paged<T>, query: &PageQuery) -> PageOf<T> {
    PageOf {
        items: result.items,
        total: result.total,
        page: query.page.unwrap_or(1),
        per_page: query.per_page.unwrap_or(50),
    }
}
