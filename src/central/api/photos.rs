//! `GET /api/v1/photos/{sha256}`: a camera photo (plate close-up or scene) that a gate uploaded,
//! as `image/jpeg`, for the console, the office's pages and passage search. Any operator who
//! can see events may fetch one (the policy table); a guard only from the gates they work at.
//! 404 when the centre does not hold it (not uploaded yet, or past `[photos] retention_days`).
//!
//! The reply is private to the browser (`Cache-Control: private`): a photo's bytes never change
//! (its name is their hash), so the browser may keep it for an hour, and no shared cache ever
//! does. `X-Content-Type-Options: nosniff` keeps the browser from reading it as anything else.
//!
//! What it never does: serve a photo past its retention, or say whether a photo it refuses a
//! guard exists.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authed;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::ApiPath;
use crate::central::db::now_ms;
use crate::central::photos::PhotoStoreError;
use crate::central::state::AppState;
use crate::i18n::Msg;

/// How long a browser may keep a photo.
pub const PHOTO_MAX_AGE_S: u32 = 3600;

fn not_found(sha256: &str) -> ApiError {
    let shown: String = sha256.chars().take(64).collect();
    ApiError::NotFound(Msg::new(
        format!("中心没有照片 {shown}（尚未上传或已过保存期）"),
        format!("the centre holds no photo {shown} (not uploaded yet, or past its retention)"),
    ))
}

/// A camera photo by its SHA-256.
#[utoipa::path(get, path = "/api/v1/photos/{sha256}", tag = "photos",
    params(("sha256" = String, Path, description = "the photo's SHA-256, lower-case hex")),
    responses((status = 200, content_type = "image/jpeg", body = Vec<u8>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn photo(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(sha256): ApiPath<String>,
) -> ApiResult<Response> {
    let fetched = state
        .photos
        .fetch(&state.db, &sha256, now_ms())
        .await
        .map_err(|e| match e {
            PhotoStoreError::Repo(e) => ApiError::from(e),
            other => {
                tracing::error!(error = %other, "cannot read a photo");
                ApiError::Internal
            }
        })?;
    let Some((gate, bytes)) = fetched else {
        return Err(not_found(&sha256));
    };
    if !authed.can_see_gate(gate) {
        return Err(not_found(&sha256));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg".to_string()),
            (
                header::CACHE_CONTROL,
                format!("private, max-age={PHOTO_MAX_AGE_S}"),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    )
        .into_response())
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(photo))
}
