//! The role × route matrix: every route of the OpenAPI document, called with no session and as
//! every role. Only the allowed combinations get past the door; the rest get 401 or 403 — even
//! with a malformed body, which an unauthorised caller must not get validated.

use crate::harness::{TestApp, sqlite};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use gatehouse::central::api::auth::{Role, create_session};
use gatehouse::central::api::policy::{Access, POLICY, access};

fn documented_routes(doc: &serde_json::Value) -> Vec<(Method, String)> {
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push((method.to_uppercase().parse().unwrap(), path.clone()));
        }
    }
    routes
}

fn concrete(path: &str) -> String {
    path.replace("{plate}", "%E4%BA%ACA12345")
        .replace(['{', '}'], "")
        .replace("/id", "/999999")
        .replace("/lane_id", "/999999")
}

#[tokio::test]
async fn every_route_with_every_role_and_without_a_session_only_lets_the_allowed_through() {
    let app = TestApp::spawn(sqlite().await).await;
    let doc = serde_json::to_value(gatehouse::central::server::openapi()).unwrap();
    let routes = documented_routes(&doc);
    assert!(
        routes.len() >= 40,
        "the whole API is documented ({} routes)",
        routes.len()
    );
    for (method, route) in &routes {
        let rule = access(method, route)
            .unwrap_or_else(|| panic!("{method} {route} has no access rule in the policy"));
        let path = concrete(route);
        let with_body = method == Method::POST || method == Method::PUT;

        // Signing out ends the session it is called with: give it a session of its own.
        let signs_out = route == "/api/v1/auth/logout";
        let mut fresh = std::collections::HashMap::new();
        if signs_out {
            for role in Role::ALL {
                let s = create_session(&app.db, app.operator_id(role), 60_000)
                    .await
                    .unwrap();
                fresh.insert(role, s.token);
            }
        }
        let request = |role: Option<Role>, body: &str| {
            let mut b = Request::builder().method(method.clone()).uri(&path);
            if let Some(role) = role {
                let token = if signs_out {
                    fresh[&role].as_str()
                } else {
                    app.token(role)
                };
                b = b.header("authorization", format!("Bearer {token}"));
            }
            if with_body {
                b = b.header("content-type", "application/json");
            }
            b.body(Body::from(body.to_string())).unwrap()
        };

        let (status, _, body) = app.send(request(None, "{}")).await;
        if rule == Access::Public {
            assert_ne!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {route} is public"
            );
        } else {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {route} without a session: {body}"
            );
        }

        for role in Role::ALL {
            let allowed = match rule {
                Access::Public | Access::SignedIn => true,
                Access::Roles(roles) => roles.contains(&role),
            };
            if allowed {
                let (status, _, body) = app.send(request(Some(role), "{}")).await;
                assert_ne!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {route} as {role:?}: {body}"
                );
                // Approvers and guards are allowed in, then scoped (their department, their
                // gates), which may still refuse this particular record.
                if status == StatusCode::FORBIDDEN {
                    assert!(
                        matches!(role, Role::Approver | Role::Guard),
                        "{method} {route} is allowed for {role:?} but answered 403: {body}"
                    );
                }
            } else {
                let (status, _, body) = app.send(request(Some(role), "{ not json")).await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{method} {route} as {role:?} must be refused before its body is read: {body}"
                );
                assert_eq!(body["code"], "forbidden");
            }
        }
    }
}

#[tokio::test]
async fn the_policy_states_the_products_rules() {
    let roles_of = |method: &str, route: &str| match access(&method.parse().unwrap(), route) {
        Some(Access::Roles(r)) => r.to_vec(),
        other => panic!("{method} {route}: {other:?}"),
    };
    for (method, route, rule) in POLICY {
        let Access::Roles(roles) = rule else { continue };
        // Viewers read; they never change anything.
        if *method != "GET" {
            assert!(
                !roles.contains(&Role::Viewer),
                "{method} {route} lets a viewer write"
            );
        }
        // Operators and the audit log are the office's and the administrator's alone.
        if route.starts_with("/api/v1/operators") || route.starts_with("/api/v1/audit") {
            assert!(
                !roles.contains(&Role::Guard)
                    && !roles.contains(&Role::Viewer)
                    && !roles.contains(&Role::Approver)
            );
        }
    }
    // Only the security office (and administrators) issue, change and withdraw exit passes.
    for (method, route) in [
        ("POST", "/api/v1/permits"),
        ("PUT", "/api/v1/permits/{id}"),
        ("POST", "/api/v1/permits/{id}/revoke"),
        ("POST", "/api/v1/blacklist"),
        ("POST", "/api/v1/gates/{id}/mode"),
    ] {
        assert_eq!(
            roles_of(method, route),
            vec![Role::Admin, Role::Security],
            "{method} {route}"
        );
    }
    // Operators are administrators' alone.
    assert_eq!(roles_of("POST", "/api/v1/operators"), vec![Role::Admin]);
    // Guards register walk-in visitors and their arrivals, but do not approve bookings.
    assert!(roles_of("POST", "/api/v1/bookings").contains(&Role::Guard));
    assert!(roles_of("POST", "/api/v1/bookings/{id}/arrive").contains(&Role::Guard));
    assert!(!roles_of("POST", "/api/v1/bookings/{id}/approve").contains(&Role::Guard));
}
