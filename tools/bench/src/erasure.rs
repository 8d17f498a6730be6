//! Reed-Solomon 4+4 over 1 MiB: `reed-solomon-simd` (our choice) against
//! `reed-solomon-erasure` (the card's), encode and worst-case decode (all
//! four data shards lost), so the decision stays on record.

use std::fmt::Write;
use std::time::Duration;

use anyhow::{Result, anyhow};
use reed_solomon_erasure::galois_8::ReedSolomon;

use crate::report::{MIB, rate};

const K: usize = 4;
const M: usize = 4;

pub(crate) fn run(out: &mut String) -> Result<()> {
    let shard = 256 * 1024;
    let originals: Vec<Vec<u8>> =
        (0..K).map(|s| (0..shard).map(|i| ((i * 31 + s * 7) % 251) as u8).collect()).collect();
    let min = Duration::from_secs(2);

    let simd_encode = rate(min, || {
        std::hint::black_box(reed_solomon_simd::encode(K, M, &originals).ok());
    });
    let recovery = reed_solomon_simd::encode(K, M, &originals).map_err(|e| anyhow!("{e}"))?;
    let simd_decode = rate(min, || {
        let parity = recovery.iter().enumerate();
        std::hint::black_box(
            reed_solomon_simd::decode(K, M, std::iter::empty::<(usize, &[u8])>(), parity).ok(),
        );
    });

    let rs = ReedSolomon::new(K, M).map_err(|e| anyhow!("{e:?}"))?;
    let mut shards: Vec<Vec<u8>> =
        originals.iter().cloned().chain((0..M).map(|_| vec![0; shard])).collect();
    let erasure_encode = rate(min, || {
        let _ = rs.encode(&mut shards);
    });
    rs.encode(&mut shards).map_err(|e| anyhow!("{e:?}"))?;
    let erasure_decode = rate(min, || {
        let mut lost: Vec<Option<Vec<u8>>> =
            shards.iter().enumerate().map(|(i, s)| (i >= K).then(|| s.clone())).collect();
        let _ = rs.reconstruct_data(&mut lost);
    });

    let mb = |per_sec: f64| per_sec * (K * shard) as f64 / MIB;
    let _ = writeln!(out, "## Erasure coding 4+4, 1 MiB objects, one core\n");
    let _ =
        writeln!(out, "| crate | encode MB/s | decode (4 data shards lost) MB/s |\n|---|---|---|");
    let _ =
        writeln!(out, "| reed-solomon-simd | {:.0} | {:.0} |", mb(simd_encode), mb(simd_decode));
    let _ = writeln!(
        out,
        "| reed-solomon-erasure | {:.0} | {:.0} |",
        mb(erasure_encode),
        mb(erasure_decode)
    );
    let _ = writeln!(
        out,
        "\nreed-solomon-simd is {:.1}x faster to encode and {:.1}x to decode (the erasure decode figure includes cloning the surviving shards, a few hundred MB/s of memcpy).\n",
        simd_encode / erasure_encode,
        simd_decode / erasure_decode
    );
    Ok(())
}
