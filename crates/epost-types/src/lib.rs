//! The pure foundation of epost: identifiers, keys, cryptography and every
//! wire and stored format, as `spec/formats.md` defines them.
//!
//! Besides storage objects, it defines the small signed values of the
//! overlay: identity (realm certificates, presence, user bundles;
//! `spec/identity.md`), single-writer logs (`spec/logs.md`), notifications
//! (`spec/notify.md`), and the rule by which DHT holders judge records
//! ([`record`]); and the messages peers exchange over the overlay's
//! fragment and notification protocols ([`wire`]), whose framing and
//! streams are `epost-dht`'s.
//!
//! Everything above this crate (store, DHT, node, gateway, CLI) builds its
//! bytes through these types, so the formats have exactly one
//! implementation and the published known-answer vectors
//! (`spec/vectors/formats-v1.json`) are checked against it by the tests.
//!
//! The one parser it uses that is not its own is `mail-parser` (pure
//! code, no I/O), behind [`mime::parse`]: the node finds a message's
//! structure with it when the message is received and the gateway when a
//! stored message has none, so both read MIME the same way.
//!
//! What this crate must never do:
//!
//! - **No I/O.** No files, sockets, threads or async. The chunk writer and
//!   reader are sans-IO state machines: callers feed bytes and store or
//!   fetch the objects they are handed. The only things read from the
//!   environment are the system clock ([`time::Timestamp::now`]) and the
//!   system random source (key generation, HPKE ephemerals, salts and
//!   nonces).
//! - **No panics on input.** Every decoder is size-limited before it
//!   parses, returns a typed error per operation, and accepts exactly one
//!   encoding of each value.
//! - **No secret in a log.** Key types zeroize on drop and their `Debug`
//!   output is redacted.

pub mod address;
pub mod capability;
pub mod cbor;
pub mod chunk;
pub mod convergent;
pub mod envelope;
pub mod fragment;
pub mod hash;
pub mod id;
pub mod identity;
pub mod keyfile;
pub mod limits;
pub mod log;
pub mod mail;
pub mod mailbox;
pub mod maildate;
pub mod mime;
pub mod notify;
pub mod record;
pub mod seal;
pub mod sign;
pub mod text;
pub mod time;
pub mod wire;

mod fixed;
mod symmetric;

#[cfg(test)]
mod known_answers;
#[cfg(test)]
mod proptests;
