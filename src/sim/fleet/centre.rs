//! The centre the fleet runs against: a fresh database (created, seeded, dropped), and one or
//! two `gatehouse server run` child processes on it, each with a generated `server.toml`, so
//! that the CPU, memory and file descriptors read from `/proc` are the centre's own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

use crate::central::api::auth::{Role, create_session};
use crate::central::db::{Actor, Db, DbKind};
use crate::central::repo::operators::{self, NewOperator};

use super::gate::{epc, plate};

/// The `application_name` of the fleet's own connections, left out of the centre's count.
pub const APPLICATION: &str = "gatehouse-fleet";

/// A database made for one run: dropped (PostgreSQL) or deleted with its directory (SQLite)
/// by [`FreshDb::remove`].
#[derive(Debug)]
pub struct FreshDb {
    /// What the centre opens.
    pub url: String,
    pub kind: DbKind,
    /// The fleet's own pool (revocations, checks, seeding).
    pub db: Db,
    /// PostgreSQL: the server's URL and the database's name, to drop it.
    pg: Option<(String, String)>,
}

impl FreshDb {
    /// A new database: on the PostgreSQL server of `admin_url`, or a SQLite file in `dir`.
    pub async fn create(admin_url: Option<&str>, dir: &Path, tag: &str) -> anyhow::Result<FreshDb> {
        match admin_url {
            Some(admin) if admin.starts_with("postgres") => {
                let name = format!("gatehouse_fleet_{}_{tag}", std::process::id());
                let server = Db::connect(admin)
                    .await
                    .context("--database-url: cannot connect")?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(server.pool())
                    .await?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(server.pool())
                    .await
                    .context(
                        "--database-url: cannot create a database (the role needs CREATEDB)",
                    )?;
                server.close().await;
                let url = with_database(admin, &name);
                let own = with_param(&url, "application_name", APPLICATION);
                let db = Db::open(&own).await?;
                Ok(FreshDb {
                    url,
                    kind: DbKind::Postgres,
                    db,
                    pg: Some((admin.to_string(), name)),
                })
            }
            Some(other) if !other.starts_with("sqlite") => {
                bail!("--database-url: expected postgres://… or sqlite (got another scheme)")
            }
            _ => {
                let path = dir.join(format!("central-{tag}.db"));
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let db = Db::open(&url).await?;
                Ok(FreshDb {
                    url,
                    kind: DbKind::Sqlite,
                    db,
                    pg: None,
                })
            }
        }
    }

    /// Closes the fleet's pool and drops the database (PostgreSQL).
    pub async fn remove(self) -> anyhow::Result<()> {
        self.db.close().await;
        if let Some((admin, name)) = self.pg {
            let server = Db::connect(&admin).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(server.pool())
                .await?;
            server.close().await;
        }
        Ok(())
    }

    /// The centre's PostgreSQL connections to this database (the fleet's own left out);
    /// None on SQLite.
    pub async fn centre_connections(&self) -> Option<i64> {
        let (_, name) = self.pg.as_ref()?;
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND application_name <> $2",
        )
        .bind(name.clone())
        .bind(APPLICATION)
        .fetch_one(self.db.pool())
        .await
        .ok()
    }
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    match base[scheme_end..].find('/') {
        Some(slash) => format!("{}/{name}{query}", &base[..scheme_end + slash]),
        None => format!("{base}/{name}{query}"),
    }
}

fn with_param(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

/// What the seed made.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// Console sessions: (token, the gates its guard works at).
    pub consoles: Vec<(String, Vec<i64>)>,
}

/// The lane keys (as the simulated gates journal them) and directions of a gate with `lanes`
/// lanes.
fn lane_keys(lanes: u32) -> impl Iterator<Item = (&'static str, &'static str)> {
    (0..lanes.min(3)).map(|l| {
        let key = super::gate::lane_name(l);
        (key, if key == "out" { "exit" } else { "entry" })
    })
}

/// Seeds `permits` persons, vehicles, tags and permits (one each, every gate), `gates` gates
/// (ids 1..=gates) with `lanes` lanes each and one booth guard per console, each working at
/// its share of the gates `1..=watched`, signed in.
pub async fn seed(
    db: &Db,
    permits: u32,
    gates: u32,
    lanes: u32,
    watched: u32,
    consoles: u32,
) -> anyhow::Result<Seeded> {
    let mut tx = db.pool().begin().await?;
    let ids: Vec<u32> = (1..=permits).collect();
    for chunk in ids.chunks(200) {
        let rows =
            |f: &dyn Fn(u32) -> String| chunk.iter().map(|&i| f(i)).collect::<Vec<_>>().join(",");
        let stmts = [
            format!(
                "INSERT INTO persons (id, name, category, department, created_ms, updated_ms) VALUES {}",
                rows(&|i| format!("({i}, '持证人{i}', 'staff', '计算机学院', 0, 0)"))
            ),
            format!(
                "INSERT INTO vehicles (id, plate, plate_colour, created_ms, updated_ms) VALUES {}",
                rows(&|i| format!("({i}, '{}', 'blue', 0, 0)", plate(i)))
            ),
            format!(
                "INSERT INTO permits (id, category, holder_id, valid_from_ms, valid_until_ms, gates, \
                 created_ms, updated_ms) VALUES {}",
                rows(&|i| format!("({i}, 'staff', {i}, 0, 4102444800000, 'all', 0, 0)"))
            ),
            format!(
                "INSERT INTO permit_vehicles (permit_id, vehicle_id) VALUES {}",
                rows(&|i| format!("({i}, {i})"))
            ),
            format!(
                "INSERT INTO credentials (id, epc, vehicle_id, created_ms, updated_ms) VALUES {}",
                rows(&|i| format!("({i}, '{}', {i}, 0, 0)", epc(i)))
            ),
        ];
        for s in stmts {
            sqlx::query(&s).execute(&mut *tx).await?;
        }
    }
    let gate_ids: Vec<u32> = (1..=gates).collect();
    for chunk in gate_ids.chunks(500) {
        // No explicit ids: PostgreSQL's identity sequence gives 1, 2, … on a fresh database.
        let values = chunk
            .iter()
            .map(|g| format!("('门{g}', 0, 0)"))
            .collect::<Vec<_>>()
            .join(",");
        sqlx::query(&format!(
            "INSERT INTO gates (name, created_ms, updated_ms) VALUES {values}"
        ))
        .execute(&mut *tx)
        .await?;
        // Each gate's lanes, as a site registers them: a console renders every lane of its
        // gates on every upload, so a fleet without them would measure too little.
        let lane_rows = chunk
            .iter()
            .flat_map(|g| {
                lane_keys(lanes).map(move |(key, direction)| {
                    format!("({g}, '{key}', '{key}', '{direction}', 0, 0)")
                })
            })
            .collect::<Vec<_>>()
            .join(",");
        if !lane_rows.is_empty() {
            sqlx::query(&format!(
                "INSERT INTO lanes (gate_id, lane_key, name, direction, created_ms, updated_ms) \
                 VALUES {lane_rows}"
            ))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    // One password hash for every guard: argon2 is slow by design.
    let hash = tokio::task::spawn_blocking(|| {
        crate::password::hash_password_blocking("Fleet-Console-Password-2026")
    })
    .await?;
    let mut out = Vec::new();
    for c in 0..consoles {
        let mut share: Vec<i64> = (1..=watched)
            .filter(|g| (g - 1) % consoles == c)
            .map(i64::from)
            .collect();
        if share.is_empty() {
            share.push(i64::from(c % watched.max(1) + 1));
        }
        let op = operators::create(
            db,
            &Actor::system(),
            NewOperator {
                username: format!("fleet_guard_{c}"),
                display_name: format!("门卫 {c}"),
                password_hash: hash.clone(),
                roles: vec![Role::Guard.as_str().into()],
                gates: share.clone(),
                department: String::new(),
            },
        )
        .await?;
        let session = create_session(db, op.id, 12 * 3_600_000).await?;
        out.push((session.token, share));
    }
    Ok(Seeded { consoles: out })
}

/// One central instance: a `gatehouse server run` child process.
#[derive(Debug)]
pub struct Instance {
    pub child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:PORT` (API and pages).
    pub web: String,
    /// `https://127.0.0.1:PORT` (the gates' sync).
    pub sync: String,
    pub log: PathBuf,
}

/// A loopback port free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts instance `index` of `exe` on database `url` with the site PKI in `pki`, and waits
/// until it answers.
pub async fn start_instance(
    exe: &Path,
    index: usize,
    url: &str,
    pki: &Path,
    dir: &Path,
) -> anyhow::Result<Instance> {
    let data = dir.join(format!("instance{index}"));
    std::fs::create_dir_all(&data)?;
    let (web_port, sync_port) = (free_port()?, free_port()?);
    let server = crate::pki::server_paths(pki, super::SYNC_HOST);
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:{web_port}\"\ndata_dir = {data:?}\ndatabase_url = {url:?}\n\
         [sync]\nlisten = \"127.0.0.1:{sync_port}\"\nca = {ca:?}\ncert = {cert:?}\nkey = {key:?}\n",
        data = data.display().to_string(),
        ca = crate::pki::ca_paths(pki).cert.display().to_string(),
        cert = server.cert.display().to_string(),
        key = server.key.display().to_string(),
    );
    let config = data.join("server.toml");
    std::fs::write(&config, toml)?;
    let log = data.join("server.log");
    let mut command = Command::new(exe);
    // The server's environment overrides (DATABASE_URL, GATEHOUSE_*) would take it away from
    // the run's database and ports: the generated server.toml alone configures it.
    for (key, _) in std::env::vars_os() {
        if key == "DATABASE_URL" || key.to_string_lossy().starts_with("GATEHOUSE_") {
            command.env_remove(key);
        }
    }
    let child = command
        .args(["server", "run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn,gatehouse=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let pid = child.id().context("the server exited at once")?;
    let instance = Instance {
        child,
        pid,
        web: format!("http://127.0.0.1:{web_port}"),
        sync: format!("https://127.0.0.1:{sync_port}"),
        log,
    };
    let http = super::console::plain_http();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let up = http
            .get(format!("{}/healthz", instance.web))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
            && tokio::net::TcpStream::connect(("127.0.0.1", sync_port))
                .await
                .is_ok();
        if up {
            return Ok(instance);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "instance {index} did not come up within 60 s: {}",
                tail(&instance.log)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last lines of a log, for an error message.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

impl Instance {
    /// Stops the server as a service manager does (SIGTERM), killing it after 20 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    tracing::warn!(%status, log = %tail(&self.log), "a centre instance ended badly");
                }
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("a centre instance did not stop within 20 s of SIGTERM");
            }
        }
        Ok(())
    }
}
