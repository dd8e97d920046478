//! Gate ↔ centre sync: data down to the gates, events up to the centre, commands, health and
//! campus-wide anti-passback — a real central server (SQLite and PostgreSQL), real gates on
//! pseudo-terminals driven by the simulators, and the network on loopback.

mod support;

mod commands;
mod crash;
mod data_down;
mod events_lossless;
mod events_up;
mod fanout;
mod fleet;
mod journal_failure;
mod passes;
mod photos;
mod presence;
mod system_alarms;
mod tls;
mod visitor_pass;
