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
}

pub(super) async fn run(cmd: PkiCommand) -> anyhow::Result<()> {
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
