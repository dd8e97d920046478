//! Supervision of background tasks: nothing a long-running command spawns may die silently.
//!
//! A tokio task that panics ends alone; unless someone looks at its `JoinHandle`, the process
//! carries on half-dead (the demo's traffic stopped, a gate no longer syncing, a watcher gone)
//! and nobody is told. Every background task of `gatehouse demo`, `gatehouse server run` and
//! `gatehouse gate run` therefore runs under one of two policies:
//!
//! - [`restarting`]: a task whose loss would silently degrade the system (demo traffic, the sync
//!   runner's directions, the journal checkpointer, the centre's watchers). A panic or an error is
//!   logged at error level and the task is made anew after a backoff (1 s doubling to 60 s,
//!   back to 1 s once a run lasted a minute), until the stop token is cancelled.
//! - [`essential`]: a task without which the process is no longer what it claims to be (an HTTP
//!   listener, a lane thread). Its end — panic, error or an unexpected return — becomes one
//!   error that the command turns into a one-line message and a non-zero exit.
//!
//! What it never does: swallow a panic (every one is logged with its message), restart in a
//! tight loop, or outlive its stop token.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long to wait before making a failed task anew.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first wait.
    pub first: Duration,
    /// The longest wait (the wait doubles after each failure up to this).
    pub max: Duration,
    /// A run that lasted this long counts as healthy: the next failure waits `first` again.
    pub healthy_after: Duration,
}

impl Backoff {
    /// The wait before the next run: `grown` (the doubled wait), or `first` after a healthy run.
    fn wait(&self, grown: Duration, ran_for: Duration) -> Duration {
        if ran_for >= self.healthy_after {
            self.first
        } else {
            grown
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
            healthy_after: Duration::from_secs(60),
        }
    }
}

/// Runs the task `make` returns until it ends by itself (`Ok`) or `stop` is cancelled; when it
/// panics or returns an error, logs that and makes it anew after a backoff. Returns how many
/// times the task was restarted.
///
/// Each run is a tokio task of its own, so a panic unwinds only that run.
pub async fn restarting<F, Fut>(
    task: &'static str,
    stop: CancellationToken,
    backoff: Backoff,
    mut make: F,
) -> u64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut restarts = 0;
    let mut wait = backoff.first;
    loop {
        let started = Instant::now();
        let mut run = tokio::spawn(make());
        let outcome = tokio::select! {
            outcome = &mut run => outcome,
            _ = stop.cancelled() => {
                // The task sees the same token; give it its chance to end cleanly.
                match run.await {
                    Err(e) if e.is_panic() => {
                        tracing::error!(task, panic = %panic_message(e), "task panicked while stopping");
                    }
                    _ => {}
                }
                return restarts;
            }
        };
        match outcome {
            Ok(Ok(())) => return restarts,
            Ok(Err(e)) => {
                tracing::error!(task, error = %format!("{e:#}"), "task failed; restarting it in {wait:?}");
            }
            Err(e) => {
                let panic = if e.is_panic() {
                    panic_message(e)
                } else {
                    "cancelled".to_string()
                };
                tracing::error!(task, %panic, "task panicked; restarting it in {wait:?}");
            }
        }
        let now = backoff.wait(wait, started.elapsed());
        tokio::select! {
            _ = stop.cancelled() => return restarts,
            () = tokio::time::sleep(now) => {}
        }
        restarts += 1;
        wait = (now * 2).min(backoff.max);
    }
}

/// Why an essential task ended.
#[derive(Debug, thiserror::Error)]
pub enum Ended {
    #[error("{task} stopped unexpectedly")]
    Returned { task: String },
    #[error("{task} failed: {error:#}")]
    Failed { task: String, error: anyhow::Error },
    #[error("{task} panicked: {panic}")]
    Panicked { task: String, panic: String },
}

/// Runs an essential task as a task of its own and, when it ends, says how: [`Ended::Returned`]
/// when it returned `Ok` (expected only after a stop was asked for), else why it failed. The
/// command stops on any end that was not asked for.
pub async fn essential<T: Send + 'static>(
    task: impl Into<String>,
    fut: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> Ended {
    let task = task.into();
    match tokio::spawn(fut).await {
        Ok(Ok(_)) => Ended::Returned { task },
        Ok(Err(error)) => Ended::Failed { task, error },
        Err(e) => Ended::Panicked {
            task,
            panic: if e.is_panic() {
                panic_message(e)
            } else {
                "cancelled".to_string()
            },
        },
    }
}

/// Runs `parts` to completion on a new OS thread named `name`, on a single-threaded runtime of
/// its own. The receiver gets `Ok` when they end and `Err` with the panic message when they
/// panicked — a thread never dies without its owner hearing of it.
pub fn spawn_runtime_thread(
    name: String,
    parts: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::sync::oneshot::Receiver<Result<(), String>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name(name).spawn(move || {
        // The panic hook has already printed the panic; this says it to the owner.
        let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(parts);
        }))
        .map_err(|payload| payload_message(payload.as_ref()));
        let _ = done_tx.send(ended);
    })?;
    Ok(done_rx)
}

/// The message a panicked task panicked with.
pub fn panic_message(e: JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload_message(payload.as_ref()),
        Err(e) => e.to_string(),
    }
}

/// The message of a panic payload (`panic!` with a literal or with a format).
pub fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// Short waits, so the tests run in real time (tokio's paused clock needs `test-util`,
    /// which would rebuild every tokio dependent for the tests).
    const FAST: Backoff = Backoff {
        first: Duration::from_millis(10),
        max: Duration::from_millis(100),
        healthy_after: Duration::from_millis(500),
    };

    #[tokio::test]
    async fn a_task_that_panics_is_made_anew_after_a_growing_backoff_until_it_runs() {
        let runs = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let restarts = {
            let runs = runs.clone();
            restarting("test", CancellationToken::new(), FAST, move || {
                let n = runs.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 3 {
                        panic!("fault point: run {n}");
                    }
                    Ok(())
                }
            })
            .await
        };
        assert_eq!(restarts, 3);
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        // 10 + 20 + 40 ms of backoff, not a tight loop.
        assert!(started.elapsed() >= Duration::from_millis(70));
    }

    #[tokio::test]
    async fn a_task_that_fails_is_restarted_until_it_ends_by_itself() {
        let runs = Arc::new(AtomicU64::new(0));
        let restarts = {
            let runs = runs.clone();
            restarting("test", CancellationToken::new(), FAST, move || {
                let n = runs.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        anyhow::bail!("failure {n}");
                    }
                    Ok(())
                }
            })
            .await
        };
        assert_eq!(restarts, 2);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_wait_doubles_up_to_its_maximum_and_a_healthy_run_resets_it() {
        let b = Backoff::default();
        assert_eq!(
            b.wait(Duration::from_secs(8), Duration::from_secs(3)),
            Duration::from_secs(8)
        );
        assert_eq!(
            b.wait(Duration::from_secs(8), Duration::from_secs(60)),
            Duration::from_secs(1)
        );
    }

    /// Cancels `stop` and waits (at most ten seconds) for `supervisor`'s count of restarts.
    async fn stopped(stop: CancellationToken, supervisor: tokio::task::JoinHandle<u64>) -> u64 {
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), supervisor)
            .await
            .expect("the supervisor ends when stopped")
            .unwrap()
    }

    #[tokio::test]
    async fn a_cancelled_stop_ends_the_supervisor_during_a_backoff_and_during_a_run() {
        // A task that always panics, with an hour's wait: stopped during the first wait.
        let stop = CancellationToken::new();
        let runs = Arc::new(AtomicU64::new(0));
        let slow = Backoff {
            first: Duration::from_secs(3600),
            ..FAST
        };
        let supervisor = tokio::spawn(restarting("test", stop.clone(), slow, {
            let runs = runs.clone();
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
                async { panic!("always") }
            }
        }));
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(stopped(stop, supervisor).await, 0);

        let stop = CancellationToken::new();
        let supervisor = tokio::spawn(restarting("test", stop.clone(), FAST, {
            let stop = stop.clone();
            move || {
                let stop = stop.clone();
                async move {
                    stop.cancelled().await;
                    Ok(())
                }
            }
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(stopped(stop, supervisor).await, 0);
    }

    #[tokio::test]
    async fn a_runtime_thread_that_panics_tells_its_owner_with_the_message() {
        let done = spawn_runtime_thread("test-panics".into(), async {
            tokio::task::yield_now().await;
            panic!("fault point: lane parts");
        })
        .unwrap();
        assert_eq!(done.await.unwrap(), Err("fault point: lane parts".into()));
        let done = spawn_runtime_thread("test-ends".into(), async {}).unwrap();
        assert_eq!(done.await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn an_essential_task_that_ends_says_how_with_the_panic_message() {
        let ended = essential("central server", async {
            if true {
                panic!("fault point: accept loop");
            }
            Ok(())
        })
        .await;
        assert_eq!(
            ended.to_string(),
            "central server panicked: fault point: accept loop"
        );
        let ended = essential("central server", async {
            anyhow::bail!("address gone") as anyhow::Result<()>
        })
        .await;
        assert_eq!(ended.to_string(), "central server failed: address gone");
        let ended = essential("central server", async { anyhow::Ok(()) }).await;
        assert!(matches!(ended, Ended::Returned { .. }));
    }
}
