//! The gate lane controller's pure core: what a lane decides and how its barrier moves.
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
//! the index, the journal that records events and effects, and the device drivers come from other
//! modules of this package (to be added beside these, e.g. `gate::store`, `gate::journal`,
//! `gate::runtime`).

pub mod decision;
pub mod index;
pub mod lane;
pub mod presence;
