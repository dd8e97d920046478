//! The gate ↔ centre contract: everything the two sides exchange, below both of them.
//!
//! - [`journal`]: the events a gate journals and uploads, as the centre stores them.
//! - [`rows`]: the data rows a gate decides from, as snapshots, changes and the CSV import
//!   carry them.
//! - [`sync`]: the sync protocol's messages and limits.
//! - [`command`]: the centre's commands to a gate.
//! - [`pass`]: the signed visitor pass (its token, signing and offline verification).
//!
//! The JSON of these types is what travels and what is stored, so a field's name and a code's
//! spelling never change meaning. This module depends on nothing but [`crate::domain`]; it
//! never does IO, never decides and never names the gate's or the centre's own modules.

pub mod command;
pub mod journal;
pub mod pass;
pub mod rows;
pub mod sync;
