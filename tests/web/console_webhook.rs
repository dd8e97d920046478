//! The alarm webhook over HTTPS (the police link usually is): a real TLS receiver on loopback
//! with a certificate from a test CA. The webhook client verifies the server — it calls a
//! receiver whose CA it trusts, and refuses one the system's roots do not vouch for — and the
//! administrators' setting takes `https://` addresses and refuses anything else in both
//! languages, saving nothing.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use gatehouse::central::alarms::{call_webhook, call_webhook_with, webhook_client};
use gatehouse::central::api::auth::create_session;
use gatehouse::central::db::Actor;
use gatehouse::central::repo::alarms::{self, WebhookTarget};
use gatehouse::central::repo::operators;
use gatehouse::central::state::AppState;
use gatehouse::web::site as app;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::support::sync_link::SitePki;
use crate::support::{seed, sqlite};

/// A webhook receiver served over HTTPS with `pki`'s server certificate (localhost and
/// 127.0.0.1); hands over the JSON it receives.
async fn receiver(
    pki: &SitePki,
    stop: CancellationToken,
) -> (String, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let router = axum::Router::new().route(
        "/police/alarm",
        post(move |axum::Json(v): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v);
                "ok"
            }
        }),
    );
    let server = pki.server();
    let identity = gatehouse::tls::load_identity(&server.cert, &server.key).unwrap();
    let config = Arc::new(gatehouse::tls::https_server_config(&identity).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(gatehouse::tls::serve_https(
        listener,
        config,
        router,
        gatehouse::tls::MtlsOptions::default(),
        stop.cancelled_owned(),
    ));
    (format!("https://localhost:{port}/police/alarm"), rx)
}

#[tokio::test]
async fn the_alarm_webhook_calls_an_https_police_link_and_verifies_its_certificate() {
    let t = sqlite().await;
    seed(&t.db).await;
    let alarm = alarms::raise(&t.db, &Actor::system(), 1, "manual", "测试", "pending")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pki = SitePki::create(dir.path());
    let stop = CancellationToken::new();
    let (url, mut rx) = receiver(&pki, stop.clone()).await;

    // The police link's CA is trusted: the call arrives, over TLS, with the alarm.
    let ca = CertificateDer::from_pem_file(pki.ca()).unwrap();
    let client = webhook_client(&[ca]);
    let target = WebhookTarget {
        url: url.clone(),
        secret: String::new(),
    };
    call_webhook_with(&client, &target, &alarm, chrono::Utc::now().timestamp())
        .await
        .unwrap();
    let call = rx.recv().await.unwrap();
    assert_eq!(call["event"], "alarm");
    assert_eq!(call["alarm"]["id"], alarm.id);
    assert_eq!(call["alarm"]["gate_name"], "北门");

    // With the system's roots only (production), the same server is refused: its CA vouches
    // for nobody there. Nothing arrives.
    let refused = call_webhook(&target, &alarm).await.unwrap_err().to_string();
    assert!(
        refused.to_lowercase().contains("certificate"),
        "refused for its certificate: {refused}"
    );
    assert!(
        !refused.contains("/police"),
        "the URL is not in the message: {refused}"
    );
    assert!(rx.try_recv().is_err(), "nothing else arrived");
    stop.cancel();
}

#[tokio::test]
async fn an_administrator_sets_an_https_webhook_and_anything_else_is_refused_in_both_languages() {
    let t = sqlite().await;
    seed(&t.db).await;
    let admin = operators::credentials(&t.db, "admin")
        .await
        .unwrap()
        .unwrap();
    let token = create_session(&t.db, admin.operator.id, 3_600_000)
        .await
        .unwrap()
        .token;
    let put = |url: Value, lang: &'static str| {
        let secret = "a-shared-secret-of-32-characters";
        let (state, token) = (AppState::new(t.db.clone()), token.clone());
        async move {
            let response = app(state)
                .oneshot(
                    Request::put("/api/v1/alarms/webhook")
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .header("accept-language", lang)
                        .body(Body::from(
                            json!({ "url": url, "secret": secret }).to_string(),
                        ))
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let (status, body) = put(json!("https://110.police.example.cn/hook?key=k"), "zh-CN").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        alarms::webhook(&t.db).await.unwrap().as_deref(),
        Some("https://110.police.example.cn/hook?key=k")
    );
    for (lang, expected) in [("zh-CN", "https://"), ("en", "https://")] {
        let (status, body) = put(json!("ftp://police.example.cn/hook"), lang).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["fields"][0]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{lang}: {message}");
        if lang == "zh-CN" {
            assert!(message.contains("请填写"), "{message}");
        } else {
            assert!(message.contains("Enter a full"), "{message}");
        }
    }
    assert_eq!(
        alarms::webhook(&t.db).await.unwrap().as_deref(),
        Some("https://110.police.example.cn/hook?key=k"),
        "nothing saved"
    );
}
