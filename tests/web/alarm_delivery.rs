//! Alarm delivery you can trust: the police webhook is retried with backoff until it answers
//! (time as an input: the delivery step is called at chosen instants), every call is signed
//! (HMAC-SHA256 over `t.body`, checked here independently), a pending delivery survives a
//! centre restart, two central instances on one PostgreSQL deliver each alarm exactly once,
//! an operator gives up a delivery (API and office page, audited), and neither the webhook's
//! URL key nor its secret ever reaches the audit log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::post;
use gatehouse::central::alarms::{
    self as service, Delivery, MANUAL, deliver_once, run_deliveries, webhook_client,
};
use gatehouse::central::api::auth::create_session;
use gatehouse::central::db::{Actor, Db, now_ms};
use gatehouse::central::live::LiveHub;
use gatehouse::central::repo::{alarms, operators};
use gatehouse::central::state::AppState;
use gatehouse::web::site as app;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::support::{postgres, postgres_url, seed, sqlite};

/// The shared secret of these tests.
const SECRET: &str = "police-link-shared-secret-0123456789";

/// A call the receiver got.
#[derive(Debug, Clone)]
struct Call {
    signature: Option<String>,
    body: Bytes,
}

impl Call {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A police-link receiver on loopback (plain HTTP): answers each call with the next status of
/// `answers` (then 200), after `delay`; keeps every call.
#[derive(Clone)]
struct Receiver {
    url: String,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Receiver {
    async fn start(answers: &[StatusCode], delay: Duration) -> Receiver {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(
            answers.iter().rev().copied().collect::<Vec<_>>(),
        ));
        let router = {
            let (calls, answers) = (calls.clone(), answers.clone());
            axum::Router::new().route(
                "/police/alarm",
                post(move |headers: HeaderMap, body: Bytes| {
                    let (calls, answers) = (calls.clone(), answers.clone());
                    async move {
                        tokio::time::sleep(delay).await;
                        calls.lock().unwrap().push(Call {
                            signature: headers
                                .get("x-gatehouse-signature")
                                .map(|v| v.to_str().unwrap().to_string()),
                            body,
                        });
                        answers.lock().unwrap().pop().unwrap_or(StatusCode::OK)
                    }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Receiver {
            url: format!("http://{addr}/police/alarm?key=URLKEY123"),
            calls,
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    async fn wait_calls(&self, n: usize) -> Vec<Call> {
        for _ in 0..500 {
            if self.calls().len() >= n {
                return self.calls();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} calls expected, got {}", self.calls().len());
    }
}

/// Checks `call`'s signature as a receiver would: `t=<unix>,v1=<hex>` over `"<t>." + body`.
fn assert_signed(call: &Call) {
    let header = call.signature.as_deref().expect("the call is signed");
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("t=…,v1=…: {header}"));
    let t: i64 = t.parse().unwrap();
    assert!(
        (chrono::Utc::now().timestamp() - t).abs() < 60,
        "timestamped now: {t}"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&call.body);
    mac.verify_slice(&hex::decode(v1).unwrap())
        .expect("the HMAC matches the body and timestamp");
    // And a receiver with another secret refuses it.
    let mut other = Hmac::<Sha256>::new_from_slice(b"another-secret-entirely").unwrap();
    other.update(format!("{t}.").as_bytes());
    other.update(&call.body);
    assert!(other.verify_slice(&hex::decode(v1).unwrap()).is_err());
}

async fn configure(db: &Db, url: &str) {
    alarms::set_webhook_secret(db, &Actor::system(), SECRET)
        .await
        .unwrap();
    alarms::set_webhook(db, &Actor::system(), Some(url))
        .await
        .unwrap();
}

/// Waits until the alarm's first attempt (made by `raise`, off the caller's path) is recorded.
async fn wait_attempted(db: &Db, id: i64) -> alarms::Alarm {
    for _ in 0..500 {
        let a = alarms::get(db, id).await.unwrap();
        if a.webhook_status != "pending"
            || a.next_attempt_at
                .is_some_and(|n| n.timestamp_millis() > a.raised_at.timestamp_millis())
        {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the first attempt was never recorded");
}

#[tokio::test]
async fn a_failing_police_link_is_retried_with_backoff_until_it_answers_and_every_call_is_signed() {
    let t = sqlite().await;
    seed(&t.db).await;
    let receiver = Receiver::start(
        &[
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR,
        ],
        Duration::ZERO,
    )
    .await;
    configure(&t.db, &receiver.url).await;
    let live = LiveHub::new();
    let mut messages = live.subscribe();
    let alarm = service::raise(&t.db, &live, &Actor::system(), 1, MANUAL, "门岗报警")
        .await
        .unwrap();
    assert_eq!(alarm.webhook_status, "pending");

    // The first call, at once: 503. Retried in 2 s.
    let first = receiver.wait_calls(1).await;
    let after_first = wait_attempted(&t.db, alarm.id).await;
    assert_eq!(after_first.webhook_status, "pending");
    assert_eq!(after_first.delivery_attempts, 1);
    assert!(after_first.last_error.contains("503"), "{after_first:?}");
    let due = after_first.next_attempt_at.unwrap().timestamp_millis();
    assert!(
        due - after_first.raised_at.timestamp_millis() >= 2_000,
        "backed off"
    );
    assert_signed(&first[0]);
    assert_eq!(first[0].json()["alarm"]["id"], alarm.id);
    assert_eq!(first[0].json()["alarm"]["kind"], "manual");

    // Not due yet: nothing is called.
    let client = webhook_client(&[]);
    assert_eq!(
        deliver_once(&t.db, &live, &client, due - 1).await.unwrap(),
        Delivery::Idle
    );
    assert_eq!(receiver.calls().len(), 1);
    // Due: the second call, 500, backs off twice as long (4 s).
    let Delivery::Failed {
        retry_at_ms, why, ..
    } = deliver_once(&t.db, &live, &client, due).await.unwrap()
    else {
        panic!("the second call fails");
    };
    assert_eq!(retry_at_ms, due + 4_000, "{why}");
    assert_eq!(
        deliver_once(&t.db, &live, &client, retry_at_ms - 1)
            .await
            .unwrap(),
        Delivery::Idle
    );
    // The third answers 200: delivered, and no more calls.
    assert_eq!(
        deliver_once(&t.db, &live, &client, retry_at_ms)
            .await
            .unwrap(),
        Delivery::Sent { alarm_id: alarm.id }
    );
    assert_eq!(
        deliver_once(&t.db, &live, &client, retry_at_ms + 3_600_000)
            .await
            .unwrap(),
        Delivery::Idle
    );
    let calls = receiver.calls();
    assert_eq!(calls.len(), 3);
    for call in &calls {
        assert_signed(call);
        assert_eq!(call.json()["alarm"]["id"], alarm.id);
    }
    let done = alarms::get(&t.db, alarm.id).await.unwrap();
    assert_eq!(done.webhook_status, "sent");
    assert_eq!(done.delivery_attempts, 3);
    assert!(done.delivered_at.is_some() && done.last_error.is_empty());
    // The office's page was told of each step.
    let mut told = 0;
    while messages.try_recv().is_ok() {
        told += 1;
    }
    assert!(told >= 4, "raised + three answers: {told}");
}

#[test]
fn the_backoff_doubles_from_two_seconds_to_a_minute() {
    let waits: Vec<i64> = (1..=8).map(service::backoff_ms).collect();
    assert_eq!(
        waits,
        [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
    );
    assert_eq!(service::backoff_ms(10_000), 60_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_delivery_survives_a_centre_restart_and_the_restarted_deliverer_sends_it() {
    let t = sqlite().await;
    seed(&t.db).await;
    // The police link is down (answers 502) when the alarm is raised.
    let receiver = Receiver::start(&[StatusCode::BAD_GATEWAY], Duration::ZERO).await;
    configure(&t.db, &receiver.url).await;
    let live = LiveHub::new();
    let alarm = service::raise(&t.db, &live, &Actor::system(), 1, MANUAL, "")
        .await
        .unwrap();
    receiver.wait_calls(1).await;
    assert_eq!(
        wait_attempted(&t.db, alarm.id).await.webhook_status,
        "pending"
    );
    // The centre stops: its pool closes; nothing of the delivery is in memory any more.
    let path = t.url.trim_start_matches("sqlite://").to_string();
    t.db.close().await;

    // It starts again on the same database: the deliverer finds the pending alarm and sends it
    // when it is due (2 s after the failed call).
    let db = Db::open_sqlite(std::path::Path::new(&path)).await.unwrap();
    let stop = CancellationToken::new();
    let deliverer = tokio::spawn(run_deliveries(db.clone(), LiveHub::new(), stop.clone()));
    receiver.wait_calls(2).await;
    for _ in 0..500 {
        if alarms::get(&db, alarm.id).await.unwrap().webhook_status == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent = alarms::get(&db, alarm.id).await.unwrap();
    assert_eq!(sent.webhook_status, "sent");
    assert_eq!(sent.delivery_attempts, 2);
    stop.cancel();
    deliverer.await.unwrap();
    assert_eq!(receiver.calls().len(), 2, "delivered once, nothing more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_central_instances_on_one_postgresql_deliver_each_alarm_exactly_once() {
    let Some(url) = postgres_url() else {
        eprintln!("DATABASE_URL not set: PostgreSQL part skipped");
        return;
    };
    let t = postgres(&url).await;
    seed(&t.db).await;
    // A slow receiver (50 ms a call) widens the window in which both instances look.
    let receiver = Receiver::start(&[], Duration::from_millis(50)).await;
    configure(&t.db, &receiver.url).await;
    const ALARMS: usize = 12;
    let mut ids = Vec::new();
    for i in 0..ALARMS {
        // Stored pending without the immediate attempt: the two instances race for all of them.
        let a = alarms::raise(
            &t.db,
            &Actor::system(),
            1,
            MANUAL,
            &format!("#{i}"),
            "pending",
        )
        .await
        .unwrap();
        ids.push(a.id);
    }
    let second = Db::open(&t.url).await.unwrap();
    let now = now_ms() + 1;
    let run = |db: Db| async move {
        let (live, client) = (LiveHub::new(), webhook_client(&[]));
        let mut sent = 0;
        loop {
            match deliver_once(&db, &live, &client, now).await.unwrap() {
                Delivery::Sent { .. } => sent += 1,
                Delivery::Idle => return sent,
                other => panic!("{other:?}"),
            }
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(run(t.db.clone())),
        tokio::spawn(run(second.clone()))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a + b, ALARMS, "instance A sent {a}, B sent {b}");
    let mut per_alarm: HashMap<i64, usize> = HashMap::new();
    for call in receiver.calls() {
        *per_alarm
            .entry(call.json()["alarm"]["id"].as_i64().unwrap())
            .or_default() += 1;
    }
    for id in ids {
        assert_eq!(per_alarm.get(&id), Some(&1), "alarm {id}: {per_alarm:?}");
        assert_eq!(alarms::get(&t.db, id).await.unwrap().delivery_attempts, 1);
    }
    second.close().await;
}

async fn token(db: &Db, username: &str) -> String {
    let op = operators::credentials(db, username).await.unwrap().unwrap();
    create_session(db, op.operator.id, 3_600_000)
        .await
        .unwrap()
        .token
}

async fn call(
    state: &AppState,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut request = Request::builder();
    if method == "GET" {
        // Pages take the session cookie (and the language from theirs).
        let lang = if path.contains("lang=en") {
            "; gh_lang=en"
        } else {
            ""
        };
        request = request.header("cookie", format!("gh_session={token}{lang}"));
    }
    let request = request
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept-language", "en")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn the_office_gives_up_a_delivery_that_keeps_failing_and_it_is_audited_and_never_called_again()
 {
    let t = sqlite().await;
    seed(&t.db).await;
    let receiver = Receiver::start(&[StatusCode::BAD_GATEWAY; 10], Duration::ZERO).await;
    configure(&t.db, &receiver.url).await;
    let state = AppState::new(t.db.clone());
    let alarm = service::raise(&t.db, &state.live, &Actor::system(), 1, MANUAL, "")
        .await
        .unwrap();
    receiver.wait_calls(1).await;
    wait_attempted(&t.db, alarm.id).await;

    // The office page offers to stop the retries, in words.
    let security = token(&t.db, "security").await;
    let html = alarms_html(&state, &security).await;
    assert!(
        html.contains(&format!("/api/v1/alarms/{}/give-up", alarm.id)),
        "{html}"
    );
    assert!(html.contains("停止重试"), "{html}");

    // A guard may not give up; the office may, once.
    let guard = token(&t.db, "guard").await;
    let path = format!("/api/v1/alarms/{}/give-up", alarm.id);
    assert_eq!(
        call(&state, "POST", &path, &guard, None).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = call(&state, "POST", &path, &security, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["webhook_status"],
        "given_up"
    );
    let (status, body) = call(&state, "POST", &path, &security, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("no delivery being retried"), "{body}");

    // Never called again, however late.
    let client = webhook_client(&[]);
    assert_eq!(
        deliver_once(&t.db, &state.live, &client, now_ms() + 86_400_000)
            .await
            .unwrap(),
        Delivery::Idle
    );
    assert_eq!(receiver.calls().len(), 1);
    let audited: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT operator_name, after_json FROM audit_log WHERE action = 'give_up_delivery' \
         AND entity = 'alarm' AND entity_id = $1",
    )
    .bind(alarm.id.to_string())
    .fetch_all(t.db.pool())
    .await
    .unwrap();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].0, "security");
    assert!(html_after_give_up(&state, &security, alarm.id).await);
}

/// The office page's alarms part as `token`'s operator sees it (English).
async fn alarms_html(state: &AppState, token: &str) -> String {
    let (status, body) = call(state, "GET", "/office", token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn html_after_give_up(state: &AppState, token: &str, id: i64) -> bool {
    let html = alarms_html(state, token).await;
    !html.contains(&format!("/api/v1/alarms/{id}/give-up")) && html.contains("已停止重试")
}

#[tokio::test]
async fn the_webhook_url_key_and_its_secret_never_reach_the_audit_log_or_the_api() {
    let t = sqlite().await;
    seed(&t.db).await;
    let state = AppState::new(t.db.clone());
    let admin = token(&t.db, "admin").await;
    let url = "https://110.police.example.cn/hook?key=URLKEY123";
    // A URL without a secret is refused: every call must be signed.
    let (status, body) = call(
        &state,
        "PUT",
        "/api/v1/alarms/webhook",
        &admin,
        Some(json!({ "url": url })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("signing secret"), "{body}");
    let (status, body) = call(
        &state,
        "PUT",
        "/api/v1/alarms/webhook",
        &admin,
        Some(json!({ "url": url, "secret": "short" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("at least 16"), "{body}");
    let (status, body) = call(
        &state,
        "PUT",
        "/api/v1/alarms/webhook",
        &admin,
        Some(json!({ "url": url, "secret": SECRET })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.contains(SECRET), "{body}");
    let (_, body) = call(&state, "GET", "/api/v1/alarms/webhook", &admin, None).await;
    let read: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(read["secret_set"], true);
    assert!(
        !body.contains(SECRET),
        "the secret is never returned: {body}"
    );
    // The URL can be changed later without sending the secret again.
    let (status, body) = call(
        &state,
        "PUT",
        "/api/v1/alarms/webhook",
        &admin,
        Some(json!({ "url": "https://110.police.example.cn/v2?key=URLKEY456" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT before_json, after_json FROM audit_log WHERE entity = 'alarm_webhook'",
    )
    .fetch_all(t.db.pool())
    .await
    .unwrap();
    assert!(rows.len() >= 3, "each change audited: {rows:?}");
    let all = format!("{rows:?}");
    assert!(all.contains("110.police.example.cn"), "the host is: {all}");
    for secret in ["URLKEY123", "URLKEY456", SECRET, "/hook", "/v2"] {
        assert!(!all.contains(secret), "{secret} is in the audit log: {all}");
    }
}

#[tokio::test]
async fn the_office_page_names_every_alarm_kind_in_chinese_and_english() {
    let t = sqlite().await;
    seed(&t.db).await;
    let state = AppState::new(t.db.clone());
    let kinds = [
        (service::MANUAL, "一键报警", "Booth alarm"),
        (service::FIRE, "消防报警", "Fire alarm"),
        (
            service::JOURNAL_FAILURE,
            "记录无法写入",
            "Journal cannot write",
        ),
        (service::CLOCK_OFFSET, "大门时钟偏差", "Gate clock off"),
        (service::DEVICE_OFFLINE, "设备离线", "Device offline"),
        (service::EVENT_CONFLICT, "事件冲突", "Event conflict"),
    ];
    for (kind, _, _) in kinds {
        service::raise(&t.db, &state.live, &Actor::system(), 1, kind, "")
            .await
            .unwrap();
    }
    let security = token(&t.db, "security").await;
    let zh = alarms_html(&state, &security).await;
    // The same page for an operator who chose English (the `gh_lang` cookie).
    let (_, en_page) = call(&state, "GET", "/office?lang=en", &security, None).await;
    for (kind, words_zh, words_en) in kinds {
        assert!(
            zh.contains(&format!("data-kind=\"{kind}\"")),
            "{kind}: {zh}"
        );
        assert!(zh.contains(words_zh), "{kind} in Chinese: {zh}");
        assert!(en_page.contains(words_en), "{kind} in English: {en_page}");
    }
}
