//! The signal that tells background work to stop: long passes check it
//! between steps, so a stopping node does not keep working against peers
//! that are leaving.

use tokio::sync::watch;

/// Sends the stop signal (on [`StopSignal::stop`], or when dropped).
#[derive(Debug)]
pub(crate) struct StopSignal(watch::Sender<bool>);

/// Receives the stop signal; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Stop(watch::Receiver<bool>);

impl StopSignal {
    pub(crate) fn new() -> (Self, Stop) {
        let (tx, rx) = watch::channel(false);
        (Self(tx), Stop(rx))
    }

    pub(crate) fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl Stop {
    /// Whether stopping was asked for.
    pub(crate) fn stopping(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Waits until stopping is asked for (or the signal is gone).
    pub(crate) async fn stopped(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stops_when_asked_or_when_the_signal_is_dropped() {
        let (signal, stop) = StopSignal::new();
        assert!(!stop.stopping());
        signal.stop();
        assert!(stop.stopping());
        stop.stopped().await;
        let (signal, stop) = StopSignal::new();
        drop(signal);
        assert!(stop.stopping());
        stop.stopped().await;
    }
}
