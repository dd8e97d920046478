//! A bad configuration stops the real binary at start with one line on stderr that names what
//! is wrong, and a non-zero exit code: unknown key, missing file, serial port not found, listen
//! port in use, missing certificate, certificate that does not match its key.

use std::path::Path;
use std::process::Output;

use gatehouse::serial::pty::PtyDevice;

/// Runs the `gatehouse` binary with `args`, away from any database or listen address set in the
/// environment.
pub(crate) fn gatehouse(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("GATEHOUSE_DATABASE_URL")
        .env_remove("GATEHOUSE_LISTEN")
        .output()
        .expect("the gatehouse binary runs")
}

/// Asserts a refusal: non-zero exit, exactly one line on stderr, containing every `needle`.
fn assert_refused(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "refused with a non-zero exit: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {stderr}");
    assert!(lines[0].starts_with("gatehouse: "), "{stderr}");
    for needle in needles {
        assert!(lines[0].contains(needle), "{needle:?} in {stderr:?}");
    }
    stderr
}

fn gate_toml(dir: &Path, reader: &Path, io: &Path, extra_gate_key: &str, http: &str) -> String {
    format!(
        "[gate]\nid = 1\ndata_dir = \"{}\"\n{extra_gate_key}\n\n[http]\nlisten = \"{http}\"\n\n\
         [[lane]]\nid = \"entry\"\ndirection = \"entry\"\n\
         [lane.reader]\nport = \"{}\"\n[lane.io]\nport = \"{}\"\n",
        dir.join("data").display(),
        reader.display(),
        io.display()
    )
}

#[test]
fn an_unknown_key_in_gate_toml_is_named_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.toml");
    let text = gate_toml(
        dir.path(),
        Path::new("/dev/null"),
        Path::new("/dev/null"),
        "colour = \"red\"",
        "127.0.0.1:0",
    );
    std::fs::write(&path, text).unwrap();
    let out = gatehouse(&["gate", "run", "--config", path.to_str().unwrap()]);
    assert_refused(&out, &["unknown field `colour`", "gate.toml", "line 4"]);
}

#[test]
fn an_unknown_key_in_server_toml_is_named_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\ndata_dir = \"{}\"\nport = 8080\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = gatehouse(&["server", "run", "--config", path.to_str().unwrap()]);
    assert_refused(&out, &["unknown field `port`", "server.toml", "line 3"]);
}

#[test]
fn a_missing_configuration_file_is_named() {
    for role in ["gate", "server"] {
        let out = gatehouse(&[role, "run", "--config", "/nonexistent/gatehouse.toml"]);
        assert_refused(&out, &["/nonexistent/gatehouse.toml", "cannot be read"]);
    }
}

#[test]
fn a_serial_port_that_does_not_exist_is_named_with_its_lane() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.toml");
    let missing = dir.path().join("ttyUSB9");
    std::fs::write(
        &path,
        gate_toml(
            dir.path(),
            &missing,
            Path::new("/dev/null"),
            "",
            "127.0.0.1:0",
        ),
    )
    .unwrap();
    let out = gatehouse(&["gate", "run", "--config", path.to_str().unwrap()]);
    assert_refused(
        &out,
        &[
            "lane \"entry\"",
            "reader.port",
            &missing.display().to_string(),
            "not found",
        ],
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created for a refused configuration"
    );
}

#[tokio::test]
async fn a_listen_port_in_use_is_named_for_the_gate_and_the_server() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();

    // The gate's ports exist (pseudo-terminals), so only the HTTP listener is wrong.
    let reader = PtyDevice::create(Some(&dir.path().join("reader"))).unwrap();
    let io = PtyDevice::create(Some(&dir.path().join("io"))).unwrap();
    let gate = dir.path().join("gate.toml");
    std::fs::write(
        &gate,
        gate_toml(dir.path(), reader.path(), io.path(), "", &addr),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        gatehouse(&["gate", "run", "--config", gate.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_refused(&out, &["http.listen", &addr, "in use"]);

    let server = dir.path().join("server.toml");
    std::fs::write(
        &server,
        format!(
            "[server]\nlisten = \"{addr}\"\ndata_dir = \"{}\"\n",
            dir.path().join("central").display()
        ),
    )
    .unwrap();
    let out = gatehouse(&["server", "run", "--config", server.to_str().unwrap()]);
    assert_refused(&out, &["cannot listen on", &addr, "in use"]);
    drop(taken);
}

#[tokio::test]
async fn a_missing_certificate_is_named_for_the_server_and_the_gate_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.crt");
    let central = dir.path().join("central");
    let server = dir.path().join("server.toml");
    std::fs::write(
        &server,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n\
             [sync]\nlisten = \"127.0.0.1:0\"\nca = \"{m}\"\ncert = \"{m}\"\nkey = \"{m}\"\n",
            central.display(),
            m = missing.display()
        ),
    )
    .unwrap();
    let out = gatehouse(&["server", "run", "--config", server.to_str().unwrap()]);
    assert_refused(&out, &["[sync] ca", "nowhere.crt", "does not exist"]);
    assert!(
        !central.exists(),
        "nothing was created for the refused server"
    );

    let reader = PtyDevice::create(Some(&dir.path().join("reader"))).unwrap();
    let io = PtyDevice::create(Some(&dir.path().join("io"))).unwrap();
    let gate = dir.path().join("gate.toml");
    let mut text = gate_toml(dir.path(), reader.path(), io.path(), "", "127.0.0.1:0");
    text.push_str(&format!(
        "\n[central]\nurl = \"https://127.0.0.1:1\"\nca = \"{m}\"\ncert = \"{m}\"\nkey = \"{m}\"\n",
        m = missing.display()
    ));
    std::fs::write(&gate, text).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        gatehouse(&["gate", "run", "--config", gate.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_refused(&out, &["[central]", "nowhere.crt"]);
    assert!(
        !dir.path().join("data").join("journal.db").exists(),
        "the refused gate created no journal"
    );
}

#[test]
fn a_certificate_that_does_not_match_its_key_is_refused_in_one_line() {
    use gatehouse::pki;
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    pki::init_ca(&pki_dir, "Test site").unwrap();
    let validity = pki::Validity::days(30).unwrap();
    pki::issue_server(&pki_dir, "central", &[], validity).unwrap();
    pki::issue_gate(&pki_dir, 7, validity).unwrap();
    let ca = pki::ca_paths(&pki_dir).cert;
    let cert = pki::server_paths(&pki_dir, "central").cert;
    let wrong_key = pki::gate_paths(&pki_dir, 7).key;
    let server = dir.path().join("server.toml");
    std::fs::write(
        &server,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n\
             [sync]\nlisten = \"127.0.0.1:0\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            dir.path().join("central").display(),
            ca.display(),
            cert.display(),
            wrong_key.display()
        ),
    )
    .unwrap();
    let out = gatehouse(&["server", "run", "--config", server.to_str().unwrap()]);
    assert_refused(&out, &["[sync] cert/key", "does not match the key"]);
}
