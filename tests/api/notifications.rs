//! Notifications (issue 21, item 4): notices queued from bookings reach a real SMTP server (a
//! tiny sink in the test speaking EHLO/MAIL/RCPT/DATA/QUIT on 127.0.0.1) and a group robot
//! webhook (a tiny axum server), are retried with backoff on a deterministic clock, given up
//! after the last attempt, never hold up the caller, and nothing is queued when `[notify]` is
//! empty. Each behaviour on SQLite and (with `DATABASE_URL`) PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use chrono::{TimeZone, Utc};
use gatehouse::central::api::auth::Role;
use gatehouse::central::db::Db;
use gatehouse::central::notify::outbox::{self, Outgoing};
use gatehouse::central::notify::words::{self, Audience, Facts};
use gatehouse::central::notify::{
    self, Deliverer, Notice, NotifyConfig, Secret, SmtpConfig, SmtpSecurity, Step, WebhookConfig,
    backoff_ms,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::{APPROVER_DEPARTMENT, TestApp, count};
use crate::permits::person;

const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

// ---------------------------------------------------------------------------------------------
// A tiny SMTP server.

/// One message the sink accepted.
#[derive(Debug, Clone)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
}

impl Mail {
    /// The decoded `Subject:` (RFC 2047 encoded words joined).
    fn subject(&self) -> String {
        let head = self.data.split("\r\n\r\n").next().unwrap();
        let mut subject = String::new();
        let mut inside = false;
        for line in head.split("\r\n") {
            if let Some(rest) = line.strip_prefix("Subject:") {
                inside = true;
                subject.push_str(rest.trim());
            } else if inside && line.starts_with([' ', '\t']) {
                subject.push_str(line.trim());
            } else {
                inside = false;
            }
        }
        decode_words(&subject)
    }

    /// The decoded text body (base64).
    fn body(&self) -> String {
        let (head, body) = self.data.split_once("\r\n\r\n").unwrap();
        assert!(
            head.to_ascii_lowercase()
                .contains("content-transfer-encoding: base64"),
            "{head}"
        );
        let b64: String = body.split("\r\n").collect();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .unwrap(),
        )
        .unwrap()
    }
}

/// Decodes the `=?utf-8?b?…?=` words of a header; what lies between them must be plain
/// ASCII (whitespace between two encoded words is dropped, RFC 2047 §6.2).
fn decode_words(text: &str) -> String {
    let mut out = Vec::new();
    let mut rest = text;
    let mut last_encoded = false;
    loop {
        let start = rest.to_ascii_lowercase().find("=?utf-8?b?");
        let plain = &rest[..start.unwrap_or(rest.len())];
        assert!(plain.is_ascii(), "raw non-ASCII in a header: {text}");
        if !(last_encoded && plain.trim().is_empty()) {
            out.extend(plain.as_bytes());
        }
        let Some(start) = start else {
            return String::from_utf8(out).unwrap();
        };
        let after = &rest[start + "=?utf-8?b?".len()..];
        let end = after.find("?=").expect("an encoded word ends");
        out.extend(
            base64::engine::general_purpose::STANDARD
                .decode(&after[..end])
                .unwrap(),
        );
        last_encoded = true;
        rest = &after[end + 2..];
    }
}

/// How the sink behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Takes every message.
    Take,
    /// Answers RCPT with a temporary failure (451).
    Busy,
    /// Accepts the connection and never says a word.
    Hang,
}

#[derive(Clone)]
struct Sink {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    mode: Arc<Mutex<Mode>>,
}

impl Sink {
    async fn start(mode: Mode) -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Sink::serve(listener, mode)
    }

    fn serve(listener: tokio::net::TcpListener, mode: Mode) -> Sink {
        let sink = Sink {
            port: listener.local_addr().unwrap().port(),
            mails: Arc::default(),
            mode: Arc::new(Mutex::new(mode)),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.session(socket).await;
                });
            }
        });
        sink
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    async fn session(&self, socket: tokio::net::TcpStream) -> std::io::Result<()> {
        let mode = *self.mode.lock().unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read);
        if mode == Mode::Hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Ok(());
        }
        write.write_all(b"220 sink.test ESMTP\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let cmd = line.trim_end().to_string();
            let upper = cmd.to_ascii_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                write
                    .write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                    .await?;
            } else if upper.starts_with("MAIL FROM:") {
                from = cmd[10..].trim().to_string();
                write.write_all(b"250 OK\r\n").await?;
            } else if upper.starts_with("RCPT TO:") {
                if mode == Mode::Busy {
                    write.write_all(b"451 4.3.0 try again later\r\n").await?;
                } else {
                    to.push(cmd[8..].trim().trim_matches(['<', '>']).to_string());
                    write.write_all(b"250 OK\r\n").await?;
                }
            } else if upper == "DATA" {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                self.mails.lock().unwrap().push(Mail {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                });
                write.write_all(b"250 OK queued\r\n").await?;
            } else if upper == "QUIT" {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else if upper == "RSET" || upper == "NOOP" {
                write.write_all(b"250 OK\r\n").await?;
            } else {
                write.write_all(b"502 not implemented\r\n").await?;
            }
        }
    }
}

fn smtp(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        security: SmtpSecurity::None,
        username: String::new(),
        password: None,
        from: "校园车辆门禁 <gate@campus.test>".into(),
        timeout_secs: 1,
        hello_name: None,
    }
}

fn mail_only(port: u16) -> NotifyConfig {
    NotifyConfig {
        public_url: "https://gate.campus.test".into(),
        smtp: Some(smtp(port)),
        webhook: None,
    }
}

/// A port nothing listens on (connection refused).
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------
// A tiny group robot.

/// One call the robot received: its query pairs and its JSON body.
type RobotCall = (Vec<(String, String)>, Value);

#[derive(Clone, Default)]
struct Robot {
    calls: Arc<Mutex<Vec<RobotCall>>>,
    /// Answers to give, in order (status, body); then 200 `{"errcode":0}`.
    answers: Arc<Mutex<Vec<(u16, String)>>>,
}

async fn robot_call(
    State(robot): State<Robot>,
    Query(query): Query<Vec<(String, String)>>,
    axum::Json(body): axum::Json<Value>,
) -> (StatusCode, String) {
    robot.calls.lock().unwrap().push((query, body));
    let mut answers = robot.answers.lock().unwrap();
    if answers.is_empty() {
        (StatusCode::OK, r#"{"errcode":0,"errmsg":"ok"}"#.into())
    } else {
        let (status, body) = answers.remove(0);
        (StatusCode::from_u16(status).unwrap(), body)
    }
}

/// Starts a robot; returns it and its URL (with a key in the query, as WeCom's have).
async fn robot(answers: Vec<(u16, &str)>) -> (Robot, String) {
    let robot = Robot::default();
    *robot.answers.lock().unwrap() = answers
        .into_iter()
        .map(|(s, b)| (s, b.to_string()))
        .collect();
    let app = axum::Router::new()
        .route("/robot/send", axum::routing::post(robot_call))
        .with_state(robot.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        robot,
        format!("http://127.0.0.1:{port}/robot/send?key=ROBOT-KEY-0123"),
    )
}

fn hook(url: &str) -> WebhookConfig {
    WebhookConfig {
        url: Secret::new(url),
        secret: None,
        keyword: String::new(),
        notices: vec![notify::VISIT_REQUESTED.into()],
    }
}

// ---------------------------------------------------------------------------------------------
// Bookings to tell about.

/// A host with an e-mail address and a booking for them with a visitor's address; returns
/// (host id, booking id).
async fn booking(app: &TestApp) -> (i64, i64) {
    let host = person(&app.db, "张三", APPROVER_DEPARTMENT).await;
    set_email(&app.db, "persons", host, "zhang.san@campus.test").await;
    let from = Utc::now() + chrono::Duration::days(1);
    let from = Utc.timestamp_opt(from.timestamp() / 60 * 60, 0).unwrap();
    let (status, b) = app
        .call(
            Method::POST,
            "/api/v1/bookings",
            Some(Role::Security),
            Some(json!({
                "host_id": host, "purpose": "学术讲座", "plate": "京A12345",
                "plate_colour": "blue", "driver_name": "周九", "driver_phone": "13812345678",
                "slot_from": from.to_rfc3339(),
                "slot_until": (from + chrono::Duration::hours(2)).to_rfc3339(),
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let id = b["id"].as_i64().unwrap();
    sqlx::query("UPDATE visitor_bookings SET visitor_email = $1 WHERE id = $2")
        .bind("zhou.jiu@visitor.test")
        .bind(id)
        .execute(app.db.pool())
        .await
        .unwrap();
    (host, id)
}

async fn set_email(db: &Db, table: &str, id: i64, email: &str) {
    sqlx::query(&format!("UPDATE {table} SET email = $1 WHERE id = $2"))
        .bind(email)
        .bind(id)
        .execute(db.pool())
        .await
        .unwrap();
}

/// Steps the deliverer at `now` until nothing is due; returns the steps.
async fn drain(d: &Deliverer, db: &Db, now: i64) -> Vec<Step> {
    let mut steps = Vec::new();
    loop {
        match d.deliver_once(db, now).await.unwrap() {
            Step::Idle => return steps,
            step => steps.push(step),
        }
    }
}

async fn statuses(db: &Db) -> Vec<String> {
    sqlx::query_scalar("SELECT status FROM notifications ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
async fn an_approved_booking_is_mailed_to_the_visitor_and_to_whoever_booked_it_with_a_chinese_subject()
 {
    logs();
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let sink = Sink::start(Mode::Take).await;
        let config = mail_only(sink.port);
        notify::install(&app.db, &config, TZ).await.unwrap();
        let (_host, id) = booking(&app).await;
        // The security operator who booked is a person with an address of their own.
        let booker = person(&app.db, "李四", "保卫处").await;
        set_email(&app.db, "persons", booker, "li.si@campus.test").await;
        sqlx::query("UPDATE operators SET person_id = $1 WHERE id = $2")
            .bind(booker)
            .bind(app.operator_id(Role::Security))
            .execute(app.db.pool())
            .await
            .unwrap();
        let started = Instant::now();
        let (status, b) = app
            .call(
                Method::POST,
                &format!("/api/v1/bookings/{id}/approve"),
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{b}");
        // The bookings step queues this once the pass work is merged; queueing again is a
        // no-op, so the test holds either way.
        notify::queue(&app.db, Notice::BookingApproved { booking_id: id }).await;
        notify::queue(&app.db, Notice::BookingApproved { booking_id: id }).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM notifications").await,
            2,
            "{:?}: one per recipient, once",
            app.kind
        );

        let d = Deliverer::new(&config).unwrap();
        let steps = drain(&d, &app.db, gatehouse::central::db::now_ms()).await;
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert!(steps.iter().all(|s| matches!(s, Step::Sent { .. })));
        let mut mails = sink.mails();
        mails.sort_by_key(|m| m.to.clone());
        let to: Vec<_> = mails.iter().map(|m| m.to.clone()).collect();
        assert_eq!(
            to,
            [vec!["li.si@campus.test"], vec!["zhou.jiu@visitor.test"]]
        );
        for m in &mails {
            assert_eq!(m.from, "<gate@campus.test>");
            assert!(
                m.data.contains("From: =?utf-8?b?")
                    || m.data.contains("From: \"=?utf-8?b?")
                    || m.data.to_lowercase().contains("from: =?utf-8?"),
                "the sender's display name is encoded: {}",
                m.data
            );
            assert_eq!(
                m.subject(),
                "【校园车辆门禁】来访预约已批准：京A12345 / Visit approved: 京A12345"
            );
            let body = m.body();
            assert!(body.contains("车牌：京A12345"), "{body}");
            assert!(body.contains("被访人：张三"), "{body}");
            assert!(body.contains("Visit"), "an English line: {body}");
        }
        assert!(
            mails[1].body().starts_with("周九 您好"),
            "{}",
            mails[1].body()
        );
        assert_eq!(statuses(&app.db).await, ["sent", "sent"]);
    }
}

#[tokio::test]
async fn a_pass_link_reaches_the_visitors_mail_intact_and_never_the_group() {
    logs();
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let sink = Sink::start(Mode::Take).await;
        let link = "https://gate.campus.test/pass/Zx9_kQ3-vR7tY2wP";
        let facts = Facts {
            booking_id: 7,
            plate: "沪B67890".into(),
            visitor_name: "周九".into(),
            host_name: "张三".into(),
            purpose: "讲座".into(),
            slot_from_ms: Utc
                .with_ymd_and_hms(2026, 12, 8, 1, 0, 0)
                .unwrap()
                .timestamp_millis(),
            slot_until_ms: Utc
                .with_ymd_and_hms(2026, 12, 8, 3, 0, 0)
                .unwrap()
                .timestamp_millis(),
            link: Some(link.into()),
            ..Facts::default()
        };
        let w = words::compose(notify::PASS_ISSUED, Audience::Visitor, &facts, TZ);
        assert!(w.body.contains(link), "{}", w.body);
        assert!(
            w.body.contains("2026年12月8日 09:00 至 11:00"),
            "times in Asia/Shanghai: {}",
            w.body
        );
        let group = words::compose(notify::PASS_ISSUED, Audience::Group, &facts, TZ);
        assert!(!group.body.contains("/pass/"), "{}", group.body);

        let rows = [Outgoing {
            notice: notify::PASS_ISSUED.into(),
            booking_id: Some(7),
            channel: "email",
            recipient: "zhou.jiu@visitor.test".into(),
            subject: w.subject.clone(),
            body: w.body.clone(),
            dedup_key: "test:7".into(),
        }];
        assert_eq!(outbox::insert(db, &rows, 1_000).await.unwrap(), 1);
        let d = Deliverer::new(&mail_only(sink.port)).unwrap();
        assert_eq!(
            d.deliver_once(db, 1_000).await.unwrap(),
            Step::Sent { id: 1 }
        );
        let mails = sink.mails();
        assert_eq!(mails.len(), 1, "{:?}", t.kind);
        assert_eq!(mails[0].to, ["zhou.jiu@visitor.test"]);
        assert_eq!(mails[0].subject(), w.subject);
        assert_eq!(
            mails[0].body(),
            w.body.replace('\n', "\r\n"),
            "mail lines end CRLF"
        );
        assert!(mails[0].body().contains(link));
    }
}

#[tokio::test]
async fn a_visit_request_reaches_the_host_and_the_group_robot_as_signed_json_text() {
    logs();
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let sink = Sink::start(Mode::Take).await;
        let (robot, url) = robot(vec![]).await;
        let mut webhook = hook(&url);
        webhook.secret = Some(Secret::new("SECdingtalk-secret-42"));
        webhook.keyword = "门禁".into();
        let config = NotifyConfig {
            webhook: Some(webhook),
            ..mail_only(sink.port)
        };
        notify::install(&app.db, &config, TZ).await.unwrap();
        let (_host, id) = booking(&app).await;
        notify::queue(&app.db, Notice::VisitRequested { booking_id: id }).await;
        // Approval is not a notice the group is told of (`notices` = visit_requested).
        notify::queue(&app.db, Notice::BookingRejected { booking_id: id }).await;
        let d = Deliverer::new(&config).unwrap();
        let steps = drain(&d, &app.db, gatehouse::central::db::now_ms()).await;
        assert_eq!(steps.len(), 4, "{:?}: {steps:?}", app.kind);

        let calls = robot.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1);
        let (query, body) = &calls[0];
        assert_eq!(body["msgtype"], "text");
        let content = body["text"]["content"].as_str().unwrap();
        assert!(
            content.starts_with("门禁 【校园车辆门禁】新的来访申请：京A12345"),
            "{content}"
        );
        assert!(content.contains("被访人：张三") && content.contains("访客：周九"));
        assert!(!content.contains("138"), "no phone numbers: {content}");
        let get = |k: &str| {
            query
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("key"), "ROBOT-KEY-0123");
        let timestamp: i64 = get("timestamp").parse().unwrap();
        assert!((timestamp - Utc::now().timestamp_millis()).abs() < 60_000);
        assert_eq!(
            get("sign"),
            notify::dingtalk_sign("SECdingtalk-secret-42", timestamp)
        );

        let mut to: Vec<_> = sink.mails().iter().map(|m| m.to[0].clone()).collect();
        to.sort();
        assert_eq!(
            to,
            [
                "zhang.san@campus.test",
                "zhang.san@campus.test",
                "zhou.jiu@visitor.test"
            ],
            "the host is asked to decide, and told of the rejection (the operator who booked \
             is no person, so the host stands for them), as is the visitor"
        );
    }
}

#[tokio::test]
async fn the_host_is_told_when_the_visitor_arrives_naming_the_gate_and_the_time_in_shanghai() {
    logs();
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let sink = Sink::start(Mode::Take).await;
        let config = mail_only(sink.port);
        notify::install(&app.db, &config, TZ).await.unwrap();
        let (_host, id) = booking(&app).await;
        let at_ms = Utc
            .with_ymd_and_hms(2026, 12, 8, 1, 30, 0)
            .unwrap()
            .timestamp_millis();
        let notice = Notice::VisitorArrived {
            booking_id: id,
            gate_id: 1,
            at_ms,
        };
        notify::queue(&app.db, notice).await;
        notify::queue(&app.db, notice).await;
        let d = Deliverer::new(&config).unwrap();
        assert_eq!(drain(&d, &app.db, at_ms).await.len(), 1, "{:?}", app.kind);
        let mails = sink.mails();
        assert_eq!(mails[0].to, ["zhang.san@campus.test"]);
        assert_eq!(
            mails[0].subject(),
            "【校园车辆门禁】访客已到达：京A12345 / Visitor arrived: 京A12345"
        );
        let body = mails[0].body();
        assert!(
            body.contains("周九（京A12345）已于 2026年12月8日 09:30 从北门进入校园。"),
            "{body}"
        );
        assert!(
            body.contains("entered at 2026-12-08 09:30 through 北门"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_failing_mail_server_and_robot_are_retried_with_backoff_and_succeed_later() {
    logs();
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        // The mail server is down (refused), then busy (451), then takes the message.
        let port = closed_port().await;
        let (robot, url) = robot(vec![
            (503, "down for maintenance"),
            (
                200,
                r#"{"errcode":310000,"errmsg":"keywords not in content"}"#,
            ),
        ])
        .await;
        let config = NotifyConfig {
            webhook: Some(hook(&url)),
            ..mail_only(port)
        };
        notify::install(&app.db, &config, TZ).await.unwrap();
        let (_host, id) = booking(&app).await;
        notify::queue(&app.db, Notice::VisitRequested { booking_id: id }).await;
        let d = Deliverer::new(&config).unwrap();
        let t0 = 1_000_000;
        // Queued now (real time): step at a time after the rows were created.
        let now = gatehouse::central::db::now_ms();
        sqlx::query("UPDATE notifications SET next_attempt_ms = $1, created_ms = $1")
            .bind(t0)
            .execute(app.db.pool())
            .await
            .unwrap();
        let _ = now;

        let first = drain(&d, &app.db, t0).await;
        assert_eq!(first.len(), 2, "{:?}: {first:?}", app.kind);
        for s in &first {
            let Step::Retry {
                retry_at_ms, why, ..
            } = s
            else {
                panic!("{s:?}");
            };
            assert_eq!(*retry_at_ms, t0 + 30_000, "{why}");
        }
        let whys: Vec<String> =
            sqlx::query_scalar("SELECT last_error FROM notifications ORDER BY channel")
                .fetch_all(app.db.pool())
                .await
                .unwrap();
        assert!(whys[0].starts_with("SMTP"), "{whys:?}");
        assert_eq!(whys[1], "webhook: answered 503 Service Unavailable");
        assert!(!whys.iter().any(|w| w.contains("ROBOT-KEY")), "{whys:?}");

        // Not yet due: nothing is tried.
        assert!(drain(&d, &app.db, t0 + 29_999).await.is_empty());
        // The mail server is up but busy; the robot answers errcode ≠ 0.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let sink = Sink::serve(listener, Mode::Busy);
        let second = drain(&d, &app.db, t0 + 30_000).await;
        assert_eq!(second.len(), 2, "{second:?}");
        for s in &second {
            assert!(
                matches!(s, Step::Retry { retry_at_ms, .. } if *retry_at_ms == t0 + 30_000 + 120_000),
                "{s:?}"
            );
        }
        let whys: Vec<String> =
            sqlx::query_scalar("SELECT last_error FROM notifications ORDER BY channel")
                .fetch_all(app.db.pool())
                .await
                .unwrap();
        assert!(whys[0].contains("451"), "{whys:?}");
        assert_eq!(whys[1], "webhook: errcode 310000: keywords not in content");

        *sink.mode.lock().unwrap() = Mode::Take;
        let third = drain(&d, &app.db, t0 + 150_000).await;
        assert!(
            third.iter().all(|s| matches!(s, Step::Sent { .. })) && third.len() == 2,
            "{third:?}"
        );
        assert_eq!(sink.mails().len(), 1);
        assert_eq!(robot.calls.lock().unwrap().len(), 3);
        assert_eq!(statuses(&app.db).await, ["sent", "sent"]);
        let attempts: Vec<i64> = sqlx::query_scalar("SELECT attempts FROM notifications")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
        assert_eq!(attempts, [3, 3]);
    }
}

#[tokio::test]
async fn a_message_is_given_up_after_its_last_attempt_and_the_administrator_sees_it_failed() {
    logs();
    assert_eq!(backoff_ms(1), Some(30_000));
    assert_eq!(backoff_ms(2), Some(120_000));
    assert_eq!(backoff_ms(3), Some(600_000));
    assert_eq!(backoff_ms(4), Some(3_600_000));
    assert_eq!(backoff_ms(notify::MAX_ATTEMPTS), None);
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let config = mail_only(closed_port().await);
        notify::install(&app.db, &config, TZ).await.unwrap();
        let (_host, id) = booking(&app).await;
        notify::queue(&app.db, Notice::VisitRequested { booking_id: id }).await;
        let created: i64 = sqlx::query_scalar("SELECT created_ms FROM notifications")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        let d = Deliverer::new(&config).unwrap();
        let mut now = created;
        let mut tries = 0;
        let last = loop {
            let step = d.deliver_once(&app.db, now).await.unwrap();
            tries += 1;
            match step {
                Step::Retry { retry_at_ms, .. } => now = retry_at_ms,
                other => break other,
            }
            assert!(tries < 20, "never gives up");
        };
        assert!(matches!(last, Step::GaveUp { .. }), "{last:?}");
        assert_eq!(tries, notify::MAX_ATTEMPTS, "{:?}", app.kind);
        assert!(now - created <= notify::GIVE_UP_AFTER_MS);
        assert_eq!(statuses(&app.db).await, ["failed"]);
        // Given up: never tried again.
        assert_eq!(
            d.deliver_once(&app.db, now + 365 * 86_400_000)
                .await
                .unwrap(),
            Step::Idle
        );

        let (status, list) = app
            .call(
                Method::GET,
                "/api/v1/notifications?status=failed",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["total"], 1);
        let item = &list["items"][0];
        assert_eq!(item["status"], "failed");
        assert_eq!(item["channel"], "email");
        assert_eq!(item["recipient"], "zhang.san@campus.test");
        assert_eq!(item["attempts"], notify::MAX_ATTEMPTS);
        assert!(item["last_error"].as_str().unwrap().starts_with("SMTP"));
        assert!(item.get("body").is_none(), "bodies may hold pass links");
        for role in [Role::Security, Role::Guard, Role::Viewer] {
            assert_eq!(
                app.status(Method::GET, "/api/v1/notifications", Some(role))
                    .await,
                StatusCode::FORBIDDEN
            );
        }
        let (status, body) = app
            .call(
                Method::GET,
                "/api/v1/notifications?status=lost",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
}

#[tokio::test]
async fn queueing_returns_at_once_while_the_mail_server_hangs() {
    logs();
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let sink = Sink::start(Mode::Hang).await;
        let config = mail_only(sink.port);
        notify::install(&app.db, &config, TZ).await.unwrap();
        let (_host, id) = booking(&app).await;
        notify::queue(&app.db, Notice::VisitRequested { booking_id: id }).await;
        // The worker is stuck on the silent server…
        let stop = tokio_util::sync::CancellationToken::new();
        let worker = tokio::spawn(notify::run(app.db.clone(), config.clone(), stop.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        // …while requests that queue notices answer at once.
        let started = Instant::now();
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/api/v1/bookings/{id}/reject"),
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        notify::queue(&app.db, Notice::BookingRejected { booking_id: id }).await;
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}: {:?}",
            app.kind,
            started.elapsed()
        );
        // The silent server costs the worker its timeout (1 s), then a retry is scheduled.
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(
            &app.db,
            "SELECT COUNT(*) FROM notifications WHERE attempts = 1 AND status = 'pending' \
             AND claim_token IS NULL",
        )
        .await
            < 2
        {
            assert!(
                Instant::now() < deadline,
                "the worker never gave up waiting"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.cancel();
        worker.await.unwrap();
        assert!(sink.mails().is_empty());
    }
}

#[tokio::test]
async fn nothing_is_queued_or_sent_when_notify_is_empty() {
    logs();
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let (_host, id) = booking(&app).await;
        // No server recorded its channels yet.
        notify::queue(&app.db, Notice::VisitRequested { booking_id: id }).await;
        // A server with an empty [notify].
        let empty = NotifyConfig::default();
        assert!(empty.is_empty());
        notify::install(&app.db, &empty, TZ).await.unwrap();
        for notice in [
            Notice::VisitRequested { booking_id: id },
            Notice::BookingApproved { booking_id: id },
            Notice::PassIssued { booking_id: id },
            Notice::VisitorArrived {
                booking_id: id,
                gate_id: 1,
                at_ms: 0,
            },
        ] {
            notify::queue(&app.db, notice).await;
        }
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM notifications").await,
            0,
            "{:?}",
            app.kind
        );
        let d = Deliverer::new(&empty).unwrap();
        assert!(d.is_empty());
        // The worker has nothing to do and ends at once.
        tokio::time::timeout(
            Duration::from_secs(2),
            notify::run(
                app.db.clone(),
                empty,
                tokio_util::sync::CancellationToken::new(),
            ),
        )
        .await
        .unwrap();
        // A webhook only: no e-mail rows.
        let (_robot, url) = robot(vec![]).await;
        let hook_only = NotifyConfig {
            webhook: Some(hook(&url)),
            ..NotifyConfig::default()
        };
        notify::install(&app.db, &hook_only, TZ).await.unwrap();
        notify::queue(&app.db, Notice::VisitRequested { booking_id: id }).await;
        notify::queue(&app.db, Notice::BookingApproved { booking_id: id }).await;
        let channels: Vec<String> = sqlx::query_scalar("SELECT channel FROM notifications")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
        assert_eq!(channels, ["webhook"]);
    }
}

#[tokio::test]
async fn two_instances_on_one_database_send_each_message_once() {
    logs();
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let sink = Sink::start(Mode::Take).await;
        let config = mail_only(sink.port);
        let rows: Vec<Outgoing> = (0..6)
            .map(|i| Outgoing {
                notice: notify::VISIT_REQUESTED.into(),
                booking_id: None,
                channel: "email",
                recipient: format!("host{i}@campus.test"),
                subject: format!("【校园车辆门禁】测试 {i}"),
                body: "正文".into(),
                dedup_key: format!("k{i}"),
            })
            .collect();
        outbox::insert(&app.db, &rows, 1_000).await.unwrap();
        // A second instance: its own pool on the same database.
        let other = Db::connect(&app.url).await.unwrap();
        let (a, b) = (
            Deliverer::new(&config).unwrap(),
            Deliverer::new(&config).unwrap(),
        );
        let (db_a, db_b) = (app.db.clone(), other.clone());
        let one = tokio::spawn(async move { drain(&a, &db_a, 2_000).await.len() });
        let two = tokio::spawn(async move { drain(&b, &db_b, 2_000).await.len() });
        let sent = one.await.unwrap() + two.await.unwrap();
        assert_eq!(sent, 6, "{:?}", app.kind);
        let mut to: Vec<String> = sink.mails().iter().map(|m| m.to[0].clone()).collect();
        to.sort();
        to.dedup();
        assert_eq!(to.len(), 6, "each once");
        assert_eq!(sink.mails().len(), 6);
        other.close().await;
    }
}

/// What the notification module logged, in every test of this binary: a global subscriber,
/// installed before any test here reaches a notification log line (a thread-scoped one
/// misses events whose call site another thread registered first).
fn logs() -> &'static Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let _ = tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_env_filter("gatehouse::central::notify=trace")
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish(),
        );
        captured
    })
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_recipients_and_bodies_never_reach_the_logs_or_debug_output() {
    logs();
    let config: gatehouse::central::config::ServerConfig = toml::from_str(
        "[server]\ndata_dir = \"/x\"\n[notify]\npublic_url = \"https://gate.campus.test\"\n\
         [notify.smtp]\nhost = \"smtp.campus.test\"\nusername = \"gate\"\n\
         password = \"smtp-Pa55word\"\nfrom = \"校园车辆门禁 <gate@campus.test>\"\n\
         [notify.webhook]\nurl = \"https://oapi.dingtalk.test/robot/send?access_token=TOKEN-77\"\n\
         secret = \"SEC-sign-99\"\nkeyword = \"门禁\"\nnotices = [\"visit_requested\", \"visitor_arrived\"]\n",
    )
    .unwrap();
    config.notify.validate().unwrap();
    assert_eq!(config.notify.smtp.as_ref().unwrap().port(), 587);
    let shown = format!("{config:?} {:?}", Deliverer::new(&config.notify).unwrap());
    for secret in ["smtp-Pa55word", "TOKEN-77", "SEC-sign-99"] {
        assert!(!shown.contains(secret), "{secret} printed: {shown}");
    }

    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let port = closed_port().await;
        let mut smtp = smtp(port);
        smtp.username = "gate".into();
        smtp.password = Some(Secret::new("smtp-Pa55word"));
        let url = format!(
            "http://127.0.0.1:{}/robot/send?access_token=TOKEN-77",
            closed_port().await
        );
        let mut webhook = hook(&url);
        webhook.secret = Some(Secret::new("SEC-sign-99"));
        let config = NotifyConfig {
            public_url: String::new(),
            smtp: Some(smtp),
            webhook: Some(webhook),
        };
        notify::install(&app.db, &config, TZ).await.unwrap();
        let (_host, id) = booking(&app).await;
        notify::queue(&app.db, Notice::VisitRequested { booking_id: id }).await;
        let d = Deliverer::new(&config).unwrap();
        let steps = drain(&d, &app.db, gatehouse::central::db::now_ms()).await;
        assert_eq!(steps.len(), 2, "{steps:?}");
        let stored: Vec<String> = sqlx::query_scalar("SELECT last_error FROM notifications")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
        assert!(stored.iter().all(|e| !e.is_empty()));
        assert!(
            !stored
                .iter()
                .any(|e| e.contains("TOKEN-77") || e.contains("Pa55"))
        );
    }
    let logs = String::from_utf8(logs().0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("notification not delivered"), "{logs}");
    for secret in [
        "smtp-Pa55word",
        "TOKEN-77",
        "SEC-sign-99",
        "zhang.san@campus.test",
        "被访人",
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}

#[tokio::test]
async fn the_documented_notify_section_is_empty_by_default_and_a_bad_one_is_refused() {
    logs();
    let documented: gatehouse::central::config::ServerConfig =
        toml::from_str(include_str!("../../examples/server.toml")).unwrap();
    assert!(documented.notify.is_empty());
    documented.notify.validate().unwrap();
    let parse = |text: &str| {
        toml::from_str::<gatehouse::central::config::ServerConfig>(&format!(
            "[server]\ndata_dir = \"/x\"\n{text}"
        ))
    };
    let bad_from = parse("[notify.smtp]\nhost = \"h\"\nfrom = \"not an address\"\n").unwrap();
    let err = bad_from.notify.validate().unwrap_err();
    assert!(err.contains("notify.smtp.from"), "{err}");
    let bad_notice =
        parse("[notify.webhook]\nurl = \"https://x/?key=K-1\"\nnotices = [\"lunch\"]\n").unwrap();
    let err = bad_notice.notify.validate().unwrap_err();
    assert!(err.contains("lunch") && !err.contains("K-1"), "{err}");
    let bad_url = parse("[notify.webhook]\nurl = \"ftp://x/?key=K-1\"\n").unwrap();
    let err = bad_url.notify.validate().unwrap_err();
    assert!(
        err.contains("notify.webhook.url") && !err.contains("K-1"),
        "{err}"
    );
    assert!(parse("[notify.smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nsecurity = \"ssl3\"\n").is_err());
    let tls = parse("[notify.smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nsecurity = \"tls\"\n").unwrap();
    assert_eq!(tls.notify.smtp.unwrap().port(), 465);
}
