//! Every size bound of the formats, in one place, so a reviewer can see at
//! a glance how much memory a hostile peer can make a decoder spend.
//!
//! Decoders check the input length against these constants *before*
//! parsing. Changing one is a format change: update the spec that states
//! it (`spec/formats.md`; `spec/dht.md` and `spec/notify.md` for the
//! overlay's messages).

/// Deepest CBOR nesting any decoder follows. Our values nest at most four
/// levels; the bound stops a hostile input from exhausting the stack.
pub const MAX_CBOR_DEPTH: usize = 16;

/// Largest encoded [`SignedEnvelope`](crate::envelope::SignedEnvelope).
/// Envelopes travel as Kademlia record values, whose packets libp2p caps
/// at 16 KiB by default.
pub const MAX_ENVELOPE: usize = 16 * 1024;

/// Largest envelope payload: [`MAX_ENVELOPE`] minus room for the fixed
/// fields (version, kind, signer, signature and CBOR framing, under 160
/// bytes), so every envelope that can be signed can also be decoded.
pub const MAX_ENVELOPE_PAYLOAD: usize = MAX_ENVELOPE - 256;

/// Chunk size a writer uses unless told otherwise.
pub const DEFAULT_CHUNK_SIZE: usize = 1024 * 1024;

/// Smallest chunk size. Together with [`MIN_FANOUT`] it guarantees that
/// any length up to `u64::MAX` fits in [`MAX_TREE_DEPTH`] manifest levels
/// (16 × 16^15 = 2^64). Tiny sizes are for tests that force trees cheaply.
pub const MIN_CHUNK_SIZE: usize = 16;

/// Largest chunk size a writer may use and a reader accepts in a manifest.
pub const MAX_CHUNK_SIZE: usize = 4 * 1024 * 1024;

/// Fewest children a full manifest holds (see [`MIN_CHUNK_SIZE`]).
pub const MIN_FANOUT: usize = 16;

/// Most children one manifest may list. A child entry encodes in at most
/// 79 bytes, so a full manifest stays near 320 KiB, under [`MAX_MANIFEST`].
pub const MAX_FANOUT: usize = 4096;

/// Children per manifest a writer uses unless told otherwise. With 1 MiB
/// chunks one manifest covers 4 GiB and a two-level tree 16 TiB.
pub const DEFAULT_FANOUT: usize = MAX_FANOUT;

/// Most manifest levels above the data chunks. A reader holds at most one
/// pending child list per level, so this bounds its memory.
pub const MAX_TREE_DEPTH: u8 = 16;

/// Largest encoded manifest (the body of a manifest object).
pub const MAX_MANIFEST: usize = 512 * 1024;

/// Bytes an object's ciphertext adds to its body: the kind byte and the
/// 16-byte AES-GCM tag.
pub const OBJECT_OVERHEAD: usize = 1 + 16;

/// Largest object ciphertext the storage network carries: a full chunk
/// (manifests are smaller) plus [`OBJECT_OVERHEAD`].
pub const MAX_OBJECT_CIPHERTEXT: usize = MAX_CHUNK_SIZE + OBJECT_OVERHEAD;

/// Most bytes an erasure codec may pad a fragment beyond its share
/// (`ceil(object_len / k)`) of the object.
pub const MAX_FRAGMENT_PADDING: usize = 64;

/// Largest encoded fragment: a whole object (k = 1) with its padding, 255
/// hashes, and the header.
pub const MAX_FRAGMENT: usize = MAX_OBJECT_CIPHERTEXT + MAX_FRAGMENT_PADDING + 16 * 1024;

/// Largest encoded node key file.
pub const MAX_KEYFILE: usize = 1024;

/// Largest value of a DHT record (an encoded log head, certificate or
/// presence envelope). Holders refuse anything larger before decoding.
pub const MAX_RECORD: usize = 8 * 1024;

/// Longest log name, in UTF-8 bytes.
pub const MAX_LOG_NAME: usize = 255;

/// Largest application payload of a data log entry.
pub const MAX_LOG_ENTRY: usize = 64 * 1024;

/// Largest application state a snapshot entry may carry.
pub const MAX_SNAPSHOT_STATE: usize = 64 * 1024;

/// Largest encoded log entry of either kind. A snapshot's index of 499
/// entry references is about 34 KiB; with a full state it stays under
/// 100 KiB. Data entries are bounded tighter by [`MAX_LOG_ENTRY`].
pub const MAX_LOG_SNAPSHOT: usize = 128 * 1024;

/// Most peer ids in a presence record.
pub const MAX_PRESENCE_PEERS: usize = 8;

/// Longest peer id in a presence record (libp2p peer ids are multihashes:
/// 38 bytes for an inlined Ed25519 key).
pub const MAX_PEER_ID: usize = 64;

/// Most listen addresses in a presence record.
pub const MAX_PRESENCE_ADDRS: usize = 16;

/// Longest listen address (multiaddr text) in a presence record.
pub const MAX_MULTIADDR: usize = 256;

/// Longest notification summary, in UTF-8 bytes.
pub const MAX_SUMMARY: usize = 256;

/// Largest encoded sealed notification (the unit inbox holders buffer).
pub const MAX_NOTIFICATION: usize = 8 * 1024;

/// Most notification ids one receipt acknowledges: 256 ids encode in
/// about 8.7 KiB, well inside an envelope.
pub const MAX_RECEIPT_IDS: usize = 256;

/// Largest encoded user bundle, plain or passphrase-wrapped.
pub const MAX_USER_BUNDLE: usize = 8 * 1024;

/// Largest `/epost/frag/1` message, request or response, length prefix
/// excluded ([`wire::frag`](crate::wire::frag)). Well above one encoded
/// fragment of the largest object ([`MAX_FRAGMENT`]), so a `Store` can
/// carry several; senders split their batches to stay under it.
pub const MAX_FRAG_MESSAGE: usize = 17 * 1024 * 1024;

/// Most objects one fragment `Renew` request names (32 bytes each: 128 KiB
/// of ids).
pub const MAX_RENEW: usize = 4096;

/// Largest `/epost/notify/1` message, request or response, length prefix
/// excluded ([`wire::notify`](crate::wire::notify)).
pub const MAX_NOTIFY_MESSAGE: usize = 256 * 1024;

/// Most sealed notifications in one `Deliver` request.
pub const MAX_DELIVER: usize = 64;

/// Most sealed notifications in one `Pending` answer to a pull. Chosen so
/// that a full page of the largest ([`MAX_NOTIFICATION`]) fits one
/// [`MAX_NOTIFY_MESSAGE`]; a puller that gets this many receipts them and
/// pulls again.
pub const MAX_PENDING: usize = 24;

/// Most MIME entities a stored message structure describes. A message
/// with more is stored without one (its structure is then found from its
/// bytes when asked, as for mail stored before structures were kept).
pub const MAX_MIME_ENTITIES: usize = 1024;

/// Deepest nesting of a stored structure (the top entity is at depth 0);
/// deeper parts are described as leaves when the structure is found.
pub const MAX_MIME_DEPTH: usize = 32;

/// Longest text of a stored structure: a parameter name or value, a
/// header value, a display name or address.
pub const MAX_MIME_TEXT: usize = 4096;

/// Most items of one list of a stored structure: parameters, language
/// tags, children of a multipart, the items of an address field, the
/// members of a group.
pub const MAX_MIME_LIST: usize = 512;

/// Largest encoded message structure. With at most 128 KiB of inline
/// pieces it keeps a message manifest well under [`MAX_MANIFEST`].
pub const MAX_MIME_STRUCTURE: usize = 192 * 1024;
