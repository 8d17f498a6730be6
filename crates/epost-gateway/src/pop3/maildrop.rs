//! The maildrop commands: STAT, LIST, UIDL, RETR, TOP, DELE, RSET and
//! QUIT's update.
//!
//! Message numbers index the INBOX snapshot taken at login and never
//! change during the session; a message expunged meanwhile by another
//! client is reported as gone when asked for. UIDL is
//! `UIDVALIDITY.UID`, unique for as long as the folder keeps its
//! UIDVALIDITY. Sizes are the stored octets. Multi-line responses are
//! byte-stuffed after every LF (bare or not), so no client can read a
//! stored line "." as the end of the response.

use epost_types::mailbox::MailErrorKind;

use crate::backend::{Account, FolderSnapshot, MailBackend};

use super::session::{Session, State, Step};

/// INBOX as this session sees it.
pub(crate) struct Maildrop<A> {
    account: A,
    uid_validity: u32,
    messages: Vec<Entry>,
}

struct Entry {
    uid: u32,
    size: u64,
    deleted: bool,
}

impl<A: Account> Maildrop<A> {
    pub(super) fn new(account: A, snapshot: FolderSnapshot) -> Self {
        let messages = snapshot
            .messages
            .iter()
            .map(|m| Entry { uid: m.uid, size: m.size, deleted: false })
            .collect();
        Self { account, uid_validity: snapshot.uid_validity, messages }
    }

    /// (messages, octets) not marked deleted.
    pub(super) fn stat(&self) -> (usize, u64) {
        let live = self.messages.iter().filter(|m| !m.deleted);
        live.fold((0, 0), |(n, size), m| (n + 1, size + m.size))
    }

    /// The live message numbered `arg`, or why not.
    fn get(&self, arg: &str) -> Result<(usize, &Entry), &'static str> {
        let number: usize = arg.parse().map_err(|_| "Not a message number")?;
        let entry =
            number.checked_sub(1).and_then(|i| self.messages.get(i)).ok_or("No such message")?;
        if entry.deleted {
            return Err("Message already deleted");
        }
        Ok((number, entry))
    }
}

impl<B: MailBackend> Session<B> {
    fn maildrop(&mut self) -> Option<&mut Maildrop<B::Account>> {
        match &mut self.state {
            State::Transaction(maildrop) => Some(maildrop),
            State::Authorization { .. } => None,
        }
    }

    pub(super) fn stat(&mut self) -> Step {
        let Some(maildrop) = self.maildrop() else { return Step::Continue };
        let (count, size) = maildrop.stat();
        self.ok(&format!("{count} {size}"));
        Step::Continue
    }

    /// LIST, or UIDL when `uidl`: one message or all.
    pub(super) fn list(&mut self, args: &[&str], uidl: bool) -> Step {
        let Some(maildrop) = self.maildrop() else { return Step::Continue };
        let validity = maildrop.uid_validity;
        let describe = |n: usize, m: &Entry| {
            if uidl { format!("{n} {validity}.{}", m.uid) } else { format!("{n} {}", m.size) }
        };
        match args {
            [] => {
                let (count, size) = maildrop.stat();
                let mut body = String::new();
                for (i, m) in maildrop.messages.iter().enumerate().filter(|(_, m)| !m.deleted) {
                    body.push_str(&describe(i + 1, m));
                    body.push_str("\r\n");
                }
                body.push_str(".\r\n");
                self.ok(&format!("{count} messages ({size} octets)"));
                self.write_raw(body.as_bytes());
                Step::Continue
            }
            [arg] => match maildrop.get(arg) {
                Ok((n, m)) => {
                    let line = describe(n, m);
                    self.ok(&line);
                    Step::Continue
                }
                Err(why) => self.bad(why),
            },
            _ => self.bad("Too many arguments"),
        }
    }

    pub(super) async fn retr(&mut self, args: &[&str]) -> Step {
        let [arg] = args else { return self.bad("Usage: RETR msg") };
        let raw = match self.fetch(arg).await {
            Ok(raw) => raw,
            Err(step) => return step,
        };
        self.ok(&format!("{} octets", raw.len()));
        let mut body = Vec::with_capacity(raw.len() + raw.len() / 64 + 5);
        stuff(&raw, &mut body);
        self.write_raw(&body);
        Step::Continue
    }

    pub(super) async fn top(&mut self, args: &[&str]) -> Step {
        let [arg, lines] = args else { return self.bad("Usage: TOP msg n") };
        let Ok(lines) = lines.parse::<usize>() else {
            return self.bad("Not a line count");
        };
        let raw = match self.fetch(arg).await {
            Ok(raw) => raw,
            Err(step) => return step,
        };
        self.ok("Top of message follows");
        let mut body = Vec::new();
        stuff(top(&raw, lines), &mut body);
        self.write_raw(&body);
        Step::Continue
    }

    /// The stored bytes of message `arg`, or the step after the error.
    async fn fetch(&mut self, arg: &str) -> Result<bytes::Bytes, Step> {
        let Some(maildrop) = self.maildrop() else { return Err(Step::Continue) };
        let uid = match maildrop.get(arg) {
            Ok((_, m)) => m.uid,
            Err(why) => return Err(self.bad(why)),
        };
        let account = maildrop.account.clone();
        match account.fetch("INBOX", uid).await {
            Ok(raw) => Ok(raw),
            Err(e) => {
                match e.kind() {
                    MailErrorKind::NoMessage => self.err("Message was removed by another session"),
                    MailErrorKind::Temporary => {
                        self.err(&format!("[SYS/TEMP] {}", e.with_causes()))
                    }
                    _ => self.err(&format!("[SYS/PERM] {}", e.with_causes())),
                }
                Err(Step::Continue)
            }
        }
    }

    pub(super) fn dele(&mut self, args: &[&str]) -> Step {
        let [arg] = args else { return self.bad("Usage: DELE msg") };
        let Some(maildrop) = self.maildrop() else { return Step::Continue };
        let number = match maildrop.get(arg) {
            Ok((n, _)) => n,
            Err(why) => return self.bad(why),
        };
        if let Some(entry) = maildrop.messages.get_mut(number - 1) {
            entry.deleted = true;
        }
        self.ok(&format!("Message {number} deleted"));
        Step::Continue
    }

    pub(super) fn rset(&mut self) -> Step {
        let Some(maildrop) = self.maildrop() else { return Step::Continue };
        maildrop.messages.iter_mut().for_each(|m| m.deleted = false);
        let (count, size) = maildrop.stat();
        self.ok(&format!("{count} messages ({size} octets)"));
        Step::Continue
    }

    /// QUIT: in the transaction state, expunge what DELE marked.
    pub(super) async fn quit(&mut self) -> Step {
        let Some(maildrop) = self.maildrop() else {
            self.ok("Bye");
            return Step::Close;
        };
        let deleted: Vec<u32> =
            maildrop.messages.iter().filter(|m| m.deleted).map(|m| m.uid).collect();
        if deleted.is_empty() {
            self.ok("Bye");
            return Step::Close;
        }
        let account = maildrop.account.clone();
        match account.expunge("INBOX", &deleted).await {
            Ok(_) => self.ok(&format!("Bye ({} messages deleted)", deleted.len())),
            Err(e) => self.err(&format!("[SYS/TEMP] Some messages were not deleted: {e}")),
        }
        Step::Close
    }
}

/// Writes `raw` as a multi-line response body: a period starting a line
/// is doubled, the body ends with CRLF, then the terminating ".".
pub(super) fn stuff(raw: &[u8], out: &mut Vec<u8>) {
    let mut at_line_start = true;
    let mut rest = raw;
    while !rest.is_empty() {
        if at_line_start && rest[0] == b'.' {
            out.push(b'.');
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(pos) => {
                out.extend_from_slice(&rest[..=pos]);
                rest = &rest[pos + 1..];
                at_line_start = true;
            }
            None => {
                out.extend_from_slice(rest);
                rest = &[];
                at_line_start = false;
            }
        }
    }
    if !raw.is_empty() && !raw.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// The header, the blank line and the first `lines` lines of the body.
pub(super) fn top(raw: &[u8], lines: usize) -> &[u8] {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    let body_start = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => return raw,
    };
    let mut end = body_start;
    for _ in 0..lines {
        match raw[end..].iter().position(|&b| b == b'\n') {
            Some(pos) => end += pos + 1,
            None => return raw,
        }
    }
    &raw[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuffed(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        stuff(raw, &mut out);
        out
    }

    #[test]
    fn periods_at_line_starts_are_doubled() {
        assert_eq!(stuffed(b".a\r\nb\r\n.\r\n"), b"..a\r\nb\r\n..\r\n.\r\n");
        assert_eq!(stuffed(b"x\n.\ny"), b"x\n..\ny\r\n.\r\n");
        assert_eq!(stuffed(b""), b".\r\n");
    }

    #[test]
    fn top_keeps_the_header_and_some_lines() {
        let raw = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n";
        assert_eq!(top(raw, 0), b"A: 1\r\nB: 2\r\n\r\n");
        assert_eq!(top(raw, 2), b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n");
        assert_eq!(top(raw, 10), raw);
        assert_eq!(top(b"no body", 1), b"no body");
    }
}
