//! Convergent encryption of 1 MiB objects against the raw speed of the ring
//! primitives it is made of (SHA-256 of the plaintext, AES-256-GCM, SHA-256
//! of the ciphertext): the physical limit on this CPU, one core.

use std::fmt::Write;
use std::time::Duration;

use anyhow::Result;
use epost_types::convergent::{self, ConvergenceSecret, Kind};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};

use crate::report::{MIB, rate};

pub(crate) fn run(out: &mut String) -> Result<()> {
    let data: Vec<u8> =
        (0..1024 * 1024).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let min = Duration::from_secs(2);
    let sha = rate(min, || {
        std::hint::black_box(digest(&SHA256, &data));
    });
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &[7; 32]).map_err(|_| anyhow::anyhow!("key"))?,
    );
    let mut buf = data.clone();
    let aes = rate(min, || {
        buf.copy_from_slice(&data);
        let tag = key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::empty(),
            &mut buf,
        );
        std::hint::black_box(tag.ok());
    });
    // Per object: one SHA-256 over the plaintext, one AES-GCM, one SHA-256
    // over the ciphertext. Their times add up.
    let limit = 1.0 / (2.0 / sha + 1.0 / aes);
    let secret = ConvergenceSecret::new(b"bench realm".to_vec());
    let seal = rate(min, || {
        std::hint::black_box(convergent::seal(&secret, Kind::Data, &data));
    });
    let _ = writeln!(out, "## Convergent encryption, 1 MiB objects, one core\n");
    let _ = writeln!(out, "| what | MB/s |\n|---|---|");
    let _ = writeln!(out, "| SHA-256 (ring) | {:.0} |", sha);
    let _ = writeln!(out, "| AES-256-GCM (ring) | {:.0} |", aes);
    let _ = writeln!(out, "| limit: 2 x SHA-256 + AES-256-GCM | {:.0} |", limit);
    let _ = writeln!(out, "| `convergent::seal` (key, encrypt, id) | {:.0} |", seal);
    let _ = writeln!(
        out,
        "\nseal reaches **{:.0}%** of the limit (target: at least 60%).\n",
        100.0 * seal / limit
    );
    let _ = MIB;
    Ok(())
}
