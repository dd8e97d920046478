//! Gatehouse: vehicle access control and gate checkpoints for university campuses.
//!
//! The library holds everything the `gatehouse` binary runs; the binary only parses the command
//! line and calls in here. See ARCHITECTURE.md for the codemap and the invariants.

pub mod backup;
pub mod central;
pub mod cli;
pub mod config_file;
pub mod demo;
pub mod domain;
pub mod gate;
pub mod http_cookie;
pub mod i18n;
pub mod metrics;
pub mod password;
pub mod pki;
pub mod pool;
pub mod serial;
pub mod sim;
pub mod stdout;
pub mod supervise;
pub mod sync;
pub mod tls;
pub mod web;
pub mod wire;
