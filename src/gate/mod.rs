//! The gate lane controller.

pub mod config;
pub mod journal;
pub mod io;
