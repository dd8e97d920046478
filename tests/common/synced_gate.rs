//! Waits on what reached a gate through sync, for the test binaries that run gates linked to a
//! centre (`tests/sync`, `tests/web`). Included by `#[path]` into their support module, beside
//! the gate harness (`gate`); it never starts a gate or a link itself.

#![allow(dead_code, unreachable_pub)]

/// Waits until the gate's decision index knows the tag `epc` (it reached the gate through
/// sync).
pub async fn wait_for_tag(gate: &super::gate::TestGate, epc: &[u8]) {
    let epc = gatehouse::domain::Epc::from_bytes(epc).unwrap();
    super::gate::wait_for("the tag to reach the gate through sync", || async {
        gate.handle()
            .shared()
            .index()
            .credential(&epc)
            .is_some()
            .then_some(())
    })
    .await
}
