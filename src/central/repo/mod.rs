//! Repositories: one module per resource. Each change runs in one transaction that also writes
//! the audit entry and the change-log entry (see [`crate::central::db`]).

pub mod alarms;
pub mod applications;
pub mod audit;
pub mod blacklist;
pub mod bookings;
pub mod credentials;
pub mod duty;
pub mod events;
pub mod gates;
pub mod locks;
pub mod operators;
pub mod permits;
pub mod persons;
pub mod stats;
pub mod sync;
pub mod vehicles;
pub mod visits;
