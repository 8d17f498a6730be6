//! `/epost/notify/1`: carrying sealed notifications to inbox holders,
//! receipts that release them, and pulls by their recipient.
//!
//! Framed like every epost protocol (see `protocol` and `wire`): one
//! versioned CBOR value behind a 4-byte big-endian length checked against
//! [`MAX_NOTIFY_MESSAGE`] before the body is read. The messages are
//! `epost-types`' ([`epost_types::wire::notify`]), and the overlay only
//! carries them: the notifications, receipts and pull authorisations
//! inside are encoded values that the node's notification service decodes
//! and judges (`spec/notify.md`). When its queue is full the overlay
//! answers `RateLimited` itself.

use epost_types::limits::MAX_NOTIFY_MESSAGE;
use epost_types::wire::notify::{NotifyRefusal, NotifyRequest, NotifyResponse};
use libp2p::StreamProtocol;

use crate::protocol::{Protocol, Unavailable};
use crate::rpc::InboundRequest;

/// The protocol name on the wire.
pub const NOTIFY_PROTOCOL: StreamProtocol = StreamProtocol::new("/epost/notify/1");

/// `/epost/notify/1` as a [`Protocol`]: requests and responses alike are
/// limited to [`MAX_NOTIFY_MESSAGE`].
#[derive(Debug)]
pub enum Notify {}

impl Protocol for Notify {
    type Request = NotifyRequest;
    type Response = NotifyResponse;
    const NAME: StreamProtocol = NOTIFY_PROTOCOL;
    const LABEL: &'static str = "notify";
    const MAX_REQUEST: usize = MAX_NOTIFY_MESSAGE;
    const MAX_RESPONSE: usize = MAX_NOTIFY_MESSAGE;

    /// A full queue means the service is behind: the sender backs off
    /// exactly as when it is rate limited.
    fn unavailable(why: Unavailable) -> NotifyResponse {
        let (reason, detail) = match why {
            Unavailable::Busy => (NotifyRefusal::RateLimited, "notification service unavailable"),
            Unavailable::Stopped => (NotifyRefusal::Internal, "notification service unavailable"),
            Unavailable::RateLimited => (NotifyRefusal::RateLimited, crate::protocol::RATE_LIMITED),
        };
        NotifyResponse::Refused { reason, detail: detail.into() }
    }
}

/// A notify request from a peer, for the notification service to answer
/// through [`DhtClient::respond_notify`](crate::DhtClient::respond_notify).
pub type InboundNotify = InboundRequest<Notify>;

#[cfg(test)]
mod tests {
    use std::io;

    use epost_types::limits::{MAX_NOTIFICATION, MAX_PENDING};
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;
    use serde_bytes::ByteBuf;

    use super::*;
    use crate::protocol::Codec;
    use crate::wire;

    fn codec() -> Codec<Notify> {
        Codec::default()
    }

    fn bytes(len: usize, fill: u8) -> ByteBuf {
        ByteBuf::from(vec![fill; len])
    }

    fn request_round_trip(req: NotifyRequest) {
        let mut buf = Cursor::new(Vec::new());
        block_on(codec().write_request(&NOTIFY_PROTOCOL, &mut buf, req.clone())).unwrap();
        let mut read = Cursor::new(buf.into_inner());
        let back = block_on(codec().read_request(&NOTIFY_PROTOCOL, &mut read)).unwrap();
        assert_eq!(back, req);
    }

    fn response_round_trip(res: NotifyResponse) {
        let mut buf = Cursor::new(Vec::new());
        block_on(codec().write_response(&NOTIFY_PROTOCOL, &mut buf, res.clone())).unwrap();
        let mut read = Cursor::new(buf.into_inner());
        let back = block_on(codec().read_response(&NOTIFY_PROTOCOL, &mut read)).unwrap();
        assert_eq!(back, res);
    }

    #[test]
    fn messages_round_trip() {
        request_round_trip(NotifyRequest::Deliver {
            notifications: vec![bytes(3, 1), bytes(MAX_NOTIFICATION, 2)],
        });
        request_round_trip(NotifyRequest::Deliver { notifications: Vec::new() });
        request_round_trip(NotifyRequest::Receipt { receipt: bytes(200, 3) });
        request_round_trip(NotifyRequest::Pull { inbox: [4; 32], auth: bytes(150, 5) });
        response_round_trip(NotifyResponse::Accepted { ids: vec![[1; 32], [2; 32]] });
        response_round_trip(NotifyResponse::Done);
        response_round_trip(NotifyResponse::Pending { notifications: vec![bytes(10, 6)] });
        for reason in [
            NotifyRefusal::Malformed,
            NotifyRefusal::RateLimited,
            NotifyRefusal::Full,
            NotifyRefusal::Unauthorized,
            NotifyRefusal::Internal,
        ] {
            response_round_trip(NotifyResponse::Refused { reason, detail: reason.to_string() });
        }
    }

    #[test]
    fn oversized_length_is_refused_before_reading() {
        let mut raw = u32::try_from(MAX_NOTIFY_MESSAGE + 1).unwrap().to_be_bytes().to_vec();
        raw.extend_from_slice(&[0; 16]);
        let err =
            block_on(codec().read_request(&NOTIFY_PROTOCOL, &mut Cursor::new(raw))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("exceeds"), "{err}");
    }

    #[test]
    fn oversized_message_is_not_sent() {
        let req = NotifyRequest::Receipt { receipt: bytes(MAX_NOTIFY_MESSAGE, 0) };
        let mut buf = Cursor::new(Vec::new());
        let err = block_on(codec().write_request(&NOTIFY_PROTOCOL, &mut buf, req)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(buf.into_inner().is_empty(), "nothing of a refused message is written");
    }

    #[test]
    fn garbage_and_wrong_version_are_errors() {
        let mut raw = 4u32.to_be_bytes().to_vec();
        raw.extend_from_slice(&[0xff, 0x00, 0x13, 0x37]);
        assert!(block_on(codec().read_request(&NOTIFY_PROTOCOL, &mut Cursor::new(raw))).is_err());

        let mut body = Vec::new();
        ciborium::ser::into_writer(&wire::Wire { v: 2, body: NotifyResponse::Done }, &mut body)
            .unwrap();
        let mut raw = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        raw.extend_from_slice(&body);
        let err =
            block_on(codec().read_response(&NOTIFY_PROTOCOL, &mut Cursor::new(raw))).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn a_frag_message_is_not_a_notify_message() {
        let mut buf = Cursor::new(Vec::new());
        let frag = epost_types::wire::frag::FragRequest::Probe { objects: vec![[1; 32]] };
        block_on(wire::write_message(&mut buf, &frag, MAX_NOTIFY_MESSAGE, "frag")).unwrap();
        let mut read = Cursor::new(buf.into_inner());
        assert!(block_on(codec().read_request(&NOTIFY_PROTOCOL, &mut read)).is_err());
    }

    #[test]
    fn the_overlay_refuses_rate_limited_when_behind_and_internal_when_stopped() {
        let refused = |reason| NotifyResponse::Refused {
            reason,
            detail: "notification service unavailable".into(),
        };
        assert_eq!(Notify::unavailable(Unavailable::Busy), refused(NotifyRefusal::RateLimited));
        assert_eq!(Notify::unavailable(Unavailable::Stopped), refused(NotifyRefusal::Internal));
        assert_eq!(
            Notify::unavailable(Unavailable::RateLimited),
            NotifyResponse::Refused {
                reason: NotifyRefusal::RateLimited,
                detail: crate::protocol::RATE_LIMITED.into()
            }
        );
    }

    // How batches are split is `epost-types`' to test; that each one fits
    // the frame is checked here, where the frame is.
    #[test]
    fn every_deliver_batch_of_the_largest_notifications_fits_one_message() {
        let large: Vec<ByteBuf> = (0..150u8).map(|i| bytes(MAX_NOTIFICATION, i)).collect();
        let batches = NotifyRequest::deliver_batches(large);
        assert!(batches.len() > 1);
        for batch in batches {
            assert!(wire::encoded_len(&batch) - 4 <= MAX_NOTIFY_MESSAGE);
            let mut buf = Cursor::new(Vec::new());
            block_on(codec().write_request(&NOTIFY_PROTOCOL, &mut buf, batch)).unwrap();
        }
    }

    #[test]
    fn a_full_page_of_the_largest_notifications_fits_one_message() {
        let page = NotifyResponse::Pending {
            notifications: (0..MAX_PENDING).map(|_| bytes(MAX_NOTIFICATION, 9)).collect(),
        };
        assert!(wire::encoded_len(&page) - 4 <= MAX_NOTIFY_MESSAGE);
    }
}
