//! Accepting a gate's uploaded events: store them exactly once ([`events::ingest`], which
//! in the same transaction keeps the statistics current and records the campus-wide presence
//! the passages change), then wake the sync server's presence publisher if presence changed
//! (it announces the change to every gate) and tell the live pages about exactly the events
//! stored. The sync endpoint calls this, never the repository directly, so every stored event
//! also reaches the live view and every presence change the gates. A visitor who entered on a
//! pass is announced to their host (`Notice::VisitorArrived`) once the upload committed.
//!
//! An upload that SQLite refuses because another writer committed first, or that PostgreSQL
//! refuses because another upload of the same gate stored one of its events first, is tried
//! again (see `is_busy`, `is_collision`); nothing of it was written.
//!
//! An upload that reused sequence numbers of its journal with other contents (the journal
//! rewound), or that brought a new journal for a gate with events (journal.db replaced), raises
//! an `event_conflict` alarm ([`crate::central::alarms::raise`]: stored, told to the office,
//! sent to the webhook) once; the events themselves are kept by the repository either way.
//!
//! What it never does: authenticate the gate (the sync layer has done so and passes the gate's
//! id from its certificate), or publish an event that was already stored.

use std::sync::Arc;

use crate::central::db::{Actor, DbKind, RepoError};
use crate::central::live::LiveMessage;
use crate::central::repo::events::{self, IngestOutcome};
use crate::central::state::AppState;
use crate::wire::journal::{JournalEvent, JournalIdentity};

/// Stores `events` uploaded by `gate_id` from its id-less journal: see [`accept_from`].
pub async fn accept(
    state: &AppState,
    gate_id: i64,
    events: &[JournalEvent],
) -> Result<IngestOutcome, RepoError> {
    accept_from(state, gate_id, None, events).await
}

/// Stores `events` uploaded by `gate_id` from `journal` (updating the statistics in the same
/// transaction), publishes exactly the events stored now, once each, in sequence order, and
/// raises the `event_conflict` alarm for what the upload quarantined or a replaced journal.
pub async fn accept_from(
    state: &AppState,
    gate_id: i64,
    journal: Option<&JournalIdentity>,
    events: &[JournalEvent],
) -> Result<IngestOutcome, RepoError> {
    // SQLite takes one writer at a time: queue this instance's uploads rather than let them
    // collide (a centre on SQLite is a single instance).
    let _one_at_a_time = match state.db.kind() {
        DbKind::Sqlite => Some(SQLITE_INGEST.lock().await),
        DbKind::Postgres => None,
    };
    let mut attempt = 0u32;
    let outcome = loop {
        match events::ingest_from(&state.db, state.site_tz, gate_id, journal, events).await {
            Err(e) if attempt < BUSY_RETRIES && (is_busy(&e) || is_collision(&e)) => {
                attempt += 1;
                // Jitter, so that gates that collided do not collide again in step.
                let pause = 1
                    + u64::from(attempt) * 2
                    + u64::from(rand_core::RngCore::next_u32(&mut rand_core::OsRng) % 8);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            other => break other?,
        }
    };
    crate::metrics::ingested(gate_id, outcome.stored as u64);
    if outcome.presence_changed > 0 {
        state.presence_queued.notify_one();
    }
    if !outcome.stored_seqs.is_empty() {
        // `stored_seqs` is ascending; an upload's repeats were stored as their first copy.
        let mut seen = std::collections::HashSet::with_capacity(outcome.stored_seqs.len());
        let mut fresh: Vec<JournalEvent> = events
            .iter()
            .filter(|e| outcome.stored_seqs.binary_search(&e.seq).is_ok() && seen.insert(e.seq))
            .cloned()
            .collect();
        fresh.sort_by_key(|e| e.seq);
        state.live.publish(LiveMessage::Events {
            gate_id,
            events: Arc::from(fresh),
        });
    }
    for a in &outcome.pass_arrivals {
        crate::central::notify::queue(
            &state.db,
            crate::central::notify::Notice::VisitorArrived {
                booking_id: a.booking_id,
                gate_id: a.gate_id,
                at_ms: a.at_ms,
            },
        )
        .await;
    }
    alarm_conflicts(state, gate_id, journal, &outcome).await;
    // A fire input is an alarm at the office (and the police link), not only a lane event.
    // Every event of the upload is looked at, not only those stored now: an upload tried again
    // after this failed raises what it missed, and nothing twice.
    crate::central::alarms::from_events(&state.db, &state.live, gate_id, events).await?;
    // A tag/plate mismatch or a cloned tag is an alarm the office sees.
    crate::central::alarms::from_decisions(
        &state.db,
        &state.live,
        gate_id,
        outcome.journal_no,
        events,
    )
    .await?;
    // A vehicle through a lane without a grant (tailgating) is an alarm the office sees.
    crate::central::alarms::from_lane_faults(
        &state.db,
        &state.live,
        gate_id,
        outcome.journal_no,
        events,
    )
    .await?;
    Ok(outcome)
}

/// The `event_conflict` alarms an upload calls for. The events and their audit entries are
/// committed already; an alarm that cannot be stored is logged, not returned: the gate would
/// only send the upload again, and its events are kept whatever happens here.
async fn alarm_conflicts(
    state: &AppState,
    gate_id: i64,
    journal: Option<&JournalIdentity>,
    outcome: &IngestOutcome,
) {
    let id = journal.map_or("-", |j| j.id.as_str());
    let mut notes = Vec::new();
    if let (Some(first), Some(last)) = (
        outcome.quarantined_seqs.first(),
        outcome.quarantined_seqs.last(),
    ) {
        let n = outcome.quarantined_seqs.len();
        tracing::error!(
            gate = gate_id,
            journal = id,
            first,
            last,
            n,
            "a gate's journal reused sequence numbers with other events: quarantined"
        );
        notes.push(format!(
            "事件冲突：日志 {id} 的 {n} 个事件（序号 {first}–{last}）与中心已存的同序号事件内容不同\
             （日志回退），已隔离保存 / event conflict: journal {id} sent {n} event(s) numbered \
             {first}–{last} whose numbers the centre holds with other contents (the journal \
             rewound); kept in quarantine"
        ));
    }
    if outcome.replaced_journal {
        tracing::error!(
            gate = gate_id,
            journal = id,
            "a gate's journal was replaced: its sequence numbers start again"
        );
        notes.push(format!(
            "日志更换：大门的新日志 {id} 从序号 1 重新编号，旧日志的事件保留 / journal replaced: \
             the gate's new journal {id} numbers its events from 1 again; the old journal's \
             events stay stored"
        ));
    }
    for note in notes {
        if let Err(e) = crate::central::alarms::raise(
            &state.db,
            &state.live,
            &Actor::system(),
            gate_id,
            "event_conflict",
            &note,
        )
        .await
        {
            tracing::error!(gate = gate_id, error = %e, "cannot raise the event_conflict alarm");
        }
    }
}

/// Uploads into SQLite, one at a time per process.
static SQLITE_INGEST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How often an upload that collided with another writer is tried again.
const BUSY_RETRIES: u32 = 20;

/// Whether SQLite refused the ingest's write because another connection wrote first. The
/// ingest's transaction begins by reading (the watermark); once another connection has
/// committed after that read, SQLite refuses the upgrade to a write at once ("database is
/// locked", `SQLITE_BUSY_SNAPSHOT`) rather than waiting out the busy timeout. Several gates
/// uploading at once meet this all the time on SQLite; nothing was written, so the upload is
/// simply tried again.
fn is_busy(e: &RepoError) -> bool {
    match e {
        RepoError::Database(sqlx::Error::Database(d)) => {
            matches!(d.code().as_deref(), Some("5" | "6" | "261" | "262" | "517"))
                || d.message().contains("database is locked")
        }
        _ => false,
    }
}

/// Whether PostgreSQL refused the upload because another upload of the same gate stored one of
/// its events first (possible only before the journal's watermark row exists: later uploads
/// of a journal wait for each other on that row, see [`events::ingest_from`]), or registered
/// its new journal first. Nothing of it was written; tried again, it finds those events stored
/// and that journal registered.
fn is_collision(e: &RepoError) -> bool {
    match e {
        RepoError::Database(sqlx::Error::Database(d)) => {
            d.code().as_deref() == Some("23505")
                && d.constraint().is_none_or(|c| {
                    matches!(
                        c,
                        "passage_events_pkey" | "gate_journals_pkey" | "gate_journals_no"
                    )
                })
        }
        _ => false,
    }
}
