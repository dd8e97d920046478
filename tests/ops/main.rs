//! Integration tests of operating Gatehouse: configuration refusals, the command-line help,
//! Prometheus metrics and health endpoints, backup and restore, and the one-command demo.
//! They run the real `gatehouse` binary, real pseudo-terminals and real SQLite files.
//!
//! One binary per surface (see tests/gate/main.rs); the gate and central harnesses are shared
//! with their surfaces rather than copied.

#[path = "../gate/support/mod.rs"]
mod gate_support;
#[path = "../common/central.rs"]
mod harness;
mod http;

mod architecture;
mod backup;
mod closed_stdout;
mod config;
mod cpu_budget;
mod demo;
mod help;
mod metrics;
mod signals;
