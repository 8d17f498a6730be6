//! DATA and BDAT: reading the message, dot-unstuffing, the size limit,
//! the `Received:` trace header and the hand-over to the backend.
//!
//! The end of DATA is exactly `<CR><LF>.<CR><LF>` and nothing else
//! (`<LF>.<LF>`, `<LF>.<CR><LF>` and `<CR><LF>.<CR><CR><LF>` are message
//! content): that closes the 2023 "SMTP smuggling" hole, where servers
//! disagreeing about the end of the message let a second, forged message
//! ride inside the first. Bare LF and NUL bytes inside the message are
//! stored as received, never rewritten: the mail model keeps malformed
//! MIME as it came. A period starting a line is unstuffed, after a bare
//! LF too (clients that send bare-LF lines also stuff them, as common
//! client libraries do); only a period after CRLF can begin the end
//! marker. Beyond the size limit, bytes are counted and dropped, never
//! buffered, until the end of the message; then the client hears `552`.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::Mode;
use super::session::{Input, Session, Step};
use epost_types::mailbox::MailErrorKind;

use crate::backend::{Envelope, MailBackend};
use crate::inbound::{Checked, Inbound};

/// The stored message being received: our trace header, then the
/// client's bytes, up to the limit.
#[derive(Debug, Default)]
pub(super) struct Body {
    bytes: Vec<u8>,
    /// Length of our `Received:` header at the front (0 until DATA/BDAT).
    prefix: usize,
    /// Most client bytes kept.
    limit: usize,
    /// The client sent more than `limit`; `bytes` was dropped.
    overflow: bool,
    started: bool,
}

impl Body {
    pub(super) fn new(limit: usize) -> Self {
        Self { limit, ..Self::default() }
    }

    /// Puts the trace header in front, once, when the content begins.
    fn start(&mut self, received: String) {
        if !self.started {
            self.started = true;
            self.prefix = received.len();
            self.bytes = received.into_bytes();
        }
    }

    pub(super) fn started(&self) -> bool {
        self.started
    }

    pub(super) fn push(&mut self, chunk: &[u8]) {
        if self.overflow {
            return;
        }
        if self.bytes.len() - self.prefix + chunk.len() > self.limit {
            self.overflow = true;
            self.bytes = Vec::new();
        } else {
            self.bytes.extend_from_slice(chunk);
        }
    }

    /// The bytes to store, unless the message was too large.
    fn finish(self) -> Option<Vec<u8>> {
        (!self.overflow).then_some(self.bytes)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// At a line start; `true` after CRLF (or at the very start), where
    /// the end marker may begin; `false` after a bare LF.
    LineStart(bool),
    /// Inside a line.
    Mid,
    /// After a CR (kept) inside a line.
    Cr,
    /// After a period at a line start (held back: stuffing or the end).
    Dot(bool),
    /// After `CRLF . CR` (both held back).
    DotCr,
}

/// Finds the end of DATA and undoes dot-stuffing, across reads.
#[derive(Debug)]
pub(super) struct DotReader {
    state: Scan,
}

impl DotReader {
    pub(super) fn new() -> Self {
        // The CRLF ending the DATA command counts as the line before.
        Self { state: Scan::LineStart(true) }
    }

    /// Consumes `input` into `body`; returns how many bytes were used and
    /// whether the end-of-data marker was among them.
    pub(super) fn push(&mut self, input: &[u8], body: &mut Body) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            if self.state == Scan::Mid {
                let rest = &input[i..];
                match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
                    None => {
                        body.push(rest);
                        return (input.len(), false);
                    }
                    Some(p) => {
                        body.push(&rest[..p]);
                        i += p;
                    }
                }
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (Scan::Cr, b'\n') => {
                    body.push(b"\n");
                    Scan::LineStart(true)
                }
                (Scan::LineStart(crlf), b'.') => Scan::Dot(crlf),
                (Scan::Dot(true), b'\r') => Scan::DotCr,
                (Scan::DotCr, b'\n') => {
                    self.state = Scan::LineStart(true);
                    return (i, true);
                }
                (Scan::DotCr, b) => {
                    // The period was stuffing; the held CR is content.
                    body.push(b"\r");
                    plain(b, body)
                }
                // A period starting a line is stuffing (after a bare LF
                // too, as clients that send bare LF stuff those lines).
                (_, b) => plain(b, body),
            };
        }
        (input.len(), false)
    }
}

/// An ordinary content byte; returns the state after it.
fn plain(b: u8, body: &mut Body) -> Scan {
    body.push(&[b]);
    match b {
        b'\r' => Scan::Cr,
        b'\n' => Scan::LineStart(false),
        _ => Scan::Mid,
    }
}

impl<B: MailBackend> Session<B> {
    /// DATA: the recipients are known; the content follows.
    pub(super) fn data(&mut self) -> Step {
        let Some(tx) = &self.tx else {
            return self.bad(503, [5, 5, 1], "Need MAIL command first");
        };
        if tx.to.is_empty() {
            return self.bad(554, [5, 5, 1], "No valid recipients");
        }
        if tx.body.started() {
            return self.bad(503, [5, 5, 1], "DATA cannot follow BDAT");
        }
        let received = self.received_header();
        if let Some(tx) = &mut self.tx {
            tx.body.start(received);
        }
        self.input = Input::Data(DotReader::new());
        self.reply(354, [2, 0, 0], "End data with <CR><LF>.<CR><LF>");
        Step::Continue
    }

    /// BDAT: a chunk of `size` octets follows at once, whatever we reply.
    pub(super) async fn bdat(&mut self, size: usize, last: bool) -> Step {
        let accepted = match &self.tx {
            Some(tx) => !tx.to.is_empty(),
            None => false,
        };
        if accepted {
            let received = self.received_header();
            if let Some(tx) = &mut self.tx {
                tx.body.start(received);
            }
        }
        if size == 0 {
            return self.chunk_done(last, accepted).await;
        }
        self.input = Input::Bdat { remaining: size, last, accepted };
        Step::Continue
    }

    /// A BDAT chunk has been read in full.
    pub(super) async fn chunk_done(&mut self, last: bool, accepted: bool) -> Step {
        self.input = Input::Command;
        if !accepted {
            return match &self.tx {
                None => self.bad(503, [5, 5, 1], "Need MAIL command first"),
                Some(_) => self.bad(554, [5, 5, 1], "No valid recipients"),
            };
        }
        if last {
            self.deliver().await
        } else {
            self.reply(250, [2, 0, 0], "Chunk received");
            Step::Continue
        }
    }

    /// The message is complete: hand it to the backend, then reply.
    pub(super) async fn deliver(&mut self) -> Step {
        self.input = Input::Command;
        let Some(tx) = self.tx.take() else {
            return self.bad(503, [5, 5, 1], "Need MAIL command first");
        };
        let Some(raw) = tx.body.finish() else {
            self.reply(552, [5, 3, 4], "Message too big for system");
            return Step::Continue;
        };
        let raw = match self.check_inbound(tx.from.as_deref(), raw).await {
            Ok(raw) => raw,
            Err((code, status, text)) => {
                self.reply(code, status, one_line(&text));
                return Step::Continue;
            }
        };
        let envelope =
            Envelope { from: tx.from, to: tx.to, submitter: self.submitter.clone(), dsn: tx.dsn };
        match self.shared.backend.deliver(envelope, Bytes::from(raw)).await {
            Ok(()) => self.reply(250, [2, 0, 0], "Message accepted for delivery"),
            Err(e) => match e.kind() {
                MailErrorKind::Temporary => self.reply(
                    451,
                    queue_status(&e),
                    format!("Temporary failure: {}", one_line(&e.with_causes())),
                ),
                MailErrorKind::TooLarge => self.reply(552, [5, 3, 4], "Message too big for system"),
                _ => self.reply(554, [5, 0, 0], one_line(&e.with_causes())),
            },
        }
        Step::Continue
    }

    /// MX mail from an unauthenticated client goes through the inbound
    /// checks when they are configured: the message to deliver (results
    /// header on top), or the reply refusing it.
    async fn check_inbound(
        &self,
        from: Option<&str>,
        raw: Vec<u8>,
    ) -> Result<Vec<u8>, (u16, [u8; 3], String)> {
        let Some(checks) = &self.shared.inbound else { return Ok(raw) };
        if self.mode != Mode::Inbound || self.submitter.is_some() {
            return Ok(raw);
        }
        let helo = self.helo.as_ref().map(|h| h.name.as_str()).unwrap_or_default();
        let mail = Inbound { client_ip: self.peer, helo, mail_from: from, message: &raw };
        match checks.0.verify(mail).await {
            Checked::Deliver(message) => Ok(message),
            Checked::AsReceived => Ok(raw),
            Checked::Refuse { code, status, text } => Err((code, status, text)),
        }
    }

    fn received_header(&self) -> String {
        let with = match (self.helo.as_ref().is_some_and(|h| h.extended), self.tls) {
            (false, _) => "SMTP",
            (true, false) if self.submitter.is_some() => "ESMTPA",
            (true, false) => "ESMTP",
            (true, true) if self.submitter.is_some() => "ESMTPSA",
            (true, true) => "ESMTPS",
        };
        // RFC 6531 section 4.3: UTF8SMTP[S][A] for an SMTPUTF8 transaction.
        let with = match self.tx.as_ref().is_some_and(|tx| tx.utf8) {
            true => with.replacen("ESMTP", "UTF8SMTP", 1),
            false => with.to_owned(),
        };
        let helo = self.helo.as_ref().map(|h| h.name.as_str()).unwrap_or("unknown");
        received(helo, self.peer, &self.shared.hostname, &with, SystemTime::now())
    }
}

/// The enhanced status of a temporary failure: the outbound queue's own
/// when it refused (`4.3.5` no DKIM key here, `4.3.1` full), else `4.3.0`.
fn queue_status(e: &epost_types::mailbox::MailError) -> [u8; 3] {
    use epost_mta::queue::EnqueueError;
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        // A mail error's cause is shared (an `Arc`), which hides its type.
        let inner = c.downcast_ref::<epost_types::mailbox::Cause>();
        let queued = match inner {
            Some(arc) => arc.downcast_ref::<EnqueueError>(),
            None => c.downcast_ref::<EnqueueError>(),
        };
        match queued {
            Some(EnqueueError::Sign(_)) => return [4, 3, 5],
            Some(EnqueueError::Full { .. }) => return [4, 3, 1],
            Some(_) => return [4, 3, 0],
            None => cause = c.source(),
        }
    }
    [4, 3, 0]
}

/// Makes a text safe for one reply or header line.
pub(super) fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(400).collect()
}

/// The `Received:` trace header (RFC 5321 section 4.4) for a message
/// from `peer`, who said `helo`, received by `hostname` at `now`.
pub(super) fn received(
    helo: &str,
    peer: IpAddr,
    hostname: &str,
    with: &str,
    now: SystemTime,
) -> String {
    // The HELO name is the client's text: keep it to visible ASCII
    // outside comments so the header stays well formed.
    let helo: String = helo
        .chars()
        .take(255)
        .map(|c| if c.is_ascii_graphic() && !"()\\".contains(c) { c } else { '?' })
        .collect();
    let literal = match peer {
        IpAddr::V4(ip) => format!("[{ip}]"),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => format!("[{v4}]"),
            None => format!("[IPv6:{ip}]"),
        },
    };
    let date = rfc5322_date(now);
    format!("Received: from {helo} ({literal})\r\n\tby {hostname} with {with};\r\n\t{date}\r\n")
}

/// `Thu, 1 Jan 1970 00:00:00 +0000`, in UTC.
pub(super) fn rfc5322_date(now: SystemTime) -> String {
    epost_types::maildate::rfc5322(now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn read_all(chunks: &[&[u8]], limit: usize) -> (Option<Vec<u8>>, usize, bool) {
        let mut reader = DotReader::new();
        let mut body = Body::new(limit);
        body.start(String::new());
        let mut used_total = 0;
        for chunk in chunks {
            let (used, done) = reader.push(chunk, &mut body);
            used_total += used;
            if done {
                return (body.finish(), used_total, true);
            }
        }
        (body.finish(), used_total, false)
    }

    #[test]
    fn the_end_is_crlf_dot_crlf_only_and_dots_are_unstuffed() {
        let (body, used, done) = read_all(&[b"a\r\n..b\r\n.\r\nNEXT"], 100);
        assert!(done);
        assert_eq!(used, 11);
        assert_eq!(body.unwrap(), b"a\r\n.b\r\n");
        // Split anywhere, same result.
        let whole = b"x\r\n..\r\n.y\r\n.\r\n";
        for cut in 0..whole.len() {
            let (body, _, done) = read_all(&[&whole[..cut], &whole[cut..]], 100);
            assert!(done);
            assert_eq!(body.unwrap(), b"x\r\n.\r\ny\r\n", "cut at {cut}");
        }
    }

    #[test]
    fn smuggling_markers_are_content() {
        for marker in [&b"a\n.\nb"[..], b"a\n.\r\nb", b"a\r\n.\nb", b"a\r\n.\r\r\nb"] {
            let (_, _, done) = read_all(&[marker], 100);
            assert!(!done, "{:?} ended the data", String::from_utf8_lossy(marker));
        }
        let (body, _, done) = read_all(&[b"a\n..\r\n.\r\nb\r\n.\r\n"], 100);
        assert!(done);
        assert_eq!(body.unwrap(), b"a\n.\r\n");
    }

    #[test]
    fn an_empty_message_and_a_leading_period() {
        assert_eq!(read_all(&[b".\r\n"], 10).0.unwrap(), b"");
        assert_eq!(read_all(&[b"..x\r\n.\r\n"], 10).0.unwrap(), b".x\r\n");
    }

    #[test]
    fn oversize_is_read_to_the_end_and_dropped() {
        let big = vec![b'x'; 1000];
        let (body, _, done) = read_all(&[&big, b"\r\n.\r\n"], 100);
        assert!(done);
        assert!(body.is_none());
    }

    #[test]
    fn queue_refusals_keep_their_status() {
        use epost_mta::outbound::SignError;
        use epost_mta::queue::EnqueueError;
        use epost_types::mailbox::MailError;
        let no_key = EnqueueError::Sign(SignError::NoKey { domain: "here.test".into() });
        let table = [
            (MailError::unavailable("cannot queue the message", no_key), [4, 3, 5]),
            (
                MailError::unavailable(
                    "cannot queue the message",
                    EnqueueError::Full { messages: 1, bytes: 2 },
                ),
                [4, 3, 1],
            ),
            (MailError::Stopped, [4, 3, 0]),
        ];
        for (e, status) in table {
            assert_eq!(queue_status(&e), status, "{e:?}");
        }
    }

    #[test]
    fn dates_and_trace_headers() {
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 1 Jan 1970 00:00:00 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(rfc5322_date(t), "Sun, 9 Sep 2001 01:46:40 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc5322_date(t), "Tue, 29 Feb 2000 00:00:00 +0000");
        let header = received("evil\r\n(x)", "192.0.2.1".parse().unwrap(), "mx.test", "ESMTP", t);
        assert!(header.starts_with("Received: from evil???x? ([192.0.2.1])\r\n\tby mx.test"));
        assert!(header.ends_with("+0000\r\n"));
    }
}
