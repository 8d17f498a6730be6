//! The APPEND command as MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469)
//! write it, which `imap-codec` cannot read: a mailbox, then one or more
//! messages, each with its flags and date and either a literal (or a
//! BINARY `~{n}` literal8) or `CATENATE (TEXT literal / URL url ...)`.
//! Every APPEND is read here, the single-message one too, so there is one
//! grammar for the command and one way it is carried out
//! ([`super::append`]).
//!
//! A pure function over the command's bytes with their literals, as the
//! framer collected them. Given the bytes so far when a literal is
//! announced, it says whether they are good up to that literal, so the
//! connection can refuse a bad command (or one with too many messages or
//! parts) before the client sends more. It never copies a literal while
//! checking: [`Append::into_owned`] does, once, for the command to run.

use std::borrow::Cow;

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;

/// An APPEND of one or more messages into one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Append<'m> {
    pub(crate) tag: Tag<'m>,
    pub(crate) mailbox: Mailbox<'static>,
    /// At least one, in the order given (their UIDs ascend in it).
    pub(crate) messages: Vec<NewMessage<'m>>,
}

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewMessage<'m> {
    pub(crate) flags: Vec<Flag<'static>>,
    pub(crate) date: Option<DateTime>,
    pub(crate) data: Data<'m>,
}

/// What a message is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Data<'m> {
    /// Its bytes, from a literal or a literal8.
    Literal(Cow<'m, [u8]>),
    /// CATENATE: its bytes are these parts one after another.
    Catenate(Vec<Part<'m>>),
}

/// One part of a CATENATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part<'m> {
    /// `TEXT literal`: these bytes.
    Text(Cow<'m, [u8]>),
    /// `URL astring`: the bytes an IMAP URL names ([`super::imapurl`]).
    Url(Cow<'m, [u8]>),
}

/// What the bytes were found to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed<'m> {
    /// A whole, good APPEND.
    Complete(Append<'m>),
    /// Good so far, up to a literal whose bytes have not come yet.
    AwaitingLiteral,
}

/// How many messages, and parts in one CATENATE, an APPEND may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) messages: usize,
    pub(crate) parts: usize,
}

/// Why an APPEND is refused before it runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AppendError {
    /// Answered BAD.
    #[error("APPEND syntax error: {0}")]
    Syntax(&'static str),
    /// Answered NO [LIMIT].
    #[error("more than {0} messages in one APPEND")]
    TooManyMessages(usize),
    /// Answered NO [LIMIT].
    #[error("more than {0} parts in one CATENATE")]
    TooManyParts(usize),
}

impl Append<'_> {
    /// The command with its own copy of every byte.
    pub(crate) fn into_owned(self) -> Append<'static> {
        Append {
            tag: self.tag.into_static(),
            mailbox: self.mailbox,
            messages: self
                .messages
                .into_iter()
                .map(|m| NewMessage {
                    flags: m.flags,
                    date: m.date,
                    data: match m.data {
                        Data::Literal(bytes) => Data::Literal(Cow::Owned(bytes.into_owned())),
                        Data::Catenate(parts) => Data::Catenate(
                            parts
                                .into_iter()
                                .map(|part| match part {
                                    Part::Text(b) => Part::Text(Cow::Owned(b.into_owned())),
                                    Part::Url(b) => Part::Url(Cow::Owned(b.into_owned())),
                                })
                                .collect(),
                        ),
                    },
                })
                .collect(),
        }
    }
}

/// Whether `message` is an APPEND (its second word), to be read here.
pub(crate) fn is_append(message: &[u8]) -> bool {
    let mut words = message.split(|&b| b == b' ' || b == b'\r' || b == b'\n');
    words.next();
    words.next().is_some_and(|verb| verb.eq_ignore_ascii_case(b"APPEND"))
}

/// Reads an APPEND: the whole command, or the bytes so far when a
/// literal was just announced.
pub(crate) fn parse(message: &[u8], bounds: Bounds) -> Result<Parsed<'_>, AppendError> {
    match (Reader { bytes: message, at: 0 }).append(bounds) {
        Ok(append) => Ok(Parsed::Complete(append)),
        Err(Stop::Incomplete) => Ok(Parsed::AwaitingLiteral),
        Err(Stop::Bad(error)) => Err(error),
    }
}

/// Why reading stopped.
enum Stop {
    /// At a literal whose bytes are not all there.
    Incomplete,
    Bad(AppendError),
}

fn bad<T>(what: &'static str) -> Result<T, Stop> {
    Err(Stop::Bad(AppendError::Syntax(what)))
}

/// ATOM-CHAR (RFC 3501): not atom-specials.
fn is_atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && !b"(){%*\"\\]".contains(&b)
}

/// ASTRING-CHAR: ATOM-CHAR or `]`.
fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

struct Reader<'m> {
    bytes: &'m [u8],
    at: usize,
}

impl<'m> Reader<'m> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn space(&mut self) -> Result<(), Stop> {
        if self.peek() != Some(b' ') {
            return bad("expected a space");
        }
        self.at += 1;
        Ok(())
    }

    /// A run of bytes for which `keep` holds (maybe none).
    fn run(&mut self, keep: impl Fn(u8) -> bool) -> &'m [u8] {
        let start = self.at;
        while self.peek().is_some_and(&keep) {
            self.at += 1;
        }
        &self.bytes[start..self.at]
    }

    /// The line end that closes the command, and nothing after it.
    fn end(&mut self) -> Result<(), Stop> {
        let rest = &self.bytes[self.at..];
        if rest == b"\r\n" || rest == b"\n" {
            self.at = self.bytes.len();
            return Ok(());
        }
        bad("unexpected bytes after a message")
    }

    fn append(&mut self, bounds: Bounds) -> Result<Append<'m>, Stop> {
        let tag = self.run(|b| is_astring_char(b) && b != b'+');
        let tag = std::str::from_utf8(tag).ok().and_then(|t| Tag::try_from(t).ok());
        let Some(tag) = tag else { return bad("bad tag") };
        self.space()?;
        if !self.run(is_atom_char).eq_ignore_ascii_case(b"APPEND") {
            return bad("not an APPEND");
        }
        self.space()?;
        let name = self.astring()?;
        let Ok(mailbox) = Mailbox::try_from(name.into_owned()) else {
            return bad("bad mailbox name");
        };
        let mut messages = Vec::new();
        loop {
            self.space()?;
            if messages.len() == bounds.messages {
                return Err(Stop::Bad(AppendError::TooManyMessages(bounds.messages)));
            }
            messages.push(self.message(bounds)?);
            if self.peek() != Some(b' ') {
                self.end()?;
                return Ok(Append { tag, mailbox, messages });
            }
        }
    }

    /// `[flag-list SP] [date-time SP] (literal / literal8 / CATENATE (...))`
    fn message(&mut self, bounds: Bounds) -> Result<NewMessage<'m>, Stop> {
        let mut flags = Vec::new();
        if self.peek() == Some(b'(') {
            flags = self.flags()?;
            self.space()?;
        }
        let mut date = None;
        if self.peek() == Some(b'"') {
            date = Some(self.date()?);
            self.space()?;
        }
        let data = match self.peek() {
            Some(b'{' | b'~') => Data::Literal(Cow::Borrowed(self.literal(true)?)),
            _ => {
                if !self.run(is_atom_char).eq_ignore_ascii_case(b"CATENATE") {
                    return bad("expected a literal or CATENATE");
                }
                self.space()?;
                Data::Catenate(self.parts(bounds)?)
            }
        };
        Ok(NewMessage { flags, date, data })
    }

    /// `"(" [flag *(SP flag)] ")"`
    fn flags(&mut self) -> Result<Vec<Flag<'static>>, Stop> {
        self.at += 1;
        let mut flags = Vec::new();
        loop {
            if self.peek() == Some(b')') {
                self.at += 1;
                return Ok(flags);
            }
            if !flags.is_empty() {
                self.space()?;
            }
            let start = self.at;
            if self.peek() == Some(b'\\') {
                self.at += 1;
            }
            self.run(is_atom_char);
            let flag = std::str::from_utf8(&self.bytes[start..self.at])
                .ok()
                .and_then(|f| Flag::try_from(f).ok());
            let Some(flag) = flag else { return bad("bad flag") };
            flags.push(flag.into_static());
        }
    }

    /// `date-time`: `"dd-Mon-yyyy hh:mm:ss +zzzz"`, the day maybe
    /// space-padded.
    fn date(&mut self) -> Result<DateTime, Stop> {
        let text = self.quoted()?;
        let text = std::str::from_utf8(&text).unwrap_or_default();
        let text = text.strip_prefix(' ').unwrap_or(text);
        chrono::DateTime::parse_from_str(text, "%d-%b-%Y %H:%M:%S %z")
            .ok()
            .and_then(|d| DateTime::try_from(d).ok())
            .map_or_else(|| bad("bad date-time"), Ok)
    }

    /// `"(" cat-part *(SP cat-part) ")"`
    fn parts(&mut self, bounds: Bounds) -> Result<Vec<Part<'m>>, Stop> {
        if self.peek() != Some(b'(') {
            return bad("CATENATE needs a parenthesised list");
        }
        self.at += 1;
        let mut parts = Vec::new();
        loop {
            if parts.len() == bounds.parts {
                return Err(Stop::Bad(AppendError::TooManyParts(bounds.parts)));
            }
            let kind = self.run(is_atom_char);
            self.space()?;
            let part = if kind.eq_ignore_ascii_case(b"TEXT") {
                Part::Text(Cow::Borrowed(self.literal(true)?))
            } else if kind.eq_ignore_ascii_case(b"URL") {
                Part::Url(self.astring()?)
            } else {
                return bad("a CATENATE part is TEXT or URL");
            };
            parts.push(part);
            match self.peek() {
                Some(b')') => {
                    self.at += 1;
                    return Ok(parts);
                }
                Some(b' ') => self.at += 1,
                _ => return bad("expected a space or the end of the CATENATE list"),
            }
        }
    }

    /// `astring`: an atom, a quoted string or a literal.
    fn astring(&mut self) -> Result<Cow<'m, [u8]>, Stop> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(false).map(Cow::Borrowed),
            _ => {
                let atom = self.run(is_astring_char);
                if atom.is_empty() {
                    return bad("expected a string");
                }
                Ok(Cow::Borrowed(atom))
            }
        }
    }

    /// A quoted string's content, unescaped.
    fn quoted(&mut self) -> Result<Cow<'m, [u8]>, Stop> {
        self.at += 1;
        let start = self.at;
        let mut escaped = false;
        let mut content = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n' | 0) => return bad("unterminated quoted string"),
                Some(b'"') => {
                    let raw = &self.bytes[start..self.at];
                    self.at += 1;
                    return Ok(if escaped { Cow::Owned(content) } else { Cow::Borrowed(raw) });
                }
                Some(b'\\') => {
                    let next = self.bytes.get(self.at + 1).copied();
                    let Some(quoted @ (b'"' | b'\\')) = next else {
                        return bad("bad escape in a quoted string");
                    };
                    escaped = true;
                    content.push(quoted);
                    self.at += 2;
                }
                Some(b) => {
                    content.push(b);
                    self.at += 1;
                }
            }
        }
    }

    /// `{n}` or `{n+}` (or `~{n}` where `eight`), its line end, and its
    /// `n` bytes.
    fn literal(&mut self, eight: bool) -> Result<&'m [u8], Stop> {
        let binary = self.peek() == Some(b'~');
        if binary {
            if !eight {
                return bad("a literal8 cannot stand here");
            }
            self.at += 1;
        }
        if self.peek() != Some(b'{') {
            return bad("expected a literal");
        }
        self.at += 1;
        let digits = self.run(|b| b.is_ascii_digit());
        let length = (!digits.is_empty() && digits.len() <= 10)
            .then(|| std::str::from_utf8(digits).ok()?.parse::<u32>().ok())
            .flatten();
        let Some(length) = length else { return bad("bad literal length") };
        if self.peek() == Some(b'+') {
            self.at += 1;
        }
        if self.peek() != Some(b'}') {
            return bad("bad literal");
        }
        self.at += 1;
        if self.bytes[self.at..].starts_with(b"\r\n") {
            self.at += 2;
        } else if self.peek() == Some(b'\n') {
            self.at += 1;
        } else {
            return bad("a literal's announcement ends its line");
        }
        let end = self.at.saturating_add(length as usize);
        if end > self.bytes.len() {
            return Err(Stop::Incomplete);
        }
        let data = &self.bytes[self.at..end];
        if !binary && data.contains(&0) {
            return bad("a literal cannot hold NUL (use literal8)");
        }
        self.at = end;
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds { messages: 3, parts: 4 };

    fn complete(message: &str) -> Append<'_> {
        match parse(message.as_bytes(), BOUNDS) {
            Ok(Parsed::Complete(append)) => append,
            other => panic!("{message:?}: {other:?}"),
        }
    }

    fn literal(bytes: &str) -> Data<'_> {
        Data::Literal(Cow::Borrowed(bytes.as_bytes()))
    }

    #[test]
    fn single_and_multiple_messages() {
        let one = complete("a APPEND INBOX {3}\r\nabc\r\n");
        assert_eq!(one.mailbox, Mailbox::Inbox);
        assert_eq!(one.messages.len(), 1);
        assert_eq!(one.messages[0].data, literal("abc"));
        let table: [(&str, usize); 6] = [
            ("a APPEND INBOX {3}\r\nabc {2+}\r\nde\r\n", 2),
            ("a append inbox (\\Seen) {1}\r\nx (\\Flagged $Label) {1}\r\ny\r\n", 2),
            ("a APPEND \"Sent\" \"24-Mar-2007 23:00:00 +0200\" {1}\r\nx\n", 1),
            ("a APPEND Sent \" 4-Mar-2007 23:00:00 +0200\" {1}\r\nx {1}\r\ny ~{1}\r\n\0\r\n", 3),
            ("a APPEND {5}\r\nINBOX () {1}\r\nx\r\n", 1),
            ("a APPEND INBOX (\\Seen) \"24-Mar-2007 23:00:00 +0200\" {0}\r\n\r\n", 1),
        ];
        for (message, count) in table {
            assert_eq!(complete(message).messages.len(), count, "{message:?}");
        }
        let two =
            complete("a APPEND x (\\Seen) {1}\r\nx \"01-Jan-2020 00:00:00 +0000\" {1}\r\ny\r\n");
        assert_eq!(two.messages[0].flags, vec![Flag::Seen]);
        assert!(two.messages[0].date.is_none());
        assert!(two.messages[1].flags.is_empty());
        assert_eq!(two.messages[1].date.as_ref().map(|d| d.as_ref().timestamp()), Some(1577836800));
        assert_eq!(two.messages[1].data, literal("y"));
    }

    #[test]
    fn catenate_parts() {
        let cat = complete(
            "a APPEND Drafts (\\Seen) CATENATE (URL \"/INBOX;UIDVALIDITY=3/;UID=5/;SECTION=HEADER\" \
             TEXT {3}\r\nabc url ;UID=7 TEXT ~{1}\r\n\0) catenate (URL {6}\r\n;UID=1) {1}\r\nz\r\n",
        );
        assert_eq!(cat.messages.len(), 3);
        let Data::Catenate(parts) = &cat.messages[0].data else { panic!("{cat:?}") };
        assert_eq!(
            parts,
            &[
                Part::Url(Cow::Borrowed(&b"/INBOX;UIDVALIDITY=3/;UID=5/;SECTION=HEADER"[..])),
                Part::Text(Cow::Borrowed(&b"abc"[..])),
                Part::Url(Cow::Borrowed(&b";UID=7"[..])),
                Part::Text(Cow::Borrowed(&b"\0"[..])),
            ]
        );
        assert_eq!(cat.messages[1].data, Data::Catenate(vec![Part::Url(Cow::Borrowed(b";UID=1"))]));
        assert_eq!(cat.messages[2].data, literal("z"));
        // A quoted URL with escapes is unescaped.
        let quoted = complete("a APPEND x CATENATE (URL \"a\\\"b\")\r\n");
        let owned = quoted.into_owned();
        assert_eq!(
            owned.messages[0].data,
            Data::Catenate(vec![Part::Url(Cow::Owned(b"a\"b".to_vec()))])
        );
    }

    #[test]
    fn bytes_so_far_are_good_up_to_a_literal() {
        for so_far in [
            "a APPEND INBOX {3}\r\n",
            "a APPEND {5}\r\n",
            "a APPEND INBOX {3}\r\nabc (\\Seen) {4+}\r\n",
            "a APPEND INBOX CATENATE (TEXT {3}\r\n",
            "a APPEND INBOX CATENATE (URL \";UID=1\" TEXT ~{3}\r\n",
            "a APPEND INBOX CATENATE (TEXT {1}\r\nx URL {4}\r\n",
            "a APPEND INBOX CATENATE (TEXT {1}\r\nx) {9}\r\n",
        ] {
            assert_eq!(parse(so_far.as_bytes(), BOUNDS), Ok(Parsed::AwaitingLiteral), "{so_far:?}");
        }
    }

    #[test]
    fn bad_appends_are_refused() {
        let syntax = |m: &str| matches!(parse(m.as_bytes(), BOUNDS), Err(AppendError::Syntax(_)));
        for message in [
            "a APPEND INBOX\r\n",
            "a APPEND INBOX \r\n",
            "a APPEND INBOX (\\Seen)\r\n",
            "a APPEND INBOX {3}\r\nabc\r\nextra",
            "a APPEND INBOX {3}\r\nabc  {1}\r\nx\r\n",
            "a APPEND INBOX {3}\r\nabcX\r\n",
            "a APPEND INBOX \"not a date\" {1}\r\nx\r\n",
            "a APPEND INBOX (\\Seen {1}\r\nx\r\n",
            "a APPEND INBOX (\\Seen ) {1}\r\nx\r\n",
            "a APPEND INBOX {1} x\r\n",
            "a APPEND INBOX {1}\r\n\0\r\n",
            "a APPEND ~{5}\r\nINBOX {1}\r\nx\r\n",
            "a APPEND INBOX CATENATE ()\r\n",
            "a APPEND INBOX CATENATE (TEXT \"abc\")\r\n",
            "a APPEND INBOX CATENATE (URL ~{1}\r\nx)\r\n",
            "a APPEND INBOX CATENATE (BODY {1}\r\nx)\r\n",
            "a APPEND INBOX CATENATE (URL x\r\n",
            "a APPEND INBOX CATENATE URL x\r\n",
            "a APPEND INBOX UTF8 (~{1}\r\nx)\r\n",
            "a APPEND INBOX {99999999999}\r\n",
            "a APPEND \"INBOX {1}\r\nx\r\n",
            "a APPEND foo* {1}\r\nx\r\n",
            "a+ APPEND INBOX {1}\r\nx\r\n",
            "a COPY 1 INBOX\r\n",
        ] {
            assert!(syntax(message), "{message:?}: {:?}", parse(message.as_bytes(), BOUNDS));
        }
    }

    #[test]
    fn counts_are_bounded_as_the_literals_are_announced() {
        let four = "a APPEND INBOX {1}\r\na {1}\r\nb {1}\r\nc {1}\r\n";
        assert_eq!(parse(four.as_bytes(), BOUNDS), Err(AppendError::TooManyMessages(3)));
        let parts = "a APPEND INBOX CATENATE (URL a URL b URL c URL d TEXT {1}\r\n";
        assert_eq!(parse(parts.as_bytes(), BOUNDS), Err(AppendError::TooManyParts(4)));
    }

    #[test]
    fn appends_are_told_apart() {
        assert!(is_append(b"a APPEND INBOX {3}\r\n"));
        assert!(is_append(b"a append\r\n"));
        assert!(!is_append(b"a APPENDX INBOX\r\n"));
        assert!(!is_append(b"a UID APPEND INBOX\r\n"));
        assert!(!is_append(b"APPEND INBOX\r\n"));
    }
}
