//! COMPRESS=DEFLATE (RFC 4978): a stream that inflates what it reads and
//! deflates what it writes, raw deflate (RFC 1951, no zlib header) both
//! ways. Every flush ends with a sync flush, so each batch of responses
//! reaches the client whole; nothing is flushed when nothing was written.
//! Memory is bounded: compressed output waits in one buffer of at most
//! [`MAX_PENDING`] before writes wait for the socket, and reads inflate
//! into the caller's buffer only.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Compressed bytes read from the peer at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Compressed bytes kept for the peer before a write waits for it.
const MAX_PENDING: usize = 64 * 1024;

/// A deflate-compressed stream over `S`.
pub(crate) struct Deflate<S> {
    inner: S,
    deflate: Compress,
    inflate: Decompress,
    /// Compressed input read from the peer: `input[start..end]` is unused.
    input: Box<[u8]>,
    start: usize,
    end: usize,
    /// The peer ended its compressed stream, or the connection.
    ended: bool,
    /// Compressed output not yet written to the peer, from `sent` on.
    output: Vec<u8>,
    sent: usize,
    /// Bytes were taken since the last sync flush.
    dirty: bool,
}

impl<S> Deflate<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            // Level 6 as zlib's default; `false`: raw deflate.
            deflate: Compress::new(Compression::new(6), false),
            inflate: Decompress::new(false),
            input: vec![0; READ_CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
            ended: false,
            output: Vec::new(),
            sent: 0,
            dirty: false,
        }
    }
}

impl<S: crate::socket::Transport> crate::socket::Transport for Deflate<S> {
    fn ack_now(&self) {
        self.inner.ack_now();
    }
}

/// Deflates all of `input` into `out` with `flush`.
fn deflate_into(
    deflate: &mut Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> io::Result<()> {
    loop {
        out.reserve(input.len() / 2 + 64);
        let before = deflate.total_in();
        deflate.compress_vec(input, out, flush).map_err(io::Error::other)?;
        input = &input[(deflate.total_in() - before) as usize..];
        // Done when the input is taken and the output had room to spare,
        // so the deflater holds nothing the flush asked for.
        if input.is_empty() && out.len() < out.capacity() {
            return Ok(());
        }
    }
}

impl<S: AsyncWrite + Unpin> Deflate<S> {
    /// Writes pending compressed output to the peer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.output.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.output[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.output.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflate<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            // Even with no input left: the inflater may hold output that
            // did not fit the last read (one small input can inflate to
            // a great deal).
            {
                let (before_in, before_out) = (this.inflate.total_in(), this.inflate.total_out());
                let status = this
                    .inflate
                    .decompress(
                        &this.input[this.start..this.end],
                        buf.initialize_unfilled(),
                        FlushDecompress::None,
                    )
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let consumed = (this.inflate.total_in() - before_in) as usize;
                let produced = (this.inflate.total_out() - before_out) as usize;
                this.start += consumed;
                buf.advance(produced);
                if status == Status::StreamEnd {
                    this.ended = true;
                }
                if produced > 0 || this.ended {
                    return Poll::Ready(Ok(()));
                }
                if consumed > 0 && this.start < this.end {
                    continue;
                }
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            // Keep what the inflater could not use yet, and read more.
            this.input.copy_within(this.start..this.end, 0);
            (this.start, this.end) = (0, this.end - this.start);
            if this.end == this.input.len() {
                let error = "compressed input makes no progress";
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, error)));
            }
            let mut chunk = ReadBuf::new(&mut this.input[this.end..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk))?;
            let n = chunk.filled().len();
            this.end += n;
            if n == 0 {
                this.ended = true;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflate<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.output.len() - this.sent >= MAX_PENDING {
            ready!(this.drain(cx))?;
        }
        deflate_into(&mut this.deflate, data, &mut this.output, FlushCompress::None)?;
        this.dirty |= !data.is_empty();
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.dirty {
            deflate_into(&mut this.deflate, &[], &mut this.output, FlushCompress::Sync)?;
            this.dirty = false;
        }
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn both_ends_agree_and_each_flush_arrives_whole() {
        let (a, b) = tokio::io::duplex(1024);
        let (mut a, mut b) = (Deflate::new(a), Deflate::new(b));
        // Larger than every buffer on the way, and compressible.
        let big: Vec<u8> =
            (0..300_000u32).map(|i| b"abcdefgh"[(i % 8) as usize] ^ (i / 4096) as u8).collect();
        let expected = big.clone();
        let writer = tokio::spawn(async move {
            a.write_all(b"* OK first\r\n").await.unwrap();
            a.flush().await.unwrap();
            a.write_all(&big).await.unwrap();
            a.flush().await.unwrap();
            a.shutdown().await.unwrap();
            a
        });
        let mut first = [0u8; 12];
        b.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"* OK first\r\n");
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest.len(), expected.len());
        assert!(rest == expected);
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_small_input_that_inflates_to_more_than_one_read_is_all_read() {
        let (mut a, b) = tokio::io::duplex(1 << 20);
        let mut b = Deflate::new(b);
        let mut deflate = Compress::new(Compression::new(6), false);
        let mut packed = Vec::new();
        deflate_into(&mut deflate, &[b'x'; 200_000], &mut packed, FlushCompress::Sync).unwrap();
        assert!(packed.len() < 1_000, "{}", packed.len());
        a.write_all(&packed).await.unwrap();
        // Nothing more is sent: every byte must come out of what was.
        let mut total = 0;
        let mut out = [0u8; 16 * 1024];
        while total < 200_000 {
            total += b.read(&mut out).await.unwrap();
        }
        assert_eq!(total, 200_000);
    }

    #[tokio::test]
    async fn reads_what_zlib_wrote() {
        // Python's zlib.compressobj(6, DEFLATED, -15), each line followed
        // by flush(Z_SYNC_FLUSH).
        let (mut a, b) = tokio::io::duplex(1024);
        let mut b = Deflate::new(b);
        a.write_all(&[74, 84, 240, 243, 247, 15, 224, 229, 2, 0, 0, 0, 255, 255]).await.unwrap();
        let mut out = [0u8; 64];
        let n = b.read(&mut out).await.unwrap();
        assert_eq!(&out[..n], b"a NOOP\r\n");
        a.write_all(&[74, 130, 210, 0, 0, 0, 0, 255, 255]).await.unwrap();
        let n = b.read(&mut out).await.unwrap();
        assert_eq!(&out[..n], b"b NOOP\r\n");
    }

    #[tokio::test]
    async fn garbage_is_an_error_not_a_hang() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut b = Deflate::new(b);
        a.write_all(&[0xff; 64]).await.unwrap();
        let mut out = [0u8; 64];
        let error = b.read(&mut out).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_sync_flush_ends_with_an_empty_stored_block() {
        let mut deflate = Compress::new(Compression::new(6), false);
        let mut out = Vec::new();
        deflate_into(&mut deflate, b"hello", &mut out, FlushCompress::Sync).unwrap();
        // A sync flush ends with an empty stored block: 00 00 ff ff.
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "{out:?}");
    }
}
