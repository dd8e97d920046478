//! The crash test's fault point inside the lane task (debug builds only): where an OPEN is
//! committed to the journal but not yet handed to the I/O task. Kept apart from the lane task
//! so that file stays within the size the architecture test allows.
//!
//! What it never does: anything in a release build, or anything without `GATEHOUSE_FAULT`.

/// The crash test's fault point between an OPEN's journal commit and its hand-off to the I/O
/// task, a window microseconds wide that random kills almost never hit. In debug builds only
/// (release builds compile it to nothing): with `GATEHOUSE_FAULT=kill_after_open_commit:N` in
/// its environment the process SIGKILLs itself the `N`th time it gets here
/// (`tests/gate/gate_crash.rs`).
#[cfg(debug_assertions)]
pub(super) fn fault_after_open_commit() {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static AT: LazyLock<Option<u64>> = LazyLock::new(|| {
        std::env::var("GATEHOUSE_FAULT")
            .ok()?
            .strip_prefix("kill_after_open_commit:")?
            .parse()
            .ok()
    });
    static SEEN: AtomicU64 = AtomicU64::new(0);
    if let Some(n) = *AT
        && SEEN.fetch_add(1, Ordering::Relaxed) + 1 == n
    {
        eprintln!("fault point: SIGKILL after committing OPEN #{n}, before sending it");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(not(debug_assertions))]
pub(super) fn fault_after_open_commit() {}
