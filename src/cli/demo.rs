//! `gatehouse demo`: parses the options and runs [`crate::demo::run`] until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::demo::{DemoOptions, run as run_demo};

#[derive(Debug, Args)]
pub(super) struct DemoArgs {
    /// Where the demo keeps its data: the central SQLite database, each gate's store and
    /// journal, and the simulated devices' port links. A second run reuses it.
    #[arg(
        long,
        default_value = "gatehouse-demo",
        env = "GATEHOUSE_DEMO_DATA_DIR"
    )]
    data_dir: PathBuf,
    /// Address of the central server (admin API, web pages, /metrics); port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Delete the demo data directory first and seed fresh demo data (refuses a directory that
    /// is not a demo data directory).
    #[arg(long)]
    reset: bool,
    /// Mean milliseconds between two vehicles on each lane (a second of headway is added).
    #[arg(long, default_value_t = 3000)]
    every_ms: u64,
}

pub(super) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // Register the handlers now, not when the future is first polled: a Ctrl-C during start-up
    // must stop the demo cleanly too.
    let mut signals = super::StopSignals::new()?;
    let shutdown = async move { signals.recv().await };
    run_demo(
        DemoOptions {
            data_dir: args.data_dir,
            listen: args.listen,
            reset: args.reset,
            every: std::time::Duration::from_millis(args.every_ms),
        },
        shutdown,
    )
    .await
}
