//! `/epost/frag/1`: moving erasure-coded fragments between peers.
//!
//! Fragments do not fit in Kademlia records (16 KiB packets), so they travel
//! over a request-response protocol of their own, framed as every epost
//! protocol is (see `wire`): one versioned CBOR value behind a 4-byte
//! big-endian length that is checked against a limit before a single byte
//! of the body is read.

use std::io;

use futures::{AsyncRead, AsyncWrite};
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::wire;

/// The protocol name on the wire.
pub const FRAG_PROTOCOL: StreamProtocol = StreamProtocol::new("/epost/frag/1");

/// The largest request or response body accepted: one fragment of the
/// largest allowed chunk (16 MiB with k = 1) plus headroom for its header.
/// Batches are split by the sender to stay under it.
pub const MAX_MESSAGE: usize = 17 * 1024 * 1024;

/// A 32-byte object id as it travels (the storage layer gives it meaning).
pub type WireId = [u8; 32];

/// What one peer asks another about fragments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FragRequest {
    /// Store these fragments (each an encoded `Fragment`) until `expires`
    /// (ms since the UNIX epoch). Answered only once they are durable.
    Store { fragments: Vec<serde_bytes::ByteBuf>, expires: u64 },
    /// Send the fragment `index` of `object`, if held.
    Fetch { object: WireId, index: u8 },
    /// Which fragment indices of each object are held here?
    Probe { objects: Vec<WireId> },
    /// Extend the lease of every held fragment of these objects to `expires`.
    Extend { objects: Vec<WireId>, expires: u64 },
    /// The same, answered per object, for an owner's renewal: at most
    /// [`MAX_RENEW`] objects, all extended in one commit.
    Renew { objects: Vec<WireId>, expires: u64 },
}

/// Most objects one `Renew` names (32 bytes each: 128 KiB of ids).
pub const MAX_RENEW: usize = 4096;

/// The answer to a [`FragRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FragResponse {
    /// All fragments of a `Store` are durable here.
    Stored,
    /// The requested fragment, encoded.
    Fragment(serde_bytes::ByteBuf),
    /// Not held here.
    NotFound,
    /// For `Probe`: per object (same order), the indices held.
    Held(Vec<Vec<u8>>),
    /// For `Extend`: how many fragments had their lease extended.
    Extended(u32),
    /// For `Renew`: per object (same order), the indices of its fragments
    /// held here whose lease now ends no earlier than asked.
    Renewed(Vec<Vec<u8>>),
    /// The request was refused; `reason` says why (bad fragment, full disk...).
    Refused { reason: RefusalReason, detail: String },
}

/// Why a holder refused a request, in a form the sender can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalReason {
    /// The fragment failed its own integrity check.
    BadFragment,
    /// The holder has no space left.
    NoSpace,
    /// The holder is overloaded; try another or later.
    Busy,
    /// Anything else (I/O error, shutting down).
    Internal,
}

/// The request-response codec: length-prefixed, size-limited, versioned CBOR.
#[derive(Debug, Clone, Default)]
pub struct FragCodec;

async fn read_message<T, R>(io: &mut R) -> io::Result<T>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin + Send,
{
    wire::read_message(io, MAX_MESSAGE, "frag").await
}

async fn write_message<T, W>(io: &mut W, body: &T) -> io::Result<()>
where
    T: Serialize,
    W: AsyncWrite + Unpin + Send,
{
    wire::write_message(io, body, MAX_MESSAGE, "frag").await
}

impl libp2p::request_response::Codec for FragCodec {
    type Protocol = StreamProtocol;
    type Request = FragRequest;
    type Response = FragResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<FragRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<FragResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: FragRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: FragResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &res).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;

    fn round_trip(req: FragRequest) {
        let mut buf = Cursor::new(Vec::new());
        block_on(write_message(&mut buf, &req)).unwrap();
        let mut read = Cursor::new(buf.into_inner());
        let back: FragRequest = block_on(read_message(&mut read)).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn messages_round_trip() {
        round_trip(FragRequest::Fetch { object: [7; 32], index: 3 });
        round_trip(FragRequest::Store {
            fragments: vec![serde_bytes::ByteBuf::from(vec![1, 2, 3])],
            expires: 99,
        });
        round_trip(FragRequest::Probe { objects: vec![[1; 32], [2; 32]] });
    }

    #[test]
    fn oversized_length_is_refused_before_reading() {
        let mut bytes = u32::try_from(MAX_MESSAGE + 1).unwrap().to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 16]);
        let err = block_on(read_message::<FragRequest, _>(&mut Cursor::new(bytes))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("exceeds"));
    }

    #[test]
    fn garbage_and_wrong_version_are_errors() {
        let mut bytes = 4u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0xff, 0x00, 0x13, 0x37]);
        assert!(block_on(read_message::<FragRequest, _>(&mut Cursor::new(bytes))).is_err());

        let mut body = Vec::new();
        ciborium::ser::into_writer(&wire::Wire { v: 9, body: FragResponse::Stored }, &mut body)
            .unwrap();
        let mut bytes = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let err = block_on(read_message::<FragResponse, _>(&mut Cursor::new(bytes))).unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
    }

    #[test]
    fn truncated_body_is_an_error() {
        let mut bytes = 100u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 10]);
        let err = block_on(read_message::<FragRequest, _>(&mut Cursor::new(bytes))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
