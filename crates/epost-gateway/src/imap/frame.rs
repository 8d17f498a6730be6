//! Splits the client's byte stream into whole commands: lines, and the
//! literals their ends announce, with every piece bounded. It only finds
//! the frame; `imap-codec` decides what the bytes mean, and the caller
//! decides whether to accept an announced literal (RFC 3501 section 7.5,
//! RFC 7888).

use imap_codec::imap_types::core::{LiteralMode, Tag};

use crate::line::Busy;

/// Buffer capacity kept between commands.
const KEEP_CAPACITY: usize = 64 * 1024;

/// What the framer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// More bytes are needed.
    NeedMore,
    /// A whole command is in [`Framer::message`]. `poisoned` means part of
    /// it was discarded (a literal of an already bad command): reply BAD.
    Complete { poisoned: bool },
    /// The current line ends with a literal announcement; call
    /// [`Framer::accept_literal`], [`Framer::discard_literal`] or
    /// [`Framer::reset`].
    Literal { length: u32, mode: LiteralMode },
    /// A line was longer than allowed; it is being skipped to its end.
    LineTooLong { tag: Option<Tag<'static>> },
}

#[derive(Debug)]
enum State {
    Line,
    /// Waiting for the caller to decide on an announced literal.
    Announced,
    Literal {
        remaining: usize,
        keep: bool,
    },
    SkipLine,
}

/// A command framer with bounded buffers.
#[derive(Debug)]
pub(crate) struct Framer {
    max_line: usize,
    max_command: usize,
    /// Bytes received and not yet framed.
    input: Vec<u8>,
    /// The command so far.
    message: Vec<u8>,
    line_start: usize,
    poisoned: bool,
    state: State,
}

impl Framer {
    /// `max_line` bounds each line, `max_command` a whole command with its
    /// literals.
    pub(crate) fn new(max_line: usize, max_command: usize) -> Self {
        Self {
            max_line,
            max_command,
            input: Vec::new(),
            message: Vec::new(),
            line_start: 0,
            poisoned: false,
            state: State::Line,
        }
    }

    /// Adds received bytes. Callers push only after [`Framer::next`] said
    /// [`Frame::NeedMore`], so the input stays as small as one read.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// The command framed so far (whole after [`Frame::Complete`]).
    pub(crate) fn message(&self) -> &[u8] {
        &self.message
    }

    /// Whether a command has begun and how far: in a literal, message
    /// content is arriving; otherwise part of a line (or a line being
    /// skipped) is. For the connection's clocks.
    pub(crate) fn busy(&self) -> Busy {
        match self.state {
            State::Literal { .. } => Busy::Data,
            State::Announced | State::SkipLine => Busy::Command,
            State::Line if self.message.is_empty() && self.input.is_empty() => Busy::Idle,
            State::Line => Busy::Command,
        }
    }

    /// Forgets the current command (after it was handled or refused);
    /// unframed input stays.
    pub(crate) fn reset(&mut self) {
        if self.message.capacity() > KEEP_CAPACITY {
            // A large APPEND should not pin its memory for the session.
            self.message = Vec::new();
        }
        self.message.clear();
        self.line_start = 0;
        self.poisoned = false;
        if matches!(self.state, State::Announced | State::Line) {
            self.state = State::Line;
        }
    }

    /// Takes the announced literal into the command. Fails if the command
    /// would grow past its bound.
    pub(crate) fn accept_literal(&mut self, length: u32) -> Result<(), TooLarge> {
        let length = length as usize;
        if self.message.len().saturating_add(length) > self.max_command {
            return Err(TooLarge);
        }
        self.message.reserve(length);
        self.state = State::Literal { remaining: length, keep: true };
        Ok(())
    }

    /// Reads the announced (non-synchronizing) literal of a bad command and
    /// throws it away; the command completes poisoned.
    pub(crate) fn discard_literal(&mut self, length: u32) {
        self.poisoned = true;
        self.state = State::Literal { remaining: length as usize, keep: false };
    }

    /// Frames what it can.
    pub(crate) fn next(&mut self) -> Frame {
        loop {
            match self.state {
                State::Announced => return Frame::NeedMore,
                State::Literal { remaining, keep } => {
                    let take = remaining.min(self.input.len());
                    if keep {
                        self.message.extend_from_slice(&self.input[..take]);
                    }
                    self.input.drain(..take);
                    if take < remaining {
                        self.state = State::Literal { remaining: remaining - take, keep };
                        return Frame::NeedMore;
                    }
                    self.line_start = self.message.len();
                    self.state = State::Line;
                }
                State::SkipLine => match self.input.iter().position(|&b| b == b'\n') {
                    Some(at) => {
                        self.input.drain(..=at);
                        self.state = State::Line;
                    }
                    None => {
                        self.input.clear();
                        return Frame::NeedMore;
                    }
                },
                State::Line => {
                    let so_far = self.message.len() - self.line_start;
                    let Some(at) = self.input.iter().position(|&b| b == b'\n') else {
                        if so_far + self.input.len() > self.max_line {
                            return self.too_long();
                        }
                        self.message.extend_from_slice(&self.input);
                        self.input.clear();
                        return Frame::NeedMore;
                    };
                    if so_far + at + 1 > self.max_line
                        || self.message.len() + at + 1 > self.max_command
                    {
                        return self.too_long();
                    }
                    self.message.extend_from_slice(&self.input[..=at]);
                    self.input.drain(..=at);
                    return match announcement(&self.message[self.line_start..]) {
                        Some((length, mode)) => {
                            self.state = State::Announced;
                            Frame::Literal { length, mode }
                        }
                        None => Frame::Complete { poisoned: self.poisoned },
                    };
                }
            }
        }
    }

    fn too_long(&mut self) -> Frame {
        let tag = lexical_tag(&self.message).or_else(|| lexical_tag(&self.input));
        self.message.clear();
        self.line_start = 0;
        self.poisoned = false;
        self.state = State::SkipLine;
        Frame::LineTooLong { tag }
    }
}

/// The command would be larger than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the command is larger than allowed")]
pub(crate) struct TooLarge;

/// `{123}` or `{123+}` at the end of a line (before CRLF or LF).
fn announcement(line: &[u8]) -> Option<(u32, LiteralMode)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_suffix(b"}")?;
    let (line, mode) = match line.strip_suffix(b"+") {
        Some(rest) => (rest, LiteralMode::NonSync),
        None => (line, LiteralMode::Sync),
    };
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let length = std::str::from_utf8(digits).ok()?.parse::<u32>().ok()?;
    Some((length, mode))
}

/// The tag a command starts with, if it looks like one: for replying BAD
/// to commands the codec could not parse.
pub(crate) fn lexical_tag(bytes: &[u8]) -> Option<Tag<'static>> {
    let end = bytes.iter().position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
    let word = std::str::from_utf8(&bytes[..end]).ok()?;
    Tag::try_from(word.to_owned()).ok()
}

/// The command name (second word), upper-cased, for choosing a literal's
/// size limit before the command is decoded.
pub(crate) fn lexical_command(bytes: &[u8]) -> String {
    let mut words = bytes.split(|&b| b == b' ');
    words.next();
    let mut name = words.next().unwrap_or_default();
    if name.eq_ignore_ascii_case(b"UID") {
        name = words.next().unwrap_or_default();
    }
    String::from_utf8_lossy(name).trim_end().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_literals_are_framed() {
        let mut framer = Framer::new(100, 1000);
        framer.push(b"a1 NOOP\r\na2 LOGIN {3}\r\n");
        assert_eq!(framer.next(), Frame::Complete { poisoned: false });
        assert_eq!(framer.message(), b"a1 NOOP\r\n");
        framer.reset();
        assert_eq!(framer.next(), Frame::Literal { length: 3, mode: LiteralMode::Sync });
        framer.accept_literal(3).unwrap();
        assert_eq!(framer.next(), Frame::NeedMore);
        framer.push(b"bob x\r\n");
        assert_eq!(framer.next(), Frame::Complete { poisoned: false });
        assert_eq!(framer.message(), b"a2 LOGIN {3}\r\nbob x\r\n");
    }

    #[test]
    fn long_lines_are_skipped_with_their_tag() {
        let mut framer = Framer::new(10, 1000);
        framer.push(b"t1 ");
        framer.push(&[b'x'; 20]);
        assert!(matches!(framer.next(), Frame::LineTooLong { tag: Some(_) }));
        assert_eq!(framer.next(), Frame::NeedMore);
        framer.push(b"yyy\r\nt2 NOOP\r\n");
        assert_eq!(framer.next(), Frame::Complete { poisoned: false });
        assert_eq!(framer.message(), b"t2 NOOP\r\n");
    }

    #[test]
    fn non_sync_literals_and_discarding() {
        let mut framer = Framer::new(100, 1000);
        framer.push(b"x BOGUS {2+}\r\nab\r\n");
        assert_eq!(framer.next(), Frame::Literal { length: 2, mode: LiteralMode::NonSync });
        framer.discard_literal(2);
        assert_eq!(framer.next(), Frame::Complete { poisoned: true });
        assert_eq!(framer.message(), b"x BOGUS {2+}\r\n\r\n");
        assert!(framer.accept_literal(5000).is_err());
    }

    #[test]
    fn busy_says_what_has_begun() {
        let mut framer = Framer::new(100, 1000);
        assert_eq!(framer.busy(), Busy::Idle);
        framer.push(b"a LOGIN {3}\r\n");
        assert_eq!(framer.busy(), Busy::Command);
        assert!(matches!(framer.next(), Frame::Literal { .. }));
        framer.accept_literal(3).unwrap();
        assert_eq!(framer.next(), Frame::NeedMore);
        assert_eq!(framer.busy(), Busy::Data);
        framer.push(b"bob x\r\n");
        assert_eq!(framer.next(), Frame::Complete { poisoned: false });
        framer.reset();
        assert_eq!(framer.busy(), Busy::Idle);
        framer.push(b"b NOO");
        assert_eq!(framer.next(), Frame::NeedMore);
        assert_eq!(framer.busy(), Busy::Command);
    }

    #[test]
    fn names_and_tags() {
        assert_eq!(lexical_command(b"a UID fetch 1"), "FETCH");
        assert_eq!(lexical_command(b"a append INBOX {3}\r\n"), "APPEND");
        assert!(lexical_tag(b"a1 NOOP").is_some());
        assert!(lexical_tag(b"\x00\x01 x").is_none());
        assert_eq!(announcement(b"a {12}\r\n"), Some((12, LiteralMode::Sync)));
        assert_eq!(announcement(b"a {99999999999}\r\n"), None);
        assert_eq!(announcement(b"a {}\r\n"), None);
    }
}
