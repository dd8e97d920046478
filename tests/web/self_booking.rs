//! Self-booking in a real headless Chromium on a phone-sized window (390×844): a visitor fills
//! in `/visit` (province picker, plate typed in lower case), lands on the status page reading
//! 等待被访人确认; the host signs in, approves on `/admin/visits`, and the visitor's status page
//! then says the visit is approved and links to the pass, whose page shows the QR code (the site
//! signs passes with a key made for the test). Screenshots, phone and desktop, go to
//! `target/web-screenshots/`.

use std::net::SocketAddr;

use gatehouse::central::db::Db;
use gatehouse::central::state::AppState;
use gatehouse::web::site;

use crate::admin_support::applicant;
use crate::support::browser::{self, Browser};
use crate::support::{PASSWORD, seed, sqlite};

/// The site on `db`, signing visitor passes with a key made in `keys`.
async fn serve(db: Db, keys: &std::path::Path) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let key_dir = gatehouse::pki::pass_key_dir(keys);
    gatehouse::pki::new_pass_key(&key_dir, chrono::Utc::now()).unwrap();
    let mut state = AppState::new(db.clone());
    state.passes = gatehouse::central::passes::start(&db, &key_dir, true)
        .await
        .unwrap();
    let service = site(state).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, service).await;
    });
    (format!("http://{addr}"), server)
}

async fn fill(b: &Browser, css: &str, text: &str) {
    let e = b.find(css).await;
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_books_on_a_phone_and_sees_the_approval_the_host_gives_on_the_admin_page() {
    let t = sqlite().await;
    let db = t.db.clone();
    seed(&db).await;
    let host: i64 = sqlx::query_scalar(
        "INSERT INTO persons (name, category, department, phone, id_card, staff_no, created_ms, \
         updated_ms) VALUES ('王老师', 'staff', '计算机学院', '13812345678', '', 'T2003117', 0, 0) \
         RETURNING id",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    applicant(&db, "wanglaoshi", host).await;
    let keys = tempfile::tempdir().unwrap();
    let (base, server) = serve(db.clone(), keys.path()).await;
    let Some(b) = browser::open("self-booking on a phone").await else {
        server.abort();
        return;
    };
    b.set_viewport(390, 844).await;
    b.goto(&format!("{base}/visit")).await;
    b.wait_text("h1", "预约来访").await;
    let (scroll, width, offenders) = b.horizontal_overflow().await;
    assert!(scroll <= width, "the form scrolls sideways: {offenders:?}");
    fill(&b, "#v-host", "t2003117").await;
    b.js("document.getElementById('v-province').value = '浙'; return null;")
        .await;
    fill(&b, "#v-plate", "am·1205").await;
    fill(&b, "#v-name", "李娜").await;
    fill(&b, "#v-phone", "139 1234 5678").await;
    fill(&b, "#v-purpose", "学术交流").await;
    // Tomorrow, 09:00–11:30 (the date input's value is set the way a picker sets it).
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d")
        .to_string();
    b.js(&format!(
        "document.getElementById('v-date').value = '{tomorrow}'; \
         document.getElementById('v-from').value = '09:00'; \
         document.getElementById('v-until').value = '11:30'; return null;"
    ))
    .await;
    b.screenshot("visit-form-phone-zh").await;
    b.js("window.scrollTo(0, document.body.scrollHeight); return null;")
        .await;
    b.screenshot("visit-form-phone-zh-end").await;
    b.find("#visit-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#visit-status h1", "等待被访人确认").await;
    let status_url = b.client.current_url().await.unwrap().to_string();
    assert!(status_url.contains("/visit/s/"), "{status_url}");
    let (scroll, width, offenders) = b.horizontal_overflow().await;
    assert!(
        scroll <= width,
        "the status page scrolls sideways: {offenders:?}"
    );
    b.screenshot("visit-status-pending-phone-zh").await;
    let plate: String = sqlx::query_scalar("SELECT plate FROM visitor_bookings")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(plate, "浙AM1205");

    // The host signs in (desktop) and approves on 我的访客.
    b.set_viewport(1366, 768).await;
    b.sign_in(&base, "wanglaoshi", PASSWORD, "/admin/visits")
        .await;
    let rows = b.wait_text("#host-visits tbody", "浙AM1205").await;
    assert!(rows.contains("李娜"), "{rows}");
    b.screenshot("admin-host-visits-zh").await;
    b.find("#host-visits tbody button.ok")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for("the booking approved", || async {
        let s: String = sqlx::query_scalar("SELECT status FROM visitor_bookings")
            .fetch_one(db.pool())
            .await
            .ok()?;
        (s == "approved").then_some(())
    })
    .await;

    // The visitor's page now says approved and links to the pass, which shows the QR code.
    b.set_viewport(390, 844).await;
    b.goto(&status_url).await;
    let card = b.wait_text("#visit-status", "预约已通过").await;
    assert!(card.contains("查看通行码"), "{card}");
    b.screenshot("visit-status-approved-phone-zh").await;
    b.find("#pass-link").await.click().await.unwrap();
    let pass = b.wait_text("body", "请将二维码对准车道扫码器").await;
    assert!(pass.contains("浙AM1205"), "{pass}");
    assert_eq!(
        b.js("return document.querySelectorAll('svg').length > 0 ? 'qr' : 'none'")
            .await,
        "qr"
    );
    b.screenshot("visit-pass-phone-zh").await;
    b.goto(&status_url).await;
    b.wait_text("#visit-status", "预约已通过").await;
    // English through the switch.
    b.find("#lang-switch").await.click().await.unwrap();
    b.wait_text("#visit-status h1", "Approved").await;
    b.screenshot("visit-status-approved-phone-en").await;
    b.set_viewport(1366, 768).await;
    b.goto(&format!("{base}/visit")).await;
    b.screenshot("visit-form-desktop-en").await;
    b.close().await;
    server.abort();
}
