//! Relaying mail for foreign domains to a configured smart host: a small
//! SMTP client (EHLO, MAIL, RCPT, DATA) that reports success only when the
//! smart host said `250` to the data, so the gateway's own `250` still
//! means someone durable holds the message.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest reply line accepted from the smart host.
const MAX_REPLY_LINE: usize = 4096;
/// Most lines of one (multi-line) reply.
const MAX_REPLY_LINES: usize = 64;

/// Where and how to relay.
#[derive(Debug, Clone)]
pub struct SmartHost {
    /// "host:port".
    pub addr: String,
    /// Our name in EHLO.
    pub hostname: String,
    /// For connecting and for each reply.
    pub timeout: Duration,
}

/// Why a relay failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The smart host refused for good (5xx): the sender should know.
    #[error("the smart host refused: {0}")]
    Refused(String),
    /// Try again later: a 4xx, a timeout, a broken connection.
    #[error("the smart host is unavailable: {0}")]
    Unavailable(String),
}

impl SmartHost {
    /// Hands one message for `to` to the smart host.
    pub async fn relay(
        &self,
        from: Option<&str>,
        to: &[String],
        raw: &[u8],
    ) -> Result<(), RelayError> {
        let unavailable = |e: std::io::Error| RelayError::Unavailable(e.to_string());
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| {
                RelayError::Unavailable(format!("no connection to {} in time", self.addr))
            })?
            .map_err(unavailable)?;
        let _ = stream.set_nodelay(true);
        let mut conn = BufReader::new(stream);
        self.expect(&mut conn, 220).await?;
        self.command(&mut conn, &format!("EHLO {}", self.hostname), 250).await?;
        let from = from.unwrap_or_default();
        self.command(&mut conn, &format!("MAIL FROM:<{from}>"), 250).await?;
        for rcpt in to {
            if rcpt.contains(['<', '>', '\r', '\n']) {
                return Err(RelayError::Refused(format!("bad recipient {rcpt:?}")));
            }
            self.command(&mut conn, &format!("RCPT TO:<{rcpt}>"), 250).await?;
        }
        self.command(&mut conn, "DATA", 354).await?;
        let mut body = dot_stuff(raw);
        if !body.ends_with(b"\r\n") {
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b".\r\n");
        conn.get_mut().write_all(&body).await.map_err(unavailable)?;
        self.expect(&mut conn, 250).await?;
        let _ = conn.get_mut().write_all(b"QUIT\r\n").await;
        Ok(())
    }

    async fn command(
        &self,
        conn: &mut BufReader<TcpStream>,
        line: &str,
        want: u16,
    ) -> Result<(), RelayError> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        conn.get_mut()
            .write_all(&bytes)
            .await
            .map_err(|e| RelayError::Unavailable(e.to_string()))?;
        self.expect(conn, want).await
    }

    /// Reads one reply (all its lines); `want`'s class is success (a 251
    /// counts as 250).
    async fn expect(&self, conn: &mut BufReader<TcpStream>, want: u16) -> Result<(), RelayError> {
        let read = async {
            let mut text = String::new();
            for _ in 0..MAX_REPLY_LINES {
                let mut line = Vec::new();
                let n = (&mut *conn)
                    .take(MAX_REPLY_LINE as u64)
                    .read_until(b'\n', &mut line)
                    .await
                    .map_err(|e| RelayError::Unavailable(e.to_string()))?;
                if n == 0 || !line.ends_with(b"\n") {
                    return Err(RelayError::Unavailable(
                        "the smart host closed or sent a runaway line".into(),
                    ));
                }
                let line = String::from_utf8_lossy(&line).trim_end().to_owned();
                let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| {
                    RelayError::Unavailable(format!("not an SMTP reply: {line:?}"))
                })?;
                text.push_str(&line);
                if line.as_bytes().get(3) == Some(&b'-') {
                    text.push(' ');
                    continue;
                }
                return Ok((code, text));
            }
            Err(RelayError::Unavailable("the smart host's reply has too many lines".into()))
        };
        let (code, text) = tokio::time::timeout(self.timeout, read).await.map_err(|_| {
            RelayError::Unavailable("the smart host did not answer in time".into())
        })??;
        match code {
            c if c / 100 == want / 100 => Ok(()),
            c if c / 100 == 5 => Err(RelayError::Refused(text)),
            _ => Err(RelayError::Unavailable(text)),
        }
    }
}

/// A leading '.' on any line gets another (RFC 5321 section 4.5.2).
fn dot_stuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 16);
    let mut at_line_start = true;
    for b in raw {
        if at_line_start && *b == b'.' {
            out.push(b'.');
        }
        out.push(*b);
        at_line_start = *b == b'\n';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_at_line_starts_are_doubled() {
        assert_eq!(dot_stuff(b".a\r\nb\r\n.\r\n..c"), b"..a\r\nb\r\n..\r\n...c");
    }
}
