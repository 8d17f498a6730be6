//! Counters of the storage service, read by `/metrics` and `status`.
//! Plain atomics: many tasks add, one reader renders.

use std::sync::atomic::{AtomicU64, Ordering};

/// A latency histogram with fixed buckets (seconds), Prometheus-style.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
    total: AtomicU64,
}

/// Upper bounds of the buckets, in seconds.
pub const BUCKETS: [f64; 12] =
    [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0, 30.0];

impl Histogram {
    pub fn observe(&self, elapsed: std::time::Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text for this histogram under `name`.
    pub fn render(&self, name: &str, out: &mut String) {
        use std::fmt::Write;
        let mut cumulative = 0;
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let total = self.total.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ =
            writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {total}");
    }
}

/// Everything the storage service counts.
#[derive(Debug, Default)]
pub struct Metrics {
    pub objects_put: AtomicU64,
    pub objects_got: AtomicU64,
    pub fragments_stored: AtomicU64,
    pub fragments_served: AtomicU64,
    pub fragments_rejected: AtomicU64,
    pub fragments_corrupt: AtomicU64,
    pub fragments_repaired: AtomicU64,
    pub fragments_handed_over: AtomicU64,
    pub bad_peer_responses: AtomicU64,
    pub repair_passes: AtomicU64,
    pub gc_removed: AtomicU64,
    /// Fragments held here whose lease an owner's `Renew` extended.
    pub fragments_renewed: AtomicU64,
    /// Requests refused because the asking peer's quota was used.
    pub refused_over_quota: AtomicU64,
    /// Requests refused because the node's capacity (or disk) was full.
    pub refused_no_space: AtomicU64,
    pub put_latency: Histogram,
    pub get_latency: Histogram,
}

impl Metrics {
    /// Fragments peers offered that failed their checks and were refused.
    pub fn rejected_count(&self) -> u64 {
        self.fragments_rejected.load(Ordering::Relaxed)
    }

    /// Fragments this node rebuilt from others and stored.
    pub fn repaired_count(&self) -> u64 {
        self.fragments_repaired.load(Ordering::Relaxed)
    }

    /// Corrupt fragments found (on this node's disk or from peers).
    pub fn corrupt_count(&self) -> u64 {
        self.fragments_corrupt.load(Ordering::Relaxed)
    }

    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Prometheus text of every counter and histogram.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let counters: [(&str, &AtomicU64); 12] = [
            ("epost_objects_put_total", &self.objects_put),
            ("epost_objects_got_total", &self.objects_got),
            ("epost_fragments_stored_total", &self.fragments_stored),
            ("epost_fragments_served_total", &self.fragments_served),
            ("epost_fragments_rejected_total", &self.fragments_rejected),
            ("epost_fragments_corrupt_total", &self.fragments_corrupt),
            ("epost_fragments_repaired_total", &self.fragments_repaired),
            ("epost_fragments_handed_over_total", &self.fragments_handed_over),
            ("epost_bad_peer_responses_total", &self.bad_peer_responses),
            ("epost_repair_passes_total", &self.repair_passes),
            ("epost_gc_removed_total", &self.gc_removed),
            ("epost_fragments_renewed_total", &self.fragments_renewed),
        ];
        for (name, counter) in counters {
            let _ =
                writeln!(out, "# TYPE {name} counter\n{name} {}", counter.load(Ordering::Relaxed));
        }
        let _ = writeln!(out, "# TYPE epost_fragment_refusals_total counter");
        for (reason, counter) in
            [("over_quota", &self.refused_over_quota), ("no_space", &self.refused_no_space)]
        {
            let _ = writeln!(
                out,
                "epost_fragment_refusals_total{{reason=\"{reason}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        self.put_latency.render("epost_put_seconds", out);
        self.get_latency.render("epost_get_seconds", out);
    }
}
