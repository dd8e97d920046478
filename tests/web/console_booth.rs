//! The booth fallback page as a gate serves it in production: `[booth]` in gate.toml (argon2
//! hashes only), `gatehouse gate hash-password` to make a hash, and the gate's own listener
//! (`gate::http::local_router`, what `gatehouse gate run` serves — tested through the real
//! binary too) where a guard signs in and opens a lane with a reason: the simulated arm rises
//! and the override is journalled, with no central server at all. Over plain HTTP, as the booth
//! PC talks to it.

use std::io::Write;
use std::process::{Command, Stdio};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use gatehouse::gate::config::GateConfig;
use gatehouse::sim::barrier::ArmState;
use gatehouse::wire::journal::EventBody;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

use crate::support::http_no_redirects as client;
use crate::support::site::spawn_web_gate;

/// A one-lane gate configuration whose devices are `/dev/null`, plus `extra`.
fn config_with(extra: &str) -> Result<GateConfig, String> {
    let text = format!(
        "[gate]\nid = 1\ndata_dir = \"/tmp/gatehouse-booth-test\"\n\
         [[lane]]\nid = \"entry\"\ndirection = \"entry\"\n\
         [lane.reader]\nport = \"/dev/null\"\n[lane.io]\nport = \"/dev/null\"\n{extra}"
    );
    let config = GateConfig::parse(&text).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// Runs `gatehouse gate hash-password` with `stdin`; returns (success, stdout, stderr).
fn hash_password(stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["gate", "hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gatehouse runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn booth_guards_need_an_argon2_hash_and_unique_names_and_errors_never_show_the_value() {
    let none = config_with("").unwrap();
    assert!(!none.booth.enabled(), "no guards: no booth page");
    let hash = gatehouse::password::hash_password_blocking("Booth-PIN-2468");
    let good = config_with(&format!(
        "[[booth.guard]]\nusername = \"zhangsan\"\npassword_hash = \"{hash}\"\n"
    ))
    .unwrap();
    assert!(good.booth.enabled());
    assert!(
        !format!("{good:?}").contains(&hash),
        "the configuration's Debug never shows a hash"
    );
    let plain =
        config_with("[[booth.guard]]\nusername = \"lisi\"\npassword_hash = \"Booth-PIN-2468\"\n")
            .unwrap_err();
    assert!(
        plain.contains("booth.guard \"lisi\": password_hash is not an argon2 hash"),
        "{plain}"
    );
    assert!(
        !plain.contains("Booth-PIN-2468"),
        "never the value: {plain}"
    );
    let twice = config_with(&format!(
        "[[booth.guard]]\nusername = \"a\"\npassword_hash = \"{hash}\"\n\
         [[booth.guard]]\nusername = \"a\"\npassword_hash = \"{hash}\"\n"
    ))
    .unwrap_err();
    assert!(
        twice.contains("booth.guard \"a\": configured twice"),
        "{twice}"
    );
    let unnamed = config_with(&format!(
        "[[booth.guard]]\nusername = \" \"\npassword_hash = \"{hash}\"\n"
    ))
    .unwrap_err();
    assert!(
        unnamed.contains("booth.guard #1: username is empty"),
        "{unnamed}"
    );
    let typo = config_with("[[booth.guard]]\nusername = \"a\"\npassword = \"x\"\n").unwrap_err();
    assert!(typo.contains("unknown field `password`"), "{typo}");
    // The documented example parses with its [booth] section.
    let example = GateConfig::parse(include_str!("../../examples/gate.toml")).unwrap();
    assert!(
        !example.booth.enabled(),
        "the example's guards are commented out"
    );
}

#[test]
fn gate_hash_password_reads_the_password_from_stdin_and_prints_only_an_argon2_hash() {
    let (ok, stdout, stderr) = hash_password("Booth-PIN-2468\n");
    assert!(ok, "{stderr}");
    let line = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    assert!(line.starts_with("$argon2id$"), "{line}");
    let parsed = PasswordHash::new(line).unwrap();
    assert!(
        argon2::Argon2::default()
            .verify_password(b"Booth-PIN-2468", &parsed)
            .is_ok()
    );
    assert!(!stdout.contains("Booth-PIN") && !stderr.contains("Booth-PIN"));
    // The hash is what [[booth.guard]] takes.
    config_with(&format!(
        "[[booth.guard]]\nusername = \"zhangsan\"\npassword_hash = \"{line}\"\n"
    ))
    .unwrap();

    let (ok, stdout, stderr) = hash_password("1234\n");
    assert!(!ok && stdout.is_empty(), "a weak password is refused");
    assert!(stderr.contains("too weak"), "{stderr}");
    let (ok, _, stderr) = hash_password("");
    assert!(!ok, "nothing on stdin is refused");
    assert!(stderr.contains("no password"), "{stderr}");
}

const FORM: &str = "application/x-www-form-urlencoded";

/// An HTML form's body.
fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The `name=value` of a `Set-Cookie` named `name`.
fn cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// The value of the hidden input `name` in a page.
fn hidden(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} field"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[tokio::test]
async fn a_guard_signs_in_at_the_gates_own_listener_and_opens_a_lane_with_a_reason_without_any_centre()
 {
    let (ok, hash, stderr) = hash_password("Booth-PIN-2468\n");
    assert!(ok, "{stderr}");
    let gate = spawn_web_gate().await;
    let mut config = gate.config.clone();
    assert!(config.central.is_none(), "no centre anywhere");
    let with_booth = GateConfig::parse(&format!(
        "[gate]\nid = 1\ndata_dir = \"x\"\n[[booth.guard]]\nusername = \"zhangsan\"\npassword_hash = \"{}\"\n",
        hash.trim()
    ))
    .unwrap();
    config.booth = with_booth.booth;
    config.validate().unwrap();

    // Without [booth] the listener has the status routes only.
    let plain = gatehouse::gate::http::local_router(gate.shared_handle(), &gate.config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_url = format!("http://{}", listener.local_addr().unwrap());
    let plain_task = tokio::spawn(async move { axum::serve(listener, plain).await.unwrap() });
    let http = client();
    let r = http.get(format!("{plain_url}/")).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "no booth page without guards"
    );
    plain_task.abort();

    let router = gatehouse::gate::http::local_router(gate.shared_handle(), &config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    // The status routes are still there beside the page.
    let metrics = http.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);

    // Sign in: the form carries a pre-session token matching its cookie.
    let login = http.get(format!("{url}/")).send().await.unwrap();
    let pre_cookie = cookie(&login, "gh_booth_pre");
    let page = login.text().await.unwrap();
    assert!(page.contains("岗亭应急页面") && page.contains("Booth fallback page"));
    let pre = hidden(&page, "pre");
    let sign_in = |password: &'static str| {
        http.post(format!("{url}/login"))
            .header(COOKIE, &pre_cookie)
            .header(CONTENT_TYPE, FORM)
            .body(form(&[
                ("pre", pre.as_str()),
                ("username", "zhangsan"),
                ("password", password),
            ]))
            .send()
    };
    // Without the pre-session cookie (a foreign page posting the form) sign-in is refused.
    let forged = http
        .post(format!("{url}/login"))
        .header(CONTENT_TYPE, FORM)
        .body(form(&[
            ("pre", pre.as_str()),
            ("username", "zhangsan"),
            ("password", "Booth-PIN-2468"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let wrong = sign_in("wrong").await.unwrap();
    assert!(wrong.text().await.unwrap().contains("用户名或密码错误"));
    let signed = sign_in("Booth-PIN-2468").await.unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    let set = signed
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("gh_booth="))
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let session = cookie(&signed, "gh_booth");
    let page = http
        .get(format!("{url}/"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("zhangsan") && page.contains("lane-entry"));
    let csrf = hidden(&page, "csrf");

    let command = |csrf: String, reason: &'static str, session: Option<String>| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let mut r = http
                .post(format!("{url}/command"))
                .header(CONTENT_TYPE, FORM)
                .body(form(&[
                    ("csrf", csrf.as_str()),
                    ("lane", "entry"),
                    ("reason", reason),
                    ("note", "抬杆电机故障，人工放行"),
                    ("action", "open"),
                ]));
            if let Some(s) = session {
                r = r.header(COOKIE, s);
            }
            r.send().await.unwrap()
        }
    };
    // Refused, and nothing moves: no session; a wrong CSRF token; no reason.
    assert_eq!(
        command(csrf.clone(), "device_fault", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        command("0".repeat(64), "device_fault", Some(session.clone()))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let no_reason = command(csrf.clone(), "", Some(session.clone())).await;
    assert_eq!(no_reason.headers()[LOCATION], "/?err=reason");
    gate.lane("entry").assert_never_opened();
    assert!(
        !gate
            .events()
            .await
            .iter()
            .any(|e| matches!(e.body, EventBody::Override { .. })),
        "nothing journalled"
    );

    // With a reason (a car on the loop that the reader cannot read): the simulated arm rises
    // and the override is journalled with the guard.
    gate.arrive("entry").await;
    let done = command(csrf.clone(), "device_fault", Some(session.clone())).await;
    assert_eq!(done.headers()[LOCATION], "/?ok=opened");
    gate.lane("entry").wait_arm(ArmState::Open).await;
    assert!(
        !gate.lane("entry").opens().is_empty(),
        "the I/O module saw the OPEN coil"
    );
    gate.lane("exit").assert_never_opened();
    let e = gate
        .wait_event("the override", |e| {
            matches!(e.body, EventBody::Override { .. })
        })
        .await;
    assert_eq!(e.lane, "entry");
    let body = serde_json::to_value(&e.body).unwrap();
    assert_eq!(body["operator"], "zhangsan");
    assert_eq!(body["reason"], "device_fault");
    assert_eq!(body["note"], "抬杆电机故障，人工放行");
    task.abort();
    gate.shutdown_lenient().await;
}

/// Signs in at a booth page; returns (session cookie, CSRF token).
async fn booth_sign_in(
    http: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
) -> (String, String) {
    let login = http.get(format!("{url}/")).send().await.unwrap();
    let pre_cookie = cookie(&login, "gh_booth_pre");
    let pre = hidden(&login.text().await.unwrap(), "pre");
    let signed = http
        .post(format!("{url}/login"))
        .header(COOKIE, &pre_cookie)
        .header(CONTENT_TYPE, FORM)
        .body(form(&[
            ("pre", pre.as_str()),
            ("username", user),
            ("password", password),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER, "{user} signs in");
    let session = cookie(&signed, "gh_booth");
    let page = http
        .get(format!("{url}/"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    (session, csrf)
}

#[tokio::test]
async fn gatehouse_gate_run_serves_the_booth_page_that_opens_the_simulated_barrier_and_journals_it()
{
    use gatehouse::serial::pty::PtyDevice;
    use gatehouse::sim::lane_io::{LaneIoModule, LaneIoModuleConfig};
    use gatehouse::sim::uhf_reader::ReaderControl;
    use tokio::io::{AsyncBufReadExt, BufReader};

    let (ok, hash, stderr) = hash_password("Booth-PIN-2468\n");
    assert!(ok, "{stderr}");
    // The lane's devices: a simulated reader and I/O module on pseudo-terminals.
    let dir = tempfile::tempdir().unwrap();
    let reader = ReaderControl::new();
    let reader_pty = PtyDevice::create(Some(&dir.path().join("reader"))).unwrap();
    let reader_task = tokio::spawn({
        let reader = reader.clone();
        async move {
            let _ = reader.serve(reader_pty).await;
        }
    });
    let io = LaneIoModule::new(LaneIoModuleConfig::default()).unwrap();
    let mut io_pty = PtyDevice::create(Some(&dir.path().join("io"))).unwrap();
    let io_task = tokio::spawn({
        let io = io.clone();
        async move { while io.serve(&mut io_pty).await.is_ok() {} }
    });
    let port = crate::support::harness::free_port();
    let config = dir.path().join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "[gate]\nid = 1\ndata_dir = \"{data}\"\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [[booth.guard]]\nusername = \"zhangsan\"\npassword_hash = \"{hash}\"\n\n\
             [[lane]]\nid = \"entry\"\ndirection = \"entry\"\n\
             [lane.reader]\nport = \"{reader}\"\n[lane.io]\nport = \"{io}\"\n",
            data = dir.path().join("data").display(),
            hash = hash.trim(),
            reader = dir.path().join("reader").display(),
            io = dir.path().join("io").display(),
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let mut gate = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["gate", "run", "--config", &config])
        .env("GATEHOUSE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut log = BufReader::new(gate.stderr.take().unwrap()).lines();
    let served = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = log.next_line().await.unwrap() {
            if line.contains("booth fallback page served") {
                return Some(line);
            }
        }
        None
    })
    .await
    .expect("the gate starts")
    .expect("the gate logs its booth page");
    assert!(
        served.contains(&format!("http://127.0.0.1:{port}/")),
        "{served}"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });

    let url = format!("http://127.0.0.1:{port}");
    let http = client();
    let (session, csrf) = booth_sign_in(&http, &url, "zhangsan", "Booth-PIN-2468").await;
    // A car without a readable tag stops on the presence loop; the page shows it.
    io.set_presence(true);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = http
            .get(format!("{url}/"))
            .header(COOKIE, &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("有车 Vehicle present") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lane never saw the car: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let done = http
        .post(format!("{url}/command"))
        .header(COOKIE, &session)
        .header(CONTENT_TYPE, FORM)
        .body(form(&[
            ("csrf", csrf.as_str()),
            ("lane", "entry"),
            ("reason", "permit_holder_without_tag"),
            ("note", "教职工忘带标签，已核对证件"),
            ("action", "open"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(done.headers()[LOCATION], "/?ok=opened");
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while io.arm() != ArmState::Open {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the simulated arm rises");

    // Stopped cleanly, the gate's journal holds the override with the guard and the reason.
    let pid = nix::unistd::Pid::from_raw(gate.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), gate.wait())
        .await
        .expect("the gate stops")
        .unwrap();
    assert!(status.success(), "{status}");
    let events = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["gate", "events", "--config", &config, "--json"])
        .output()
        .unwrap();
    assert!(events.status.success());
    let overrides: Vec<serde_json::Value> = String::from_utf8(events.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["body"]["kind"] == "override")
        .collect();
    assert_eq!(overrides.len(), 1, "{overrides:#?}");
    assert_eq!(overrides[0]["lane"], "entry");
    assert_eq!(overrides[0]["body"]["operator"], "zhangsan");
    assert_eq!(overrides[0]["body"]["action"], "open");
    assert_eq!(overrides[0]["body"]["reason"], "permit_holder_without_tag");
    reader_task.abort();
    io_task.abort();
}
