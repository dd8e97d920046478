//! The central server as an installer runs it: `gatehouse server create-admin`, then
//! `gatehouse server run`, reached over real HTTP, stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::free_port;

/// `server.toml` in `dir`, with the data under `dir/data` and every other setting left to its
/// default; its path.
pub(crate) fn data_dir_config(dir: &Path) -> PathBuf {
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        format!("[server]\ndata_dir = \"{}\"\n", dir.join("data").display()),
    )
    .unwrap();
    config
}

async fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())?;
    Some((status, body))
}

#[tokio::test]
async fn an_installer_creates_the_first_admin_runs_the_server_signs_in_and_stops_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = data_dir_config(dir.path());
    let bin = env!("CARGO_BIN_EXE_gatehouse");

    let weak = Command::new(bin)
        .args(["server", "create-admin", "--config"])
        .arg(&config)
        .env("GATEHOUSE_ADMIN_PASSWORD", "123456")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!weak.status.success(), "a weak password is refused");
    assert!(String::from_utf8_lossy(&weak.stderr).contains("too weak"));

    let created = Command::new(bin)
        .args(["server", "create-admin", "--config"])
        .arg(&config)
        .env("GATEHOUSE_ADMIN_PASSWORD", "Lantern-Orchid-7319")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let out = String::from_utf8_lossy(&created.stdout);
    assert!(out.contains("administrator admin created"));
    assert!(
        !out.contains("Lantern-Orchid-7319"),
        "the password is never printed"
    );

    let port = free_port();
    let mut server = Command::new(bin)
        .args(["server", "run", "--config"])
        .arg(&config)
        .env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let login = r#"{"username":"admin","password":"Lantern-Orchid-7319"}"#;
    let mut answer = None;
    for _ in 0..100 {
        answer = http(port, "POST", "/api/v1/auth/login", login).await;
        if answer.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = answer.expect("the server answers");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"token\""));
    let (status, _) = http(port, "GET", "/api/v1/operators", "").await.unwrap();
    assert_eq!(status, 401, "no session, no data");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = server.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM stops the server cleanly: {status}"
    );
}
