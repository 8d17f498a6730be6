//! Measuring operations on an in-process network: this process's CPU time
//! (every node's, since all run here), latency percentiles, and a driver
//! that runs operations at a fixed concurrency.

use std::time::{Duration, Instant};

use anyhow::Result;
use futures::StreamExt;

/// CPU seconds (user + system) this process has used so far.
pub(crate) fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 per second on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            Some((rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// How long an idle network's own CPU use is measured.
const IDLE: Duration = Duration::from_secs(2);

/// CPU an idle in-process network uses per second with nothing asked of
/// it: the floor under every CPU-per-operation figure.
pub(crate) async fn idle_cpu_ms_per_sec() -> f64 {
    let cpu = cpu_seconds();
    let start = Instant::now();
    tokio::time::sleep(IDLE).await;
    (cpu_seconds() - cpu) * 1000.0 / start.elapsed().as_secs_f64()
}

/// `len` bytes that differ for every `i` (so convergent encryption never
/// deduplicates them).
pub(crate) fn payload(i: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    for (j, chunk) in v.chunks_mut(8).enumerate() {
        let x = (i << 20) ^ j as u64;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    v
}

/// The `p` quantile (0 to 1) of `sorted`, in milliseconds.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at].as_secs_f64() * 1000.0
}

/// What a batch of operations gave.
pub(crate) struct Run {
    pub(crate) ops_per_sec: f64,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    pub(crate) cpu_ms_per_op: f64,
}

impl Run {
    /// Figures of `latencies` (one per operation) taken over `elapsed`,
    /// with the process having used `cpu_before` CPU seconds at the start.
    pub(crate) fn from_latencies(
        mut latencies: Vec<Duration>,
        elapsed: Duration,
        cpu_before: f64,
    ) -> Self {
        let ops = latencies.len().max(1) as f64;
        latencies.sort();
        Self {
            ops_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: percentile(&latencies, 0.5),
            p99: percentile(&latencies, 0.99),
            max: percentile(&latencies, 1.0),
            cpu_ms_per_op: (cpu_seconds() - cpu_before) * 1000.0 / ops,
        }
    }
}

/// Runs `op(0..ops)` with at most `concurrency` in flight.
pub(crate) async fn drive<F, Fut>(ops: u64, concurrency: usize, op: F) -> Result<Run>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let cpu = cpu_seconds();
    let start = Instant::now();
    let latencies: Vec<Duration> = futures::stream::iter(0..ops)
        .map(|i| {
            let fut = op(i);
            async move {
                let t = Instant::now();
                fut.await.map(|()| t.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    Ok(Run::from_latencies(latencies, start.elapsed(), cpu))
}
