//! Serial links: opening real ports (and pseudo-terminals that stand in for them).

pub mod pty;
pub mod queued;
