//! Sign-in, sessions and the API's error shape, on every database kind.

use crate::harness::{PASSWORD, TestApp, bearer, each_database};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use gatehouse::central::api::auth::Role;
use serde_json::json;

fn login_request(username: &str, password: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"username": username, "password": password}).to_string(),
        ))
        .unwrap()
}

#[tokio::test]
async fn a_login_sets_an_httponly_samesite_cookie_and_the_session_works_by_cookie_and_bearer() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (status, headers, body) = app.send(login_request("security", PASSWORD)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let cookie = headers["set-cookie"].to_str().unwrap().to_string();
        assert!(cookie.starts_with("gh_session="), "{cookie}");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        assert!(body["operator"]["roles"] == json!(["security"]));
        assert!(body.get("password_hash").is_none() && !body.to_string().contains("argon2"));
        let token = body["token"].as_str().unwrap();
        let csrf = body["csrf_token"].as_str().unwrap();
        let session_cookie = cookie.split(';').next().unwrap();

        // By cookie: reads work; an unsafe request needs the CSRF token.
        let me = Request::builder()
            .uri("/api/v1/auth/me")
            .header("cookie", session_cookie)
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = app.send(me).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["csrf_token"], csrf);
        let without_csrf = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/auth/logout")
            .header("cookie", session_cookie)
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            app.send(without_csrf).await.0,
            StatusCode::FORBIDDEN,
            "cross-site request forgery is refused"
        );

        // By bearer: no CSRF token needed; logout ends the session.
        let logout = bearer(Method::POST, "/api/v1/auth/logout", token);
        assert_eq!(app.send(logout).await.0, StatusCode::NO_CONTENT);
        let me = bearer(Method::GET, "/api/v1/auth/me", token);
        assert_eq!(app.send(me).await.0, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn five_failed_logins_from_one_source_make_it_wait_raise_an_alarm_and_answer_in_the_clients_language()
 {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        for _ in 0..5 {
            let (status, _, body) = app.send(login_request("guard", "wrong-password")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(body["code"], "login_failed");
            assert_eq!(body["message"], "用户名或密码错误", "zh-CN by default");
        }
        // Even the right password is refused from this source until the wait is over.
        let (status, _, body) = app.send(login_request("guard", PASSWORD)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        let alarms: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'login_alarm'")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert_eq!(alarms, 1);
        let mut request = login_request("guard", PASSWORD);
        request
            .headers_mut()
            .insert("accept-language", "en-US,en;q=0.9".parse().unwrap());
        let (_, _, body) = app.send(request).await;
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("Too many failed sign-ins"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn no_session_is_401_and_a_role_without_rights_is_403() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (status, body) = app.call(Method::GET, "/api/v1/operators", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "unauthenticated");
        for role in [
            Role::Security,
            Role::Guard,
            Role::Approver,
            Role::Viewer,
            Role::Applicant,
        ] {
            let (status, _) = app
                .call(Method::GET, "/api/v1/operators", Some(role), None)
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}");
        }
        let (status, body) = app
            .call(Method::GET, "/api/v1/operators", Some(Role::Admin), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        // The harness made one operator per role.
        assert_eq!(body["total"], Role::ALL.len());
    }
}

#[tokio::test]
async fn malformed_json_unknown_fields_and_oversized_bodies_are_refused_precisely() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let raw = |body: Vec<u8>| {
            Request::builder()
                .method(Method::POST)
                .uri("/api/v1/operators")
                .header(
                    "authorization",
                    format!("Bearer {}", app.token(Role::Admin)),
                )
                .header("content-type", "application/json")
                .header("accept-language", "en")
                .body(Body::from(body))
                .unwrap()
        };
        let (status, _, body) = app.send(raw(b"{\"username\": ".to_vec())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["message"].as_str().unwrap().contains("not valid JSON"));

        let (status, _, body) = app
            .send(raw(
                json!({"username": "x", "password": "p", "roles": ["admin"], "colour": 1})
                    .to_string()
                    .into_bytes(),
            ))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["fields"][0]["code"], "unknown_field");

        let (status, _, body) = app
            .send(raw(
                json!({"username": "x", "password": 5, "roles": ["admin"]})
                    .to_string()
                    .into_bytes(),
            ))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["fields"][0]["field"], "password");
        assert_eq!(body["fields"][0]["code"], "invalid_type");

        let big = format!("{{\"username\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
        let (status, _, body) = app.send(raw(big.into_bytes())).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(body["code"], "payload_too_large");

        let (status, body) = app
            .call(
                Method::GET,
                "/api/v1/operators?per_page=100000",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["fields"][0]["field"], "per_page");

        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM operators")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        // Only the harness's operators, one per role.
        assert_eq!(count as usize, Role::ALL.len(), "nothing was stored");
    }
}

#[tokio::test]
async fn an_admin_creates_an_operator_with_a_hashed_password_and_the_change_is_audited() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/operators",
                Some(Role::Admin),
                Some(json!({"username": "wang.guard", "display_name": "王门卫", "password": "Booth-North-88",
                    "roles": ["guard"], "gates": [1]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let hash: String =
            sqlx::query_scalar("SELECT password_hash FROM operators WHERE username = 'wang.guard'")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert!(
            hash.starts_with("$argon2id$"),
            "argon2id, never the password itself"
        );
        let audited: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE entity = 'operator' AND action = 'create' AND operator_name = 'admin'",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert_eq!(audited, 1);
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/operators",
                Some(Role::Admin),
                Some(json!({"username": "li", "password": "short", "roles": ["guard"]})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> = body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec!["password", "gates"]);
    }
}

#[tokio::test]
async fn the_openapi_document_is_served_and_lists_the_auth_and_operator_routes() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (status, doc) = app
            .call(Method::GET, "/api/v1/openapi.json", None, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for path in [
            "/api/v1/auth/login",
            "/api/v1/operators",
            "/api/v1/operators/{id}",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} documented");
        }
    }
}

/// Every `$ref` in `value` (recursively).
fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().unwrap_or_default().to_string());
                } else {
                    refs(v, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_is_valid_every_ref_resolves_and_every_operation_is_complete() {
    let doc = serde_json::to_value(gatehouse::central::server::openapi()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        let params: Vec<&str> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} documents no response"
            );
            for p in &params {
                let declared = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|x| x["name"] == *p && x["in"] == "path"));
                assert!(
                    declared,
                    "{method} {path} does not declare its path parameter {p}"
                );
            }
        }
    }
}

#[tokio::test]
async fn an_admin_changes_disables_and_deletes_an_operator_and_cannot_lock_themselves_out() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let viewer = app.operator_id(Role::Viewer);
        let (status, body) = app
            .call(
                Method::PUT,
                &format!("/api/v1/operators/{viewer}"),
                Some(Role::Admin),
                Some(json!({"display_name": "统计科", "roles": ["viewer", "approver"], "department": "教务处"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["roles"], json!(["viewer", "approver"]));
        assert_eq!(body["department"], "教务处");
        // Disabling ends the operator's sessions at once.
        let (status, _) = app
            .call(
                Method::PUT,
                &format!("/api/v1/operators/{viewer}"),
                Some(Role::Admin),
                Some(json!({"enabled": false})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app
            .call(Method::GET, "/api/v1/auth/me", Some(Role::Viewer), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // No administrator can disable or delete themselves.
        let me = app.operator_id(Role::Admin);
        let (status, body) = app
            .call(
                Method::PUT,
                &format!("/api/v1/operators/{me}"),
                Some(Role::Admin),
                Some(json!({"enabled": false})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["fields"][0]["code"], "self_lockout");
        let (status, _) = app
            .call(
                Method::DELETE,
                &format!("/api/v1/operators/{me}"),
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = app
            .call(
                Method::DELETE,
                &format!("/api/v1/operators/{viewer}"),
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/api/v1/operators/{viewer}"),
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let actions: Vec<String> = sqlx::query_scalar(
            "SELECT action FROM audit_log WHERE entity = 'operator' AND entity_id = $1 ORDER BY id",
        )
        .bind(viewer.to_string())
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        assert_eq!(actions, vec!["create", "update", "update", "delete"]);
    }
}
