//! Sign-in hardening, on every database kind: throttling per (source, account) that nobody
//! can turn into a lock-out of the administrator, the unlock action, trusted proxies, the
//! audit of sign-in and sign-out, the password policy, and session expiry (absolute and idle).
//!
//! Time is moved by moving the stored timestamps back (`login_throttle.last_ms`,
//! `sessions.last_used_ms` / `expires_ms`), never by sleeping.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use gatehouse::central::api::auth::{AuthSettings, DECAY_MS, Role};
use gatehouse::central::db::now_ms;
use gatehouse::central::repo::operators::throttle_key;
use gatehouse::central::state::AppState;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::{PASSWORD, TestApp, bearer, each_database};

/// A sign-in request as it arrives from the socket peer `peer`, with extra headers.
fn sign_in(peer: &str, username: &str, password: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/login")
        .header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder
        .body(Body::from(
            json!({"username": username, "password": password}).to_string(),
        ))
        .unwrap();
    let peer: SocketAddr = format!("{peer}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// Sends through `router`; returns status, headers and the JSON body.
async fn send_to(router: &axum::Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

/// Moves the throttle's clock: every failure of (source, username) happened `ms` earlier.
async fn age_failures(app: &TestApp, source: &str, username: &str, ms: i64) {
    sqlx::query(
        "UPDATE login_throttle SET last_ms = last_ms - $3 WHERE source = $1 AND username = $2",
    )
    .bind(source)
    .bind(throttle_key(username))
    .bind(ms)
    .execute(app.db.pool())
    .await
    .unwrap();
}

fn retry_after(headers: &HeaderMap) -> i64 {
    headers["retry-after"].to_str().unwrap().parse().unwrap()
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_strangers_failures_from_another_source_do_not_stop_the_admin_signing_in_from_theirs() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        for _ in 0..12 {
            let (status, _, body) = app
                .send(sign_in("203.0.113.9", "admin", "Wrong-Guess-2026", &[]))
                .await;
            assert!(
                status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
                "{status} {body}"
            );
        }
        let (status, _, body) = app.send(sign_in("10.1.2.3", "admin", PASSWORD, &[])).await;
        assert_eq!(status, StatusCode::OK, "the administrator signs in: {body}");
        // The stranger is still slowed down.
        let (status, _, _) = app
            .send(sign_in("203.0.113.9", "admin", PASSWORD, &[]))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
}

#[tokio::test]
async fn failures_from_one_source_make_each_next_attempt_wait_twice_as_long_and_decay() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let source = "198.51.100.20";
        for i in 0..5 {
            let (status, _, body) = app
                .send(sign_in(source, "guard", "Wrong-Guess-2026", &[]))
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}: {body}");
        }
        // From the 5th failure on, each next attempt waits 2 s, 4 s, 8 s …, even with the
        // right password, and costs no password check.
        for wait in [2, 4, 8] {
            let (status, headers, body) = app.send(sign_in(source, "guard", PASSWORD, &[])).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
            assert_eq!(retry_after(&headers), wait, "{body}");
            assert_eq!(
                body["message"],
                format!("登录失败次数过多，请在 {wait} 秒后重试")
            );
            age_failures(&app, source, "guard", wait * 1000).await;
            let (status, _, body) = app
                .send(sign_in(source, "guard", "Wrong-Guess-2026", &[]))
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "after {wait} s: {body}");
        }
        let (status, headers, _) = app.send(sign_in(source, "guard", PASSWORD, &[])).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after(&headers), 16);
        // Failures decay: after three decay periods, 8 failures count as 5, whose 2 s are long
        // past.
        age_failures(&app, source, "guard", 3 * DECAY_MS).await;
        let (status, _, body) = app.send(sign_in(source, "guard", PASSWORD, &[])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM login_throttle WHERE source = $1 AND username = $2",
        )
        .bind(source)
        .bind(throttle_key("guard"))
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert_eq!(left, 0, "a success clears the (source, account) history");
        let typed: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM login_throttle WHERE username = 'guard'")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert_eq!(typed, 0, "names are kept only as hashes");
    }
}

#[tokio::test]
async fn parallel_guesses_cannot_slip_past_the_wait() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let source = "198.51.100.25";
        let attempts = (0..20).map(|_| app.send(sign_in(source, "guard", "Wrong-Guess-2026", &[])));
        let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
            .await
            .into_iter()
            .map(|(status, _, _)| status)
            .collect();
        let checked = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        assert!(
            (1..=5).contains(&checked),
            "at most 5 passwords checked before the wait: {statuses:?}"
        );
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
            "{statuses:?}"
        );
    }
}

#[tokio::test]
async fn guessing_across_accounts_from_one_source_is_slowed_but_no_other_source_is() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let source = "198.51.100.30";
        for i in 0..20 {
            let (status, _, body) = app
                .send(sign_in(
                    source,
                    &format!("nobody{i}"),
                    "Wrong-Guess-2026",
                    &[],
                ))
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "name {i}: {body}");
        }
        let (status, headers, _) = app.send(sign_in(source, "viewer", PASSWORD, &[])).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after(&headers), 2);
        let (status, _, body) = app
            .send(sign_in("198.51.100.31", "viewer", PASSWORD, &[]))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// Fails `guard`'s sign-in from `source` until it must wait.
async fn lock_out(app: &TestApp, source: &str) {
    for _ in 0..6 {
        app.send(sign_in(source, "guard", "Wrong-Guess-2026", &[]))
            .await;
    }
    let (status, _, _) = app.send(sign_in(source, "guard", PASSWORD, &[])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn an_admins_unlock_and_password_reset_let_the_operator_sign_in_at_once_and_are_audited() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let source = "198.51.100.40";
        let guard = app.operator_id(Role::Guard);
        lock_out(&app, source).await;
        let unlock = format!("/api/v1/operators/{guard}/unlock");
        let (status, _) = app
            .call(Method::POST, &unlock, Some(Role::Security), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "administrators only");
        let (status, body) = app
            .call(Method::POST, &unlock, Some(Role::Admin), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["sources"], 1);
        let (status, _, body) = app.send(sign_in(source, "guard", PASSWORD, &[])).await;
        assert_eq!(status, StatusCode::OK, "unlocked: {body}");
        let (actor, after): (String, String) = sqlx::query_as(
            "SELECT operator_name, after_json FROM audit_log WHERE action = 'unlock' \
             AND entity = 'operator' AND entity_id = $1",
        )
        .bind(guard.to_string())
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert_eq!(actor, "admin");
        assert!(after.contains("\"sources_cleared\":1"), "{after}");

        lock_out(&app, source).await;
        let (status, body) = app
            .call(
                Method::PUT,
                &format!("/api/v1/operators/{guard}"),
                Some(Role::Admin),
                Some(json!({"password": "Lantern-Orchid-7319"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _, body) = app
            .send(sign_in(source, "guard", "Lantern-Orchid-7319", &[]))
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a password reset clears the throttle: {body}"
        );
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/operators/9999/unlock",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn only_a_trusted_proxy_may_name_the_client_by_x_forwarded_for() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let mut state = AppState::new(app.db.clone());
        state.auth = std::sync::Arc::new(AuthSettings {
            trusted_proxies: vec!["10.0.0.0/30".parse().unwrap()],
            ..AuthSettings::default()
        });
        let router = gatehouse::web::site(state);
        let proxy = "10.0.0.1";
        let xff = |v: &'static str| [("x-forwarded-for", v)];
        // A client behind the proxy fails five times and must wait …
        for _ in 0..5 {
            let (status, _, _) = send_to(
                &router,
                sign_in(proxy, "guard", "Wrong-Guess-2026", &xff("198.51.100.7")),
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, _, _) = send_to(
            &router,
            sign_in(proxy, "guard", PASSWORD, &xff("198.51.100.7")),
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        // … and cannot escape by writing another address left of the proxies' own entries
        // (10.0.0.2 is a second trusted hop).
        let (status, _, _) = send_to(
            &router,
            sign_in(
                proxy,
                "guard",
                PASSWORD,
                &xff("203.0.113.1, 198.51.100.7, 10.0.0.2"),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        // Another client behind the same proxy is not slowed down.
        let (status, _, body) = send_to(
            &router,
            sign_in(proxy, "guard", PASSWORD, &xff("198.51.100.8")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let sources: Vec<String> = sqlx::query_scalar(
            "SELECT after_json FROM audit_log WHERE action IN ('sign_in', 'sign_in_failed') ORDER BY id",
        )
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        assert!(sources[0].contains("198.51.100.7"), "{sources:?}");
        assert!(
            sources.last().unwrap().contains("198.51.100.8"),
            "{sources:?}"
        );

        // A peer that is not a trusted proxy cannot choose its address by a header.
        let stranger = "203.0.113.50";
        for forged in [
            "198.51.100.100",
            "198.51.100.101",
            "198.51.100.102",
            "1.2.3.4",
            "5.6.7.8",
        ] {
            let (status, _, _) = send_to(
                &router,
                sign_in(
                    stranger,
                    "viewer",
                    "Wrong-Guess-2026",
                    &[("x-forwarded-for", forged)],
                ),
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, _, _) = send_to(
            &router,
            sign_in(stranger, "viewer", PASSWORD, &xff("198.51.100.200")),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "keyed by the socket peer"
        );
    }
}

#[tokio::test]
async fn sign_in_and_sign_out_are_audited_without_the_password() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let source = "198.51.100.50";
        let secret = "Wrong-Secret-4711";
        app.send(sign_in(source, "security", secret, &[])).await;
        app.send(sign_in(source, "Wrong-Secret-4712", secret, &[]))
            .await;
        let (status, _, body) = app.send(sign_in(source, "security", PASSWORD, &[])).await;
        assert_eq!(status, StatusCode::OK);
        let token = body["token"].as_str().unwrap().to_string();
        let logout = bearer(Method::POST, "/api/v1/auth/logout", &token);
        assert_eq!(app.send(logout).await.0, StatusCode::NO_CONTENT);

        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT action, operator_name, entity_id, after_json FROM audit_log \
             WHERE action IN ('sign_in', 'sign_in_failed', 'sign_out') ORDER BY id",
        )
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        let security = app.operator_id(Role::Security).to_string();
        let summary: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|(a, n, e, _)| (a.as_str(), n.as_str(), e.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("sign_in_failed", "anonymous", security.as_str()),
                ("sign_in_failed", "anonymous", "unknown"),
                ("sign_in", "security", security.as_str()),
                ("sign_out", "security", security.as_str()),
            ]
        );
        assert!(rows[0].3.contains("wrong_password") && rows[0].3.contains(source));
        assert!(rows[1].3.contains("unknown_user"));
        let everything: Vec<String> =
            sqlx::query_scalar("SELECT COALESCE(after_json, '') FROM audit_log")
                .fetch_all(app.db.pool())
                .await
                .unwrap();
        for entry in &everything {
            assert!(
                !entry.contains("Wrong-Secret") && !entry.contains(PASSWORD),
                "no password (nor a password typed as a name) in the audit log: {entry}"
            );
        }
        assert_eq!(audit_count(&app, "login_alarm").await, 0);
    }
}

#[tokio::test]
async fn common_and_site_derived_passwords_are_refused_with_a_clear_message_in_both_languages() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let create = |username: &str, password: &str| json!({"username": username, "password": password, "roles": ["viewer"]});
        for (username, password, code, zh) in [
            ("li.viewer", "P@ssw0rd2026", "common_password", "太常见"),
            ("li.viewer", "Admin@123456", "common_password", "太常见"),
            ("li.viewer", "1qaz@WSX3edc", "common_password", "太常见"),
            ("li.viewer", "Li.viewer-2026", "site_password", "用户名"),
            ("li.viewer", "Gatehouse-2026!", "site_password", "gatehouse"),
        ] {
            let (status, body) = app
                .call(
                    Method::POST,
                    "/api/v1/operators",
                    Some(Role::Admin),
                    Some(create(username, password)),
                )
                .await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{password}: {body}"
            );
            assert_eq!(body["fields"][0]["field"], "password");
            assert_eq!(body["fields"][0]["code"], code, "{password}");
            assert!(
                body["fields"][0]["message"].as_str().unwrap().contains(zh),
                "{body}"
            );
        }
        let (_, body) = app
            .call_lang(
                Method::POST,
                "/api/v1/operators",
                Some(Role::Admin),
                Some(create("li.viewer", "P@ssw0rd2026")),
                "en",
            )
            .await;
        assert!(
            body["fields"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("This password is too common"),
            "{body}"
        );
        // One's own change is held to the same policy.
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/auth/password",
                Some(Role::Viewer),
                Some(json!({"current_password": PASSWORD, "new_password": "Viewer#2026abc"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["fields"][0]["code"], "site_password");
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/operators",
                Some(Role::Admin),
                Some(create("li.viewer", "Lantern-Orchid-7319")),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// Signs in `role`'s user name and returns (token, cookie pair).
async fn session_of(app: &TestApp, username: &str) -> (String, String) {
    let (status, headers, body) = app
        .send(sign_in("198.51.100.60", username, PASSWORD, &[]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = headers["set-cookie"].to_str().unwrap();
    (
        body["token"].as_str().unwrap().to_string(),
        cookie.split(';').next().unwrap().to_string(),
    )
}

/// `GET /api/v1/auth/me` by bearer, and `GET /console` by cookie: (API status, page status,
/// page location).
async fn use_session(app: &TestApp, token: &str, cookie: &str) -> (StatusCode, StatusCode, String) {
    let me = bearer(Method::GET, "/api/v1/auth/me", token);
    let page = Request::builder()
        .uri("/console")
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap();
    let (api, _, _) = app.send(me).await;
    let (page_status, headers, _) = app.send(page).await;
    let location = headers
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (api, page_status, location)
}

#[tokio::test]
async fn an_expired_session_is_refused_by_the_api_and_sends_the_pages_to_sign_in() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (token, cookie) = session_of(&app, "guard").await;
        let (api, page, _) = use_session(&app, &token, &cookie).await;
        assert_eq!((api, page), (StatusCode::OK, StatusCode::OK));
        // The shift is over: the absolute expiry has passed, however busy the session was.
        sqlx::query("UPDATE sessions SET expires_ms = $1")
            .bind(now_ms() - 1)
            .execute(app.db.pool())
            .await
            .unwrap();
        let (api, page, location) = use_session(&app, &token, &cookie).await;
        assert_eq!(api, StatusCode::UNAUTHORIZED);
        assert!(page.is_redirection(), "{page}");
        assert_eq!(location, "/login?next=%2Fconsole");
    }
}

#[tokio::test]
async fn a_session_left_idle_ends_and_one_in_use_does_not() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (token, cookie) = session_of(&app, "guard").await;
        let idle = |minutes: i64| {
            sqlx::query("UPDATE sessions SET last_used_ms = $1").bind(now_ms() - minutes * 60_000)
        };
        // 29 minutes idle: still signed in, and the use counts as activity.
        idle(29).execute(app.db.pool()).await.unwrap();
        let (api, page, _) = use_session(&app, &token, &cookie).await;
        assert_eq!((api, page), (StatusCode::OK, StatusCode::OK));
        let last: i64 = sqlx::query_scalar("SELECT MAX(last_used_ms) FROM sessions")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert!(now_ms() - last < 60_000, "the request was recorded as use");
        // 30 minutes without a request: the session has ended, for the API and the pages.
        idle(30).execute(app.db.pool()).await.unwrap();
        let (api, page, location) = use_session(&app, &token, &cookie).await;
        assert_eq!(api, StatusCode::UNAUTHORIZED);
        assert!(page.is_redirection(), "{page}");
        assert!(location.starts_with("/login"), "{location}");
        // Using it again after a sign-in elsewhere does not revive it.
        let (api, _, _) = use_session(&app, &token, &cookie).await;
        assert_eq!(api, StatusCode::UNAUTHORIZED);
    }
}
