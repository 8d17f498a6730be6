//! An `AsyncWrite` that feeds an HTTP response body through a bounded
//! channel, so a failure half-way through a download aborts the body (the
//! client sees a broken transfer) instead of silently truncating it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

pub(crate) type BodyItem = Result<Bytes, io::Error>;

pub(crate) struct BodyWriter {
    tx: PollSender<BodyItem>,
}

impl BodyWriter {
    pub(crate) fn new(tx: mpsc::Sender<BodyItem>) -> Self {
        Self { tx: PollSender::new(tx) }
    }
}

impl AsyncWrite for BodyWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let closed = || io::Error::new(io::ErrorKind::BrokenPipe, "the client went away");
        ready!(self.tx.poll_reserve(cx)).map_err(|_| closed())?;
        self.tx.send_item(Ok(Bytes::copy_from_slice(buf))).map_err(|_| closed())?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
