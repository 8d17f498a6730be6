//! The messages of the overlay's request-response protocols: what one
//! peer asks another and what it is answered, for fragments
//! (`/epost/frag/1`, [`frag`]; `spec/dht.md` section 3) and for
//! notifications (`/epost/notify/1`, [`notify`]; `spec/notify.md`
//! section 2.2).
//!
//! These are the bodies only. The protocol names, the framing (a 4-byte
//! length checked against [`MAX_FRAG_MESSAGE`] or [`MAX_NOTIFY_MESSAGE`]
//! before the body is read, then `{ "v": 1, "body": <message> }` in CBOR)
//! and the streams are `epost-dht`'s. The messages carry fragments,
//! notifications and receipts as encoded bytes; the services that receive
//! them decode those with this crate's own types and limits. Their serde
//! shape is the wire format: renaming a variant or a field breaks every
//! older peer.
//!
//! [`MAX_FRAG_MESSAGE`]: crate::limits::MAX_FRAG_MESSAGE
//! [`MAX_NOTIFY_MESSAGE`]: crate::limits::MAX_NOTIFY_MESSAGE

pub mod frag;
pub mod notify;
