//! What a system under test costs the machine, read from `/proc` and the
//! file system: CPU time of a whole process tree (children that exited
//! included, through their parents' `cutime`), memory sampled while it
//! runs, and bytes allocated on disk under its directories.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Clock ticks per second of `/proc/*/stat` times on Linux.
const TICKS: f64 = 100.0;
/// How often memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// pid -> parent pid, for every process.
fn parents() -> HashMap<u32, u32> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1)?.parse().ok()) {
            out.insert(pid, ppid);
        }
    }
    out
}

/// The fields of `/proc/PID/stat` after the command name (state first).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// `roots` and all their descendants alive now.
pub(crate) fn tree(roots: &[u32]) -> Vec<u32> {
    let parents = parents();
    let mut out: Vec<u32> = roots.iter().copied().filter(|p| parents.contains_key(p)).collect();
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(parents.iter().filter(|(_, pp)| **pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// CPU seconds used by the tree so far: each live process's own time plus
/// what its reaped children used.
pub(crate) fn cpu_seconds(roots: &[u32]) -> f64 {
    tree(roots)
        .into_iter()
        .filter_map(stat_fields)
        .map(|f| {
            // utime, stime, cutime, cstime are fields 14-17 of stat; here
            // (after the name, state first) they are at 11-14.
            (11..15).filter_map(|i| f.get(i)?.parse::<f64>().ok()).sum::<f64>() / TICKS
        })
        .sum()
}

/// `(RSS, PSS)` of the tree in bytes: resident set sizes summed (shared
/// pages counted in each process) and proportional set sizes (shared
/// pages split among their users, so the sum is the tree's real share).
fn memory(roots: &[u32]) -> (u64, u64) {
    let mut rss = 0;
    let mut pss = 0;
    for pid in tree(roots) {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        for line in text.lines() {
            let kb = |l: &str| -> u64 {
                l.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0) * 1024
            };
            if line.starts_with("Rss:") {
                rss += kb(line);
            } else if line.starts_with("Pss:") {
                pss += kb(line);
            }
        }
    }
    (rss, pss)
}

/// Samples a tree's memory in a thread until stopped; keeps the peaks.
pub(crate) struct MemorySampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u64, u64)>>,
}

impl MemorySampler {
    pub(crate) fn start(roots: Vec<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = (0, 0);
            while !flag.load(Ordering::Relaxed) {
                let (rss, pss) = memory(&roots);
                peak = (peak.0.max(rss), peak.1.max(pss));
                std::thread::sleep(SAMPLE_EVERY);
            }
            peak
        });
        Self { stop, thread: Some(thread) }
    }

    /// Peak summed RSS and PSS, in bytes.
    pub(crate) fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or((0, 0))
    }
}

/// Bytes allocated on disk (blocks, not apparent sizes) under `path`,
/// each hard-linked file counted once.
pub(crate) fn disk_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && (meta.nlink() == 1 || seen.insert((meta.dev(), meta.ino())))
            {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_its_own_tree_and_uses_cpu_and_memory() {
        let me = std::process::id();
        assert_eq!(tree(&[me])[0], me);
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu_seconds(&[me]) > 0.0);
        let (rss, pss) = memory(&[me]);
        assert!(rss > 0 && pss > 0 && pss <= rss);
    }

    #[test]
    fn disk_bytes_counts_allocated_blocks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![7u8; 100_000]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), vec![7u8; 10_000]).unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("sub/a2")).unwrap();
        let bytes = disk_bytes(dir.path());
        assert!((110_000..140_000).contains(&bytes), "{bytes}");
    }
}
