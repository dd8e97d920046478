//! The pages' CSS, JavaScript and icon, embedded in the binary with `include_str!` so a booth
//! PC with no internet gets everything from the server. Hand-written: no build step, no CDN.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (name, content type, body).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "gatehouse.css",
        "text/css; charset=utf-8",
        include_str!("assets/gatehouse.css"),
    ),
    (
        "gatehouse.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/gatehouse.js"),
    ),
    (
        "alarms.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/alarms.js"),
    ),
    (
        "print.css",
        "text/css; charset=utf-8",
        include_str!("assets/print.css"),
    ),
    ("icon.svg", "image/svg+xml", include_str!("assets/icon.svg")),
    (
        "paper.css",
        "text/css; charset=utf-8",
        include_str!("assets/paper.css"),
    ),
    (
        "paper.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/paper.js"),
    ),
    (
        "admin.css",
        "text/css; charset=utf-8",
        include_str!("assets/admin.css"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/admin.js"),
    ),
    (
        "alarms.css",
        "text/css; charset=utf-8",
        include_str!("assets/alarms.css"),
    ),
    (
        "pass.css",
        "text/css; charset=utf-8",
        include_str!("assets/pass.css"),
    ),
    (
        "visit.css",
        "text/css; charset=utf-8",
        include_str!("assets/visit.css"),
    ),
    (
        "visit.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/visit.js"),
    ),
];

/// `GET /assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
