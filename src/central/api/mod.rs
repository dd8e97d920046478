//! The admin REST API under `/api/v1` (axum), with its OpenAPI document at
//! `/api/v1/openapi.json`.
//!
//! Each resource module exposes `routes()`, an `OpenApiRouter` built with utoipa-axum's
//! `routes!`, which registers a handler and its OpenAPI entry together: the document is
//! generated from the handlers and cannot drift from them. Errors are [`error::ApiError`]
//! (one body shape, messages in zh-CN or English by `Accept-Language`); who may call what is
//! checked in every handler with [`auth::Authed::require`].

pub mod audit;
pub mod auth;
pub mod blacklist;
pub mod bookings;
pub mod credentials;
pub mod error;
pub mod events;
pub mod extract;
pub mod gates;
pub mod locks;
pub mod operators;
pub mod permits;
pub mod persons;
pub mod vehicles;

use utoipa_axum::router::OpenApiRouter;

use crate::central::db::Db;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
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
}
