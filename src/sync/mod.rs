//! Gate ↔ centre synchronisation over mutually authenticated TLS: data to the gates, events to
//! the centre, commands and health.
//!
//! What it never does: trust anything the client says about who it is — a gate's identity comes
//! only from the client certificate the TLS layer verified ([`GateIdentity`]).

pub mod client;
pub mod server;
pub mod wire;

/// Who is calling the sync endpoints: the gate named by the client certificate the mutual-TLS
/// listener verified. The listener inserts it as a request extension; nothing a client sends
/// can set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GateIdentity {
    /// The gate's id (`gates.id` centrally, `gate.id` in its gate.toml).
    pub gate_id: i64,
}
