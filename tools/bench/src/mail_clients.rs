//! The two mail clients the `mail` benchmark drives the gateway with, each
//! a real TCP session on loopback speaking just enough of its protocol: an
//! SMTP submitter (EHLO, AUTH PLAIN, one transaction after another, no
//! pipelining) and an IMAP watcher (LOGIN, SELECT INBOX, IDLE, then a
//! FETCH of the new messages' subjects to tell which arrived when).
//!
//! Every reply line is bounded in length and every wait in time, so a
//! gateway that stalls fails the benchmark instead of hanging it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Longest reply line read (the gateway's own command limit).
const MAX_LINE: u64 = 8 * 1024;
/// Largest IMAP literal read (a few header lines are asked for).
const MAX_LITERAL: usize = 64 * 1024;
/// Largest whole message read by [`Imap::fetch_all`].
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// The longest any one reply may take.
const REPLY_WAIT: Duration = Duration::from_secs(60);

/// One line, CRLF included; an error at end of stream or past the bounds.
async fn line(reader: &mut BufReader<OwnedReadHalf>) -> Result<String> {
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(REPLY_WAIT, (&mut *reader).take(MAX_LINE).read_until(b'\n', &mut buf))
            .await
            .context("no reply in time")??;
    ensure!(read > 0, "the server closed the connection");
    ensure!(buf.ends_with(b"\n"), "a reply line longer than {MAX_LINE} bytes");
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn split(stream: TcpStream) -> (BufReader<OwnedReadHalf>, OwnedWriteHalf) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    (BufReader::new(read), write)
}

/// A logged-in SMTP submission session.
pub(crate) struct Smtp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

/// One transaction's outcome.
pub(crate) struct Submitted {
    /// Just before the final `.` was written.
    pub(crate) dot: Instant,
    /// From then to the reply.
    pub(crate) took: Duration,
    /// The reply to the message (250 when accepted).
    pub(crate) code: u16,
}

impl Smtp {
    /// Greeting, EHLO and AUTH PLAIN (plaintext: loopback is trusted).
    pub(crate) async fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Self> {
        let mut s = Self::connect(addr).await?;
        let token = data_encoding::BASE64.encode(format!("\0{user}\0{password}").as_bytes());
        s.command(&format!("AUTH PLAIN {token}"), 235).await?;
        Ok(s)
    }

    /// Greeting and EHLO only, as a mail exchanger is reached (no AUTH).
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = tokio::time::timeout(REPLY_WAIT, TcpStream::connect(addr))
            .await
            .context("cannot connect in time")??;
        let (reader, writer) = split(stream);
        let mut s = Self { reader, writer };
        s.expect(220).await.context("greeting")?;
        s.command("EHLO bench.test", 250).await?;
        Ok(s)
    }

    /// The reply's code (the last line of a multi-line reply).
    async fn reply(&mut self) -> Result<u16> {
        loop {
            let text = line(&mut self.reader).await?;
            let code = text.get(..3).and_then(|c| c.parse().ok()).context("no reply code")?;
            if text.as_bytes().get(3) != Some(&b'-') {
                return Ok(code);
            }
        }
    }

    async fn expect(&mut self, want: u16) -> Result<()> {
        let code = self.reply().await?;
        ensure!(code == want, "got {code}, wanted {want}");
        Ok(())
    }

    async fn command(&mut self, command: &str, want: u16) -> Result<()> {
        self.writer.write_all(format!("{command}\r\n").as_bytes()).await?;
        self.expect(want).await.with_context(|| format!("reply to {command:?}"))
    }

    /// One message (`body` ends with CRLF); refusals are outcomes, broken
    /// sessions errors.
    pub(crate) async fn send(&mut self, from: &str, to: &[&str], body: &[u8]) -> Result<Submitted> {
        self.command(&format!("MAIL FROM:<{from}>"), 250).await?;
        for to in to {
            self.command(&format!("RCPT TO:<{to}>"), 250).await?;
        }
        self.command("DATA", 354).await?;
        self.writer.write_all(&stuffed(body)).await?;
        let dot = Instant::now();
        self.writer.write_all(b".\r\n").await?;
        let code = self.reply().await?;
        Ok(Submitted { dot, took: dot.elapsed(), code })
    }

    pub(crate) async fn quit(mut self) {
        let _ = self.command("QUIT", 221).await;
    }
}

/// Dot-stuffing: a line starting with `.` gets another.
fn stuffed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    out
}

/// A logged-in IMAP session with INBOX selected.
pub(crate) struct Imap {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    tag: u32,
    /// Messages in INBOX when selected.
    pub(crate) exists: u32,
}

/// `* N EXISTS`'s N.
fn exists(line: &str) -> Option<u32> {
    line.strip_prefix("* ")?.trim_end().strip_suffix(" EXISTS")?.parse().ok()
}

impl Imap {
    /// Greeting, LOGIN (plaintext: loopback is trusted) and SELECT INBOX.
    pub(crate) async fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Self> {
        let stream = tokio::time::timeout(REPLY_WAIT, TcpStream::connect(addr))
            .await
            .context("cannot connect in time")??;
        let (reader, writer) = split(stream);
        let mut s = Self { reader, writer, tag: 0, exists: 0 };
        let greeting = line(&mut s.reader).await?;
        ensure!(greeting.starts_with("* OK"), "greeting {greeting:?}");
        s.command(&format!("LOGIN \"{user}\" \"{password}\"")).await?;
        for response in s.command("SELECT INBOX").await? {
            if let Some(n) = exists(&response) {
                s.exists = n;
            }
        }
        Ok(s)
    }

    /// Sends a tagged command; returns the untagged responses (literals
    /// inlined) once the tagged OK comes.
    async fn command(&mut self, command: &str) -> Result<Vec<String>> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        self.writer.write_all(format!("{tag} {command}\r\n").as_bytes()).await?;
        let mut untagged = Vec::new();
        loop {
            let response = self.response().await?;
            if let Some(status) = response.strip_prefix(&format!("{tag} ")) {
                ensure!(status.starts_with("OK"), "{command:?} failed: {status}");
                return Ok(untagged);
            }
            untagged.push(response);
        }
    }

    /// One response, with any literals it carries read in.
    async fn response(&mut self) -> Result<String> {
        let mut response = line(&mut self.reader).await?;
        while let Some(len) = literal(&response) {
            ensure!(len <= MAX_LITERAL, "a literal of {len} bytes");
            let mut bytes = vec![0; len];
            tokio::time::timeout(REPLY_WAIT, self.reader.read_exact(&mut bytes))
                .await
                .context("literal not sent in time")??;
            response.push_str(&String::from_utf8_lossy(&bytes));
            response.push_str(&line(&mut self.reader).await?);
        }
        Ok(response)
    }

    /// Starts IDLE; returns once the server says it is idling.
    pub(crate) async fn idle(&mut self) -> Result<()> {
        self.tag += 1;
        self.writer.write_all(format!("b{} IDLE\r\n", self.tag).as_bytes()).await?;
        loop {
            let response = self.response().await?;
            if response.starts_with('+') {
                return Ok(());
            }
            ensure!(response.starts_with('*'), "IDLE refused: {response}");
        }
    }

    /// The next `* N EXISTS` while idling, stamped when read; `None` after
    /// `silence` without one.
    pub(crate) async fn next_exists(
        &mut self,
        silence: Duration,
    ) -> Result<Option<(u32, Instant)>> {
        let deadline = tokio::time::Instant::now() + silence;
        loop {
            let Ok(read) = tokio::time::timeout_at(deadline, line(&mut self.reader)).await else {
                return Ok(None);
            };
            let response = read?;
            let at = Instant::now();
            if let Some(n) = exists(&response) {
                return Ok(Some((n, at)));
            }
            ensure!(!response.starts_with("* BYE"), "the server ended IDLE: {response}");
        }
    }

    /// Ends IDLE.
    pub(crate) async fn done(&mut self) -> Result<()> {
        let tag = format!("b{} ", self.tag);
        self.writer.write_all(b"DONE\r\n").await?;
        loop {
            let response = self.response().await?;
            if let Some(status) = response.strip_prefix(&tag) {
                ensure!(status.starts_with("OK"), "IDLE ended with {status}");
                return Ok(());
            }
        }
    }

    /// A NOOP; the highest `* N EXISTS` it brought, if any.
    pub(crate) async fn poll(&mut self) -> Result<Option<u32>> {
        Ok(self.command("NOOP").await?.iter().filter_map(|r| exists(r)).max())
    }

    /// `FETCH 1:* (BODY.PEEK[])`: every message whole, read and dropped;
    /// returns how many messages and bytes came.
    pub(crate) async fn fetch_all(&mut self) -> Result<(u32, u64)> {
        self.tag += 1;
        let tag = format!("b{} ", self.tag);
        self.writer.write_all(format!("{tag}FETCH 1:* (BODY.PEEK[])\r\n").as_bytes()).await?;
        let (mut messages, mut bytes) = (0, 0);
        let mut buf = Vec::new();
        loop {
            let mut response = line(&mut self.reader).await?;
            if let Some(status) = response.strip_prefix(&tag) {
                ensure!(status.starts_with("OK"), "FETCH failed: {status}");
                return Ok((messages, bytes));
            }
            if response.starts_with("* ") && response.contains(" FETCH ") {
                messages += 1;
            }
            while let Some(len) = literal(&response) {
                ensure!(len <= MAX_MESSAGE, "a literal of {len} bytes");
                buf.resize(len, 0);
                tokio::time::timeout(REPLY_WAIT, self.reader.read_exact(&mut buf))
                    .await
                    .context("literal not sent in time")??;
                bytes += len as u64;
                response = line(&mut self.reader).await?;
            }
        }
    }

    /// Each message's Subject from sequence number `from` on.
    pub(crate) async fn subjects(&mut self, from: u32) -> Result<HashMap<u32, String>> {
        let fetched =
            self.command(&format!("FETCH {from}:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")).await?;
        let mut subjects = HashMap::new();
        for response in fetched {
            let Some(rest) = response.strip_prefix("* ") else { continue };
            let Some((seq, rest)) = rest.split_once(' ') else { continue };
            if !rest.starts_with("FETCH") {
                continue;
            }
            let Some(subject) = rest.lines().find_map(|l| l.strip_prefix("Subject: ")) else {
                bail!("a FETCH without a subject: {response:?}");
            };
            subjects.insert(seq.parse()?, subject.trim().to_owned());
        }
        Ok(subjects)
    }

    pub(crate) async fn logout(mut self) {
        let _ = self.command("LOGOUT").await;
    }
}

/// The length of the literal a response line ends with (`{N}` or `{N+}`).
fn literal(line: &str) -> Option<usize> {
    let inner = line.trim_end().strip_suffix('}')?;
    let (_, len) = inner.rsplit_once('{')?;
    len.trim_end_matches('+').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffs_leading_dots_and_reads_literals_and_exists() {
        assert_eq!(stuffed(b".a\r\nb.\r\n.\r\n"), b"..a\r\nb.\r\n..\r\n");
        assert_eq!(literal("* 3 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {27}\r\n"), Some(27));
        assert_eq!(literal("* 3 FETCH (FLAGS ())\r\n"), None);
        assert_eq!(exists("* 12 EXISTS\r\n"), Some(12));
        assert_eq!(exists("* 12 RECENT\r\n"), None);
    }
}
