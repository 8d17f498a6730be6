//! Peers remembered across restarts: `DIR/peers.json` lists the overlay
//! addresses this node knew (refreshed every minute and at shutdown); the
//! next start dials them after the configured bootstrap peers. So a node
//! with no bootstrap peer of its own (the first node of a network), or
//! whose bootstrap peer is gone, finds its network again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use epost_dht::{DhtClient, Multiaddr};
use tracing::{debug, warn};

use crate::chain::Chain;
use crate::fsutil::write_atomic;
use crate::worker::{self, Worker, Workers};

/// Addresses kept at most.
const MAX_REMEMBERED: usize = 64;
const REFRESH: Duration = Duration::from_secs(60);
const DEBOUNCE: Duration = Duration::from_secs(2);

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("peers.json")
}

/// The addresses saved by the last run; none if the file is missing or
/// unreadable (it is a hint, never a reason not to start).
pub(crate) fn load(data_dir: &Path) -> Vec<Multiaddr> {
    let Ok(bytes) = std::fs::read(path(data_dir)) else { return Vec::new() };
    let texts: Vec<String> = match serde_json::from_slice(&bytes) {
        Ok(texts) => texts,
        Err(e) => {
            warn!(error = %Chain(&e), "peers.json is damaged; starting without remembered peers");
            return Vec::new();
        }
    };
    texts.iter().filter_map(|t| t.parse().ok()).take(MAX_REMEMBERED).collect()
}

async fn save(data_dir: &Path, dht: &DhtClient) {
    let mut addrs: Vec<String> =
        dht.known_addresses().await.iter().map(ToString::to_string).collect();
    if addrs.is_empty() {
        // Alone now: keep what was remembered rather than forget it.
        return;
    }
    addrs.truncate(MAX_REMEMBERED);
    let json = serde_json::to_vec_pretty(&addrs).unwrap_or_default();
    if let Err(e) = write_atomic(&path(data_dir), &json, false) {
        debug!(error = %Chain(&e), "cannot save peers.json");
    }
}

/// Saves the known peers soon after a new peer connects (at most every
/// [`DEBOUNCE`]), every minute, and at shutdown.
pub(crate) struct PeerMemory(Worker);

impl PeerMemory {
    pub(crate) fn start(data_dir: PathBuf, dht: DhtClient, workers: &Workers) -> Self {
        Self(workers.start("peers", |ctx| async move {
            let mut events = dht.subscribe();
            let mut tick = worker::every(REFRESH, false);
            let mut due: Option<tokio::time::Instant> = None;
            loop {
                let debounce = async {
                    match due {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tick.tick() => save(&data_dir, &dht).await,
                    () = debounce => {
                        due = None;
                        save(&data_dir, &dht).await;
                    }
                    event = events.recv() => match event {
                        Ok(epost_dht::DhtEvent::PeerConnected(_))
                        | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            due.get_or_insert_with(|| tokio::time::Instant::now() + DEBOUNCE);
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                    () = ctx.stop.stopped() => break,
                }
            }
            save(&data_dir, &dht).await;
        }))
    }

    /// Saves once more and stops (call while the overlay still runs).
    pub(crate) async fn shutdown(self) {
        self.0.shutdown(worker::DRAIN).await;
    }
}
