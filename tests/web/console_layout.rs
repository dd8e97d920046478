//! The booth's pages at the sizes they are used at — a 1366×768 booth PC, a tablet in landscape
//! (1024×768) and in portrait (768×1024): nothing sticks out sideways and the page never scrolls
//! horizontally; the decisions are the large, colour-coded text the guard reads from across the
//! booth. Screenshots of each page at each size go to the screenshot folder
//! (`target/web-screenshots/layout-*.png`) to be looked at.

use crate::support::PASSWORD;
use crate::support::browser::{self, Browser};
use crate::support::gate::epc;
use crate::support::site::{BOOTH_PASSWORD, site};

/// (width, height, name).
const SIZES: [(u32, u32, &str); 3] = [
    (1366, 768, "1366x768"),
    (1024, 768, "tablet-1024x768"),
    (768, 1024, "tablet-768x1024"),
];

/// Asserts the page fits `width` and writes its screenshot.
async fn fits(b: &Browser, page: &str, size: &str, width: u32) {
    let (scroll, viewport, offenders) = b.horizontal_overflow().await;
    // The viewport less a vertical scroll bar, if the page is taller than the screen.
    assert!(
        viewport <= u64::from(width) && viewport + 20 >= u64::from(width),
        "{page} at {size}: a {viewport} px wide layout viewport"
    );
    assert!(
        scroll <= viewport && offenders.is_empty(),
        "{page} at {size}: the page is {scroll} px wide in a {viewport} px viewport; \
         sticking out: {offenders:#?}"
    );
    b.screenshot(&format!("layout-{page}-{size}")).await;
}

/// The computed font size (px) and background colour of the first element matching `css`.
async fn style(b: &Browser, css: &str) -> (f64, String) {
    let v = b
        .js(&format!(
            "var s = getComputedStyle(document.querySelector({css:?})); \
             return [parseFloat(s.fontSize), s.backgroundColor];"
        ))
        .await;
    (v[0].as_f64().unwrap(), v[1].as_str().unwrap().to_string())
}

#[tokio::test]
async fn the_live_view_registration_form_and_booth_page_fit_a_booth_pc_and_a_tablet() {
    let site = site().await;
    let booth = site.serve_booth().await;
    let Some(b) = browser::open("layout").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.wait_live().await;
    // Something to show: a grant at the entry, a revoked permit at the exit.
    site.gate.present("entry", &epc(1)).await;
    site.gate.present("exit", &epc(2)).await;
    b.wait_text("#lane-status-1-entry .verdict", "放行").await;
    b.wait_text("#lane-status-1-exit .verdict", "禁止通行")
        .await;
    // Big and colour-coded: green for a grant, red for a denial, larger than the body text.
    let (granted_size, granted_bg) = style(&b, "#lane-status-1-entry .verdict").await;
    let (denied_size, denied_bg) = style(&b, "#lane-status-1-exit .verdict").await;
    let (body_size, _) = style(&b, "body").await;
    assert!(granted_size >= 2.0 * body_size && denied_size >= 2.0 * body_size);
    assert_eq!(granted_bg, "rgb(11, 122, 62)", "granted is green");
    assert_eq!(denied_bg, "rgb(176, 0, 32)", "denied is red");

    // The booth page's own sign-in (another origin: the gate's listener).
    b.goto(&booth).await;
    b.booth_sign_in("guard", BOOTH_PASSWORD).await;
    b.find("#reason-entry").await;

    for (width, height, size) in SIZES {
        b.set_viewport(width, height).await;
        b.goto(&format!("{base}/console")).await;
        b.wait_live().await;
        b.wait_text("#lane-status-1-entry .verdict", "放行").await;
        fits(&b, "console", size, width).await;
        b.goto(&format!("{base}/console/visitors")).await;
        b.find("#visit-form").await;
        fits(&b, "visitors", size, width).await;
        b.goto(&booth).await;
        b.find("#reason-entry").await;
        fits(&b, "booth", size, width).await;
    }
    b.close().await;
    site.finish().await;
}
