//! One task per key, started on first use: a mailbox per user, a writer
//! per log, a store queue per peer. Each task owns its key's state; callers
//! reach it through a handle (usually a channel's sender). A task that
//! ended (it went quiet, or failed) is started again on the next use, and
//! closing refuses new tasks and waits for the running ones.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A handle that knows whether its task still runs.
pub(crate) trait Alive: Clone {
    fn is_alive(&self) -> bool;
}

impl<T> Alive for mpsc::Sender<T> {
    fn is_alive(&self) -> bool {
        !self.is_closed()
    }
}

/// The set is closed: the service is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shutting down")]
pub(crate) struct Closed;

/// A key's task: its handle, and the task to wait for on close.
type Running<H> = (H, JoinHandle<()>);

/// The running tasks, by key.
pub(crate) struct PerKey<K, H> {
    /// `None` once closed.
    running: Mutex<Option<HashMap<K, Running<H>>>>,
}

impl<K: Hash + Eq + Clone, H: Alive> PerKey<K, H> {
    pub(crate) fn new() -> Self {
        Self { running: Mutex::new(Some(HashMap::new())) }
    }

    /// The handle of `key`'s task, started with `start` if none runs.
    /// (`start` runs under the set's lock: it must only spawn.)
    pub(crate) fn get_or_start(
        &self,
        key: &K,
        start: impl FnOnce() -> Running<H>,
    ) -> Result<H, Closed> {
        let mut guard = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let running = guard.as_mut().ok_or(Closed)?;
        if let Some((handle, _)) = running.get(key).filter(|(h, _)| h.is_alive()) {
            return Ok(handle.clone());
        }
        // Forget tasks that ended, so keys used once do not pile up.
        running.retain(|_, (handle, _)| handle.is_alive());
        let (handle, task) = start();
        running.insert(key.clone(), (handle.clone(), task));
        Ok(handle)
    }

    /// Refuses new tasks, then waits for the running ones to end (the
    /// caller has told them to stop, or dropping their handles does).
    pub(crate) async fn close(&self) {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner()).take();
        for (_, (handle, task)) in running.into_iter().flatten() {
            drop(handle);
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> (mpsc::Sender<u32>, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<u32>(4);
        let task = tokio::spawn(async move {
            // Ends on 0, or when every sender is gone.
            while let Some(n) = rx.recv().await {
                if n == 0 {
                    break;
                }
            }
        });
        (tx, task)
    }

    #[tokio::test]
    async fn one_task_per_key_restarted_after_it_ends_and_none_after_close() {
        let set: PerKey<&str, mpsc::Sender<u32>> = PerKey::new();
        let mut starts = 0;
        let a = set
            .get_or_start(&"a", || {
                starts += 1;
                echo()
            })
            .unwrap();
        let again = set
            .get_or_start(&"a", || {
                starts += 1;
                echo()
            })
            .unwrap();
        assert!(a.same_channel(&again), "a running task is reused");
        set.get_or_start(&"b", || {
            starts += 1;
            echo()
        })
        .unwrap();
        assert_eq!(starts, 2);
        a.send(0).await.unwrap();
        a.closed().await;
        let fresh = set
            .get_or_start(&"a", || {
                starts += 1;
                echo()
            })
            .unwrap();
        assert!(!fresh.same_channel(&a), "an ended task is started again");
        assert_eq!(starts, 3);
        drop((a, again, fresh));
        set.close().await;
        assert_eq!(set.get_or_start(&"c", echo).err(), Some(Closed));
    }
}
