//! The gate lane controller.
