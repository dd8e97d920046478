//! The gate lane controller: what a lane decides, how its barrier moves, and what it records.
//!
//! What it is for: two pure parts, tested without hardware or clocks.
//! - [`index`] is the immutable in-memory snapshot of permits, vehicles, tags and lists, with O(1)
//!   lookups; [`decision`] turns one credential read into a [`decision::Decision`] (granted or not,
//!   the reason, and the effects to record if the vehicle passes) from an index and a
//!   [`presence::PresenceView`] of who is inside.
//! - [`lane`] is the lane state machine: loops, limits, fire and tamper inputs, decisions, guard
//!   commands and modes in; barrier commands, journal events and the next deadline out.
//!
//! What it never does: IO, clock reads, threads or allocation on the decision's grant path. The
//! runtime that feeds readers and the Modbus I/O module into these, the local store that builds
//! the index, the journal that records events and effects, and the device drivers are the other
//! modules here:
//! - [`reader`] and [`io`] — the device drivers (UHF reader over 0xA0, lane I/O over Modbus RTU);
//! - [`store`] — the local SQLite copy the index is built from; [`import`] — CSV commissioning;
//! - [`journal`] — the durable event journal; [`config`] — `gate.toml`;
//! - [`camera`] — plate cameras' pushes, parsed per make; [`camera_http`] — the listener they
//!   push to; [`photos`] — their JPEGs on disk.

pub mod booth;
pub mod camera;
pub mod camera_http;
pub mod config;
pub mod decision;
pub mod display;
pub mod http;
pub mod import;
pub mod index;
pub mod io;
pub mod journal;
pub mod lane;
pub mod pass_check;
pub mod photos;
pub mod presence;
pub mod qr;
pub mod reader;
pub mod runtime;
pub mod store;
