//! The command line: `gatehouse demo`, `gatehouse sim …`, `gatehouse gate …`, `gatehouse server …`. Parses arguments (clap), sets up
//! logging and the runtime, and calls the library; errors end the process with a one-line
//! message and a non-zero exit code. No product logic lives here.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod demo;
mod gate;
mod pki;
mod server;
mod sim;

/// Gatehouse — vehicle access control and gate checkpoints for university campuses
/// (校园车辆门禁与大门卡口管理系统).
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, propagate_version = true)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "GATEHOUSE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole system on this machine, no hardware or database server needed: a central
    /// server, two gates whose lanes talk over pseudo-terminals to simulated readers and I/O
    /// modules, demo data and continuous simulated traffic. Ctrl-C stops it.
    Demo(demo::DemoArgs),
    /// Run simulated lane devices (UHF reader, lane I/O module, vehicles) on pseudo-terminals.
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Run and inspect a gate lane controller.
    #[command(subcommand)]
    Gate(gate::GateCommand),
    /// Run the central server and manage its first administrator.
    #[command(subcommand)]
    Server(server::ServerCommand),
    /// Manage the site PKI: the CA, the server's and the gates' certificates.
    #[command(subcommand)]
    Pki(pki::PkiCommand),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Sim(cmd) => sim::run(cmd).await,
            Command::Gate(cmd) => gate::run(cmd).await,
            Command::Server(cmd) => server::run(cmd).await,
            Command::Pki(cmd) => pki::run(cmd).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, joined.
            eprintln!("gatehouse: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("GATEHOUSE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
