//! Sans-IO codecs for Gatehouse's lane devices.
//!
//! Everything here turns bytes into typed frames and typed frames into bytes. Nothing here
//! opens a port, spawns a task, reads a clock or sleeps: the gate controller and the device
//! simulators (in the `gatehouse` crate) own all IO and all time, and hand this crate buffers.
//! That keeps the protocol code testable with golden vectors, property tests and fuzzers.
//!
//! - [`checksum`]: the checksums the devices use, each checked against its catalogue check value.
//! - [`uhf`]: the long-range UHF reader "0xA0" serial protocol, both the host and the reader side.
//! - [`modbus`]: the Modbus RTU frames the lane I/O module speaks (used by the module simulator;
//!   the controller itself talks through tokio-modbus).
//! - [`lane_io`]: which coil and which input of the lane I/O module means what.
//! - [`led`]: the RS-485 LED/voice lane screen's frames and its GBK text.

pub mod checksum;
pub mod lane_io;
pub mod led;
pub mod modbus;
pub mod qr;
pub mod uhf;
