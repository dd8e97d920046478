//! The command line: `gatehouse demo`, `gatehouse sim …`, `gatehouse gate …`, `gatehouse server …`. Parses arguments (clap), sets up
//! logging and the runtime, and calls the library; errors end the process with a one-line
//! message and a non-zero exit code. No product logic lives here.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::stdout::StdoutClosed;

/// `println!` for commands: a closed standard output (`gatehouse gate events | head -1`) ends
/// the command quietly through `?` ([`StdoutClosed`]) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::stdout::print_line(format_args!($($arg)*))
    };
}

mod demo;
mod gate;
mod pki;
mod server;
mod sim;

/// SIGINT (Ctrl-C) and SIGTERM (systemd's stop), registered when made: a signal that arrives
/// at any moment afterwards — during start-up, or while the caller is busy with something else —
/// is kept until [`StopSignals::recv`] is awaited. (A `tokio::signal::ctrl_c()` future made anew
/// in a loop misses a signal that arrives between two of them.)
pub(crate) struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub(crate) fn new() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for SIGINT or SIGTERM (or returns at once if one came since the last call).
    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

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
        Err(e) if e.chain().any(|cause| cause.is::<StdoutClosed>()) => ExitCode::SUCCESS,
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
