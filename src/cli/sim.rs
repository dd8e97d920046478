//! `gatehouse sim …`: simulated lane devices on pseudo-terminals.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(super) enum SimCommand {}

pub(super) async fn run(cmd: SimCommand) -> anyhow::Result<()> {
    match cmd {}
}
