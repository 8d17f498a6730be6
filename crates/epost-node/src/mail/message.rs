//! Messages into objects and back: MIME part bodies of some size become
//! convergent objects of their own (so an attachment sent to many people,
//! or forwarded, is stored once), everything else stays inline in the
//! message manifest. Concatenating the pieces gives the exact bytes
//! received; a message mail-parser cannot make sense of is stored whole,
//! as received, never "fixed".
//!
//! The one parse that finds the part bodies also gives the message's MIME
//! structure, which the manifest keeps, so a client's ENVELOPE and
//! BODYSTRUCTURE are answered from the manifest and the header bytes in
//! its inline pieces, without reading a part ([`load_head`]).

use std::ops::Range;

use epost_types::capability::Capability;
use epost_types::convergent::ConvergenceSecret;
use epost_types::id::ObjectId;
use epost_types::limits::MAX_MANIFEST;
use epost_types::mail::{ManifestError, MessageManifest, Piece};
use epost_types::mime::{self, MessageStructure};
use futures::StreamExt;

use crate::storage::{GetError, PutError, StorageService};

/// A part body this large or larger is an object of its own.
pub const PART_OBJECT_MIN: usize = 32 * 1024;
/// Inline bytes a manifest may carry; past this the largest inline pieces
/// become objects too (a manifest is one small object).
const MAX_INLINE_TOTAL: usize = 128 * 1024;
/// Part objects stored or fetched at once for one message.
const PARALLEL: usize = 8;

/// Why a message could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("cannot store the message")]
    Put(#[from] PutError),
    #[error("cannot fetch the message")]
    Get(#[from] GetError),
    #[error("its manifest is not valid")]
    Manifest(#[source] ManifestError),
    #[error("a part is {got} bytes, the manifest says {expected}")]
    PartLength { got: u64, expected: u64 },
}

impl MessageError {
    /// Whether what was fetched is damaged (rather than not fetched).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, MessageError::Manifest(_) | MessageError::PartLength { .. })
    }
}

/// Where the message's bytes go, inline (false) or as an object (true),
/// given the leaf part bodies its parse found ([`mime::Parsed`]).
pub fn split(raw: &[u8], leaf_bodies: &[Range<usize>]) -> Vec<(Range<usize>, bool)> {
    let mut bodies = leaf_bodies.to_vec();
    if bodies.is_empty() {
        bodies.push(0..raw.len());
    }
    bodies.sort_by_key(|r| r.start);
    let mut pieces = Vec::new();
    let mut at = 0;
    for body in bodies {
        if body.start < at || body.end > raw.len() || body.len() < PART_OBJECT_MIN {
            continue;
        }
        if body.start > at {
            pieces.push((at..body.start, false));
        }
        at = body.end;
        pieces.push((body, true));
    }
    if at < raw.len() || raw.is_empty() {
        pieces.push((at..raw.len(), false));
    }
    // Keep the manifest small whatever the structure.
    let mut inline: usize = pieces.iter().filter(|(_, o)| !o).map(|(r, _)| r.len()).sum();
    while inline > MAX_INLINE_TOTAL {
        let Some(largest) = pieces.iter_mut().filter(|(_, o)| !o).max_by_key(|(r, _)| r.len())
        else {
            break;
        };
        inline -= largest.0.len();
        largest.1 = true;
    }
    pieces
}

/// The manifest of a message of these pieces: with its structure when
/// that keeps the stored limits and the manifest stays decodable,
/// otherwise without (FETCH then finds the structure from the bytes, as
/// for mail stored before structures were kept).
fn manifest(pieces: Vec<Piece>, structure: &MessageStructure) -> (MessageManifest, Vec<u8>) {
    let size: u64 = pieces.iter().map(Piece::len).sum();
    if structure.check(size).is_ok() {
        let with = MessageManifest::with_structure(pieces.clone(), structure);
        let encoded = with.encode();
        if encoded.len() <= MAX_MANIFEST {
            return (with, encoded);
        }
    }
    let plain = MessageManifest::new(pieces);
    let encoded = plain.encode();
    (plain, encoded)
}

/// A message once stored.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// The manifest's capability.
    pub capability: Capability,
    /// Every object stored for it besides the manifest's own root: its
    /// parts and their chunks (what renewing the message extends).
    pub members: Vec<ObjectId>,
    /// The lease they were stored with.
    pub expires: u64,
    /// Its manifest as stored.
    pub manifest: MessageManifest,
}

/// Stores `raw`; returns the manifest's capability once every object is
/// durable.
pub async fn store(
    storage: &StorageService,
    secret: Option<&ConvergenceSecret>,
    raw: &[u8],
) -> Result<StoredMessage, MessageError> {
    let parsed = mime::parse(raw);
    let pieces = split(raw, &parsed.leaf_bodies);
    let stored = futures::stream::iter(pieces.into_iter().map(|(range, object)| async move {
        let bytes = &raw[range];
        if object {
            let report = put(storage, secret, bytes).await?;
            let piece = Piece::Part { capability: report.capability, len: bytes.len() as u64 };
            Ok::<_, MessageError>((piece, report.ids))
        } else {
            Ok((Piece::Inline(bytes.to_vec()), Vec::new()))
        }
    }))
    .buffered(PARALLEL)
    .collect::<Vec<_>>()
    .await;
    let mut pieces = Vec::new();
    let mut members = Vec::new();
    for piece in stored {
        let (piece, ids) = piece?;
        pieces.push(piece);
        members.extend(ids);
    }
    let (manifest, encoded) = manifest(pieces, &parsed.structure);
    let report = put(storage, secret, encoded.as_slice()).await?;
    let expires = report.expires;
    // The root (last) is the manifest itself; chunks of a large manifest
    // come before it.
    members.extend(report.ids.iter().rev().skip(1));
    members.sort();
    members.dedup();
    Ok(StoredMessage { capability: report.capability, members, expires, manifest })
}

async fn put(
    storage: &StorageService,
    secret: Option<&ConvergenceSecret>,
    bytes: &[u8],
) -> Result<crate::storage::PutReport, PutError> {
    match secret {
        Some(secret) => storage.put_reader_with(secret, bytes).await,
        None => storage.put_reader(bytes).await,
    }
}

/// Every object of the message whose manifest is `capability`, besides
/// the manifest's root: found by opening the manifest and each part's
/// root (so a part's chunks are listed too).
pub async fn member_ids(
    storage: &StorageService,
    capability: &Capability,
) -> Result<Vec<ObjectId>, MessageError> {
    let mut members: Vec<ObjectId> = storage
        .object_ids(capability)
        .await?
        .into_iter()
        .filter(|id| *id != capability.id)
        .collect();
    let manifest = load_manifest(storage, capability).await?;
    for piece in manifest.pieces {
        if let Piece::Part { capability: part, .. } = piece {
            members.extend(storage.object_ids(&part).await?);
        }
    }
    members.sort();
    members.dedup();
    Ok(members)
}

/// The exact bytes of the message `manifest` describes: its inline
/// pieces and every part object.
pub async fn load(
    storage: &StorageService,
    manifest: &MessageManifest,
) -> Result<Vec<u8>, MessageError> {
    load_range(storage, manifest, 0..manifest.size).await
}

/// The message's first `len` bytes (through its header, for an outline):
/// inline pieces, and only the part objects that overlap them (none,
/// unless a header is larger than the manifest's inline room).
pub async fn load_head(
    storage: &StorageService,
    manifest: &MessageManifest,
    len: u64,
) -> Result<Vec<u8>, MessageError> {
    load_range(storage, manifest, 0..len.min(manifest.size)).await
}

/// What one piece gives to a range of the message.
enum Want {
    Inline(Vec<u8>),
    /// Bytes `cut` of a part object `len` bytes long.
    Part {
        capability: Capability,
        len: u64,
        cut: Range<usize>,
    },
}

/// Bytes `wanted` of the message, reading only the pieces they overlap.
async fn load_range(
    storage: &StorageService,
    manifest: &MessageManifest,
    wanted: Range<u64>,
) -> Result<Vec<u8>, MessageError> {
    // What each overlapping piece gives: inline bytes now, or a part to
    // fetch and cut.
    let mut at = 0u64;
    let mut wants = Vec::new();
    for piece in &manifest.pieces {
        let span = at..at.saturating_add(piece.len());
        at = span.end;
        let (from, to) = (span.start.max(wanted.start), span.end.min(wanted.end));
        if from >= to {
            continue;
        }
        // Offsets within the piece, so below its length: they fit.
        let cut = (from - span.start) as usize..(to - span.start) as usize;
        wants.push(match piece {
            Piece::Inline(bytes) => Want::Inline(bytes[cut].to_vec()),
            Piece::Part { capability, len } => {
                Want::Part { capability: capability.clone(), len: *len, cut }
            }
        });
    }
    let parts = futures::stream::iter(wants.into_iter().map(|want| async move {
        let (capability, len, cut) = match want {
            Want::Inline(bytes) => return Ok::<_, MessageError>(bytes),
            Want::Part { capability, len, cut } => (capability, len, cut),
        };
        let mut bytes = get(storage, &capability).await?;
        if bytes.len() as u64 != len {
            return Err(MessageError::PartLength { got: bytes.len() as u64, expected: len });
        }
        if cut.start == 0 {
            // A whole part, or its start: no copy.
            bytes.truncate(cut.end);
            return Ok(bytes);
        }
        Ok(bytes[cut].to_vec())
    }))
    .buffered(PARALLEL)
    .collect::<Vec<_>>()
    .await;
    let mut out = Vec::with_capacity(usize::try_from(wanted.end - wanted.start).unwrap_or(0));
    for part in parts {
        out.extend_from_slice(&part?);
    }
    Ok(out)
}

/// Only the manifest of a message (to learn its size).
pub async fn load_manifest(
    storage: &StorageService,
    capability: &Capability,
) -> Result<MessageManifest, MessageError> {
    let bytes = get(storage, capability).await?;
    MessageManifest::decode(&bytes).map_err(MessageError::Manifest)
}

async fn get(storage: &StorageService, capability: &Capability) -> Result<Vec<u8>, MessageError> {
    let mut out = Vec::new();
    storage.get_to(capability, &mut out).await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(raw: &[u8]) -> Vec<(Range<usize>, bool)> {
        split(raw, &mime::parse(raw).leaf_bodies)
    }

    fn rebuilt(raw: &[u8]) -> Vec<u8> {
        pieces(raw).into_iter().flat_map(|(r, _)| raw[r].to_vec()).collect()
    }

    #[test]
    fn an_attachment_becomes_an_object_and_the_bytes_are_kept_exactly() {
        let attachment = "QUJD".repeat(10_000);
        let raw = format!(
            "From: a@x.test\r\nSubject: hi\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\npreamble\r\n--b\r\n\
             Content-Type: text/plain\r\n\r\nhello\r\n--b\r\n\
             Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             {attachment}\r\n--b--\r\nepilogue\r\n"
        );
        let pieces = pieces(raw.as_bytes());
        let objects: Vec<_> = pieces.iter().filter(|(_, o)| *o).collect();
        assert_eq!(objects.len(), 1, "{pieces:?}");
        assert!(raw.as_bytes()[objects[0].0.clone()].starts_with(b"QUJD"));
        assert_eq!(rebuilt(raw.as_bytes()), raw.as_bytes());
    }

    #[test]
    fn anything_at_all_is_kept_exactly() {
        let samples: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"no headers at all".to_vec(),
            b"Subject: \xff\xfe\0bad\nbare LF body\n".to_vec(),
            [
                b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n".as_slice(),
                &[0x41; 9000],
            ]
            .concat(),
            vec![0u8; 300_000],
        ];
        for raw in samples {
            assert_eq!(rebuilt(&raw), raw);
            let inline: usize = pieces(&raw).iter().filter(|(_, o)| !o).map(|(r, _)| r.len()).sum();
            assert!(inline <= MAX_INLINE_TOTAL);
        }
    }
}
