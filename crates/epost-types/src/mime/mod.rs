//! A message's MIME structure as found when it was received
//! (`spec/mail.md`, "The structure of a message"): every entity with the
//! byte ranges of its header and body in the unchanged raw message, its
//! content type, parameters, transfer encoding, id, description,
//! disposition, language, location and line count, its children, and
//! for an embedded message/rfc822 that message's envelope fields. It is
//! stored in the message manifest, so ENVELOPE, BODYSTRUCTURE and header
//! fetches are answered without reading a part body.
//!
//! The description is neutral: values are kept as the message wrote
//! them (header values as bytes, unfolded), and what IMAP makes of them
//! (upper case, defaults, group markers, NIL) is the gateway's business.
//!
//! A structure comes from another node's word like the bytes it
//! describes, so [`MessageStructure::decode`] checks its size, version,
//! shape (a tree, parents first), depth, lengths and that every range
//! lies inside the message before anything reads it.

mod fields;
mod parse;

use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::cbor::{self, DecodeError, Versioned};
use crate::limits::{
    MAX_MIME_DEPTH, MAX_MIME_ENTITIES, MAX_MIME_LIST, MAX_MIME_STRUCTURE, MAX_MIME_TEXT,
};

pub use fields::{Field, fields, header_end, header_value, trim, unfold};
pub use parse::{Parsed, parse};

/// The structure format this code writes and reads.
pub const STRUCTURE_VERSION: u8 = 1;

/// A message's MIME structure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageStructure {
    pub v: u8,
    /// The message's own envelope fields.
    pub envelope: Envelope,
    /// Every entity, each after the one that contains it; the first is
    /// the message's top-level entity.
    pub entities: Vec<Entity>,
}

/// What answering a client's ENVELOPE, BODYSTRUCTURE and header fetches
/// takes: a message's structure, and its first bytes through the end of
/// its top-level header (which the manifest's inline pieces hold, so no
/// part body is read for them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageOutline {
    pub structure: MessageStructure,
    /// The message's bytes `0 .. e`, where `e` is the end of the top
    /// entity's header.
    pub head: Vec<u8>,
}

impl MessageOutline {
    /// The outline of `raw` whose structure is `structure`.
    pub fn of(raw: &[u8], structure: MessageStructure) -> Self {
        let end = structure.head_len();
        let head = raw.get(..end).unwrap_or(raw).to_vec();
        Self { structure, head }
    }
}

/// A byte range `start .. end` of the raw message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span(pub u64, pub u64);

/// One MIME entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Its header with the empty line that ends it (for the top level:
    /// the message header).
    pub header: Span,
    pub body: Span,
    /// Content type and subtype, lower case (`text/plain` when the
    /// entity names none).
    #[serde(rename = "type")]
    pub media_type: String,
    pub subtype: String,
    /// Content-Type parameters, names and values as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<(String, String)>,
    /// Content-Transfer-Encoding, unfolded, as written.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub encoding: Option<Vec<u8>>,
    /// Content-ID, unfolded.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub id: Option<Vec<u8>>,
    /// Content-Description, unfolded.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub description: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// Content-Language tags, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub language: Vec<ByteBuf>,
    /// Content-Location, unfolded.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub location: Option<Vec<u8>>,
    /// Lines of the body; an unterminated last line counts.
    pub lines: u64,
    pub kind: Kind,
}

/// Content-Disposition: its kind as written and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<(String, String)>,
}

/// What an entity's body is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// A body of its own (also what a part too deep, or not understood,
    /// is described as).
    Leaf,
    /// A multipart's children, as indexes into the entities.
    Multipart(Vec<u32>),
    /// An embedded message/rfc822 (not transfer-encoded): its envelope
    /// fields and the index of its top-level entity.
    Message { envelope: Box<Envelope>, root: u32 },
}

/// The header fields an envelope is made of (RFC 3501 ENVELOPE): text
/// fields as written (unfolded), address fields as mail-parser reads
/// them. Absent fields are `None` or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub date: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub subject: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<AddressEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sender: Vec<AddressEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_to: Vec<AddressEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<AddressEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<AddressEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<AddressEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub in_reply_to: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub message_id: Option<Vec<u8>>,
}

/// One item of an address field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddressEntry {
    Mailbox(Mailbox),
    /// A group (`name: a, b;`); one without a name stands for addresses
    /// listed outside any group of a field that also has groups.
    Group {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        members: Vec<Mailbox>,
    },
}

/// A display name and an address, decoded, as mail-parser found them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// Why a structure is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StructureError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("a structure needs at least one entity")]
    NoEntities,
    #[error("{count} entities (at most {MAX_MIME_ENTITIES})")]
    TooManyEntities { count: usize },
    #[error("entity {entity} nests {depth} deep (at most {MAX_MIME_DEPTH})")]
    TooDeep { entity: usize, depth: usize },
    #[error("entity {parent} names entity {child}, which is not after it or not there")]
    BadChild { parent: usize, child: u64 },
    #[error("entity {entity} is contained twice, or not at all")]
    NotATree { entity: usize },
    #[error("entity {entity} has the range {start}..{end} in a message of {size} bytes")]
    OutOfBounds { entity: usize, start: u64, end: u64, size: u64 },
    #[error("a text of {len} bytes (at most {MAX_MIME_TEXT})")]
    TextTooLong { len: usize },
    #[error("a list of {len} items (at most {MAX_MIME_LIST})")]
    ListTooLong { len: usize },
}

impl Versioned for MessageStructure {
    const VERSION: u8 = STRUCTURE_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl Span {
    /// The range as indexes into the raw message. Only meaningful for a
    /// checked structure, whose spans lie inside the message.
    pub fn range(&self) -> Range<usize> {
        let at = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        at(self.0)..at(self.1)
    }

    pub fn len(&self) -> u64 {
        self.1.saturating_sub(self.0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Entity {
    /// What a part that cannot be found is described as: an empty
    /// text/plain leaf at the start of the message.
    pub fn missing() -> Self {
        Entity {
            header: Span(0, 0),
            body: Span(0, 0),
            media_type: "text".into(),
            subtype: "plain".into(),
            params: Vec::new(),
            encoding: None,
            id: None,
            description: None,
            disposition: None,
            language: Vec::new(),
            location: None,
            lines: 0,
            kind: Kind::Leaf,
        }
    }
}

impl MessageStructure {
    /// The message's top-level entity.
    pub fn root(&self) -> Option<&Entity> {
        self.entities.first()
    }

    /// How many of the message's first bytes hold its top-level header:
    /// what a [`MessageOutline`] carries.
    pub fn head_len(&self) -> usize {
        self.root().map_or(0, |root| root.header.range().end)
    }

    /// The entity at `index`.
    pub fn entity(&self, index: u32) -> Option<&Entity> {
        self.entities.get(usize::try_from(index).ok()?)
    }

    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(self)
    }

    /// Decodes the structure of a message of `size` bytes and checks it
    /// ([`Self::check`]).
    pub fn decode(bytes: &[u8], size: u64) -> Result<Self, StructureError> {
        let structure: Self = cbor::decode(bytes, MAX_MIME_STRUCTURE)?;
        structure.check(size)?;
        Ok(structure)
    }

    /// Checks the rules a stored structure keeps: at least one and at
    /// most [`MAX_MIME_ENTITIES`] entities forming one tree whose every
    /// child comes after its parent, at most [`MAX_MIME_DEPTH`] deep,
    /// every range inside a message of `size` bytes, and every text and
    /// list within its bound.
    pub fn check(&self, size: u64) -> Result<(), StructureError> {
        let count = self.entities.len();
        if count == 0 {
            return Err(StructureError::NoEntities);
        }
        if count > MAX_MIME_ENTITIES {
            return Err(StructureError::TooManyEntities { count });
        }
        check_envelope(&self.envelope)?;
        // Parents come first, so one pass sees each parent's depth before
        // its children.
        let mut depth: Vec<Option<usize>> = vec![None; count];
        depth[0] = Some(0);
        for (index, entity) in self.entities.iter().enumerate() {
            let Some(here) = depth[index] else {
                return Err(StructureError::NotATree { entity: index });
            };
            check_entity(index, entity, size)?;
            for child in entity.kind.children() {
                let slot = usize::try_from(child)
                    .ok()
                    .filter(|&c| c > index && c < count)
                    .ok_or(StructureError::BadChild { parent: index, child: u64::from(child) })?;
                if depth[slot].is_some() {
                    return Err(StructureError::NotATree { entity: slot });
                }
                if here + 1 > MAX_MIME_DEPTH {
                    return Err(StructureError::TooDeep { entity: slot, depth: here + 1 });
                }
                depth[slot] = Some(here + 1);
            }
        }
        Ok(())
    }
}

impl Kind {
    /// The entities this one contains directly.
    pub fn children(&self) -> Vec<u32> {
        match self {
            Kind::Leaf => Vec::new(),
            Kind::Multipart(children) => children.clone(),
            Kind::Message { root, .. } => vec![*root],
        }
    }
}

fn check_entity(index: usize, entity: &Entity, size: u64) -> Result<(), StructureError> {
    for span in [entity.header, entity.body] {
        if span.0 > span.1 || span.1 > size {
            let (start, end) = (span.0, span.1);
            return Err(StructureError::OutOfBounds { entity: index, start, end, size });
        }
    }
    text(entity.media_type.as_bytes())?;
    text(entity.subtype.as_bytes())?;
    params(&entity.params)?;
    for value in [&entity.encoding, &entity.id, &entity.description, &entity.location] {
        text(value.as_deref().unwrap_or_default())?;
    }
    if let Some(disposition) = &entity.disposition {
        text(disposition.kind.as_bytes())?;
        params(&disposition.params)?;
    }
    list(entity.language.len())?;
    for tag in &entity.language {
        text(tag)?;
    }
    if let Kind::Multipart(children) = &entity.kind {
        list(children.len())?;
    }
    if let Kind::Message { envelope, .. } = &entity.kind {
        check_envelope(envelope)?;
    }
    Ok(())
}

fn check_envelope(envelope: &Envelope) -> Result<(), StructureError> {
    for value in [&envelope.date, &envelope.subject, &envelope.in_reply_to, &envelope.message_id] {
        text(value.as_deref().unwrap_or_default())?;
    }
    let lists = [
        &envelope.from,
        &envelope.sender,
        &envelope.reply_to,
        &envelope.to,
        &envelope.cc,
        &envelope.bcc,
    ];
    for entries in lists {
        list(entries.len())?;
        for entry in entries {
            match entry {
                AddressEntry::Mailbox(mailbox) => check_mailbox(mailbox)?,
                AddressEntry::Group { name, members } => {
                    text(name.as_deref().unwrap_or_default().as_bytes())?;
                    list(members.len())?;
                    for member in members {
                        check_mailbox(member)?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_mailbox(mailbox: &Mailbox) -> Result<(), StructureError> {
    text(mailbox.name.as_deref().unwrap_or_default().as_bytes())?;
    text(mailbox.address.as_deref().unwrap_or_default().as_bytes())
}

fn params(params: &[(String, String)]) -> Result<(), StructureError> {
    list(params.len())?;
    for (name, value) in params {
        text(name.as_bytes())?;
        text(value.as_bytes())?;
    }
    Ok(())
}

fn text(bytes: &[u8]) -> Result<(), StructureError> {
    if bytes.len() > MAX_MIME_TEXT {
        return Err(StructureError::TextTooLong { len: bytes.len() });
    }
    Ok(())
}

fn list(len: usize) -> Result<(), StructureError> {
    if len > MAX_MIME_LIST {
        return Err(StructureError::ListTooLong { len });
    }
    Ok(())
}
