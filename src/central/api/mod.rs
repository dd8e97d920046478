//! The admin REST API under `/api/v1` (axum), with its OpenAPI document at
//! `/api/v1/openapi.json`.
//!
//! Each resource module exposes `routes()`, an `OpenApiRouter` built with utoipa-axum's
//! `routes!`, which registers a handler and its OpenAPI entry together: the document is
//! generated from the handlers and cannot drift from them. Errors are [`error::ApiError`]
//! (one body shape, messages in zh-CN or English by `Accept-Language`); who may call what is
//! checked for every route from one table ([`policy::POLICY`]) before any body is read, and
//! handlers add the finer checks (an approver's department, a guard's gates).

pub mod alarms;
pub mod applications;
pub mod audit;
pub mod auth;
pub mod blacklist;
pub mod bookings;
pub mod bulk;
pub mod console;
pub mod credentials;
pub mod duty;
pub mod error;
pub mod events;
pub mod extract;
pub mod gates;
pub mod headers;
pub mod health;
pub mod locks;
pub mod operators;
pub mod permits;
pub mod persons;
pub mod policy;
pub mod retention;
pub mod stats;
pub mod sync;
pub mod vehicles;
pub mod visits;

use utoipa_axum::router::OpenApiRouter;

use crate::central::db::Db;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    /// How long a session lasts (a guard's shift and a bit).
    pub session_ttl_ms: i64,
    /// Mark the session cookie `Secure` (when served over HTTPS).
    pub secure_cookies: bool,
    /// Sign-in and session settings: trusted proxies, idle expiry, the site's words.
    pub auth: std::sync::Arc<auth::AuthSettings>,
    /// What the live pages listen on.
    pub live: crate::central::live::LiveHub,
    /// How long passage events are kept (`[retention]` in server.toml).
    pub retention: crate::central::retention::RetentionConfig,
    /// Bulk import jobs and their progress.
    pub jobs: bulk::Jobs,
    /// Woken by an upload that queued campus-presence changes, for the sync server's presence
    /// publisher ([`crate::central::repo::sync::publish_presence`]).
    pub presence_queued: std::sync::Arc<tokio::sync::Notify>,
    /// The site's time zone (`server.timezone`): the days, hours and local times shown and
    /// counted are its.
    pub site_tz: chrono_tz::Tz,
}

impl AppState {
    /// State with the default settings: 12-hour sessions ending after 30 idle minutes, cookies
    /// without `Secure`, no trusted proxies.
    pub fn new(db: Db) -> AppState {
        AppState {
            db,
            session_ttl_ms: 12 * 3600 * 1000,
            secure_cookies: false,
            auth: Default::default(),
            live: crate::central::live::LiveHub::new(),
            retention: Default::default(),
            jobs: Default::default(),
            presence_queued: Default::default(),
            site_tz: crate::central::config::DEFAULT_TIMEZONE,
        }
    }
}

/// The largest request body accepted (1 MiB).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = api_routes().split_for_parts();
    doc.info.title = "Gatehouse API".into();
    doc.info.description = Some("校园车辆门禁与大门卡口管理系统 — admin API".into());
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    document_malformed_requests(&mut doc);
    doc
}

/// Adds the answers every operation can give to a malformed request, where its own entry does
/// not list them: 400 (a body that is not JSON, a path parameter that does not parse:
/// [`extract`]) on every operation, and 422 (a query or body field of the wrong shape) on those
/// that take parameters or a body.
fn document_malformed_requests(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{Ref, ResponseBuilder, content::ContentBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let takes_input =
                op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let responses = &mut op.responses.responses;
            responses.entry("400".into()).or_insert_with(|| {
                error("Malformed request: a body that is not JSON, or a path parameter that does not parse").into()
            });
            if takes_input {
                responses
                    .entry("422".into())
                    .or_insert_with(|| error("A parameter or body field is invalid").into());
            }
        }
    }
}

/// The whole API as an axum router: routes, the OpenAPI document at `/api/v1/openapi.json`,
/// the body limit, error localisation and security headers ([`headers`]); plus `/healthz`, `/readyz` and `/metrics`
/// ([`health`], outside the policy table: open, no personal data).
pub fn app(state: AppState) -> axum::Router {
    use axum::routing::get;
    let (router, _) = api_routes().split_for_parts();
    let doc = std::sync::Arc::new(openapi());
    router
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            policy::enforce,
        ))
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json((*doc).clone()) }
            }),
        )
        .merge(health::routes())
        .route_layer(axum::middleware::from_fn(health::track))
        .with_state(state.clone())
        .merge(crate::web::router(state))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(error::localize))
        .layer(axum::middleware::from_fn(headers::security_headers))
}

/// The API's routes with their OpenAPI entries, before state is attached.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::routes())
        .merge(operators::routes())
        .merge(persons::routes())
        .merge(vehicles::routes())
        .merge(credentials::routes())
        .merge(permits::routes())
        .merge(bookings::routes())
        .merge(blacklist::routes())
        .merge(locks::routes())
        .merge(gates::routes())
        .merge(events::routes())
        .merge(audit::routes())
        .merge(sync::routes())
        .merge(stats::routes())
        .merge(applications::routes())
        .merge(retention::routes())
        .merge(bulk::routes())
        .merge(console::routes())
        .merge(visits::routes())
        .merge(duty::routes())
        .merge(alarms::routes())
}
