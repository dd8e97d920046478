//! What keeps a thousand waiting long polls cheap at the centre: a change wakes them all at
//! once, so what each woken poll does must not be a database read of its own.
//!
//! - [`Steps`]: the answer to a change-log step (`since` → head) is read once and shared by
//!   every gate that asks for that step ([`repo::ChangesStep`]: the same data for all, each
//!   gate's own settings apart), serialised once for the gates that get no settings; at most
//!   [`STEP_READS`] steps are read at a time.
//! - [`Touches`]: the long polls' "gate heard from" writes, gathered and written in one
//!   transaction every [`TOUCH_FLUSH`] instead of one commit per poll.
//! - [`CommandBells`]: a command wakes only its own gate's command poll.
//!
//! What it never does: decide what a gate may read (every gate gets the whole step but for
//! its settings, as it would alone), or keep anything a restart would miss (a cache only).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::{Notify, OnceCell, Semaphore, watch};
use tokio::time::Instant;

use crate::central::db::{Db, RepoError};
use crate::central::repo::sync as repo;

/// Steps kept for gates still to ask for them (the newest; older ones are read again).
const STEPS_KEPT: usize = 32;

/// Steps read from the database at once, whatever the number of gates waiting.
pub(super) const STEP_READS: usize = 2;

/// One change-log step, shared by the gates that ask for it.
#[derive(Debug)]
pub(super) struct Step {
    pub(super) step: repo::ChangesStep,
    /// The answer's JSON for every gate that gets no settings with it, made on first use.
    shared_json: OnceLock<Bytes>,
}

impl Step {
    /// Whether gate `gate` would get nothing from this step: no data, no settings, the same
    /// version it asked from.
    pub(super) fn is_nothing_for(&self, gate: i64, since: u64) -> bool {
        let shared = &self.step.shared;
        shared.version == since && shared.is_empty() && self.step.settings_for(gate).is_none()
    }

    /// Gate `gate`'s answer as JSON: the shared bytes, or the shared data with its settings.
    pub(super) fn json_for(&self, gate: i64) -> Bytes {
        match self.step.settings_for(gate) {
            None => self
                .shared_json
                .get_or_init(|| to_json(&self.step.shared))
                .clone(),
            Some(_) => to_json(&self.step.for_gate(gate)),
        }
    }
}

fn to_json(changes: &crate::wire::sync::Changes) -> Bytes {
    Bytes::from(serde_json::to_vec(changes).expect("wire changes always serialise"))
}

type StepCell = Arc<OnceCell<Arc<Step>>>;

/// The cells by (since, head), and their keys oldest first.
type StepCells = (HashMap<(u64, u64), StepCell>, VecDeque<(u64, u64)>);

/// The steps being read or recently read, by (since, head).
#[derive(Debug)]
pub(super) struct Steps {
    db: Db,
    cells: Mutex<StepCells>,
    reads: Semaphore,
}

impl Steps {
    pub(super) fn new(db: Db) -> Steps {
        Steps {
            db,
            cells: Mutex::new((HashMap::new(), VecDeque::new())),
            reads: Semaphore::new(STEP_READS),
        }
    }

    /// The step after `since` as read once the change log had reached `head`: read by the
    /// first gate to ask, awaited by the others asking meanwhile, kept for those asking later.
    pub(super) async fn get(&self, since: u64, head: u64) -> Result<Arc<Step>, RepoError> {
        let key = (since, head);
        let cell = {
            let mut guard = self.cells.lock().expect("steps lock poisoned");
            let (cells, order) = &mut *guard;
            match cells.get(&key) {
                Some(cell) => cell.clone(),
                None => {
                    let cell = StepCell::default();
                    cells.insert(key, cell.clone());
                    order.push_back(key);
                    while order.len() > STEPS_KEPT {
                        if let Some(old) = order.pop_front() {
                            cells.remove(&old);
                        }
                    }
                    cell
                }
            }
        };
        let step = cell
            .get_or_try_init(|| async {
                let _read = self.reads.acquire().await.expect("never closed");
                let step = repo::changes_step(&self.db, since).await?;
                Ok::<_, RepoError>(Arc::new(Step {
                    step,
                    shared_json: OnceLock::new(),
                }))
            })
            .await?;
        Ok(step.clone())
    }
}

/// How often the long polls' contacts are written (well under the 15 s after which a gate
/// counts as silent).
pub(super) const TOUCH_FLUSH: Duration = Duration::from_millis(200);

/// A gate's `last_seen` is noted again at most this often per instance unless its data version
/// changed (each one is a row in the next write).
const TOUCH_EVERY: Duration = Duration::from_secs(2);

/// The long polls' contacts waiting to be written, and when each gate's was last noted.
#[derive(Debug, Default)]
pub(super) struct Touches {
    state: Mutex<TouchState>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct TouchState {
    pending: HashMap<i64, Option<u64>>,
    noted: HashMap<i64, (Instant, Option<u64>)>,
}

impl Touches {
    /// Notes that `gate` was heard from at data version `version` (if known); written with
    /// the others by the next [`Touches::flush`].
    pub(super) fn note(&self, gate: i64, version: Option<u64>) {
        let now = Instant::now();
        let mut s = self.state.lock().expect("touches lock poisoned");
        if let Some((at, v)) = s.noted.get(&gate)
            && now.duration_since(*at) < TOUCH_EVERY
            && (version.is_none() || version == *v)
        {
            return;
        }
        s.noted.insert(gate, (now, version));
        let slot = s.pending.entry(gate).or_insert(None);
        if version.is_some() {
            *slot = version;
        }
        drop(s);
        self.wake.notify_one();
    }

    /// Writes what was noted, every [`TOUCH_FLUSH`] while there is something, until `closed`
    /// resolves (the router is gone).
    pub(super) async fn flush(&self, db: &Db, closed: impl Future<Output = ()>) {
        tokio::pin!(closed);
        loop {
            tokio::select! {
                _ = &mut closed => return,
                _ = self.wake.notified() => {}
            }
            tokio::select! {
                _ = &mut closed => return,
                _ = tokio::time::sleep(TOUCH_FLUSH) => {}
            }
            let batch: Vec<(i64, Option<u64>)> = {
                let mut s = self.state.lock().expect("touches lock poisoned");
                s.pending.drain().collect()
            };
            if let Err(e) = repo::touch_many(db, &batch).await {
                tracing::warn!(error = %e, gates = batch.len(), "cannot record the gates' contact");
                // Noted again at their next request.
                let mut s = self.state.lock().expect("touches lock poisoned");
                for (gate, _) in &batch {
                    s.noted.remove(gate);
                }
            }
        }
    }
}

/// Per gate, a bell its command poll waits on: rung when a command is queued for that gate.
#[derive(Debug, Default)]
pub(super) struct CommandBells {
    bells: Mutex<HashMap<i64, watch::Sender<u64>>>,
}

impl CommandBells {
    /// A receiver of gate `gate`'s bell.
    pub(super) fn subscribe(&self, gate: i64) -> watch::Receiver<u64> {
        self.bells
            .lock()
            .expect("bells lock poisoned")
            .entry(gate)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Rings gate `gate`'s bell (nothing if no poll of it ever waited here).
    pub(super) fn ring(&self, gate: i64) {
        if let Some(bell) = self.bells.lock().expect("bells lock poisoned").get(&gate) {
            bell.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Rings every gate's bell (the command queue moved and which gates it concerns is not
    /// known).
    pub(super) fn ring_all(&self) {
        for bell in self.bells.lock().expect("bells lock poisoned").values() {
            bell.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}
