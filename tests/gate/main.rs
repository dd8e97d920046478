//! Integration tests of the lane: device protocols over real pseudo-terminals, the simulators,
//! the decision table, the lane state machine and the gate controller (in process and as the
//! real binary, killed at random).
//!
//! One binary per surface (`tests/gate`, `tests/api`, …), not one per file: each test binary
//! links the whole dependency tree, and sixteen of them filled the CI machine's disk.

mod support;

mod camera_drivers;
mod camera_listener;
mod camera_payloads;
mod decision;
mod fuzz_corpus;
mod gate_crash;
mod gate_import;
mod gate_lane;
mod io_exceptions;
mod lane_display;
mod lane_io;
mod lane_latency;
mod lane_machine;
mod lane_modes;
mod lane_pass;
mod lane_plate;
mod reader_faults;
mod sim_camera;
mod sim_lane;
mod sim_tid;
mod uhf_reader;
mod wall_clock;
