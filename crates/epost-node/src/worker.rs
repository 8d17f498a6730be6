//! Background work, one way. Every long-lived task of a node is a named
//! [`Worker`], started from the node's [`Workers`]: it is told to stop
//! through its [`Stop`], says whether it is busy or idle and the last error
//! it met, and is waited for with a deadline on shutdown (a worker that
//! does not stop in time is abandoned with a warning, never waited for
//! forever). What every worker is doing shows in `/metrics` and
//! `epost status`.
//!
//! Short tasks a worker or a request starts (a request answered in
//! parallel, a fetch ahead, the stores that go on after a put has its
//! quorum) are spawned with [`Workers::spawn_tracked`]: nothing runs
//! outside a shutdown, and shutdown waits for them too.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tracing::{error, warn};

use crate::chain::Chain;
use crate::stop::{Stop, StopSignal};

/// How long shutdown waits for a worker, or for the tracked tasks, to end.
pub(crate) const DRAIN: Duration = Duration::from_secs(30);

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Waiting for work (a tick, a request).
    Idle,
    /// Working (a pass, a batch).
    Busy,
    /// Told to stop, finishing what it holds.
    Stopping,
    Stopped,
    /// It panicked: its service no longer runs (a bug; see the log).
    Panicked,
}

impl WorkerState {
    const ALL: [WorkerState; 5] =
        [Self::Idle, Self::Busy, Self::Stopping, Self::Stopped, Self::Panicked];

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Self {
        Self::ALL.get(usize::from(code)).copied().unwrap_or(Self::Panicked)
    }

    /// Its name in `/metrics` and `epost status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Panicked => "panicked",
        }
    }
}

/// One worker as `GET /v1/status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub name: String,
    pub state: WorkerState,
    /// Rounds of work done (passes, batches, requests).
    pub runs: u64,
    /// Errors met since start; the work goes on after each.
    pub errors: u64,
    /// The last one, with its causes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A worker's shared state: the worker writes it, status reads it.
#[derive(Debug)]
struct Status {
    name: &'static str,
    state: AtomicU8,
    runs: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Status {
    fn set(&self, state: WorkerState) {
        self.state.store(state.code(), Ordering::Relaxed);
    }

    /// Moves to `to` unless the worker is already past `Busy`/`Idle`.
    fn settle(&self, to: WorkerState) {
        let _ = self.state.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
            matches!(WorkerState::from_code(now), WorkerState::Idle | WorkerState::Busy)
                .then_some(to.code())
        });
    }

    fn info(&self) -> WorkerInfo {
        WorkerInfo {
            name: self.name.to_owned(),
            state: WorkerState::from_code(self.state.load(Ordering::Relaxed)),
            runs: self.runs.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            last_error: self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// The node's workers and tracked tasks. Clone freely.
#[derive(Debug, Clone, Default)]
pub(crate) struct Workers {
    list: Arc<Mutex<Vec<Arc<Status>>>>,
    tracked: TaskTracker,
}

impl Workers {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Starts `work` as the worker `name`; it gets the [`WorkerCtx`] it
    /// reports through and is told to stop by.
    pub(crate) fn start<F, Fut>(&self, name: &'static str, work: F) -> Worker
    where
        F: FnOnce(WorkerCtx) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let status = Arc::new(Status {
            name,
            state: AtomicU8::new(WorkerState::Idle.code()),
            runs: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        self.list.lock().unwrap_or_else(|p| p.into_inner()).push(status.clone());
        let (signal, stop) = StopSignal::new();
        let future = work(WorkerCtx { stop, status: status.clone() });
        let watched = status.clone();
        let task = tokio::spawn(async move {
            // A panic is a bug; it is shown as the worker's state rather
            // than lost in a join handle nobody reads until shutdown.
            match AssertUnwindSafe(future).catch_unwind().await {
                Ok(()) => watched.set(WorkerState::Stopped),
                Err(_) => {
                    error!(worker = watched.name, "worker panicked; its service has stopped");
                    watched.set(WorkerState::Panicked);
                }
            }
        });
        Worker { signal, task, status }
    }

    /// Spawns a short task that shutdown waits for ([`Workers::drain`]).
    pub(crate) fn spawn_tracked<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracked.spawn(task)
    }

    /// Waits, at most [`DRAIN`], for every tracked task to end.
    pub(crate) async fn drain(&self) {
        self.tracked.close();
        if tokio::time::timeout(DRAIN, self.tracked.wait()).await.is_err() {
            warn!(left = self.tracked.len(), "tracked tasks did not end in time; abandoned");
        }
    }

    /// Every worker started, in start order.
    pub(crate) fn list(&self) -> Vec<WorkerInfo> {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|s| s.info()).collect()
    }

    /// The workers in Prometheus text: state (one series per state, 1 for
    /// the current one), runs and errors.
    pub(crate) fn render(&self, out: &mut String) {
        let workers = self.list();
        out.push_str("# TYPE epost_worker_state gauge\n");
        for w in &workers {
            for state in WorkerState::ALL {
                let on = u8::from(w.state == state);
                out.push_str(&format!(
                    "epost_worker_state{{worker=\"{}\",state=\"{}\"}} {on}\n",
                    w.name,
                    state.as_str()
                ));
            }
        }
        out.push_str("# TYPE epost_worker_runs_total counter\n");
        for w in &workers {
            out.push_str(&format!("epost_worker_runs_total{{worker=\"{}\"}} {}\n", w.name, w.runs));
        }
        out.push_str("# TYPE epost_worker_errors_total counter\n");
        for w in &workers {
            out.push_str(&format!(
                "epost_worker_errors_total{{worker=\"{}\"}} {}\n",
                w.name, w.errors
            ));
        }
    }
}

/// What a worker holds: its stop signal and its status.
#[derive(Debug, Clone)]
pub(crate) struct WorkerCtx {
    pub(crate) stop: Stop,
    status: Arc<Status>,
}

impl WorkerCtx {
    /// Marks the worker busy until the guard is dropped, and counts a run.
    pub(crate) fn busy(&self) -> Busy {
        self.status.runs.fetch_add(1, Ordering::Relaxed);
        self.status.settle(WorkerState::Busy);
        Busy(self.status.clone())
    }

    /// Records an error the worker met and went on after (the caller logs
    /// it, with what it was doing).
    pub(crate) fn failed(&self, error: &(dyn std::error::Error + 'static)) {
        self.status.errors.fetch_add(1, Ordering::Relaxed);
        *self.status.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Chain(error).to_string());
    }
}

/// A periodic worker's clock: ticks every `period`, the first one now or
/// one period from now; a tick missed while busy is not made up in a burst.
pub(crate) fn every(period: Duration, first_now: bool) -> tokio::time::Interval {
    let start = tokio::time::Instant::now() + if first_now { Duration::ZERO } else { period };
    let mut tick = tokio::time::interval_at(start, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

impl WorkerCtx {
    /// Waits for the next tick, or the stop signal: `false` when stopping.
    pub(crate) async fn tick(&self, tick: &mut tokio::time::Interval) -> bool {
        tokio::select! {
            _ = tick.tick() => !self.stop.stopping(),
            () = self.stop.stopped() => false,
        }
    }
}

/// The worker is busy while this lives.
#[derive(Debug)]
pub(crate) struct Busy(Arc<Status>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.settle(WorkerState::Idle);
    }
}

/// A running worker, for an orderly shutdown.
#[derive(Debug)]
pub(crate) struct Worker {
    signal: StopSignal,
    task: JoinHandle<()>,
    status: Arc<Status>,
}

impl Worker {
    /// Tells the worker to stop, without waiting.
    pub(crate) fn stop(&self) {
        self.status.settle(WorkerState::Stopping);
        self.signal.stop();
    }

    /// Tells the worker to stop and waits, at most `deadline`, for it to
    /// finish what it holds; a worker still running then is abandoned.
    pub(crate) async fn shutdown(self, deadline: Duration) {
        self.stop();
        self.join(deadline).await;
    }

    /// Waits, at most `deadline`, for the worker to end by itself (one
    /// that stops when its input closes).
    pub(crate) async fn join(mut self, deadline: Duration) {
        if tokio::time::timeout(deadline, &mut self.task).await.is_err() {
            warn!(worker = self.status.name, ?deadline, "worker did not stop in time; abandoned");
            self.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(workers: &Workers, name: &str) -> WorkerState {
        workers.list().into_iter().find(|w| w.name == name).map(|w| w.state).unwrap()
    }

    #[tokio::test]
    async fn a_worker_reports_busy_idle_errors_and_stops_when_told() {
        let workers = Workers::new();
        let (go, mut gate) = tokio::sync::mpsc::channel::<()>(1);
        let (done, mut rounds) = tokio::sync::mpsc::channel::<()>(1);
        let worker = workers.start("echo", |ctx| async move {
            loop {
                tokio::select! {
                    Some(()) = gate.recv() => {
                        let _busy = ctx.busy();
                        ctx.failed(&std::io::Error::other("disk on fire"));
                        done.send(()).await.unwrap();
                    }
                    () = ctx.stop.stopped() => break,
                }
            }
        });
        assert_eq!(state(&workers, "echo"), WorkerState::Idle);
        go.send(()).await.unwrap();
        rounds.recv().await.unwrap();
        let info = workers.list().remove(0);
        assert_eq!((info.runs, info.errors), (1, 1));
        assert_eq!(info.last_error.as_deref(), Some("disk on fire"));
        worker.shutdown(DRAIN).await;
        assert_eq!(state(&workers, "echo"), WorkerState::Stopped);
        let mut text = String::new();
        workers.render(&mut text);
        assert!(
            text.contains("epost_worker_state{worker=\"echo\",state=\"stopped\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("epost_worker_errors_total{worker=\"echo\"} 1\n"), "{text}");
    }

    #[tokio::test]
    async fn a_stuck_worker_is_abandoned_at_the_deadline_and_a_panic_is_shown() {
        let workers = Workers::new();
        let stuck = workers.start("stuck", |_ctx| std::future::pending::<()>());
        stuck.shutdown(Duration::from_millis(20)).await;
        assert_eq!(state(&workers, "stuck"), WorkerState::Stopping);
        let panics = workers.start("panics", |_ctx| async { panic!("a bug") });
        panics.join(DRAIN).await;
        assert_eq!(state(&workers, "panics"), WorkerState::Panicked);
    }

    #[tokio::test]
    async fn drain_waits_for_tracked_tasks() {
        let workers = Workers::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let finished = Arc::new(AtomicU64::new(0));
        let seen = finished.clone();
        workers.spawn_tracked(async move {
            let _ = rx.await;
            seen.fetch_add(1, Ordering::Relaxed);
        });
        let drained = tokio::spawn({
            let workers = workers.clone();
            async move { workers.drain().await }
        });
        tx.send(()).unwrap();
        drained.await.unwrap();
        assert_eq!(finished.load(Ordering::Relaxed), 1);
    }
}
