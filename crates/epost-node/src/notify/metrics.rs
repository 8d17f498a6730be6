//! Counters of the notification holder, read by `/metrics` and tests.
//! Plain atomics: the holder task adds, anyone reads.

use std::sync::atomic::{AtomicU64, Ordering};

/// Everything the holder counts. Gauges are set by the holder task after
/// every change; counters only grow.
#[derive(Debug, Default)]
pub struct NotifyMetrics {
    /// Notifications kept (new, durable).
    pub kept: AtomicU64,
    /// Notifications delivered again while held or after their receipt.
    pub duplicates: AtomicU64,
    /// Notifications whose lease had already ended on arrival.
    pub expired_on_arrival: AtomicU64,
    /// Notifications (and receipts, pulls) that did not decode or broke a limit.
    pub malformed: AtomicU64,
    /// Requests refused because their peer sent too fast.
    pub rate_limited: AtomicU64,
    /// Deliveries refused because an inbox or the holder was full.
    pub full: AtomicU64,
    /// Receipts and pulls not signed by the inbox's recipient.
    pub unauthorized: AtomicU64,
    /// Receipts accepted.
    pub receipts: AtomicU64,
    /// Notifications released by a receipt.
    pub released: AtomicU64,
    /// Pulls answered.
    pub pulls: AtomicU64,
    /// Notifications handed out in answer to pulls.
    pub served: AtomicU64,
    /// Notifications and receipted ids removed because their lease ended.
    pub gc_removed: AtomicU64,
    /// Requests that failed on this node (disk errors).
    pub internal_errors: AtomicU64,
    /// Gauge: notifications held now.
    pub pending: AtomicU64,
    /// Gauge: receipted ids remembered now.
    pub receipted: AtomicU64,
}

impl NotifyMetrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn set(gauge: &AtomicU64, value: usize) {
        gauge.store(value as u64, Ordering::Relaxed);
    }

    /// Prometheus text of every counter and gauge.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let counters: [(&str, &AtomicU64); 13] = [
            ("epost_notify_kept_total", &self.kept),
            ("epost_notify_duplicates_total", &self.duplicates),
            ("epost_notify_expired_on_arrival_total", &self.expired_on_arrival),
            ("epost_notify_malformed_total", &self.malformed),
            ("epost_notify_rate_limited_total", &self.rate_limited),
            ("epost_notify_full_total", &self.full),
            ("epost_notify_unauthorized_total", &self.unauthorized),
            ("epost_notify_receipts_total", &self.receipts),
            ("epost_notify_released_total", &self.released),
            ("epost_notify_pulls_total", &self.pulls),
            ("epost_notify_served_total", &self.served),
            ("epost_notify_gc_removed_total", &self.gc_removed),
            ("epost_notify_internal_errors_total", &self.internal_errors),
        ];
        for (name, counter) in counters {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {}", Self::get(counter));
        }
        let gauges: [(&str, &AtomicU64); 2] =
            [("epost_notify_pending", &self.pending), ("epost_notify_receipted", &self.receipted)];
        for (name, gauge) in gauges {
            let _ = writeln!(out, "# TYPE {name} gauge\n{name} {}", Self::get(gauge));
        }
    }
}
