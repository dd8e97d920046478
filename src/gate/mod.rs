//! The gate lane controller.

pub mod config;
pub mod import;
pub mod io;
pub mod journal;
pub mod reader;
pub mod store;
