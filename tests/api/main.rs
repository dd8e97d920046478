//! Integration tests of the central server: repositories and the admin API on SQLite and
//! PostgreSQL, sign-in and the role × route matrix, and the `gatehouse server` command.
//!
//! One binary per surface (`tests/gate`, `tests/api`, …), not one per file: each test binary
//! links the whole dependency tree, and sixteen of them filled the CI machine's disk.

mod central_support;

mod applications;
mod bulk_import;
mod bulk_limits;
mod central_auth;
mod central_db;
mod central_lists;
mod central_matrix;
mod central_people;
mod central_permits;
mod central_sign_in;
mod hygiene;
mod retention;
mod schemathesis;
mod server_cli;
mod statistics;
