//! The server's bulk import jobs: each upload's kind, progress and outcome, kept in memory for
//! the last [`KEEP_JOBS`] reports, and the turns that let one file at a time be read and checked.
//!
//! What it never does: outlive the process (a restart forgets the reports, never half an
//! import) or answer HTTP — the `/api/v1/bulk` handlers read and show these.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{Kind, Progress, RowError};
use crate::i18n::Msg;

/// Finished jobs kept for their reports.
pub const KEEP_JOBS: usize = 100;
/// Bad-row errors a report lists; past them it counts (`error_count`). A file of 100,000 bad
/// rows would otherwise keep some 80 MB of messages for each of the [`KEEP_JOBS`] reports,
/// and nobody corrects a file from its ten-thousandth error.
pub const MAX_REPORTED_ERRORS: usize = 1000;

/// One import's state.
#[derive(Debug)]
pub struct Job {
    pub kind: Kind,
    pub commit: bool,
    pub progress: Progress,
    pub outcome: Mutex<Option<Outcome>>,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Done {
        /// The first [`MAX_REPORTED_ERRORS`] errors.
        errors: Vec<RowError>,
        /// Every error, and the rows with one (counted before `errors` was cut).
        error_count: u64,
        bad_rows: u64,
        imported: u64,
    },
    Failed(Msg),
}

/// Files read and checked at once; the others wait (phase `queued`). Reading and checking is
/// CPU-bound and holds the file's kept cells: one at a time bounds both, whatever the number
/// of uploads, on the 2-core servers campuses run.
pub const IMPORT_WORKERS: usize = 1;

/// The server's import jobs (cheap to clone: one shared map).
#[derive(Debug, Clone)]
pub struct Jobs {
    next: Arc<AtomicU64>,
    jobs: Arc<Mutex<BTreeMap<u64, Arc<Job>>>>,
    /// Turns to read and check a file ([`IMPORT_WORKERS`]).
    pub workers: Arc<tokio::sync::Semaphore>,
}

impl Default for Jobs {
    fn default() -> Jobs {
        Jobs {
            next: Default::default(),
            jobs: Default::default(),
            workers: Arc::new(tokio::sync::Semaphore::new(IMPORT_WORKERS)),
        }
    }
}

impl Jobs {
    pub fn add(&self, job: Job) -> (u64, Arc<Job>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Arc::new(job);
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(id, job.clone());
            while jobs.len() > KEEP_JOBS {
                jobs.pop_first();
            }
        }
        (id, job)
    }

    pub fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.jobs.lock().ok()?.get(&id).cloned()
    }
}
