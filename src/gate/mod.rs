//! The gate lane controller.

pub mod journal;
