//! `/epost/frag/1`: moving erasure-coded fragments between peers.
//!
//! Fragments do not fit in Kademlia records (16 KiB packets), so they travel
//! over a request-response protocol of their own, framed as every epost
//! protocol is (see `protocol` and `wire`): one versioned CBOR value behind
//! a 4-byte big-endian length that is checked against a limit before a
//! single byte of the body is read. The messages are `epost-types`'
//! ([`epost_types::wire::frag`]); the storage service answers them. When
//! its queue is full the overlay answers `Busy` itself.

use epost_types::limits::MAX_FRAG_MESSAGE;
use epost_types::wire::frag::{FragRequest, FragResponse, RefusalReason};
use libp2p::StreamProtocol;

use crate::protocol::{Protocol, RATE_LIMITED, Unavailable};
use crate::rpc::InboundRequest;

/// The protocol name on the wire.
pub const FRAG_PROTOCOL: StreamProtocol = StreamProtocol::new("/epost/frag/1");

/// `/epost/frag/1` as a [`Protocol`]: requests and responses alike may
/// carry whole fragments, so both have the [`MAX_FRAG_MESSAGE`] limit.
#[derive(Debug)]
pub enum Frag {}

impl Protocol for Frag {
    type Request = FragRequest;
    type Response = FragResponse;
    const NAME: StreamProtocol = FRAG_PROTOCOL;
    const LABEL: &'static str = "frag";
    const MAX_REQUEST: usize = MAX_FRAG_MESSAGE;
    const MAX_RESPONSE: usize = MAX_FRAG_MESSAGE;

    /// Over its rate a peer is told `Busy`, which every version of the
    /// protocol reads as "try another peer or later"; the detail says why.
    fn unavailable(why: Unavailable) -> FragResponse {
        let (reason, detail) = match why {
            Unavailable::Busy => (RefusalReason::Busy, "storage service unavailable"),
            Unavailable::Stopped => (RefusalReason::Internal, "storage service unavailable"),
            Unavailable::RateLimited => (RefusalReason::Busy, RATE_LIMITED),
        };
        FragResponse::Refused { reason, detail: detail.into() }
    }
}

/// A fragment request from a peer, for the storage service to answer
/// through [`DhtClient::respond`](crate::DhtClient::respond).
pub type InboundFrag = InboundRequest<Frag>;

#[cfg(test)]
mod tests {
    use std::io;

    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;

    use super::*;
    use crate::protocol::Codec;
    use crate::wire;

    fn read_request(bytes: Vec<u8>) -> io::Result<FragRequest> {
        block_on(Codec::<Frag>::default().read_request(&FRAG_PROTOCOL, &mut Cursor::new(bytes)))
    }

    fn round_trip(req: FragRequest) {
        let mut buf = Cursor::new(Vec::new());
        block_on(Codec::<Frag>::default().write_request(&FRAG_PROTOCOL, &mut buf, req.clone()))
            .unwrap();
        assert_eq!(read_request(buf.into_inner()).unwrap(), req);
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
        let mut bytes = u32::try_from(MAX_FRAG_MESSAGE + 1).unwrap().to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 16]);
        let err = read_request(bytes).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("exceeds"));
    }

    #[test]
    fn garbage_and_wrong_version_are_errors() {
        let mut bytes = 4u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0xff, 0x00, 0x13, 0x37]);
        assert!(read_request(bytes).is_err());

        let mut body = Vec::new();
        ciborium::ser::into_writer(&wire::Wire { v: 9, body: FragResponse::Stored }, &mut body)
            .unwrap();
        let mut bytes = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let err = block_on(
            Codec::<Frag>::default().read_response(&FRAG_PROTOCOL, &mut Cursor::new(bytes)),
        )
        .unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
    }

    #[test]
    fn truncated_body_is_an_error() {
        let mut bytes = 100u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 10]);
        let err = read_request(bytes).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn the_overlay_refuses_busy_when_behind_and_internal_when_stopped() {
        let refused =
            |reason| FragResponse::Refused { reason, detail: "storage service unavailable".into() };
        assert_eq!(Frag::unavailable(Unavailable::Busy), refused(RefusalReason::Busy));
        assert_eq!(Frag::unavailable(Unavailable::Stopped), refused(RefusalReason::Internal));
        assert_eq!(
            Frag::unavailable(Unavailable::RateLimited),
            FragResponse::Refused { reason: RefusalReason::Busy, detail: RATE_LIMITED.into() }
        );
    }
}
