//! `gatehouse pki …`: create the site CA, issue server and gate certificates. Prints what it
//! wrote (paths, subject, names, validity, fingerprint) — never a key.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;

use crate::pki::{self, DEFAULT_VALIDITY_DAYS, Issued, PkiError, Validity};

#[derive(Debug, Subcommand)]
pub(super) enum PkiCommand {
    /// Create the site certificate authority (ca.crt, and ca.key readable only by its owner).
    /// Refuses to overwrite an existing CA. Keep ca.key offline where you can: whoever holds it
    /// can make certificates every gate and the centre accept.
    Init {
        /// The PKI directory (created 0700 if missing).
        #[arg(long, default_value = "pki", env = "GATEHOUSE_PKI_DIR")]
        dir: PathBuf,
        /// The site's name, put into the CA's subject ("Gatehouse Site CA <SITE>").
        #[arg(long, default_value = "Gatehouse")]
        site: String,
    },
    /// Issue the central server's TLS certificate (server-NAME.crt/.key), signed by the site
    /// CA; gates check that it names the host they dial.
    IssueServer {
        /// The server's DNS name (e.g. gatehouse.example.edu.cn): subject CN and first name.
        name: String,
        /// Another name the server is reached by: a DNS name or an IP address. Repeatable.
        #[arg(long = "san", value_name = "NAME_OR_IP")]
        sans: Vec<String>,
        /// The PKI directory holding the site CA.
        #[arg(long, default_value = "pki", env = "GATEHOUSE_PKI_DIR")]
        dir: PathBuf,
        /// Days the certificate is valid for.
        #[arg(long, default_value_t = DEFAULT_VALIDITY_DAYS, value_parser = clap::value_parser!(u32).range(1..=7305))]
        days: u32,
    },
    /// Issue a gate controller's client certificate (gate-GATE_ID.crt/.key), signed by the site
    /// CA. The centre takes the gate's identity from it. Copy both files and ca.crt to the
    /// gate; to shut a gate out, disable it centrally.
    IssueGate {
        /// The gate's id, as the centre knows it (its gate.toml `gate.id`).
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        gate_id: i64,
        /// The PKI directory holding the site CA.
        #[arg(long, default_value = "pki", env = "GATEHOUSE_PKI_DIR")]
        dir: PathBuf,
        /// Days the certificate is valid for.
        #[arg(long, default_value_t = DEFAULT_VALIDITY_DAYS, value_parser = clap::value_parser!(u32).range(1..=7305))]
        days: u32,
    },
    /// The visitor-pass signing keys (通行码密钥), in `<dir>/pass-keys/`: `new` makes the
    /// first, `rotate` a new current one (the old one keeps verifying for an overlap), `list`
    /// shows them. The centre loads them at start and sends their public halves to the gates.
    #[command(subcommand)]
    PassKey(PassKeyCommand),
}

/// `gatehouse pki pass-key …`.
#[derive(Debug, Subcommand)]
pub(super) enum PassKeyCommand {
    /// Make the site's first pass key (refused if a current one exists).
    New {
        /// The PKI directory (the keys go to its `pass-keys/`).
        #[arg(long, default_value = "pki", env = "GATEHOUSE_PKI_DIR")]
        dir: PathBuf,
    },
    /// Make a new current pass key; passes signed with the old one keep opening until the
    /// overlap ends, then gates refuse them. Restart `gatehouse server run` to use it.
    Rotate {
        /// The PKI directory.
        #[arg(long, default_value = "pki", env = "GATEHOUSE_PKI_DIR")]
        dir: PathBuf,
        /// Days the old key keeps verifying (default: the longest booking, 7 days, and one).
        #[arg(long, default_value_t = pki::DEFAULT_OVERLAP_DAYS, value_parser = clap::value_parser!(u32).range(0..=366))]
        overlap_days: u32,
    },
    /// List the pass keys: id, created, current or until when it still verifies.
    List {
        /// The PKI directory.
        #[arg(long, default_value = "pki", env = "GATEHOUSE_PKI_DIR")]
        dir: PathBuf,
    },
}

pub(super) async fn run(cmd: PkiCommand) -> anyhow::Result<()> {
    if let PkiCommand::PassKey(cmd) = cmd {
        let lines = tokio::task::spawn_blocking(move || pass_key(cmd)).await??;
        for line in lines {
            say!("{line}")?;
        }
        return Ok(());
    }
    // Key generation and file writes are quick, blocking work: run them off the async threads.
    let (what, issued) = tokio::task::spawn_blocking(move || run_blocking(cmd)).await??;
    print_issued(what, &issued)
}

fn run_blocking(cmd: PkiCommand) -> anyhow::Result<(&'static str, Issued)> {
    match cmd {
        PkiCommand::Init { dir, site } => {
            let issued = pki::init_ca(&dir, &site)
                .with_context(|| format!("cannot create the site CA in {}", dir.display()))?;
            Ok(("site CA created", issued))
        }
        PkiCommand::IssueServer {
            name,
            sans,
            dir,
            days,
        } => {
            let issued = pki::issue_server(&dir, &name, &sans, Validity::days(days)?)
                .map_err(|e| hint(e, &dir))
                .with_context(|| format!("cannot issue the server certificate {name}"))?;
            Ok(("server certificate issued", issued))
        }
        PkiCommand::IssueGate { gate_id, dir, days } => {
            let issued = pki::issue_gate(&dir, gate_id, Validity::days(days)?)
                .map_err(|e| hint(e, &dir))
                .with_context(|| format!("cannot issue the certificate of gate {gate_id}"))?;
            Ok(("gate certificate issued", issued))
        }
        PkiCommand::PassKey(_) => unreachable!("handled in run"),
    }
}

/// Runs a pass-key command; returns the lines to print (never a private key).
fn pass_key(cmd: PassKeyCommand) -> anyhow::Result<Vec<String>> {
    let now = chrono::Utc::now();
    let show = |k: &pki::PassKeyFile| {
        let state = match k.meta.retire_after {
            None => "current / 当前".to_string(),
            Some(t) if t > now => format!(
                "rotated out, verifies until {} / 已轮换，有效至该时刻",
                t.format("%Y-%m-%d %H:%M UTC")
            ),
            Some(t) => format!("retired {} / 已停用", t.format("%Y-%m-%d %H:%M UTC")),
        };
        format!(
            "  key {:>3}  created {}  {}  public {}  ({})",
            k.meta.kid,
            k.meta.created.format("%Y-%m-%d %H:%M UTC"),
            state,
            k.public_key,
            k.key_path.display()
        )
    };
    match cmd {
        PassKeyCommand::New { dir } => {
            let dir = pki::pass_key_dir(&dir);
            let k = pki::new_pass_key(&dir, now)
                .with_context(|| format!("cannot make a pass key in {}", dir.display()))?;
            Ok(vec!["pass key created (mode 0600)".into(), show(&k)])
        }
        PassKeyCommand::Rotate { dir, overlap_days } => {
            let dir = pki::pass_key_dir(&dir);
            let overlap = chrono::Duration::days(i64::from(overlap_days));
            let (k, old) = pki::rotate_pass_key(&dir, overlap, now)
                .with_context(|| format!("cannot rotate the pass key in {}", dir.display()))?;
            let mut lines = vec!["new current pass key (mode 0600)".into(), show(&k)];
            for m in old {
                lines.push(format!(
                    "  key {:>3}  verifies until {}",
                    m.kid,
                    m.retire_after
                        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                        .unwrap_or_default()
                ));
            }
            lines.push("restart `gatehouse server run` to sign with it".into());
            Ok(lines)
        }
        PassKeyCommand::List { dir } => {
            let dir = pki::pass_key_dir(&dir);
            let keys = pki::list_pass_keys(&dir)
                .with_context(|| format!("cannot read the pass keys in {}", dir.display()))?;
            if keys.is_empty() {
                return Ok(vec![format!(
                    "no pass keys in {} (make one: gatehouse pki pass-key new)",
                    dir.display()
                )]);
            }
            Ok(keys.iter().map(show).collect())
        }
    }
}

/// Says how to fix the one error a first-time user meets.
fn hint(e: PkiError, dir: &Path) -> anyhow::Error {
    match e {
        PkiError::NoCa(_) => anyhow::Error::new(e).context(format!(
            "run `gatehouse pki init --dir {}` first",
            dir.display()
        )),
        other => other.into(),
    }
}

fn print_issued(what: &str, issued: &Issued) -> anyhow::Result<()> {
    say!("{what}")?;
    say!("  certificate: {}", issued.paths.cert.display())?;
    say!("  key:         {} (mode 0600)", issued.paths.key.display())?;
    say!("  subject:     {}", issued.subject)?;
    if !issued.names.is_empty() {
        say!("  names:       {}", issued.names.join(", "))?;
    }
    say!(
        "  valid:       {} to {}",
        issued.not_before.format("%Y-%m-%d %H:%M:%S UTC"),
        issued.not_after.format("%Y-%m-%d %H:%M:%S UTC")
    )?;
    say!("  SHA-256:     {}", issued.sha256_fingerprint)?;
    Ok(())
}
