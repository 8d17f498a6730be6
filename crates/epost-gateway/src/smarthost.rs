//! Relaying mail for foreign domains to a configured smart host: a small
//! SMTP client (EHLO, MAIL, RCPT, DATA) that reports success only when the
//! smart host said `250` to the data, so the gateway's own `250` still
//! means someone durable holds the message.

use std::io;
use std::time::Duration;

use epost_types::mailbox::MailError;
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

/// Why a relay failed: what went wrong, with its cause.
/// [`RelayError::is_permanent`] tells a refusal for good (the sender
/// should hear it) from trouble worth another try. Each text is what a
/// client is told after `cannot relay: `, so the variants that wrap an
/// I/O error say only "unavailable" and leave the rest to their cause.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The smart host refused for good (5xx).
    #[error("the smart host refused: {}", .0.text)]
    Refused(Reply),
    /// A recipient that cannot be written into `RCPT TO:<...>`; never sent.
    #[error("the smart host refused: bad recipient {recipient:?}")]
    BadRecipient { recipient: String },
    /// A 4xx, or a reply of a class the command does not allow.
    #[error("the smart host is unavailable: {}", .0.text)]
    Deferred(Reply),
    #[error("the smart host is unavailable")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("the smart host is unavailable: no connection to {addr} in time")]
    ConnectTimeout { addr: String },
    /// Writing a command or the message, or reading a reply, failed.
    #[error("the smart host is unavailable")]
    Io(#[source] io::Error),
    #[error("the smart host is unavailable: the smart host did not answer in time")]
    ReplyTimeout,
    #[error("the smart host is unavailable: the smart host closed or sent a runaway line")]
    Closed,
    /// What came back instead of a reply line (the line itself: there is
    /// no error beneath it).
    #[error("the smart host is unavailable: not an SMTP reply: {line:?}")]
    NotSmtp { line: String },
    #[error("the smart host is unavailable: the smart host's reply has too many lines")]
    TooManyLines,
}

/// One reply of the smart host: its code, and every line as it came
/// (code included, joined by spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl RelayError {
    /// Whether trying again cannot help: a 5xx, or a recipient that
    /// cannot be sent.
    pub fn is_permanent(&self) -> bool {
        matches!(self, RelayError::Refused(_) | RelayError::BadRecipient { .. })
    }

    /// The smart host's reply, when it answered with one that failed.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            RelayError::Refused(reply) | RelayError::Deferred(reply) => Some(reply),
            _ => None,
        }
    }
}

/// What the SMTP session tells the client: a refusal in the smart host's
/// own words, anything else a temporary failure with the whole chain.
impl From<RelayError> for MailError {
    fn from(error: RelayError) -> Self {
        match error {
            RelayError::Refused(reply) => MailError::NotAllowed(reply.text),
            RelayError::BadRecipient { recipient } => {
                MailError::NotAllowed(format!("bad recipient {recipient:?}"))
            }
            error => MailError::unavailable("cannot relay", error),
        }
    }
}

impl SmartHost {
    /// Hands one message for `to` to the smart host.
    pub async fn relay(
        &self,
        from: Option<&str>,
        to: &[String],
        raw: &[u8],
    ) -> Result<(), RelayError> {
        let addr = || self.addr.clone();
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| RelayError::ConnectTimeout { addr: addr() })?
            .map_err(|source| RelayError::Connect { addr: addr(), source })?;
        let _ = stream.set_nodelay(true);
        let mut conn = BufReader::new(stream);
        self.expect(&mut conn, 220).await?;
        self.command(&mut conn, &format!("EHLO {}", self.hostname), 250).await?;
        let from = from.unwrap_or_default();
        self.command(&mut conn, &format!("MAIL FROM:<{from}>"), 250).await?;
        for rcpt in to {
            if rcpt.contains(['<', '>', '\r', '\n']) {
                return Err(RelayError::BadRecipient { recipient: rcpt.clone() });
            }
            self.command(&mut conn, &format!("RCPT TO:<{rcpt}>"), 250).await?;
        }
        self.command(&mut conn, "DATA", 354).await?;
        let mut body = dot_stuff(raw);
        if !body.ends_with(b"\r\n") {
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b".\r\n");
        conn.get_mut().write_all(&body).await.map_err(RelayError::Io)?;
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
        conn.get_mut().write_all(&bytes).await.map_err(RelayError::Io)?;
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
                    .map_err(RelayError::Io)?;
                if n == 0 || !line.ends_with(b"\n") {
                    return Err(RelayError::Closed);
                }
                let line = String::from_utf8_lossy(&line).trim_end().to_owned();
                let Some(code) = line.get(..3).and_then(|c| c.parse::<u16>().ok()) else {
                    return Err(RelayError::NotSmtp { line });
                };
                text.push_str(&line);
                if line.as_bytes().get(3) == Some(&b'-') {
                    text.push(' ');
                    continue;
                }
                return Ok(Reply { code, text });
            }
            Err(RelayError::TooManyLines)
        };
        let reply = tokio::time::timeout(self.timeout, read)
            .await
            .map_err(|_| RelayError::ReplyTimeout)??;
        match reply.code / 100 {
            class if class == want / 100 => Ok(()),
            5 => Err(RelayError::Refused(reply)),
            _ => Err(RelayError::Deferred(reply)),
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
    use epost_types::mailbox::MailErrorKind;
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    use super::*;

    #[test]
    fn dots_at_line_starts_are_doubled() {
        assert_eq!(dot_stuff(b".a\r\nb\r\n.\r\n..c"), b"..a\r\nb\r\n..\r\n...c");
    }

    fn smart_host(addr: String, timeout: Duration) -> SmartHost {
        SmartHost { addr, hostname: "gw.example.test".into(), timeout }
    }

    /// A smart host on loopback that answers the connection and then each
    /// command (a whole message after a 354) with the next of `replies`;
    /// it returns what it heard.
    async fn fake(replies: &'static [&'static str]) -> (SmartHost, JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut conn = BufReader::new(stream);
            let mut heard = String::new();
            for reply in replies {
                conn.get_mut().write_all(format!("{reply}\r\n").as_bytes()).await.unwrap();
                let data = reply.starts_with("354");
                loop {
                    let mut line = String::new();
                    if conn.read_line(&mut line).await.unwrap() == 0 {
                        return heard;
                    }
                    heard.push_str(&line);
                    if !data || line == ".\r\n" {
                        break;
                    }
                }
            }
            heard
        });
        (smart_host(addr, Duration::from_secs(30)), server)
    }

    fn to(rcpt: &str) -> Vec<String> {
        vec![rcpt.to_owned()]
    }

    #[tokio::test]
    async fn a_message_is_relayed_dot_stuffed() {
        let replies = &["220 mx", "250-mx\r\n250 SIZE", "250 ok", "251 ok", "354 go", "250 kept"];
        let (host, server) = fake(replies).await;
        host.relay(Some("alice@example.test"), &to("dave@example.net"), b".x\r\nend")
            .await
            .unwrap();
        let heard = server.await.unwrap();
        assert_eq!(
            heard,
            "EHLO gw.example.test\r\nMAIL FROM:<alice@example.test>\r\n\
             RCPT TO:<dave@example.net>\r\nDATA\r\n..x\r\nend\r\n.\r\nQUIT\r\n"
        );
    }

    #[tokio::test]
    async fn a_5xx_is_permanent_and_the_client_hears_the_smart_hosts_words() {
        let (host, _server) = fake(&["220 mx", "250 mx", "250 ok", "550 5.1.1 no such user"]).await;
        let error = host.relay(None, &to("nobody@example.net"), b"x").await.unwrap_err();
        assert!(error.is_permanent(), "{error:?}");
        assert_eq!(error.reply().map(|r| r.code), Some(550));
        let mail = MailError::from(error);
        assert_eq!(mail.kind(), MailErrorKind::Refused);
        assert_eq!(mail.with_causes(), "550 5.1.1 no such user");
    }

    #[tokio::test]
    async fn a_recipient_that_cannot_be_sent_is_refused_unsent() {
        let (host, server) = fake(&["220 mx", "250 mx", "250 ok"]).await;
        let error = host.relay(None, &to("a>b@example.net"), b"x").await.unwrap_err();
        assert!(
            matches!(&error, RelayError::BadRecipient { recipient } if recipient == "a>b@example.net")
        );
        assert!(error.is_permanent());
        assert_eq!(MailError::from(error).with_causes(), "bad recipient \"a>b@example.net\"");
        assert!(!server.await.unwrap().contains("RCPT"));
    }

    #[tokio::test]
    async fn a_4xx_is_temporary() {
        let (host, _server) = fake(&["220 mx", "250-mx\r\n250 SIZE", "451 4.3.0 busy"]).await;
        let error = host.relay(None, &to("dave@example.net"), b"x").await.unwrap_err();
        assert!(!error.is_permanent(), "{error:?}");
        assert_eq!(error.reply().map(|r| r.code), Some(451));
        let mail = MailError::from(error);
        assert_eq!(mail.kind(), MailErrorKind::Temporary);
        assert_eq!(
            mail.with_causes(),
            "cannot relay: the smart host is unavailable: 451 4.3.0 busy"
        );
    }

    #[tokio::test]
    async fn no_connection_is_temporary_and_keeps_the_io_error() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap().to_string();
        drop(closed);
        let host = smart_host(addr.clone(), Duration::from_secs(30));
        let error = host.relay(None, &to("dave@example.net"), b"x").await.unwrap_err();
        let RelayError::Connect { addr: tried, source } = &error else {
            panic!("not a connect error: {error:?}");
        };
        assert_eq!((tried, source.kind()), (&addr, io::ErrorKind::ConnectionRefused));
        let io = source.to_string();
        assert!(!error.is_permanent() && error.reply().is_none());
        let text = MailError::from(error).with_causes();
        assert_eq!(text, format!("cannot relay: the smart host is unavailable: {io}"));
    }

    #[tokio::test]
    async fn silence_is_a_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host =
            smart_host(listener.local_addr().unwrap().to_string(), Duration::from_millis(200));
        let _silent = tokio::spawn(async move {
            let (_stream, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await
        });
        let error = host.relay(None, &to("dave@example.net"), b"x").await.unwrap_err();
        assert!(matches!(error, RelayError::ReplyTimeout), "{error:?}");
        assert_eq!(
            MailError::from(error).with_causes(),
            "cannot relay: the smart host is unavailable: the smart host did not answer in time"
        );
    }
}
