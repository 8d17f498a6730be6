//! ePOST mail formats (`spec/mail.md`): the message manifest that rebuilds
//! a message's exact bytes from inline pieces and part objects (and from
//! version 2 carries the message's MIME structure, [`crate::mime`]), and
//! the entries of a user's mail log, whose replay gives folders, UIDs and
//! flags.

use serde::{Deserialize, Serialize};

use crate::capability::Capability;
use crate::cbor::{self, DecodeError, Versioned};
use crate::limits::{MAX_LOG_ENTRY, MAX_MANIFEST};
use crate::mime::{MessageStructure, StructureError};

/// The manifest format this code writes: version 2 carries the message's
/// structure. Version 1 (no structure) is still read, and written for a
/// message whose structure is not kept.
pub const MESSAGE_VERSION: u8 = 2;
/// The manifest version without a structure.
pub const MESSAGE_VERSION_PLAIN: u8 = 1;
/// The mail log entry format this code writes and reads.
pub const MAIL_ENTRY_VERSION: u8 = 1;
/// Longest folder name, bytes (IMAP mailbox names in UTF-8).
pub const MAX_FOLDER_NAME: usize = 255;
/// Most UIDs one log operation names.
pub const MAX_OP_UIDS: usize = 2_000;

/// One stored message: concatenating the pieces gives its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageManifest {
    pub v: u8,
    /// Exact size of the message in bytes (the sum of the pieces).
    pub size: u64,
    pub pieces: Vec<Piece>,
    /// The message's MIME structure as found when it was received (an
    /// encoded [`MessageStructure`]), in version 2 only. Kept encoded so
    /// that a structure this code cannot read (a later format, or damage)
    /// costs only the shortcut: the message is still read, and its
    /// structure found from its bytes.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub structure: Option<Vec<u8>>,
}

/// A piece of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Piece {
    /// Bytes kept in the manifest: headers, boundaries, small bodies.
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A MIME part body stored as its own convergent object, so the same
    /// attachment in many messages is stored once.
    Part {
        #[serde(with = "crate::capability::as_text")]
        capability: Capability,
        len: u64,
    },
}

impl Versioned for MessageManifest {
    const VERSION: u8 = MESSAGE_VERSION;
    const OLDEST: u8 = MESSAGE_VERSION_PLAIN;

    fn version(&self) -> u8 {
        self.v
    }
}

/// Why a manifest is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the pieces add up to {sum} bytes, the manifest says {size}")]
    SizeMismatch { sum: u64, size: u64 },
    #[error("the pieces add up to more than 2^64 bytes")]
    SizeOverflow,
    #[error("a version {v} manifest {} a structure", if *.v == MESSAGE_VERSION { "needs" } else { "cannot carry" })]
    StructureVersion { v: u8 },
}

impl MessageManifest {
    /// A manifest without a structure (version 1).
    pub fn new(pieces: Vec<Piece>) -> Self {
        let size = pieces.iter().map(Piece::len).sum();
        Self { v: MESSAGE_VERSION_PLAIN, size, pieces, structure: None }
    }

    /// A manifest carrying the message's structure (version 2).
    pub fn with_structure(pieces: Vec<Piece>, structure: &MessageStructure) -> Self {
        let size = pieces.iter().map(Piece::len).sum();
        Self { v: MESSAGE_VERSION, size, pieces, structure: Some(structure.encode()) }
    }

    /// The stored structure, decoded and checked against the message's
    /// size; `None` if none was stored.
    pub fn structure(&self) -> Option<Result<MessageStructure, StructureError>> {
        let bytes = self.structure.as_deref()?;
        Some(MessageStructure::decode(bytes, self.size))
    }

    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(self)
    }

    /// Decodes and checks that the pieces add up to the stated size.
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: Self = cbor::decode(bytes, MAX_MANIFEST)?;
        // Checked: hostile piece lengths must not wrap around to `size`.
        let sum = manifest
            .pieces
            .iter()
            .try_fold(0u64, |sum, piece| sum.checked_add(piece.len()))
            .ok_or(ManifestError::SizeOverflow)?;
        if sum != manifest.size {
            return Err(ManifestError::SizeMismatch { sum, size: manifest.size });
        }
        // One encoding per value: version 2 exactly when there is a structure.
        if (manifest.v == MESSAGE_VERSION) != manifest.structure.is_some() {
            return Err(ManifestError::StructureVersion { v: manifest.v });
        }
        Ok(manifest)
    }
}

impl Piece {
    pub fn len(&self) -> u64 {
        match self {
            Piece::Inline(bytes) => bytes.len() as u64,
            Piece::Part { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A message as a folder refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    /// The manifest's capability (stored as its text `epost:<id>#<key>`).
    #[serde(with = "crate::capability::as_text")]
    pub manifest: Capability,
    pub size: u64,
    /// When it arrived, ms since the UNIX epoch (IMAP INTERNALDATE).
    pub internal_date: u64,
    /// The envelope sender it came with (SMTP MAIL FROM, an mbox From_
    /// line), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope_from: Option<String>,
}

/// How a Flags operation changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlagChange {
    Add,
    Remove,
    Replace,
}

/// One change to a user's mail. UIDs are assigned by replay: each folder
/// gives the next UID to every message inserted, copied or moved into it,
/// in log order, so every node that replays the log agrees on them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailOp {
    /// A new folder; its UIDVALIDITY is given by the writer (a time).
    Create {
        folder: String,
        uid_validity: u32,
    },
    Delete {
        folder: String,
    },
    Rename {
        from: String,
        to: String,
        uid_validity: u32,
    },
    /// Subscribes or unsubscribes an existing folder.
    Subscribe {
        folder: String,
        subscribed: bool,
    },
    /// Subscribes or unsubscribes a name, whether or not a folder has it
    /// (IMAP keeps subscriptions of names that do not exist, RFC 3501
    /// 6.3.6, and across DELETE). A node older than this operation cannot
    /// read a log holding it, rather than replay it differently.
    Subscription {
        name: String,
        subscribed: bool,
    },
    /// A message into a folder. `notification` is the id of the
    /// notification that brought it, so a redelivery is recognised.
    Insert {
        folder: String,
        message: MessageRef,
        flags: Vec<String>,
        #[serde(with = "serde_bytes")]
        notification: Option<Vec<u8>>,
    },
    Flags {
        folder: String,
        uids: Vec<u32>,
        change: FlagChange,
        flags: Vec<String>,
    },
    Copy {
        from: String,
        uids: Vec<u32>,
        to: String,
    },
    Move {
        from: String,
        uids: Vec<u32>,
        to: String,
    },
    Expunge {
        folder: String,
        uids: Vec<u32>,
    },
    /// The whole state as of entry `covers` is the [`Checkpoint`] object
    /// `state` (readable with the owner's log key only): a reader starts
    /// there and replays only the entries after `covers`. Changes nothing.
    Checkpoint {
        state: Capability,
        covers: u64,
    },
}

/// The checkpoint index format this code writes: version 2 adds MODSEQs
/// (a message's, a folder's highest, and the folder's recent expunges),
/// version 3 the subscribed names no folder has. Versions 1 and 2 are
/// still read.
pub const CHECKPOINT_VERSION: u8 = 3;
/// The message page format this code writes (version 2: with MODSEQs;
/// version 1 is still read).
pub const PAGE_VERSION: u8 = 2;
/// The checkpoint format before MODSEQs.
pub const CHECKPOINT_VERSION_PLAIN: u8 = 1;
/// The checkpoint format with MODSEQs but before subscriptions of names.
pub const CHECKPOINT_VERSION_MODSEQ: u8 = 2;
/// The filed-notifications page format (unchanged since version 1).
pub const DELIVERED_PAGE_VERSION: u8 = 1;
/// Messages of one folder whose UIDs fall in one span of this many share
/// a page, so a change rewrites one page and the others are reused.
pub const PAGE_SPAN: u32 = 512;

/// A user's mail as of one log entry, as objects: an index naming pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub v: u8,
    /// The last log entry (sequence number) whose operations it includes.
    pub covers: u64,
    /// Mail log data entries applied, as the state counts them.
    pub entries: u64,
    pub folders: Vec<CheckpointFolder>,
    /// The notifications already filed, by the day they were filed.
    pub delivered: Vec<DayRef>,
    /// Subscribed names that no folder has (version 3; a folder's own
    /// subscription is in its [`CheckpointFolder`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribed: Vec<String>,
}

/// One folder of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointFolder {
    pub name: String,
    pub uid_validity: u32,
    pub uid_next: u32,
    pub subscribed: bool,
    pub pages: Vec<PageRef>,
    /// The folder's HIGHESTMODSEQ (version 2; absent in version 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub highest_modseq: u64,
    /// The folder's remembered expunges, oldest first: `(modseq,
    /// first_uid, last_uid)`, the UIDs `first ..= last` removed by the
    /// change at `modseq` (version 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expunged: Vec<(u64, u32, u32)>,
    /// Expunges at or below this MODSEQ are no longer remembered
    /// (version 2; 0: every expunge since the folder was made is).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expunged_before: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A page of a folder: its messages with UIDs in `first_uid ..
/// first_uid + PAGE_SPAN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRef {
    pub first_uid: u32,
    pub count: u32,
    pub capability: Capability,
}

/// The messages of one page, in UID order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePage {
    pub v: u8,
    pub messages: Vec<PagedMessage>,
}

/// One message of a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagedMessage {
    pub uid: u32,
    pub message: MessageRef,
    pub flags: Vec<String>,
    /// The message's MODSEQ (version 2; absent in version 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub modseq: u64,
}

/// The notifications filed on one day (days since the UNIX epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRef {
    pub day: u64,
    pub capability: Capability,
}

/// The ids of the notifications filed on one day, with when, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredPage {
    pub v: u8,
    pub ids: Vec<(serde_bytes::ByteBuf, u64)>,
}

/// Largest checkpoint index or page decoded.
pub const MAX_CHECKPOINT_OBJECT: usize = 16 * 1024 * 1024;

macro_rules! checkpoint_format {
    ($($t:ty: $version:expr, $oldest:expr);*) => {$(
        impl Versioned for $t {
            const VERSION: u8 = $version;
            const OLDEST: u8 = $oldest;

            fn version(&self) -> u8 {
                self.v
            }
        }

        impl $t {
            pub fn encode(&self) -> Vec<u8> {
                cbor::encode(self)
            }

            pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
                cbor::decode(bytes, MAX_CHECKPOINT_OBJECT)
            }
        }
    )*};
}

checkpoint_format!(
    Checkpoint: CHECKPOINT_VERSION, CHECKPOINT_VERSION_PLAIN;
    MessagePage: PAGE_VERSION, CHECKPOINT_VERSION_PLAIN;
    DeliveredPage: DELIVERED_PAGE_VERSION, DELIVERED_PAGE_VERSION
);

/// One entry of a user's mail log: the operations of one group commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailEntry {
    pub v: u8,
    pub ops: Vec<MailOp>,
}

impl Versioned for MailEntry {
    const VERSION: u8 = MAIL_ENTRY_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl MailEntry {
    pub fn new(ops: Vec<MailOp>) -> Self {
        Self { v: MAIL_ENTRY_VERSION, ops }
    }

    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        cbor::decode(bytes, MAX_LOG_ENTRY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::ObjectKey;
    use crate::id::ObjectId;

    fn test_capability() -> Capability {
        Capability::new(ObjectId::of(b"part"), ObjectKey::from_bytes([7; 32]))
    }

    #[test]
    fn manifests_and_entries_round_trip_and_sizes_are_checked() {
        let manifest = MessageManifest::new(vec![
            Piece::Inline(b"Subject: x\r\n\r\n".to_vec()),
            Piece::Part { capability: test_capability(), len: 5000 },
        ]);
        assert_eq!(manifest.size, 14 + 5000);
        assert_eq!(MessageManifest::decode(&manifest.encode()).unwrap(), manifest);
        let mut lying = manifest.clone();
        lying.size += 1;
        assert!(matches!(
            MessageManifest::decode(&lying.encode()),
            Err(ManifestError::SizeMismatch { .. })
        ));
        let entry = MailEntry::new(vec![
            MailOp::Create { folder: "INBOX".into(), uid_validity: 7 },
            MailOp::Flags {
                folder: "INBOX".into(),
                uids: vec![1, 2],
                change: FlagChange::Add,
                flags: vec!["\\Seen".into()],
            },
        ]);
        assert_eq!(MailEntry::decode(&entry.encode()).unwrap(), entry);
    }

    #[test]
    fn a_structure_makes_a_version_2_manifest_and_version_1_still_reads() {
        let raw = b"Subject: x\r\n\r\nbody";
        let structure = crate::mime::parse(raw).structure;
        let pieces = vec![Piece::Inline(raw.to_vec())];
        let with = MessageManifest::with_structure(pieces.clone(), &structure);
        assert_eq!(with.v, 2);
        let decoded = MessageManifest::decode(&with.encode()).unwrap();
        assert_eq!(decoded.structure().unwrap().unwrap(), structure);
        // Version 1 as stored before structures: the same bytes as then.
        let plain = MessageManifest::new(pieces);
        assert_eq!(plain.encode()[..4], [0xa3, 0x61, b'v', 0x01]);
        assert!(MessageManifest::decode(&plain.encode()).unwrap().structure().is_none());
        // The version says whether there is a structure.
        let mut lying = with.clone();
        lying.v = 1;
        assert!(matches!(
            MessageManifest::decode(&lying.encode()),
            Err(ManifestError::StructureVersion { v: 1 })
        ));
        let mut bare = plain.clone();
        bare.v = 2;
        assert!(matches!(
            MessageManifest::decode(&bare.encode()),
            Err(ManifestError::StructureVersion { v: 2 })
        ));
        let mut future = plain;
        future.v = 3;
        assert!(matches!(
            MessageManifest::decode(&future.encode()),
            Err(ManifestError::Decode(DecodeError::UnsupportedVersion { found: 3, supported: 2 }))
        ));
        // A structure that does not fit the message is reported, not fatal.
        let mut wrong = with;
        wrong.size = 3;
        wrong.pieces = vec![Piece::Inline(b"abc".to_vec())];
        let decoded = MessageManifest::decode(&wrong.encode()).unwrap();
        assert!(decoded.structure().unwrap().is_err());
    }

    /// Found writing the hostile-input properties: piece lengths that overflow a u64 panicked (debug
    /// builds) or wrapped around to match `size` (release builds).
    #[test]
    fn piece_lengths_that_overflow_are_refused() {
        let wrapping = MessageManifest {
            v: MESSAGE_VERSION_PLAIN,
            structure: None,
            size: 5,
            pieces: vec![
                Piece::Part { capability: test_capability(), len: u64::MAX },
                Piece::Inline(vec![b'x'; 6]),
            ],
        };
        assert!(matches!(
            MessageManifest::decode(&wrapping.encode()),
            Err(ManifestError::SizeOverflow)
        ));
    }
}
