//! One request-response protocol of the overlay, described once: its name,
//! its messages, their size limits, and the answer the overlay gives itself
//! when the service behind it cannot take a request. [`Codec`] frames every
//! such protocol the same way (see `wire`), so `/epost/frag/1` and
//! `/epost/notify/1` differ only in their [`Protocol`] impls.

use std::fmt;
use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncWrite};
use libp2p::StreamProtocol;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire;

/// A request-response protocol: what travels, under what name, within
/// what limits. Implemented by the zero-sized markers [`Frag`](crate::Frag)
/// and [`Notify`](crate::Notify).
pub trait Protocol: Send + 'static {
    /// What a peer asks.
    type Request: Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static;
    /// What it is answered.
    type Response: Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static;

    /// The protocol name on the wire.
    const NAME: StreamProtocol;
    /// A short name for errors and logs ("frag", "notify").
    const LABEL: &'static str;
    /// The largest request read or written, length prefix excluded.
    const MAX_REQUEST: usize;
    /// The largest response read or written, length prefix excluded.
    const MAX_RESPONSE: usize;

    /// The answer the overlay sends on its own when the service cannot
    /// take a request, so the peer backs off instead of waiting.
    fn unavailable(why: Unavailable) -> Self::Response;
}

/// Why the overlay answers a request itself rather than its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The service's queue is full: it is behind; try later or elsewhere.
    Busy,
    /// The service has stopped taking requests (the node is shutting down).
    Stopped,
    /// The peer asks faster than its rate allows: slow down or ask another.
    RateLimited,
}

/// The detail of a refusal over the peer's request rate.
pub(crate) const RATE_LIMITED: &str = "rate limited: too many requests from this peer";

/// The libp2p codec of a [`Protocol`]: length-prefixed, size-limited,
/// versioned CBOR, the limit checked before a byte of the body is read.
pub(crate) struct Codec<P>(PhantomData<fn() -> P>);

impl<P> Default for Codec<P> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<P> Clone for Codec<P> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<P: Protocol> libp2p::request_response::Codec for Codec<P> {
    type Protocol = StreamProtocol;
    type Request = P::Request;
    type Response = P::Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<P::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        wire::read_message(io, P::MAX_REQUEST, P::LABEL).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<P::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        wire::read_message(io, P::MAX_RESPONSE, P::LABEL).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: P::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        wire::write_message(io, &request, P::MAX_REQUEST, P::LABEL).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: P::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        wire::write_message(io, &response, P::MAX_RESPONSE, P::LABEL).await
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;
    use serde_bytes::ByteBuf;

    use super::*;

    /// Requests and responses of different limits, so a mix-up shows.
    enum Tiny {}

    impl Protocol for Tiny {
        type Request = ByteBuf;
        type Response = ByteBuf;
        const NAME: StreamProtocol = StreamProtocol::new("/epost/test/1");
        const LABEL: &'static str = "tiny";
        const MAX_REQUEST: usize = 32;
        const MAX_RESPONSE: usize = 64;

        fn unavailable(_: Unavailable) -> ByteBuf {
            ByteBuf::new()
        }
    }

    /// A body whose message is exactly `limit` bytes.
    fn body_filling(limit: usize) -> ByteBuf {
        let body = (0..limit)
            .rev()
            .map(|n| ByteBuf::from(vec![0xaa; n]))
            .find(|body| wire::encoded_len(body) - 4 <= limit)
            .unwrap();
        assert_eq!(wire::encoded_len(&body) - 4, limit);
        body
    }

    fn framed_len(len: usize) -> Vec<u8> {
        let mut raw = u32::try_from(len).unwrap().to_be_bytes().to_vec();
        // Whatever follows must never be read.
        raw.extend_from_slice(&[0; 16]);
        raw
    }

    #[test]
    fn a_message_at_its_limit_travels() {
        let mut codec = Codec::<Tiny>::default();
        let request = body_filling(Tiny::MAX_REQUEST);
        let mut buf = Cursor::new(Vec::new());
        block_on(codec.write_request(&Tiny::NAME, &mut buf, request.clone())).unwrap();
        let back = block_on(codec.read_request(&Tiny::NAME, &mut Cursor::new(buf.into_inner())));
        assert_eq!(back.unwrap(), request);

        let response = body_filling(Tiny::MAX_RESPONSE);
        let mut buf = Cursor::new(Vec::new());
        block_on(codec.write_response(&Tiny::NAME, &mut buf, response.clone())).unwrap();
        let back = block_on(codec.read_response(&Tiny::NAME, &mut Cursor::new(buf.into_inner())));
        assert_eq!(back.unwrap(), response);
    }

    #[test]
    fn a_length_over_the_limit_is_refused_before_the_body_is_read() {
        let mut codec = Codec::<Tiny>::default();
        let err = block_on(
            codec.read_request(&Tiny::NAME, &mut Cursor::new(framed_len(Tiny::MAX_REQUEST + 1))),
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("tiny message of 33 bytes exceeds"), "{err}");

        // A response may be larger than a request, and no larger than its own limit.
        let mut raw = Cursor::new(framed_len(Tiny::MAX_REQUEST + 1));
        assert!(block_on(codec.read_response(&Tiny::NAME, &mut raw)).is_err_and(|e| {
            // Past the limit check: the 16 zero bytes are a truncated body.
            e.kind() == io::ErrorKind::UnexpectedEof
        }));
        let err = block_on(
            codec.read_response(&Tiny::NAME, &mut Cursor::new(framed_len(Tiny::MAX_RESPONSE + 1))),
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("exceeds the 64-byte limit"), "{err}");
    }

    #[test]
    fn a_message_over_the_limit_is_not_sent() {
        let mut codec = Codec::<Tiny>::default();
        let mut buf = Cursor::new(Vec::new());
        let over = ByteBuf::from(vec![0; Tiny::MAX_REQUEST]);
        let err = block_on(codec.write_request(&Tiny::NAME, &mut buf, over)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(buf.into_inner().is_empty(), "nothing of a refused request is written");

        let mut buf = Cursor::new(Vec::new());
        let over = ByteBuf::from(vec![0; Tiny::MAX_RESPONSE]);
        let err = block_on(codec.write_response(&Tiny::NAME, &mut buf, over)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(buf.into_inner().is_empty(), "nothing of a refused response is written");
    }
}
