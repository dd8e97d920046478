//! The central server: people, vehicles, permits, visitors, lists, gates and operators, the
//! admin API, and the centre's side of the gates' sync.
//!
//! - [`db`] — the database (SQLite by default, PostgreSQL at scale) behind one code path.
//! - [`repo`] — one module per resource: its rows, queries and changes (with audit).
//! - [`state`] — what every handler can reach ([`state::AppState`]).
//! - [`api`] — the admin REST API (axum) under `/api/v1`: its routes, access table and errors.
//! - [`server`] — the HTTP side put together: API, OpenAPI document, health, the pages handed in, layers.
//! - [`ingest`] — a gate's uploaded events: stored once, then published to [`live`].
//! - [`live`] — the in-process channel the live pages listen on.
//! - [`alarms`] — alarms of every kind: stored, told to the office, sent to the webhook.
//! - [`gate_auth`] — whether a gate's certificate is accepted (`gates.enabled`).
//! - [`bulk`] — bulk import (CSV/XLSX, checked whole, written all or nothing) and export.
//! - [`export`] — tables as CSV (UTF-8 with BOM) and XLSX files.
//! - [`retention`] — the purge of passage events older than the kept days (≥ 365).
//! - [`traffic`] — traffic statistics, kept incrementally by the ingest.
//! - [`validate`] — the field checks the API and bulk import share.

pub mod alarms;
pub mod api;
pub mod bulk;
pub mod commands;
pub mod config;
pub mod db;
pub mod export;
pub mod gate_auth;
pub mod ingest;
pub mod live;
pub mod names;
pub mod notify;
pub mod outside;
pub mod passes;
pub mod photos;
pub mod rate_limit;
pub mod repo;
pub mod retention;
pub mod server;
pub mod shift;
pub mod state;
pub mod traffic;
pub mod unstaffed;
pub mod validate;
