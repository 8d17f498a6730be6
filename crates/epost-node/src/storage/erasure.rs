//! Erasure coding of one object's ciphertext into k data + m parity
//! fragments (Reed-Solomon over GF(2^16), `reed-solomon-simd`), and back
//! from any k of them.
//!
//! Every fragment carries the SHA-256 of all k+m fragments, so a holder or
//! reader can check a fragment on its own; the reader still checks the
//! rebuilt ciphertext against the object id, so a set of fragments that
//! lie consistently (hash list included) is caught too.

use std::collections::BTreeMap;

use epost_types::fragment::{FRAGMENT_VERSION, Fragment};
use epost_types::id::ObjectId;
use ring::digest::{SHA256, digest};

/// Why an object could not be coded or rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum CodingError {
    #[error("unsupported layout {k}+{m}: need 1 <= k, k + m <= 255")]
    Layout { k: u8, m: u8 },
    #[error("only {have} valid fragments of the {need} needed")]
    NotEnough { have: usize, need: usize },
    #[error("fragments disagree about the object (layout, length or hash list)")]
    Inconsistent,
    #[error("the rebuilt object does not match its id")]
    IdMismatch,
    #[error("reed-solomon: {0}")]
    Codec(String),
}

/// Splits `ciphertext` (whose id is `id`) into k + m fragments, index order.
pub fn encode(id: ObjectId, ciphertext: &[u8], k: u8, m: u8) -> Result<Vec<Fragment>, CodingError> {
    if k == 0 || usize::from(k) + usize::from(m) > 255 {
        return Err(CodingError::Layout { k, m });
    }
    let shard_len = shard_len(ciphertext.len(), k);
    let mut originals: Vec<Vec<u8>> = ciphertext
        .chunks(shard_len)
        .map(|c| {
            let mut shard = c.to_vec();
            shard.resize(shard_len, 0);
            shard
        })
        .collect();
    originals.resize(usize::from(k), vec![0; shard_len]);
    let parity = if m == 0 {
        Vec::new()
    } else {
        reed_solomon_simd::encode(usize::from(k), usize::from(m), &originals)
            .map_err(|e| CodingError::Codec(e.to_string()))?
    };
    let shards: Vec<Vec<u8>> = originals.into_iter().chain(parity).collect();
    let hashes: Vec<[u8; 32]> = shards.iter().map(|s| sha256(s)).collect();
    Ok(shards
        .into_iter()
        .enumerate()
        .map(|(index, data)| Fragment {
            v: FRAGMENT_VERSION,
            object_id: id,
            // k + m <= 255 was checked above.
            index: u8::try_from(index).unwrap_or(u8::MAX),
            k,
            m,
            object_len: ciphertext.len() as u64,
            hashes: hashes.clone(),
            data,
        })
        .collect())
}

/// Rebuilds the ciphertext of `id` from fragments that each passed
/// `Fragment::verify`. Fragments for other objects, or that disagree with
/// the majority's layout and hash list, are ignored.
pub fn decode(id: ObjectId, fragments: &[Fragment]) -> Result<Vec<u8>, CodingError> {
    let ours: Vec<&Fragment> = fragments.iter().filter(|f| f.object_id == id).collect();
    let Some(reference) = majority(&ours) else {
        return Err(CodingError::NotEnough { have: 0, need: 1 });
    };
    let (k, m) = (usize::from(reference.k), usize::from(reference.m));
    let consistent: BTreeMap<usize, &[u8]> = ours
        .iter()
        .filter(|f| same_layout(f, reference))
        .map(|f| (usize::from(f.index), f.data.as_slice()))
        .collect();
    if consistent.len() < k {
        return Err(CodingError::NotEnough { have: consistent.len(), need: k });
    }
    let shard_len = shard_len(
        usize::try_from(reference.object_len).map_err(|_| CodingError::Inconsistent)?,
        reference.k,
    );
    let mut originals: Vec<Option<Vec<u8>>> =
        (0..k).map(|i| consistent.get(&i).map(|d| d.to_vec())).collect();
    if originals.iter().any(Option::is_none) {
        if m == 0 {
            return Err(CodingError::NotEnough { have: consistent.len(), need: k });
        }
        let present = consistent.iter().filter(|(i, _)| **i < k).map(|(i, d)| (*i, *d));
        let recovery = consistent.iter().filter(|(i, _)| **i >= k).map(|(i, d)| (*i - k, *d));
        let restored = reed_solomon_simd::decode(k, m, present, recovery)
            .map_err(|e| CodingError::Codec(e.to_string()))?;
        for (i, shard) in restored {
            if let Some(slot) = originals.get_mut(i) {
                *slot = Some(shard);
            }
        }
    }
    let mut ciphertext = Vec::with_capacity(shard_len * k);
    for shard in originals {
        ciphertext.extend_from_slice(&shard.ok_or(CodingError::Inconsistent)?);
    }
    ciphertext
        .truncate(usize::try_from(reference.object_len).map_err(|_| CodingError::Inconsistent)?);
    if ObjectId::of(&ciphertext) != id {
        return Err(CodingError::IdMismatch);
    }
    Ok(ciphertext)
}

/// Bytes per shard: the ciphertext split k ways, rounded up to the even,
/// non-zero size the codec needs.
fn shard_len(len: usize, k: u8) -> usize {
    let per = len.div_ceil(usize::from(k)).max(2);
    per + per % 2
}

fn same_layout(a: &Fragment, b: &Fragment) -> bool {
    a.k == b.k && a.m == b.m && a.object_len == b.object_len && a.hashes == b.hashes
}

/// The fragment whose layout most others share: a minority of liars cannot
/// choose the layout the reader decodes with.
fn majority<'a>(fragments: &[&'a Fragment]) -> Option<&'a Fragment> {
    fragments
        .iter()
        .max_by_key(|candidate| fragments.iter().filter(|f| same_layout(f, candidate)).count())
        .copied()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(len: usize) -> (ObjectId, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        (ObjectId::of(&data), data)
    }

    #[test]
    fn any_k_of_k_plus_m_rebuild() {
        for len in [0, 1, 7, 8, 1000, 4811] {
            let (id, data) = object(len);
            let fragments = encode(id, &data, 4, 4).unwrap();
            assert_eq!(fragments.len(), 8);
            for f in &fragments {
                f.verify().unwrap();
            }
            // Every choice of 4 survivors out of 8.
            for mask in 0u32..256 {
                if mask.count_ones() != 4 {
                    continue;
                }
                let kept: Vec<Fragment> =
                    fragments.iter().filter(|f| mask & (1 << f.index) != 0).cloned().collect();
                assert_eq!(decode(id, &kept).unwrap(), data, "len {len} mask {mask:08b}");
            }
        }
    }

    #[test]
    fn fewer_than_k_is_an_error() {
        let (id, data) = object(100);
        let fragments = encode(id, &data, 4, 4).unwrap();
        let err = decode(id, &fragments[..3]).unwrap_err();
        assert!(matches!(err, CodingError::NotEnough { have: 3, need: 4 }));
    }

    #[test]
    fn no_parity_layout_round_trips() {
        let (id, data) = object(999);
        let fragments = encode(id, &data, 3, 0).unwrap();
        assert_eq!(decode(id, &fragments).unwrap(), data);
        assert!(decode(id, &fragments[1..]).is_err());
    }

    #[test]
    fn consistent_liars_are_caught_by_the_id() {
        let (id, data) = object(100);
        let mut fragments = encode(id, &data, 2, 2).unwrap();
        // Tamper with a data shard and fix up every hash list to match.
        fragments[0].data[0] ^= 1;
        let forged = sha256(&fragments[0].data);
        for f in &mut fragments {
            f.hashes[0] = forged;
        }
        let kept = vec![fragments[0].clone(), fragments[1].clone()];
        assert!(matches!(decode(id, &kept), Err(CodingError::IdMismatch)));
    }

    #[test]
    fn bad_layouts_are_refused() {
        let (id, data) = object(10);
        assert!(matches!(encode(id, &data, 0, 4), Err(CodingError::Layout { .. })));
        assert!(matches!(encode(id, &data, 200, 100), Err(CodingError::Layout { .. })));
    }
}
