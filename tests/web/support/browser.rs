//! A real headless Chromium, driven through Debian's chromedriver with fantoccini.
//!
//! One chromedriver process serves the whole test binary (started on first use, on a free
//! port, in its own process group); a watchdog shell kills that group when the test process
//! exits, so no chromedriver or Chromium outlives the run. Each test opens its own browser
//! session with a fresh profile directory and closes it at the end.
//!
//! Without chromedriver/Chromium the browser tests print a notice and pass on a developer
//! machine, and fail under CI (`CI=true`).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::time::Instant;

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long a page condition may take.
pub const DEADLINE: Duration = Duration::from_secs(20);

// chromedriver and its watchdog live as long as the test process: nothing waits for them here;
// the watchdog ends chromedriver's process group when this process is gone.
#[allow(clippy::zombie_processes)]
fn chromedriver_url() -> &'static Option<String> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        // The watchdog: when this test process is gone, end chromedriver's process group
        // (chromedriver and every Chromium it started).
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {me} 2>/dev/null; do sleep 1; done; kill -TERM -{cd} 2>/dev/null; \
                 sleep 2; kill -KILL -{cd} 2>/dev/null",
                me = std::process::id(),
                cd = child.id()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the chromedriver watchdog starts");
        // Wait until chromedriver accepts connections.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "chromedriver did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(format!("http://127.0.0.1:{port}"))
    })
}

/// A browser session, or `None` (with a notice) where no browser is installed outside CI.
pub async fn open(test: &str) -> Option<Browser> {
    let Some(url) = chromedriver_url() else {
        assert!(
            !super::ci(),
            "CI=true but {CHROMEDRIVER} or {CHROMIUM} is missing: .ci/run installs them"
        );
        eprintln!(
            "NOTICE: {test} skipped: no {CHROMEDRIVER} / {CHROMIUM} (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1366,768",
                "--autoplay-policy=no-user-gesture-required", "--lang=zh-CN",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(url)
        .await
        .expect("a Chromium session");
    let browser = Browser {
        client,
        _profile: profile,
    };
    // A booth PC's screen: screenshots show what the guard sees.
    browser.set_viewport(1366, 768).await;
    Some(browser)
}

/// Where screenshots go: `$GATEHOUSE_SCREENSHOTS`, or `target/web-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("GATEHOUSE_SCREENSHOTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/web-screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One browser session.
pub struct Browser {
    pub client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Signs in through the sign-in page and waits for the page it leads to.
    pub async fn sign_in(&self, base: &str, username: &str, password: &str, next: &str) {
        self.goto(&format!("{base}/login?next={next}")).await;
        self.submit_sign_in(username, password, "#login-form button[type=submit]")
            .await;
        self.wait_url(next).await;
    }

    /// Fills the booth page's sign-in form (the page already open) as `username` with
    /// `password`, and submits it.
    pub async fn booth_sign_in(&self, username: &str, password: &str) {
        self.submit_sign_in(username, password, "form.login button")
            .await;
    }

    /// Types `username` and `password` into the open sign-in form and clicks `submit`.
    async fn submit_sign_in(&self, username: &str, password: &str, submit: &str) {
        self.find("#username")
            .await
            .send_keys(username)
            .await
            .unwrap();
        self.find("#password")
            .await
            .send_keys(password)
            .await
            .unwrap();
        self.find(submit).await.click().await.unwrap();
    }

    pub async fn find(&self, css: &str) -> Element {
        self.wait_for(&format!("element {css}"), || async {
            self.client.find(Locator::Css(css)).await.ok()
        })
        .await
    }

    /// The visible text of the first element matching `css` ("" if none).
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the element's text contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        self.wait_for(&format!("{css} to contain {needle:?}"), || async {
            let text = self.text(css).await;
            text.contains(needle).then_some(text)
        })
        .await
    }

    pub async fn wait_url(&self, path: &str) {
        self.wait_for(&format!("the page {path}"), || async {
            let url = self.client.current_url().await.ok()?;
            (url.path() == path.split('?').next().unwrap_or(path)).then_some(())
        })
        .await
    }

    /// Runs a script and returns its JSON result.
    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Waits until the page's live connection has delivered its first update.
    pub async fn wait_live(&self) {
        self.wait_for("the live connection", || async {
            (self.js("return document.body.dataset.live || ''").await == "connected").then_some(())
        })
        .await
    }

    /// Polls `check` until it returns `Some`, or fails the test after [`DEADLINE`].
    pub async fn wait_for<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sizes the window so that the page's viewport is `width` × `height` CSS pixels. The
    /// window is grown by what the browser's chrome takes, and the resize retried: on a loaded
    /// machine (several headless browsers starting at once) Chromium may clip the first resize
    /// or apply it in steps.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        let mut window = (width, height);
        let mut last = (0, 0);
        for _ in 0..20 {
            self.client
                .set_window_size(window.0, window.1)
                .await
                .unwrap();
            let inner = self
                .js("return [window.innerWidth, window.innerHeight]")
                .await;
            last = (
                inner[0].as_u64().unwrap_or(0) as u32,
                inner[1].as_u64().unwrap_or(0) as u32,
            );
            if last == (width, height) {
                return;
            }
            // Browser chrome takes some of the window: grow it by the difference.
            window = (
                (window.0 + width).saturating_sub(last.0).max(width),
                (window.1 + height).saturating_sub(last.1).max(height),
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the viewport is {last:?}, not {width}x{height}");
    }

    /// Elements that stick out of the viewport sideways, and whether the page scrolls
    /// horizontally: `(scroll width, viewport width, offenders)`.
    pub async fn horizontal_overflow(&self) -> (u64, u64, Vec<String>) {
        let v = self
            .js("var w = document.documentElement.clientWidth, out = []; \
                 document.querySelectorAll('body *').forEach(function (e) { \
                   var r = e.getBoundingClientRect(); \
                   if (r.width > 0 && r.height > 0 && (r.right > w + 0.5 || r.left < -0.5)) \
                     out.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + \
                       (e.className && e.className.baseVal === undefined ? '.' + e.className : '') + \
                       ' [' + Math.round(r.left) + ', ' + Math.round(r.right) + ']'); }); \
                 return [document.documentElement.scrollWidth, w, out.slice(0, 12)];")
            .await;
        (
            v[0].as_u64().unwrap(),
            v[1].as_u64().unwrap(),
            v[2].as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect(),
        )
    }

    /// Writes a PNG screenshot `name.png` into [`screenshot_dir`]; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
