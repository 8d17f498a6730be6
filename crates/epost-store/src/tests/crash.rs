//! A child process writing through the store is SIGKILLed at random
//! moments; after each kill the store reopens with every acknowledged
//! write intact and nothing corrupt. Another child runs out of disk
//! (a file-size limit) and must get an error, not a panic, and lose
//! nothing it had acknowledged.
//!
//! The child is this test binary itself, re-run on one ignored test with
//! the `EPOST_STORE_CHILD` variable naming what to do.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{BLOCKS, backends, content, key, open};
use crate::Backend;

const CHILD_TEST: &str = "tests::crash::child";
const ROUNDS: u64 = 20;

/// Small, seedable, good enough to pick kill moments.
struct XorShift(u64);

impl XorShift {
    fn seeded() -> Self {
        let seed = std::env::var("EPOST_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        println!("crash test seed {seed} (set EPOST_CRASH_SEED to replay)");
        Self(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Redb => "redb",
        Backend::Sled => "sled",
    }
}

fn child_command(mode: &str, dir: &Path, backend: Backend, start: u64) -> Command {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", CHILD_TEST, "--nocapture", "--include-ignored", "--test-threads", "1"])
        .env("EPOST_STORE_CHILD", mode)
        .env("EPOST_STORE_DIR", dir)
        .env("EPOST_STORE_BACKEND", backend_name(backend))
        .env("EPOST_STORE_START", start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

/// Reads `acked <i> ok` lines; a line cut short by the kill is ignored.
fn parse_ack(line: &str) -> Option<u64> {
    line.strip_prefix("acked ")?.strip_suffix(" ok")?.parse().ok()
}

/// Every acknowledged block is there and intact; every present block is intact.
fn verify(dir: &Path, backend: Backend, acked: &BTreeSet<u64>) -> usize {
    let store = open(dir, backend);
    for i in acked {
        let block = store.get(&BLOCKS, &key(*i)).unwrap_or_else(|e| panic!("read {i}: {e}"));
        assert_eq!(
            block.map(|b| b.value),
            Some(content(*i)),
            "{backend:?}: acknowledged block {i} lost or damaged"
        );
    }
    let mut present = 0;
    let mut from = Vec::new();
    loop {
        let page = store.scan(&BLOCKS, &from, 512).expect("scan");
        let Some((last, _)) = page.last() else { break };
        for (k, _) in &page {
            let i = u64::from_be_bytes(k.as_slice().try_into().expect("8-byte key"));
            let data = store.get(&BLOCKS, k).expect("read").expect("listed").value;
            assert_eq!(data, content(i), "{backend:?}: block {i} is present but corrupt");
            present += 1;
        }
        from = last.clone();
        from.push(0);
    }
    present
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let mut rng = XorShift::seeded();
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let mut acked = BTreeSet::new();
        let mut next = 0u64;
        for round in 0..ROUNDS {
            let mut child =
                child_command("write", dir.path(), backend, next).spawn().expect("spawn child");
            let stdout = child.stdout.take().expect("stdout");
            let kill_after = 1 + rng.below(150);
            let mut lines = BufReader::new(stdout).lines();
            let mut this_round = 0;
            for line in lines.by_ref() {
                if let Some(i) = line.ok().as_deref().and_then(parse_ack) {
                    acked.insert(i);
                    this_round += 1;
                    if this_round >= kill_after {
                        break;
                    }
                }
            }
            child.kill().expect("SIGKILL");
            // Acks printed before the kill still count.
            acked.extend(lines.map_while(Result::ok).filter_map(|l| parse_ack(&l)));
            let status = child.wait().expect("wait");
            assert!(!status.success(), "round {round}: the child should have died by the kill");
            let present = verify(dir.path(), backend, &acked);
            assert!(present >= acked.len());
            next = acked.last().map_or(next, |l| l + 1).max(next) + 10_000;
        }
        assert!(
            acked.len() as u64 >= ROUNDS,
            "{backend:?}: too few writes acknowledged to mean anything"
        );
    }
}

#[test]
fn a_full_disk_is_an_error_and_loses_nothing() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().expect("test binary");
        // SIGXFSZ ignored: writes past the limit fail with EFBIG, as on a full disk.
        let script = format!(
            "trap '' XFSZ; ulimit -f 4096; exec \"$0\" --exact {CHILD_TEST} --nocapture --include-ignored --test-threads 1"
        );
        let output = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg(exe)
            .env("EPOST_STORE_CHILD", "fill")
            .env("EPOST_STORE_DIR", dir.path())
            .env("EPOST_STORE_BACKEND", backend_name(backend))
            .env("EPOST_STORE_START", "0")
            .stderr(Stdio::null())
            .output()
            .expect("run child");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{backend:?}: the child crashed instead of getting an error:\n{text}"
        );
        let failure = text
            .lines()
            .find(|l| l.starts_with("failed"))
            .unwrap_or_else(|| panic!("{backend:?}: no failure seen:\n{text}"));
        assert!(
            failure.contains("nospace=true"),
            "{backend:?}: not reported as no space: {failure}"
        );
        let acked: BTreeSet<u64> = text.lines().filter_map(parse_ack).collect();
        assert!(!acked.is_empty(), "{backend:?}: nothing fitted before the limit");
        verify(dir.path(), backend, &acked);
    }
}

/// The child: does nothing unless run by the tests above.
#[test]
#[ignore = "run as a child process by the crash tests"]
fn child() {
    let Ok(mode) = std::env::var("EPOST_STORE_CHILD") else { return };
    let dir = std::env::var("EPOST_STORE_DIR").expect("dir");
    let backend = match std::env::var("EPOST_STORE_BACKEND").as_deref() {
        Ok("sled") => Backend::Sled,
        _ => Backend::Redb,
    };
    let start: u64 =
        std::env::var("EPOST_STORE_START").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let store = match crate::Store::open(Path::new(&dir), backend, &[BLOCKS]) {
        Ok(store) => store,
        Err(e) => {
            println!("failed nospace={}: {e}", matches!(e, crate::OpenError::NoSpace { .. }));
            return;
        }
    };
    let next = Arc::new(AtomicU64::new(start));
    let writers = if mode == "fill" { 1 } else { 8 };
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let store = store.clone();
            let next = next.clone();
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i > start + 1_000_000 {
                        return;
                    }
                    match store.put_blocking(&BLOCKS, key(i), content(i), u64::MAX) {
                        Ok(()) => {
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(out, "acked {i} ok");
                            let _ = out.flush();
                        }
                        Err(e) => {
                            println!("failed nospace={}: {e}", e.is_no_space());
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}
