//! Plate camera evidence in a real headless Chromium: a camera decision journalled at a real
//! gate (its photos put in the gate's photo store) reaches the centre by the real sync and the
//! console shows its plate close-up and scene photo beside the decision, the raw read and the
//! confidence; a held low-confidence read stands out with its photo slot and near matches, the
//! guard corrects the plate from a suggestion (the original kept) and opens with a reason; the
//! passage search page keeps its filters and export links.
//!
//! The centre keeps the photos the gate's sync uploads (`/api/v1/photos/{sha256}`): a real
//! JPEG is drawn (`naturalWidth > 0`); a photo whose file was lost at the gate is answered 404
//! for ever, and its slot shows the "photo uploading" placeholder. The end-to-end test drives
//! the whole chain: a camera's push to the gate's listener, the OPEN on the simulated I/O
//! module, the passage, the event and photos at the centre, the console, and the outside-vehicle
//! statistics (API and office page). The passage search's results and the office's
//! outside-vehicle statistics are drawn from the real `GET /api/v1/passages` and
//! `/api/v1/stats/outside-vehicles`.

use std::net::SocketAddr;

use chrono::Utc;
use gatehouse::domain::{Direction, PlateColour, ReasonCode};
use gatehouse::sim::barrier::ArmState;
use gatehouse::sim::camera::{self as sim_camera, PlateShot, ShotImages};
use gatehouse::sim::plate_image;
use gatehouse::wire::journal::{DecisionRecord, EventBody, PhotoKind, PhotoRef, PlateReadRecord};
use serde_json::json;
use sqlx::Row;

use crate::support::browser::{self, Browser};
use crate::support::site::{Site, site, wait_arm_open};
use crate::support::{Api, PASSWORD, wait_synced};

/// A camera's photos of `plate`: the plate close-up and a scene, real JPEGs drawn by the
/// simulator (a browser decodes them: `naturalWidth > 0` once drawn).
fn jpegs(plate: &str, caption: &str) -> (Vec<u8>, Vec<u8>) {
    let colour = PlateColour::Blue;
    (
        plate_image::plate_jpeg(plate, colour).unwrap(),
        plate_image::scene_jpeg_of_about(plate, colour, caption, 40_000, 7).unwrap(),
    )
}

/// Puts a plate close-up and a scene photo of `plate` into gate 1's photo store, as the camera
/// listener does with a push's images (the sync uploads them to the centre).
fn store_photos(site: &Site, plate: &str, label: &str) -> Vec<PhotoRef> {
    let store = &site.gate.handle().shared().photos;
    let (close_up, scene) = jpegs(plate, label);
    vec![
        store.put(PhotoKind::Plate, &close_up).unwrap(),
        store.put(PhotoKind::Scene, &scene).unwrap(),
    ]
}

/// A reference to a plate photo whose bytes were never stored at the gate (its file lost before
/// the upload): the centre answers 404 for it for ever, so its slot keeps the placeholder.
fn never_stored_photo(label: &str) -> PhotoRef {
    let bytes = format!("never stored {label}");
    PhotoRef {
        sha256: gatehouse::central::photos::sha256_of(bytes.as_bytes()),
        kind: PhotoKind::Plate,
        bytes: bytes.len() as u64,
    }
}

/// Waits until the image matching `css` is drawn (decoded: `naturalWidth > 0`).
async fn wait_drawn(b: &Browser, what: &str, css: &str) {
    let script = format!(
        "var i = document.querySelector('{css}'); return i && i.complete ? i.naturalWidth : 0"
    );
    b.wait_for(what, || async {
        (b.js(&script).await.as_i64()? > 0).then_some(())
    })
    .await;
}

/// A decision on a camera read of `raw` at `confidence`.
fn camera_decision(
    raw: &str,
    confidence: u8,
    reason: ReasonCode,
    photos: Vec<PhotoRef>,
) -> EventBody {
    let granted = reason == ReasonCode::Granted;
    EventBody::Decision(DecisionRecord {
        direction: "entry".into(),
        credential: "plate".into(),
        epc: None,
        tid: None,
        antenna: None,
        rssi_dbm: None,
        plate: Some(raw.into()),
        granted,
        reason,
        flags: vec![],
        permit_id: None,
        vehicle_id: None,
        holder: granted.then(|| "持证人1".into()),
        category: granted.then(|| "staff".into()),
        data_version: 1,
        decide_ns: 1000,
        camera: Some(Box::new(PlateReadRecord {
            camera: "north-entry".into(),
            event_id: format!("evt-{raw}-{confidence}"),
            raw_plate: raw.into(),
            colour: Some("blue".into()),
            confidence,
            photos,
        })),
        pass: None,
    })
}

/// Journals `body` at gate 1's lane `entry` (the real sync uploads it); returns its sequence.
async fn journal(site: &Site, body: EventBody) -> u64 {
    journal_at(site, "entry", body).await
}

/// Journals `body` at gate 1's `lane`; returns its sequence.
async fn journal_at(site: &Site, lane: &str, body: EventBody) -> u64 {
    site.gate
        .handle()
        .shared()
        .journal
        .append(Utc::now(), lane, body)
        .await
        .unwrap()
}

/// The `src` attribute of the first element matching `css`.
async fn src(b: &Browser, css: &str) -> String {
    b.find(css)
        .await
        .attr("src")
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_camera_decision_shows_the_plate_close_up_and_scene_photo_beside_it_with_the_read_and_a_placeholder_until_the_photo_arrives()
 {
    let site = site().await;
    let Some(b) = browser::open("camera decision photos").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.wait_live().await;
    // The scene photo is a real JPEG the sync uploads; the close-up's file was lost at the gate,
    // so the centre never has it.
    let scene = store_photos(&site, "京A12345", "camera decision").remove(1);
    let photos = vec![never_stored_photo("camera decision"), scene];
    journal(
        &site,
        camera_decision("京A12345", 96, ReasonCode::Granted, photos.clone()),
    )
    .await;

    let card = "#lane-status-1-entry";
    b.wait_text(&format!("{card} .verdict"), "放行").await;
    for (kind, photo) in ["plate", "scene"].iter().zip(&photos) {
        let url = format!("/api/v1/photos/{}", photo.sha256);
        let css = format!("{card} figure.photo[data-kind={kind}] img");
        let shown = src(&b, &css).await;
        assert!(shown.ends_with(&url), "{kind} photo: {shown}");
        let link = b
            .find(&format!("{card} figure.photo[data-kind={kind}] a"))
            .await
            .attr("href")
            .await
            .unwrap()
            .unwrap_or_default();
        assert!(link.ends_with(&url), "a click opens the full size: {link}");
    }
    let read = b.text(&format!("{card} .camera-read")).await;
    assert!(
        read.contains("京A12345") && read.contains("96%") && read.contains("蓝牌"),
        "the raw read, its colour and confidence: {read}"
    );
    // The centre has no such photo (yet): the slot says so instead of a broken image.
    b.wait_text(
        &format!("{card} figure.photo[data-kind=plate] .photo-wait"),
        "照片上传中",
    )
    .await;
    let retried = b
        .js(&format!(
            "return Number(document.querySelector('{card} figure.photo[data-kind=plate] img').dataset.tries || 0)"
        ))
        .await;
    assert!(retried.as_i64().unwrap() >= 1, "the page noticed the 404");
    // The scene photo reaches the centre and is drawn, without a placeholder.
    let scene_css = format!("{card} figure.photo[data-kind=scene]");
    wait_drawn(&b, "the scene photo drawn", &format!("{scene_css} img")).await;
    assert_eq!(b.text(&format!("{scene_css} .photo-wait")).await, "");
    // The recent passages list it with a thumbnail.
    let thumb = src(&b, "#recent-1 figure.photo.thumb[data-kind=plate] img").await;
    assert!(thumb.ends_with(&photos[0].sha256), "{thumb}");
    b.screenshot("console-camera-zh").await;
    b.js("document.getElementById('recent-1').scrollIntoView(); return true")
        .await;
    b.screenshot("console-camera-recent-zh").await;
    b.js("window.scrollTo(0, 0); return true").await;

    // A tablet in portrait: the photos fit the card, nothing sticks out sideways.
    b.set_viewport(768, 1024).await;
    let (scroll, viewport, offenders) = b.horizontal_overflow().await;
    assert!(
        scroll <= viewport && offenders.is_empty(),
        "{scroll} px wide in {viewport}: {offenders:#?}"
    );
    b.screenshot("console-camera-768x1024").await;
    b.set_viewport(1366, 768).await;

    // In English.
    b.find("#lang-switch").await.click().await.unwrap();
    b.wait_text(
        &format!("{card} figure.photo[data-kind=plate] .photo-wait"),
        "Photo uploading",
    )
    .await;
    b.wait_text(&format!("{card} .camera-read"), "confidence 96%")
        .await;
    b.screenshot("console-camera-en").await;

    // A tag granted under the "flag" policy although the camera read another plate: the card
    // says so beside the camera's read.
    let mut flagged = camera_decision("沪A99999", 91, ReasonCode::Granted, Vec::new());
    if let EventBody::Decision(d) = &mut flagged {
        d.credential = "tag".into();
        d.epc = Some("E200309888190072214036".into());
        d.plate = Some("京A12345".into());
        d.flags = vec!["plate_mismatch".into()];
    }
    journal_at(&site, "exit", flagged).await;
    b.wait_text(
        "#lane-status-1-exit .flag-warn",
        "the tag's plate is not the camera's",
    )
    .await;
    b.wait_text("#lane-status-1-exit .camera-read", "沪A99999")
        .await;
    b.close().await;
    site.finish().await;
}

#[tokio::test]
async fn a_held_low_confidence_read_shows_its_photo_and_near_matches_the_guard_corrects_the_plate_and_opens_with_a_reason()
 {
    let site = site().await;
    sqlx::query("INSERT INTO duty_records (operator_id, gate_id, started_ms) SELECT id, 1, 0 FROM operators WHERE username = 'guard'").execute(site.db.db.pool()).await.unwrap(); // on duty at gate 1: required to open (issue 20)
    // The car waits on the entry loop while the guard looks at the photo.
    site.gate.arrive("entry").await;
    let Some(b) = browser::open("held low-confidence read").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.wait_live().await;
    // The camera read 京A12345 as 京A1Z345 (2 → Z) at 58 %: the lane held it.
    let photos = store_photos(&site, "京A1Z345", "held");
    let seq = journal(
        &site,
        camera_decision("京A1Z345", 58, ReasonCode::HeldLowConfidence, photos),
    )
    .await;

    let card = "#lane-status-1-entry";
    b.wait_text(&format!("{card} .verdict"), "待人工确认").await;
    b.wait_text(&format!("{card} .reason"), "置信度低").await;
    let bg = b
        .js(&format!(
            "return getComputedStyle(document.querySelector('{card} .verdict')).backgroundColor"
        ))
        .await;
    assert_eq!(
        bg, "rgb(255, 183, 3)",
        "a held read is amber, not red or green"
    );
    b.find(&format!(
        "{card} .evidence.held figure.photo[data-kind=plate] img"
    ))
    .await;
    assert_eq!(
        b.text(&format!("{card} .confidence.low")).await,
        "置信度 58%"
    );
    let near = b.text(&format!("{card} .suggestions")).await;
    assert!(
        near.contains("京A12345"),
        "the registered plate is suggested: {near}"
    );
    assert!(
        site.gate.lane("entry").opens().is_empty(),
        "nothing opened on the held read"
    );
    b.screenshot("console-held-zh").await;
    // On a booth PC's screen the guard sees the photo slot and the open / keep-closed buttons
    // together, without scrolling.
    let bottom = b
        .js("return document.querySelector('#gate-1 article.lane:first-child form.command button.keep').getBoundingClientRect().bottom - window.innerHeight")
        .await;
    assert!(
        bottom.as_f64().unwrap() <= 0.0,
        "the held lane's buttons are {bottom} px below the screen"
    );

    // The guard picks the suggestion: it goes into the unfolded correction form, and is saved.
    b.find(&format!("{card} button[data-suggest='京A12345']"))
        .await
        .click()
        .await
        .unwrap();
    let input = b
        .find(&format!("{card} form.correct input[name=plate]"))
        .await;
    assert_eq!(
        input.prop("value").await.unwrap().as_deref(),
        Some("京A12345")
    );
    b.find(&format!("{card} form.correct button[type=submit]"))
        .await
        .click()
        .await
        .unwrap();
    b.wait_text(&format!("{card} .plate.corrected"), "京A12345")
        .await;
    let shown = b.text(&format!("{card} .plate-big")).await;
    assert!(
        shown.contains("京A1Z345") && shown.contains("门卫 李师傅") && !shown.contains("guard"),
        "the camera's read stays beside the correction, with who corrected it (by display name): {shown}"
    );
    b.wait_text("#recent-1 .plate.corrected", "京A12345").await;
    b.screenshot("console-held-corrected-zh").await;
    // The stored event still carries the camera's read.
    let row = sqlx::query(
        "SELECT e.plate, e.body, c.plate AS fixed FROM passage_events e \
         JOIN plate_corrections c ON c.gate_id = e.gate_id AND c.journal_no = e.journal_no \
         AND c.seq = e.seq WHERE e.gate_id = 1 AND e.seq = $1",
    )
    .bind(seq as i64)
    .fetch_one(site.db.db.pool())
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("plate"), "京A1Z345");
    assert!(
        row.get::<String, _>("body")
            .contains("\"raw_plate\":\"京A1Z345\"")
    );
    assert_eq!(row.get::<String, _>("fixed"), "京A12345");

    // Then the guard opens with a reason: the gate carries it out.
    let form = "#gate-1 article.lane:first-child form.command";
    b.find(&format!("{form} select"))
        .await
        .select_by_value("visitor_registered")
        .await
        .unwrap();
    b.find(&format!("{form} button.open"))
        .await
        .click()
        .await
        .unwrap();
    wait_arm_open(&site.gate, "entry").await;
    b.wait_text(&format!("{form} .form-status"), "闸口已执行")
        .await;
    b.wait_text(&format!("{card} .verdict"), "手动抬杆").await;
    let audited = site
        .count(
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('manual_command', 'plate_correction')",
        )
        .await;
    assert_eq!(audited, 2, "the correction and the open are both audited");
    b.close().await;
    site.finish().await;
}

#[tokio::test]
async fn the_passage_search_form_keeps_its_filters_in_the_address_and_the_export_links_carry_them()
{
    let site = site().await;
    let Some(b) = browser::open("passage search form").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/passages").await;
    b.find("#f-plate").await.send_keys("a1z").await.unwrap();
    b.find("#f-outcome")
        .await
        .select_by_value("held")
        .await
        .unwrap();
    b.find("#f-outside").await.click().await.unwrap();
    b.find("#passage-filters button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for("the search address", || async {
        let url = b.client.current_url().await.ok()?;
        let query = url.query()?.to_string();
        (query.contains("plate=a1z")
            && query.contains("outcome=held")
            && query.contains("outside=true"))
        .then_some(())
    })
    .await;
    // The form shows the filters again, and the exports ask for the same.
    let plate = b.find("#f-plate").await.prop("value").await.unwrap();
    assert_eq!(plate.as_deref(), Some("a1z"));
    for format in ["csv", "xlsx"] {
        let href = b
            .find(&format!("#export-{format}"))
            .await
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        assert!(
            href.contains("/api/v1/passages/export?")
                && href.contains("plate=a1z")
                && href.contains("outcome=held")
                && href.contains("outside=true")
                && href.contains(&format!("format={format}")),
            "{href}"
        );
    }
    // Only the guard's own gate is offered.
    let gates = b.text("#f-gate").await;
    assert!(gates.contains("北门") && !gates.contains("南门"), "{gates}");
    b.screenshot("passages-form-zh").await;
    b.close().await;
    site.finish().await;
}

#[tokio::test]
async fn the_office_page_has_the_outside_vehicle_section_over_the_last_30_days_with_its_exports() {
    let site = site().await;
    let Some(b) = browser::open("outside-vehicle section").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "security", PASSWORD, "/office").await;
    b.wait_text("#outside-title", "校外车辆").await;
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let from = (today - chrono::Duration::days(29)).to_string();
    let value = |css: &'static str| {
        let b = &b;
        async move {
            b.find(css)
                .await
                .prop("value")
                .await
                .unwrap()
                .unwrap_or_default()
        }
    };
    assert_eq!(value("#outside-from").await, from);
    assert_eq!(value("#outside-to").await, today.to_string());
    // The script asked for the range and pointed the exports at it.
    b.wait_for("the export links", || async {
        let href = b
            .find("#outside-export-xlsx")
            .await
            .attr("href")
            .await
            .ok()??;
        (href.contains(&format!("from={from}")) && href.contains("format=xlsx")).then_some(())
    })
    .await;
    for table in [
        "#outside-per-day",
        "#outside-per-province",
        "#outside-per-gate",
        "#outside-dwell",
        "#outside-repeat",
    ] {
        b.find(table).await;
    }
    b.screenshot("office-outside-section-zh").await;
    b.close().await;
    site.finish().await;
}

#[tokio::test]
async fn the_passage_search_finds_a_held_read_by_a_plate_fragment_with_its_thumbnails_and_the_corrected_plate()
 {
    let site = site().await;
    let photos = store_photos(&site, "京A1Z345", "search");
    let seq = journal(
        &site,
        camera_decision(
            "京A1Z345",
            58,
            ReasonCode::HeldLowConfidence,
            photos.clone(),
        ),
    )
    .await;
    journal(
        &site,
        camera_decision(
            "京A12345",
            97,
            ReasonCode::Granted,
            store_photos(&site, "京A12345", "other"),
        ),
    )
    .await;
    let db = &site.db.db;
    crate::support::gate::wait_for("the events at the centre", || async {
        (crate::support::harness::count(
            db,
            "SELECT COUNT(*) FROM passage_events WHERE kind = 'decision'",
        )
        .await
            >= 2)
            .then_some(())
    })
    .await;
    let journal_no: i64 =
        sqlx::query_scalar("SELECT journal_no FROM passage_events WHERE gate_id = 1 AND seq = $1")
            .bind(seq as i64)
            .fetch_one(db.pool())
            .await
            .unwrap();
    let api = crate::support::Api::new(&site.central, db, "guard").await;
    api.call(
        reqwest::Method::POST,
        &format!("/api/v1/events/1/{journal_no}/{seq}/plate"),
        Some(serde_json::json!({"plate": "京A12345"})),
    )
    .await;
    let Some(b) = browser::open("passage search results").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/passages").await;
    b.goto(&format!("{base}/passages?outcome=held")).await;
    b.wait_for("the results", || async {
        (b.js("return document.body.dataset.passages || ''").await == "loaded").then_some(())
    })
    .await;
    let rows = b.text("#passage-results tbody").await;
    assert!(
        rows.contains("京A12345") && rows.contains("京A1Z345"),
        "{rows}"
    );
    assert_eq!(
        b.js("return document.querySelectorAll('#passage-results tbody tr').length")
            .await,
        1,
        "only the held read"
    );
    let thumb = src(&b, "#passage-results figure.photo[data-kind=plate] img").await;
    assert!(thumb.ends_with(&photos[0].sha256), "{thumb}");
    b.screenshot("passages-results-zh").await;
    b.close().await;
    site.finish().await;
}

#[tokio::test]
async fn the_office_page_shows_the_outside_vehicle_statistics() {
    let site = site().await;
    let Some(b) = browser::open("outside-vehicle statistics").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "security", PASSWORD, "/office").await;
    b.wait_for("the statistics", || async {
        (b.js("return document.getElementById('outside-vehicles').dataset.loaded || ''")
            .await
            == "1")
            .then_some(())
    })
    .await;
    assert_eq!(b.text("#outside-status").await, "", "no error shown");
    assert!(!b.text("#outside-overstays").await.contains('—'));
    b.screenshot("office-outside-zh").await;
    b.close().await;
    site.finish().await;
}

/// Gate 1's camera listener with one Hikvision camera `north-entry` at lane `entry`, served as
/// `gatehouse gate run` serves it (with each request's peer address); returns its base URL.
async fn serve_camera_listener(site: &Site) -> String {
    use gatehouse::gate::camera_http;
    use gatehouse::gate::config::{CameraConfig, CameraKind, CameraListenerSection};
    let mut config = site.gate.config.clone();
    config.camera_listener = Some(CameraListenerSection {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_body_bytes: 8 * 1024 * 1024,
    });
    config.cameras = vec![CameraConfig {
        name: "north-entry".into(),
        kind: CameraKind::Hikvision,
        from: None,
        lane: "entry".into(),
        channels: Default::default(),
        min_confidence: 80,
        silent_after_s: 600,
    }];
    config
        .validate()
        .expect("the camera configuration is valid");
    let router = camera_http::router(site.gate.shared_handle(), &config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    url
}

/// The site's day (Asia/Shanghai) of gate 1's last passage, `YYYY-MM-DD`.
async fn passage_day(db: &gatehouse::central::db::Db) -> String {
    let at: i64 = sqlx::query_scalar(
        "SELECT at_ms FROM passage_events WHERE gate_id = 1 AND kind = 'passage' \
         ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    chrono::DateTime::from_timestamp_millis(at)
        .unwrap()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .to_string()
}

#[tokio::test]
async fn a_camera_push_opens_the_lane_its_photos_reach_the_console_and_the_visitor_counts_as_an_outside_vehicle()
 {
    const PLATE: &str = "京N20260";
    let site = site().await;
    let db = &site.db.db;
    let cameras = serve_camera_listener(&site).await;

    // A visitor booked by the host's department for a slot that covers now, approved.
    let approver = Api::new(&site.central, db, "approver").await;
    let host = approver
        .call(
            reqwest::Method::GET,
            "/api/v1/persons?q=%E6%8C%81%E8%AF%81%E4%BA%BA1",
            None,
        )
        .await;
    let host = host["items"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("持证人1 is found: {host}"));
    let minute = Utc::now().timestamp() / 60 * 60;
    let at = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap().to_rfc3339();
    let booking = approver
        .call(
            reqwest::Method::POST,
            "/api/v1/bookings",
            Some(json!({
                "host_id": host, "plate": PLATE, "driver_name": "钱师傅",
                "driver_phone": "13900001111", "purpose": "送货", "category": "visitor",
                "slot_from": at(minute - 3600), "slot_until": at(minute + 4 * 3600),
            })),
        )
        .await;
    let booking = booking["id"].as_i64().unwrap();
    let approved = approver
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/bookings/{booking}/approve"),
            None,
        )
        .await;
    assert_eq!(approved["status"], "approved", "{approved}");
    wait_synced(db, &site.gate).await;

    let Some(b) = browser::open("camera end to end").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.wait_live().await;

    // The visitor's car drives onto the entry loop; the camera reads its plate and pushes the
    // read with its photos (real JPEGs) as a Hikvision camera does.
    site.gate.arrive("entry").await;
    let shot = PlateShot {
        plate: PLATE.into(),
        colour: PlateColour::Blue,
        confidence: 95,
        event_id: 20260,
        channel: 1,
        direction: Some(Direction::Entry),
        at: Utc::now(),
    };
    let images = ShotImages::draw(&shot, "north-entry", 60_000).unwrap();
    let push = sim_camera::payload(sim_camera::CameraKind::Hikvision, &shot, &images);
    let answer = sim_camera::post(
        &sim_camera::client(std::time::Duration::from_secs(20)),
        &sim_camera::camera_url(&cameras, "north-entry"),
        &push,
    )
    .await
    .expect("the gate answers the push 200");
    assert_eq!(answer, "OK");
    // The lane decided on the read: OPEN on the simulated I/O module.
    wait_arm_open(&site.gate, "entry").await;
    let lane = site.gate.lane("entry");
    assert_eq!(lane.opens().len(), 1, "{:?}", lane.io.coil_log());

    // The car drives under the arm and away: a passage is journalled.
    lane.set_safety(true);
    site.gate.wait_lane_state("entry", "passing").await;
    lane.set_presence(false);
    lane.wait_polls(2).await;
    lane.set_safety(false);
    lane.wait_arm(ArmState::Closed).await;
    site.gate.wait_lane_state("entry", "idle").await;

    // The decision, the passage and both photos reach the centre.
    let plate_sha = gatehouse::central::photos::sha256_of(&images.plate);
    let scene_sha = gatehouse::central::photos::sha256_of(&images.scene);
    crate::support::gate::wait_for("the decision, passage and photos at the centre", || async {
        let photos: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM photos WHERE sha256 IN ($1, $2) AND gate_id = 1",
        )
        .bind(&plate_sha)
        .bind(&scene_sha)
        .fetch_one(db.pool())
        .await
        .unwrap();
        let events = site
            .count(
                "SELECT COUNT(*) FROM passage_events WHERE gate_id = 1 AND lane = 'entry' \
                 AND kind IN ('decision', 'passage')",
            )
            .await;
        (photos == 2 && events >= 2).then_some(())
    })
    .await;
    let body: String = sqlx::query_scalar(
        "SELECT body FROM passage_events WHERE gate_id = 1 AND kind = 'decision' \
         ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(
        body.contains("\"granted\":true") && body.contains(&plate_sha),
        "the decision granted the booked visitor on the camera's read: {body}"
    );

    // The console shows the decision with its plate close-up drawn.
    let card = "#lane-status-1-entry";
    b.wait_text(&format!("{card} .camera-read"), PLATE).await;
    let plate_img = format!("{card} figure.photo[data-kind=plate] img");
    assert!(src(&b, &plate_img).await.ends_with(&plate_sha));
    wait_drawn(&b, "the plate close-up drawn", &plate_img).await;
    wait_drawn(
        &b,
        "the scene drawn",
        &format!("{card} figure.photo[data-kind=scene] img"),
    )
    .await;
    // The camera is a lane device beside the reader, in the lane's health line.
    b.wait_text("#lane-health-1-entry", "相机 north-entry 在线")
        .await;
    b.screenshot("console-camera-e2e-zh").await;
    b.close().await;

    // The visit counts in today's outside-vehicle statistics.
    // (The site's day of the passage: the test may run across the site's midnight.)
    let day = passage_day(db).await;
    let security = Api::new(&site.central, db, "security").await;
    let stats_path = format!("/api/v1/stats/outside-vehicles?from={day}&to={day}");
    let stats = crate::support::gate::wait_for("the visit in the statistics", || async {
        let stats = security.call(reqwest::Method::GET, &stats_path, None).await;
        (stats["per_day"]
            .as_array()?
            .iter()
            .any(|d| d["day"] == day.as_str() && d["visits"].as_i64() >= Some(1)))
        .then_some(stats)
    })
    .await;
    let provinces = stats["per_province"].as_array().unwrap();
    assert!(
        provinces
            .iter()
            .any(|p| p["province"] == "京" && p["visits"].as_i64() >= Some(1)),
        "{stats}"
    );

    // And the office page's outside-vehicle section shows it.
    let Some(b) = browser::open("camera end to end: office").await else {
        return;
    };
    b.sign_in(&base, "security", PASSWORD, "/office").await;
    b.wait_for("the statistics", || async {
        (b.js("return document.getElementById('outside-vehicles').dataset.loaded || ''")
            .await
            == "1")
            .then_some(())
    })
    .await;
    assert_eq!(b.text("#outside-status").await, "", "no error shown");
    let provinces = b.text("#outside-per-province").await;
    assert!(provinces.contains('京'), "{provinces}");
    let dwell = b.text("#outside-dwell").await;
    assert!(
        dwell.contains("仍在校内"),
        "the visitor is still inside, by name: {dwell}"
    );
    let visits = b.text("#outside-visits").await;
    assert!(
        visits.parse::<i64>().is_ok_and(|n| n >= 1),
        "visits: {visits}"
    );
    b.js("document.getElementById('outside-vehicles').scrollIntoView(); return true")
        .await;
    b.screenshot("office-outside-e2e-zh").await;
    b.close().await;
    site.finish().await;
}
