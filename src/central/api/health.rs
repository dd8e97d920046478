//! The central server's operational endpoints, outside the documented `/api/v1`: `/healthz`
//! (the process answers), `/readyz` (the database answers and carries every migration this
//! binary knows), `/metrics` (Prometheus), plus the middleware that times every HTTP request.
//!
//! Who may call them: anyone who can reach the listener, without signing in, like a load
//! balancer or a Prometheus server does. They carry no personal data (no plates, names or tags;
//! counts by gate, lane, reason and route template only), and the policy table does not list
//! them because they are not part of the API. A site that exposes the server beyond the campus
//! network keeps them off the public side at its reverse proxy (README, Deployment).
//!
//! What it never does: reveal the database URL or an error's SQL text (`/readyz` says only what
//! is not ready).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::central::db::DbKind;
use crate::central::state::AppState;

/// `/healthz`, `/readyz` and `/metrics`.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let migrator = match state.db.kind() {
        DbKind::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        DbKind::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    let latest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Result<Option<i64>, sqlx::Error> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_one(state.db.pool())
            .await;
    match applied {
        Ok(Some(v)) if v >= latest => (StatusCode::OK, "ready\n").into_response(),
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: database migrations not applied\n",
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: database unreachable\n",
            )
                .into_response()
        }
    }
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::encode_central(),
    )
        .into_response()
}

/// Times a request into `gatehouse_http_request_duration_seconds`, labelled with the route
/// template (`/api/v1/persons/{id}`), never the raw path.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    crate::metrics::http_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
