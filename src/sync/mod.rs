//! Gate ↔ centre synchronisation over mutually authenticated TLS: data to the gates, events to
//! the centre, commands and health. The messages are [`crate::wire::sync`]'s.
//!
//! What it never does: trust anything the client says about who it is — a gate's identity comes
//! only from the client certificate the TLS layer verified ([`crate::tls::GateIdentity`]).

pub mod client;
mod fanout;
pub mod photos;
pub mod server;
