//! The visitor's pass page (`/pass/{secret}`, issue 21) in a real headless Chromium: on a
//! phone-sized window (390 × 844) the QR code fills the width without sideways scrolling, the
//! state and instruction are in Chinese, the language switch gives English; and on a desktop
//! window it stays a readable column. Screenshots: `pass-phone-zh.png`, `pass-phone-en.png`,
//! `pass-desktop.png` in `target/web-screenshots/`.

use chrono::{Duration, TimeZone, Utc};
use gatehouse::central::db::Actor;
use gatehouse::central::passes;
use gatehouse::central::repo::bookings::{self, NewBooking, Transition};
use gatehouse::central::state::AppState;

use crate::support::browser;

fn minute(t: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp() / 60 * 60, 0)
        .single()
        .unwrap()
}

#[tokio::test]
async fn the_pass_page_shows_a_big_qr_code_on_a_phone_in_chinese_and_english_and_on_a_desktop() {
    let t = crate::support::sqlite().await;
    let db = t.db.clone();
    sqlx::query("INSERT INTO gates (name, created_ms, updated_ms) VALUES ('北门', 0, 0)")
        .execute(db.pool())
        .await
        .unwrap();
    let host: i64 = sqlx::query_scalar(
        "INSERT INTO persons (name, category, department, phone, id_card, created_ms, updated_ms) \
         VALUES ('张老师', 'staff', '计算机学院', '', '', 0, 0) RETURNING id",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    let actor = Actor::system();
    let from = minute(Utc::now() - Duration::minutes(30));
    let b = bookings::create(
        &db,
        &actor,
        &NewBooking {
            host_id: host,
            department: "计算机学院".into(),
            purpose: "学术交流".into(),
            plate: "京A12345".into(),
            plate_colour: Some("blue".into()),
            driver_name: "周九".into(),
            driver_phone: "13812345678".into(),
            slot_from: from,
            slot_until: from + Duration::hours(5),
            walk_in: false,
        },
    )
    .await
    .unwrap();
    bookings::transition(&db, &actor, b.id, Transition::Approve)
        .await
        .unwrap();
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = gatehouse::pki::pass_key_dir(keys_dir.path());
    gatehouse::pki::new_pass_key(&keys, Utc::now()).unwrap();
    let mut state = AppState::new(db.clone());
    state.passes = passes::start(&db, &keys, true).await.unwrap();
    let pass = passes::issue(&db, &state.passes, b.id)
        .await
        .unwrap()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let service =
        gatehouse::web::site(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });

    let Some(browser) = browser::open("pass page").await else {
        return;
    };
    browser.set_viewport(390, 844).await;
    browser.goto(&format!("{base}{}", pass.link())).await;
    assert_eq!(browser.text("#pass-status").await, "有效");
    assert_eq!(
        browser.text("#pass-instruction").await,
        "请将二维码对准车道扫码器"
    );
    assert_eq!(browser.text("#pass-plate").await, "京A12345");
    // The QR code: most of the phone's width, square, entirely on screen.
    let qr = browser
        .js(
            "var r = document.querySelector('#pass-qr svg').getBoundingClientRect(); \
             return [r.width, r.height, r.left, r.right, r.bottom];",
        )
        .await;
    let (w, h) = (qr[0].as_f64().unwrap(), qr[1].as_f64().unwrap());
    assert!(w >= 300.0 && (w - h).abs() < 1.0, "QR {w}×{h}");
    assert!(qr[2].as_f64().unwrap() >= 0.0 && qr[3].as_f64().unwrap() <= 390.0);
    assert!(
        qr[4].as_f64().unwrap() <= 844.0,
        "the QR code is on the first screen"
    );
    let (scroll, width, offenders) = browser.horizontal_overflow().await;
    assert!(scroll <= width, "sideways scrolling: {offenders:?}");
    browser.screenshot("pass-phone-zh").await;

    browser.find("#lang-switch").await.click().await.unwrap();
    browser
        .wait_text(
            "#pass-instruction",
            "Hold the QR code up to the lane's scanner",
        )
        .await;
    assert_eq!(browser.text("#pass-status").await, "valid");
    browser.screenshot("pass-phone-en").await;

    browser.set_viewport(1366, 768).await;
    browser.goto(&format!("{base}{}", pass.link())).await;
    let column = browser
        .js("return document.querySelector('main.pass').getBoundingClientRect().width")
        .await;
    assert!(column.as_f64().unwrap() <= 480.0, "a readable column");
    browser.screenshot("pass-desktop").await;
    browser.close().await;
}

#[tokio::test]
async fn the_visitor_slip_of_a_visit_on_a_booking_with_a_pass_prints_its_qr_code() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt as _;

    let t = crate::support::sqlite().await;
    let db = t.db.clone();
    crate::support::seed(&db).await;
    let host: i64 = sqlx::query_scalar(
        "INSERT INTO persons (name, category, department, phone, id_card, created_ms, updated_ms) \
         VALUES ('张老师', 'staff', '计算机学院', '', '', 0, 0) RETURNING id",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    let actor = Actor::system();
    let from = minute(Utc::now() - Duration::minutes(30));
    let new = |plate: &str| NewBooking {
        host_id: host,
        department: "计算机学院".into(),
        purpose: "学术交流".into(),
        plate: plate.into(),
        plate_colour: None,
        driver_name: "周九".into(),
        driver_phone: "13812345678".into(),
        slot_from: from,
        slot_until: from + Duration::hours(5),
        walk_in: false,
    };
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = gatehouse::pki::pass_key_dir(keys_dir.path());
    gatehouse::pki::new_pass_key(&keys, Utc::now()).unwrap();
    let mut state = AppState::new(db.clone());
    state.passes = passes::start(&db, &keys, true).await.unwrap();
    let site = gatehouse::web::site(state);
    let response = site
        .clone()
        .oneshot(crate::support::harness::login("guard"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // Two visits at gate 1: one on an approved booking (its pass is printed), one on a booking
    // that was cancelled (none).
    let mut slips = Vec::new();
    for (plate, approve) in [("京A12345", true), ("京B23456", false)] {
        let b = bookings::create(&db, &actor, &new(plate)).await.unwrap();
        bookings::transition(&db, &actor, b.id, Transition::Approve)
            .await
            .unwrap();
        if !approve {
            bookings::transition(&db, &actor, b.id, Transition::Cancel)
                .await
                .unwrap();
        }
        let visit: i64 = sqlx::query_scalar(
            "INSERT INTO visits (booking_id, gate_id, lane_key, plate, driver_name, driver_phone, \
             host_name, department, purpose, expected_departure_ms, arrived_ms, registered_by) \
             VALUES ($1, 1, 'entry', $2, '周九', '13812345678', '张老师', '计算机学院', '', $3, $4, NULL) \
             RETURNING id",
        )
        .bind(b.id)
        .bind(plate)
        .bind((from + Duration::hours(5)).timestamp_millis())
        .bind(Utc::now().timestamp_millis())
        .fetch_one(db.pool())
        .await
        .unwrap();
        let response = site
            .clone()
            .oneshot(
                Request::get(format!("/console/visitors/{visit}/slip"))
                    .header(header::COOKIE, &cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        slips.push(String::from_utf8(bytes.to_vec()).unwrap());
    }
    assert!(slips[0].contains("id=\"slip-pass\"") && slips[0].contains("<svg"));
    assert!(slips[0].contains("访客通行码"));
    assert!(
        !slips[1].contains("slip-pass"),
        "a cancelled booking's pass is not printed"
    );
}
