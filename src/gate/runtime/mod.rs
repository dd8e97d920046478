//! The gate runtime: one thread per lane that wires the devices to the pure core.
//!
//! Each lane runs on a thread of its own with a single-threaded runtime (`spawn_lane_thread`),
//! so that a tag report's path to the OPEN stays on one thread. On it, a reader task
//! (`reader_task`) keeps the UHF reader open (reopening with backoff after a hang-up or
//! silence) and forwards tag reads; an I/O task (`io_task`) owns the Modbus link, polls the
//! inputs every `poll_ms` and carries out barrier commands ahead of polls; the lane task
//! (`lane_task`) owns the [`Lane`](crate::gate::lane::Lane) state machine. On every tag read
//! it: applies the [`TagFilter`](crate::gate::reader::TagFilter) while the presence loop is
//! occupied, decides against the current [`Index`](crate::gate::index::Index) snapshot,
//! journals the decision *and* the barrier commands the machine answers with in one commit, and
//! only then hands the commands to the I/O task. It steps the machine on every input poll and
//! at its deadlines.
//!
//! The index is swapped whole ([`GateHandle::apply_update`]): a decision sees either the old
//! snapshot or the new one, never half an update (a change builds the new one beside the old,
//! sharing what it does not touch). Presence (anti-passback) and consumed
//! single-use passes are shared by the gate's lanes in memory and written through to the store
//! when a vehicle actually passes.
//!
//! If the journal cannot commit, commands are still carried out (a barrier that cannot close
//! behind a car, or open for a fire evacuation, is worse than a missing record): the journal
//! keeps the events in memory and writes them once it can
//! ([`Journal::retry`](crate::gate::journal::Journal::retry), with every checkpoint), and says
//! it is failing to `/readyz`, `/metrics` and the centre (see [`crate::gate::journal`]).
//! A lane with a `[lane.qr]` scanner also runs a QR task (`qr_task`) that hands each scanned
//! text to the lane task, which decides it as a visitor pass (`lane_task::pass_lane`,
//! `gate::pass_check`).
//! This module never parses device bytes and never decides by itself.

mod device;
mod display_feed;
mod fault_point;
mod handle;
mod io_task;
mod lane_task;
mod plate_reads;
mod qr_task;
mod reader_task;
mod realtime;
mod status;

pub use handle::{GateError, GateHandle, build_index};
pub use lane_task::pass_lane::{PassReply, PassScan};
pub use lane_task::{LaneCommand, Shared, guard_reason, mode_name, parse_mode};
pub use status::{HeldRead, LaneStatus};
