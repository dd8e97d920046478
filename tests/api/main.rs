//! Integration tests of the central server: repositories and the admin API on SQLite and
//! PostgreSQL, sign-in and the role × route matrix, and the `gatehouse server` command.
//!
//! One binary per surface (`tests/gate`, `tests/api`, …), not one per file: each test binary
//! links the whole dependency tree, and sixteen of them filled the CI machine's disk.

#[path = "../common/central.rs"]
mod harness;

mod alarm_loop;
mod applications;
mod auth;
mod bookings;
mod bulk_import;
mod bulk_limits;
mod corrections;
mod db;
mod events;
mod gates;
mod hygiene;
mod ingest_batch;
mod lists;
mod live_pass;
mod matrix;
mod notifications;
mod outside_vehicles;
mod passages;
mod passes;
mod people;
mod permits;
mod photos;
mod plates;
mod retention;
mod schemathesis;
mod self_booking;
mod server_cli;
mod settings;
mod shift_report;
mod sign_in;
mod statistics;
mod vehicles;
