//! `/epost/notify/1` messages: delivering sealed notifications to inbox
//! holders, receipts that release them, and pulls by their recipient
//! (`spec/notify.md` section 2.2). The notifications, receipts and pull
//! authorisations inside are encoded values of [`crate::notify`], which
//! the holder decodes and judges.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::limits::{MAX_DELIVER, MAX_NOTIFY_MESSAGE};

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
    /// For `Pull`: up to [`MAX_PENDING`](crate::limits::MAX_PENDING)
    /// encoded `SealedNotification`s.
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

impl fmt::Display for NotifyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_NOTIFICATION;

    fn bytes(len: usize, fill: u8) -> ByteBuf {
        ByteBuf::from(vec![fill; len])
    }

    fn encoded_len(request: &NotifyRequest) -> usize {
        let mut buf = Vec::new();
        ciborium::ser::into_writer(request, &mut buf).unwrap();
        buf.len()
    }

    fn notifications_of(batch: NotifyRequest) -> Vec<ByteBuf> {
        match batch {
            NotifyRequest::Deliver { notifications } => notifications,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deliver_batches_split_by_count() {
        let small: Vec<ByteBuf> = (0..150u8).map(|i| bytes(100, i)).collect();
        let batches = NotifyRequest::deliver_batches(small.clone());
        let batches: Vec<Vec<ByteBuf>> = batches.into_iter().map(notifications_of).collect();
        let counts: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(counts, [64, 64, 22]);
        assert_eq!(batches.concat(), small, "order and contents kept");
    }

    #[test]
    fn deliver_batches_split_by_size_within_the_limit() {
        let large: Vec<ByteBuf> = (0..64u8).map(|i| bytes(MAX_NOTIFICATION, i)).collect();
        let batches = NotifyRequest::deliver_batches(large.clone());
        assert!(batches.len() > 1);
        // The room kept covers the framing around the body too: the overlay
        // checks the framed size (epost-dht's tests).
        assert!(batches.iter().all(|b| encoded_len(b) <= MAX_NOTIFY_MESSAGE - 16));
        let rejoined: Vec<ByteBuf> = batches.into_iter().flat_map(notifications_of).collect();
        assert_eq!(rejoined, large, "order and contents kept");
    }

    #[test]
    fn no_notifications_make_no_batch() {
        assert!(NotifyRequest::deliver_batches(Vec::new()).is_empty());
    }

    #[test]
    fn a_notification_too_large_for_any_message_goes_alone() {
        let huge = bytes(MAX_NOTIFY_MESSAGE, 1);
        let batches = NotifyRequest::deliver_batches(vec![bytes(10, 0), huge, bytes(10, 2)]);
        let sizes: Vec<usize> = batches.into_iter().map(|b| notifications_of(b).len()).collect();
        assert_eq!(sizes, [1, 1, 1]);
    }
}
