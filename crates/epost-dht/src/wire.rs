//! The framing every epost request-response protocol shares: one CBOR
//! value, `{ "v": 1, "body": <message> }`, behind a 4-byte big-endian
//! length that is checked against the protocol's limit before a single
//! byte of the body is read. A stream carries one request and one
//! response, then closes.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Wire version of every message framed here.
pub(crate) const WIRE_VERSION: u8 = 1;

/// Nesting followed at most while decoding a body.
const MAX_DEPTH: usize = 32;

#[derive(Serialize, Deserialize)]
pub(crate) struct Wire<T> {
    pub(crate) v: u8,
    pub(crate) body: T,
}

/// Reads one message of at most `max` bytes; `what` names the protocol in
/// errors ("frag", "notify").
pub(crate) async fn read_message<T, R>(io: &mut R, max: usize, what: &str) -> io::Result<T>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin + Send,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} message of {len} bytes exceeds the {max}-byte limit"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    let wire: Wire<T> = ciborium::de::from_reader_with_recursion_limit(&buf[..], MAX_DEPTH)
        .map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("bad {what} message: {e}"))
        })?;
    if wire.v != WIRE_VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} message version {} (this node speaks {WIRE_VERSION})", wire.v),
        ));
    }
    Ok(wire.body)
}

/// Writes one message, refusing to send one over `max` bytes (the peer
/// would refuse it anyway), then closes the writing side.
pub(crate) async fn write_message<T, W>(
    io: &mut W,
    body: &T,
    max: usize,
    what: &str,
) -> io::Result<()>
where
    T: Serialize,
    W: AsyncWrite + Unpin + Send,
{
    let mut buf = Vec::new();
    ciborium::ser::into_writer(&Wire { v: WIRE_VERSION, body }, &mut buf)
        .map_err(|e| io::Error::other(format!("cannot encode {what} message: {e}")))?;
    if buf.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} message of {} bytes exceeds the {max}-byte limit", buf.len()),
        ));
    }
    let len = u32::try_from(buf.len()).map_err(io::Error::other)?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(&buf).await?;
    io.close().await
}

/// The size `body` has on the wire, length prefix included.
#[cfg(test)]
pub(crate) fn encoded_len<T: Serialize>(body: &T) -> usize {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail; an encoding error would be
    // reported by `write_message` anyway.
    let _ = ciborium::ser::into_writer(&Wire { v: WIRE_VERSION, body }, &mut counter);
    counter.0 + 4
}

#[cfg(test)]
struct Counter(usize);

#[cfg(test)]
impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
