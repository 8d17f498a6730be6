//! `/epost/notify/1`: carrying sealed notifications to inbox holders,
//! receipts that release them, and pulls by their recipient.
//!
//! Framed like every epost protocol (see `protocol` and `wire`): one
//! versioned CBOR value behind a 4-byte big-endian length checked against
//! [`MAX_NOTIFY_MESSAGE`] before the body is read. When the notification
//! service's queue is full the overlay answers `RateLimited` itself. The overlay only carries the bytes: the
//! notifications, receipts and pull authorisations inside are encoded
//! `epost-types` values that the node's notification service decodes and
//! judges (`spec/notify.md`).

use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::protocol::{Protocol, Unavailable};
use crate::rpc::InboundRequest;

/// The protocol name on the wire.
pub const NOTIFY_PROTOCOL: StreamProtocol = StreamProtocol::new("/epost/notify/1");

/// The largest request or response accepted, length prefix excluded.
pub const MAX_NOTIFY_MESSAGE: usize = 256 * 1024;

/// Notifications in one `Deliver` at most.
pub const MAX_DELIVER: usize = 64;

/// Notifications in one `Pending` answer at most. Chosen so that a full
/// page of the largest notifications (8 KiB each) fits one message; a
/// puller that gets this many receipts them and pulls again.
pub const MAX_PENDING: usize = 24;

/// Room kept for everything in a message but the notifications themselves
/// (the frame, the version map, the variant and field names).
const ENVELOPE_ROOM: usize = 64;
/// The most a byte string's CBOR header adds to its length.
const BSTR_HEADER: usize = 5;

/// What one peer asks an inbox holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotifyRequest {
    /// Keep these (each an encoded `SealedNotification`, at most
    /// [`MAX_DELIVER`]) until their recipient receipts them or they expire.
    Deliver { notifications: Vec<ByteBuf> },
    /// Release the notifications this receipt names (an encoded signed
    /// envelope of kind Receipt, signed by their recipient).
    Receipt { receipt: ByteBuf },
    /// Send what is held for `inbox`. `auth` is an encoded Receipt
    /// envelope with no ids and a fresh time, signed by the recipient.
    Pull { inbox: [u8; 32], auth: ByteBuf },
}

/// The answer to a [`NotifyRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotifyResponse {
    /// For `Deliver`: the ids now held here durably (kept now or already),
    /// or already receipted.
    Accepted { ids: Vec<[u8; 32]> },
    /// For `Receipt`: the named notifications are released.
    Done,
    /// For `Pull`: up to [`MAX_PENDING`] encoded `SealedNotification`s.
    Pending { notifications: Vec<ByteBuf> },
    /// The request was refused; `reason` says why.
    Refused { reason: NotifyRefusal, detail: String },
}

/// Why a holder refused a notify request, in a form the sender can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotifyRefusal {
    /// Something in the request does not decode or breaks a limit.
    Malformed,
    /// This peer is sending faster than the holder accepts, or the holder
    /// is overloaded; try later (or another holder).
    RateLimited,
    /// The inbox (or the holder) holds as many notifications as it will.
    Full,
    /// The receipt or pull is not signed by the inbox's recipient.
    Unauthorized,
    /// Anything else (I/O error, shutting down).
    Internal,
}

impl std::fmt::Display for NotifyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            NotifyRefusal::Malformed => "malformed",
            NotifyRefusal::RateLimited => "rate limited",
            NotifyRefusal::Full => "full",
            NotifyRefusal::Unauthorized => "unauthorized",
            NotifyRefusal::Internal => "internal error",
        };
        f.write_str(text)
    }
}

impl NotifyRequest {
    /// `Deliver` requests carrying `notifications` in order, each within
    /// [`MAX_DELIVER`] notifications and [`MAX_NOTIFY_MESSAGE`] bytes.
    /// A single notification too large for any message gets a request of
    /// its own (the holder will refuse it; its size limit is far lower).
    pub fn deliver_batches(notifications: Vec<ByteBuf>) -> Vec<NotifyRequest> {
        let budget = MAX_NOTIFY_MESSAGE - ENVELOPE_ROOM;
        let mut batches = Vec::new();
        let mut batch: Vec<ByteBuf> = Vec::new();
        let mut bytes = 0;
        for notification in notifications {
            let cost = notification.len() + BSTR_HEADER;
            if !batch.is_empty() && (batch.len() == MAX_DELIVER || bytes + cost > budget) {
                batches.push(NotifyRequest::Deliver { notifications: std::mem::take(&mut batch) });
                bytes = 0;
            }
            bytes += cost;
            batch.push(notification);
        }
        if !batch.is_empty() {
            batches.push(NotifyRequest::Deliver { notifications: batch });
        }
        batches
    }
}

/// `/epost/notify/1` as a [`Protocol`]: requests and responses alike are
/// limited to [`MAX_NOTIFY_MESSAGE`].
#[derive(Debug, Clone, Copy)]
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
        let reason = match why {
            Unavailable::Busy => NotifyRefusal::RateLimited,
            Unavailable::Stopped => NotifyRefusal::Internal,
        };
        NotifyResponse::Refused { reason, detail: "notification service unavailable".into() }
    }
}

/// A notify request from a peer, for the notification service to answer
/// through [`DhtClient::respond_notify`](crate::DhtClient::respond_notify).
pub type InboundNotify = InboundRequest<Notify>;

#[cfg(test)]
mod tests {
    use std::io;

    use epost_types::limits::MAX_NOTIFICATION;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;

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
        let frag = crate::frag::FragRequest::Probe { objects: vec![[1; 32]] };
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
    }

    #[test]
    fn deliver_batches_respect_count_and_size() {
        // Many small ones: split by count.
        let small: Vec<ByteBuf> = (0..150u8).map(|i| bytes(100, i)).collect();
        let batches = NotifyRequest::deliver_batches(small.clone());
        let counts: Vec<usize> = batches
            .iter()
            .map(|b| match b {
                NotifyRequest::Deliver { notifications } => notifications.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(counts, [64, 64, 22]);
        // Largest ones: split by bytes, and every batch fits the limit.
        let large: Vec<ByteBuf> = (0..64u8).map(|i| bytes(MAX_NOTIFICATION, i)).collect();
        let batches = NotifyRequest::deliver_batches(large.clone());
        assert!(batches.len() > 1);
        let mut rejoined = Vec::new();
        for batch in batches {
            assert!(wire::encoded_len(&batch) - 4 <= MAX_NOTIFY_MESSAGE);
            let NotifyRequest::Deliver { notifications } = batch else { unreachable!() };
            rejoined.extend(notifications);
        }
        assert_eq!(rejoined, large, "order and contents kept");
        assert!(NotifyRequest::deliver_batches(Vec::new()).is_empty());
    }

    #[test]
    fn a_full_page_of_the_largest_notifications_fits_one_message() {
        let page = NotifyResponse::Pending {
            notifications: (0..MAX_PENDING).map(|_| bytes(MAX_NOTIFICATION, 9)).collect(),
        };
        assert!(wire::encoded_len(&page) - 4 <= MAX_NOTIFY_MESSAGE);
    }
}
