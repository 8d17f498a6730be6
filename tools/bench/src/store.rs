//! Durable puts and gets of 4.7 KB values (NinjaMail's average message),
//! redb against sled, with 1 and 64 concurrent writers.

use std::fmt::Write;
use std::time::Instant;

use anyhow::Result;
use epost_node::keyspaces::BLOCKS;
use epost_store::{Backend, Store};

const VALUE: usize = 4700;

fn value(i: u64) -> Vec<u8> {
    let mut v = vec![0u8; VALUE];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v
}

struct Figures {
    puts_per_sec: f64,
    commits: u64,
    puts: u64,
}

async fn puts(store: &Store, writers: u64, total: u64) -> Result<Figures> {
    let before = store.metrics();
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut i = w;
                while i < total {
                    store.put(&BLOCKS, i.to_be_bytes().to_vec(), value(i), u64::MAX).await?;
                    i += writers;
                }
                Ok::<_, epost_store::StoreError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = store.metrics();
    Ok(Figures {
        puts_per_sec: total as f64 / elapsed,
        commits: after.commits - before.commits,
        puts: total,
    })
}

pub(crate) fn run(out: &mut String) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let _ = writeln!(out, "## Local store: durable puts and gets of 4.7 KB values\n");
    let _ = writeln!(
        out,
        "Every put returns only after fsync. Group commit lets concurrent writers share one.\n"
    );
    let _ = writeln!(
        out,
        "| engine | writers | durable puts/s | puts per fsync | gets/s (1 reader) |\n|---|---|---|---|---|"
    );
    for (name, backend) in [("redb", Backend::Redb), ("sled", Backend::Sled)] {
        for (writers, total) in [(1u64, 300u64), (64, 20_000)] {
            let dir = tempfile::tempdir_in(std::env::current_dir()?)?;
            let store = Store::open(dir.path(), backend, &[BLOCKS])?;
            let figures = runtime.block_on(puts(&store, writers, total))?;
            let start = Instant::now();
            let mut found = 0u64;
            let reads = 20_000u64;
            for i in 0..reads {
                let k = (i * 7919) % total;
                found += u64::from(store.get(&BLOCKS, &k.to_be_bytes())?.is_some());
            }
            anyhow::ensure!(found == reads, "reads missed blocks");
            let gets = reads as f64 / start.elapsed().as_secs_f64();
            let _ = writeln!(
                out,
                "| {name} | {writers} | {:.0} | {:.1} | {:.0} |",
                figures.puts_per_sec,
                figures.puts as f64 / figures.commits.max(1) as f64,
                gets
            );
            store.close();
        }
    }
    let _ = writeln!(
        out,
        "\nTarget: 5,000 durable puts/s with group commit (NinjaMail's per-node DHT: 250 puts/s).\n"
    );
    Ok(())
}
