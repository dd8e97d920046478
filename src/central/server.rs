//! The centre's HTTP side put together: the API's routes behind the policy table
//! ([`policy`]), the OpenAPI document at `/api/v1/openapi.json`, `/healthz`, `/readyz` and
//! `/metrics` ([`health`]), the pages handed in by the caller, and the layers every reply
//! passes (body limit, error localisation, security headers).
//!
//! What it never does: name the pages' module. The pages depend on the centre, so the caller
//! that knows both (the server command, the demo, tests through `crate::web::site`) passes them
//! in as a router.

use crate::central::api::{BODY_LIMIT, api_routes, error, headers, health, policy};
use crate::central::state::AppState;

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

/// The whole site as an axum router: the API's routes, the OpenAPI document at
/// `/api/v1/openapi.json`, `/healthz`, `/readyz` and `/metrics` ([`health`], outside the policy
/// table: open, no personal data), then `pages` (a router with its own state and access
/// table), all under the body limit, error localisation and security headers ([`headers`]).
pub fn app(state: AppState, pages: axum::Router) -> axum::Router {
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
        .with_state(state)
        .merge(pages)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(error::localize))
        .layer(axum::middleware::from_fn(headers::security_headers))
}
