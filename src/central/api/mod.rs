//! The admin REST API under `/api/v1` (axum), with its OpenAPI document at
//! `/api/v1/openapi.json`.
//!
//! Each resource module exposes `routes()`, an `OpenApiRouter` built with utoipa-axum's
//! `routes!`, which registers a handler and its OpenAPI entry together: the document is
//! generated from the handlers and cannot drift from them. Errors are [`error::ApiError`]
//! (one body shape, messages in zh-CN or English by `Accept-Language`); who may call what is
//! checked for every route from one table ([`policy::POLICY`]) before any body is read, and
//! handlers add the finer checks (an approver's department, a guard's gates).
//! [`crate::central::server`] puts the routes, the document and the layers together.
//!
//! What it never does: name the pages (`crate::web`), which depend on it.

pub mod alarms;
pub mod applications;
pub mod audit;
pub mod auth;
pub mod blacklist;
pub mod bookings;
pub mod booth_rules;
pub mod bulk;
pub mod console;
pub mod corrections;
pub mod credentials;
pub mod duty;
pub mod error;
pub mod events;
pub mod extract;
pub mod gates;
pub mod headers;
pub mod health;
pub mod host_visits;
pub mod locks;
pub mod notifications;
pub mod operators;
pub mod passages;
pub mod permits;
pub mod persons;
pub mod photos;
pub mod pickers;
pub mod policy;
pub mod public_visits;
pub mod retention;
pub mod settings;
pub mod stats;
pub mod sync;
pub mod vehicles;
pub mod visits;

use utoipa_axum::router::OpenApiRouter;

use crate::central::state::AppState;

/// The largest request body accepted (1 MiB).
pub const BODY_LIMIT: usize = 1024 * 1024;

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
        .merge(corrections::routes())
        .merge(audit::routes())
        .merge(sync::routes())
        .merge(stats::routes())
        .merge(applications::routes())
        .merge(retention::routes())
        .merge(bulk::routes())
        .merge(console::routes())
        .merge(visits::routes())
        .merge(passages::routes())
        .merge(duty::routes())
        .merge(alarms::routes())
        .merge(photos::routes())
        .merge(pickers::routes())
        .merge(settings::routes())
        .merge(public_visits::routes())
        .merge(host_visits::routes())
        .merge(notifications::routes())
}
