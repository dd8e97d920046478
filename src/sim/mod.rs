//! Device simulators: the lane's UHF reader, Modbus I/O module and plate camera, played in software so that the
//! whole system runs, and is tested, on a machine with no hardware.
//!
//! Simulators speak the devices' real bytes (through `firmware-protocols`) over any
//! `AsyncRead + AsyncWrite` transport: a real pseudo-terminal (see [`crate::serial::pty`]) for
//! end-to-end tests and the demo, or `tokio::io::duplex` for fast in-process tests.

pub mod barrier;
pub mod camera;
pub mod fleet;
pub mod lane;
pub mod lane_io;
pub mod led_screen;
pub mod plate_image;
pub mod qr_scanner;
pub mod uhf_reader;
pub mod vehicle;
