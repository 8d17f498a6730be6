//! The message as it goes after `DATA`: dot-stuffed (RFC 5321 4.5.2) and
//! ended with `.`; written block by block, each under its own timeout (a
//! slow but moving link is no dead one). Ours rather than mail-send's
//! `write_message`, which adds an empty line to a message that already
//! ends in CRLF, and times the whole message at once.

use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Bytes written under one `data_block` timeout.
const BLOCK: usize = 64 * 1024;

/// `body` dot-stuffed and terminated. A dot after any CR or LF is doubled,
/// not only after CRLF: a receiver that takes a bare LF for a line end
/// then cannot be made to see an early end of data (SMTP smuggling).
pub(crate) fn stuffed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    let mut line_start = true;
    for &b in body {
        if b == b'.' && line_start {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n' || b == b'\r';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Why the data could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error("writing the message timed out after {0:?}")]
    Timeout(Duration),
    #[error("writing the message failed")]
    Io(#[source] std::io::Error),
}

/// Writes `bytes` block by block, each within `block_timeout`.
pub(crate) async fn write<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    block_timeout: Duration,
) -> Result<(), WriteError> {
    for block in bytes.chunks(BLOCK) {
        tokio::time::timeout(block_timeout, stream.write_all(block))
            .await
            .map_err(|_| WriteError::Timeout(block_timeout))?
            .map_err(WriteError::Io)?;
    }
    tokio::time::timeout(block_timeout, stream.flush())
        .await
        .map_err(|_| WriteError::Timeout(block_timeout))?
        .map_err(WriteError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffing() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"A: b\r\n\r\nhi\r\n", b"A: b\r\n\r\nhi\r\n.\r\n"),
            (b"A: b\r\n\r\nhi", b"A: b\r\n\r\nhi\r\n.\r\n"),
            (b".start\r\n", b"..start\r\n.\r\n"),
            (b"a\r\n.\r\n", b"a\r\n..\r\n.\r\n"),
            (b"a\r\n..x\r\n", b"a\r\n...x\r\n.\r\n"),
            (b"a\n.\r\nMAIL FROM:<>\r\n", b"a\n..\r\nMAIL FROM:<>\r\n.\r\n"),
            (b"a. b.\r\n", b"a. b.\r\n.\r\n"),
        ];
        for (body, want) in cases {
            assert_eq!(stuffed(body), want, "{:?}", String::from_utf8_lossy(body));
        }
    }
}
