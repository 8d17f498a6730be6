//! What a big mailbox and a long life cost a node at start.
//!
//! - **Mailbox reopen**: five `epost node run` processes; alice's INBOX
//!   holds N messages (imported as a user would, `epost import` of an
//!   mbox); her node is restarted and a mail client logs in and selects
//!   INBOX. Reported: the time from starting the node to its readiness
//!   line, and to the SELECT answer; the node's peak RSS (VmHWM) by then;
//!   for N = 1,000, 10,000 and 100,000 (`--quick`: the first two).
//! - **Start with expired records**: one node whose store holds 100,000
//!   Kademlia records that expired, against one that holds none: the time
//!   to readiness, median of five starts each, side by side.
//!
//! Usage: `cargo run --release -p epost-bench -- mailbox [--quick]`

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use epost_node::keyspaces::{ALL, KAD_RECORDS};
use epost_store::{Backend, Batch, Store};
use epost_types::time::Timestamp;

use crate::compare::epost::{self as net, EpostNet};
use crate::mail_clients::Imap;

const PASSWORD: &str = "mailbox-bench";
const USER: &str = "alice@example.test";

pub(crate) fn run(out: &mut String, args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let sizes: &[u32] = if quick { &[1_000, 10_000] } else { &[1_000, 10_000, 100_000] };
    let bin = std::fs::canonicalize("target/release/epost")
        .context("build the node first: cargo build --release -p epost-cli")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let _ = writeln!(out, "## A big mailbox, reopened\n");
    let _ = writeln!(
        out,
        "Five nodes on loopback; alice's INBOX holds N messages of about 1 KB, imported with \
         `epost import`; her node is restarted and a client logs in and selects INBOX.\n"
    );
    let _ = writeln!(
        out,
        "| messages | import (msgs/s) | start to ready | start to SELECT answer | ready to SELECT | peak RSS |\n|---|---|---|---|---|---|"
    );
    for n in sizes {
        let row = reopen(&bin, *n, &runtime)?;
        let _ = writeln!(
            out,
            "| {n} | {:.0} | {:.2} s | {:.2} s | {:.3} s | {:.0} MiB |",
            row.import_rate,
            row.ready.as_secs_f64(),
            row.select.as_secs_f64(),
            (row.select - row.ready).as_secs_f64(),
            row.peak_rss as f64 / (1024.0 * 1024.0)
        );
    }
    let (empty, full) = expired_start(&bin)?;
    let _ = writeln!(out, "\n## Start with 100,000 expired records\n");
    let _ = writeln!(
        out,
        "| store | start to ready (median of 5) |\n|---|---|\n| no records | {:.3} s |\n| 100,000 expired records | {:.3} s |\n\nratio (expired ÷ none): {:.2}\n",
        empty.as_secs_f64(),
        full.as_secs_f64(),
        full.as_secs_f64() / empty.as_secs_f64()
    );
    Ok(())
}

struct Reopened {
    import_rate: f64,
    ready: Duration,
    select: Duration,
    peak_rss: u64,
}

fn reopen(bin: &Path, n: u32, runtime: &tokio::runtime::Runtime) -> Result<Reopened> {
    let root = tempfile::Builder::new().prefix("epost-mailbox-").tempdir_in(".")?;
    let mut network = EpostNet::start(bin, root.path(), 5, &[USER.to_owned()], PASSWORD)?;
    let mbox = root.path().join("inbox.mbox");
    write_mbox(&mbox, n)?;
    let started = Instant::now();
    let mbox_path = mbox.to_str().context("path")?;
    net::cli(bin, network.dir(0), &["import", "--user", USER, "mbox", mbox_path], None)?;
    let import_rate = f64::from(n) / started.elapsed().as_secs_f64();
    network.stop_node(0)?;
    let started = Instant::now();
    let pid = network.start_again(0)?;
    let ready = started.elapsed();
    let imap = crate::compare::System::imap(&network);
    let session = runtime.block_on(Imap::login(imap, USER, PASSWORD))?;
    let select = started.elapsed();
    anyhow::ensure!(session.exists == n, "INBOX shows {} of {n} messages", session.exists);
    let peak_rss = high_water_mark(pid)?;
    runtime.block_on(session.logout());
    Ok(Reopened { import_rate, ready, select, peak_rss })
}

/// `n` messages of about 1 KB in an mbox.
fn write_mbox(path: &Path, n: u32) -> Result<()> {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let body = "All work and no play makes Jack a dull boy.\n".repeat(20);
    for i in 0..n {
        write!(
            file,
            "From sender@example.org Mon Jan  1 00:00:00 2024\nFrom: sender@example.org\nTo: {USER}\nSubject: message {i}\nMessage-ID: <{i}@bench.example.org>\n\n{body}\n"
        )?;
    }
    file.flush()?;
    Ok(())
}

/// Peak resident memory of process `pid` so far, bytes.
fn high_water_mark(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .context("no VmHWM")?;
    Ok(kib * 1024)
}

/// Median time to readiness of a lone node with an empty store, and of
/// one whose store holds 100,000 expired records.
fn expired_start(bin: &Path) -> Result<(Duration, Duration)> {
    let root = tempfile::Builder::new().prefix("epost-expired-").tempdir_in(".")?;
    let (empty, full) = (root.path().join("empty"), root.path().join("full"));
    for dir in [&empty, &full] {
        net::cli(bin, dir, &["init", "--listen", "/ip4/127.0.0.1/tcp/0"], None)?;
    }
    {
        let store = Store::open(&full.join("store"), Backend::Redb, ALL)?;
        let now = Timestamp::now().as_millis();
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        runtime.block_on(async {
            for chunk in 0..100u32 {
                let mut batch = Batch::new();
                for i in 0..1000u32 {
                    let mut key = vec![0x02];
                    key.extend_from_slice(&[0; 28]);
                    key.extend_from_slice(&(chunk * 1000 + i).to_be_bytes());
                    batch.put(&KAD_RECORDS, key, vec![0; 600], now - 1000);
                }
                store.commit(batch).await?;
            }
            anyhow::Ok(())
        })?;
        store.close();
    }
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..5 {
        for (slot, dir) in [&empty, &full].into_iter().enumerate() {
            let started = Instant::now();
            let (mut child, _) = net::start_node(bin, dir)?;
            times[slot].push(started.elapsed());
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            child.wait()?;
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    Ok((median(&mut times[0]), median(&mut times[1])))
}
