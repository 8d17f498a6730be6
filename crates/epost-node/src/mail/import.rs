//! The framing of a bulk import (`epost import` to the node's API): a
//! sequence of frames, each `u32 BE length || metadata (JSON: flags, date,
//! from) || u32 BE length || the message`. Shared by the node, which reads
//! it, and the CLI, which writes it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Largest metadata of one frame.
pub const MAX_META: usize = 4096;

/// What a frame says about its message besides its bytes.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImportMeta {
    #[serde(default)]
    pub flags: Vec<String>,
    /// INTERNALDATE, ms since the UNIX epoch.
    #[serde(default)]
    pub date: Option<u64>,
    /// The envelope sender (an mbox From_ line's).
    #[serde(default)]
    pub from: Option<String>,
}

/// Why a frame cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("metadata of {len} bytes (at most {MAX_META})")]
    MetaTooLarge { len: usize },
    #[error("a message of {len} bytes (at most {max})")]
    MessageTooLarge { len: usize, max: usize },
    #[error("bad metadata")]
    BadMeta(#[source] serde_json::Error),
}

/// The frame of one message.
pub fn encode(meta: &ImportMeta, raw: &[u8]) -> Vec<u8> {
    // Our own plain struct always serialises.
    let meta = serde_json::to_vec(meta).unwrap_or_default();
    let mut out = Vec::with_capacity(8 + meta.len() + raw.len());
    out.extend_from_slice(&u32::try_from(meta.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&u32::try_from(raw.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(raw);
    out
}

/// A message read from a frame, and the frame's length.
pub type Decoded = ((ImportMeta, Bytes), usize);

/// One whole frame at the start of `buf` and its length, `None` if `buf`
/// holds only part of one; messages of at most `max_message` bytes.
pub fn decode(buf: &[u8], max_message: usize) -> Result<Option<Decoded>, FrameError> {
    let Some(meta_len) = length(buf, 0) else { return Ok(None) };
    if meta_len > MAX_META {
        return Err(FrameError::MetaTooLarge { len: meta_len });
    }
    let Some(raw_len) = length(buf, 4 + meta_len) else { return Ok(None) };
    if raw_len > max_message {
        return Err(FrameError::MessageTooLarge { len: raw_len, max: max_message });
    }
    let end = 8 + meta_len + raw_len;
    if buf.len() < end {
        return Ok(None);
    }
    let meta: ImportMeta =
        serde_json::from_slice(&buf[4..4 + meta_len]).map_err(FrameError::BadMeta)?;
    Ok(Some(((meta, Bytes::copy_from_slice(&buf[8 + meta_len..end])), end)))
}

fn length(buf: &[u8], at: usize) -> Option<usize> {
    let bytes: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_limits_hold() {
        let meta = ImportMeta { flags: vec!["\\Seen".into()], date: Some(5), from: None };
        let mut stream = encode(&meta, b"Subject: one\r\n\r\nbody");
        stream.extend(encode(&ImportMeta::default(), b""));
        let ((got, raw), used) = decode(&stream, 1024).unwrap().unwrap();
        assert_eq!((got, raw.as_ref()), (meta, &b"Subject: one\r\n\r\nbody"[..]));
        let ((_, empty), rest) = decode(&stream[used..], 1024).unwrap().unwrap();
        assert!(empty.is_empty() && used + rest == stream.len());
        // Part of a frame: wait for more.
        assert_eq!(decode(&stream[..used - 1], 1024).unwrap(), None);
        assert_eq!(decode(&stream[..3], 1024).unwrap(), None);
        assert!(matches!(decode(&stream, 4), Err(FrameError::MessageTooLarge { .. })));
        let mut huge = u32::MAX.to_be_bytes().to_vec();
        huge.extend([0; 8]);
        assert!(matches!(decode(&huge, 1024), Err(FrameError::MetaTooLarge { .. })));
    }
}
