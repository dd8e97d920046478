//! What every sqlx pool of ours checks when a connection comes back: that it is outside any
//! transaction.
//!
//! Why: a task cancelled just after its BEGIN succeeded, but before sqlx built the
//! `Transaction` that would roll it back (a gate hanging up on the centre, a sync task stopped
//! mid-update), returns its connection to the pool still inside the transaction. Back in the
//! pool it would hold SQLite's write lock once it has written (every other writer then waits
//! out the busy timeout and fails), and it turns the next caller's transaction into a
//! savepoint of one that never commits, so that caller's change is lost when the connection
//! closes. Each pool's `after_release` hook calls [`outside_transaction`], and a connection
//! that is not is closed, which rolls it back.

use sqlx::Connection;

/// Whether `conn` may go back to the pool: `false` when a transaction is still open on it.
///
/// On SQLite a dropped transaction's rollback is queued to the connection's worker thread, so
/// `ping_first` makes a round trip that lets it run before the check (PostgreSQL counts it at
/// once, and sqlx pings every released connection after the hook anyway).
pub async fn outside_transaction<C: Connection>(
    conn: &mut C,
    ping_first: bool,
) -> Result<bool, sqlx::Error> {
    if ping_first {
        conn.ping().await?;
    }
    Ok(!conn.is_in_transaction())
}
