//! Syntax imap-codec does not know, lifted out of a command before the
//! codec reads it: the RETURN (...) options of SEARCH and SORT (RFC 4731,
//! 5267, 5182), LIST's selection options, pattern list and RETURN (...)
//! options (RFC 5258, 5819, 6154), and `$`, the saved search result (RFC 5182), where a
//! sequence set may stand (FETCH, STORE, COPY, MOVE, UID EXPUNGE and
//! search keys), and the whole of CANCELUPDATE (RFC 5267), which leaves
//! `tag NOOP` for the codec to read the tag from. What is left is plain
//! RFC 3501/5256 syntax for the codec; what was taken out travels beside
//! the command as [`Extras`].
//!
//! It is a pure function over the command's bytes (literals included, or
//! the bytes so far when a literal is announced) and never guesses: it
//! walks the tokens the way the grammar does (a string argument that
//! reads `$` stays a string) and leaves every other command untouched.
//!
//! APPEND is not lifted but read whole by [`super::multiappend`] (its
//! MULTIAPPEND and CATENATE forms are beyond the codec): [`Session::decode`]
//! and [`Session::good_so_far`] choose the reader for every command.

use std::borrow::Cow;
use std::ops::Range;

use imap_codec::CommandCodec;
use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::Command;
use imap_codec::imap_types::core::Tag;

use crate::backend::MailBackend;
use crate::imap::esearch::{ReturnError, ReturnOptions};
use crate::imap::frame::lexical_tag;
use crate::imap::listext::{ListError, ListOptions, MAX_PATTERNS, ReturnItem, Returns, Selection};
use crate::imap::multiappend::{self, Append, AppendError, Parsed};
use crate::imap::partial::{BadPartial, Partial};
use crate::imap::session::Session;

/// A whole command, read.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// Read by the codec, with what was lifted out before.
    Codec(Command<'static>, Extras),
    /// An APPEND, read by [`multiappend`].
    Append(Append<'static>),
}

/// Why a whole command is answered BAD; the text is the BAD's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Lift(#[from] LiftError),
    #[error("syntax error")]
    Syntax,
}

/// Why a literal just announced is not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The command is bad before it (answered BAD).
    Syntax,
    /// It has more messages or parts than allowed (answered NO [LIMIT]).
    Limit { tag: Tag<'static>, text: String },
}

/// Which numbers a `$` stands for where it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetKind {
    /// Message sequence numbers (FETCH, a search key).
    Sequence,
    /// UIDs (UID FETCH, the search key `UID $`).
    Uid,
}

/// A command with its extension syntax taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lifted<'m> {
    /// What the codec reads.
    pub(crate) bytes: Cow<'m, [u8]>,
    pub(crate) extras: Extras,
}

/// What was taken out, for the session to answer by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Extras {
    /// SEARCH or SORT's RETURN options, if it had any.
    pub(crate) returns: Option<ReturnOptions>,
    /// CANCELUPDATE's tags: the command is this, not the NOOP decoded.
    pub(crate) cancel: Option<Vec<String>>,
    /// FETCH's PARTIAL modifier (RFC 9394).
    pub(crate) fetch_partial: Option<Partial>,
    /// An extended LIST's options and patterns (none for a plain LIST).
    pub(crate) list: Option<ListOptions>,
}

impl<B: MailBackend> Session<B> {
    /// [`lift`] with `$` standing for this session's saved result.
    pub(crate) fn lift<'m>(&self, message: &'m [u8]) -> Result<Lifted<'m>, LiftError> {
        lift(message, &|kind| self.saved_set(kind))
    }

    /// Reads a whole command; `Err` says why it is answered BAD.
    pub(crate) fn decode(&self, message: &[u8]) -> Result<Decoded, DecodeError> {
        if multiappend::is_append(message) {
            return match multiappend::parse(message, self.append_bounds())? {
                Parsed::Complete(append) => Ok(Decoded::Append(append.into_owned())),
                Parsed::AwaitingLiteral => Err(DecodeError::Syntax),
            };
        }
        let lifted = self.lift(message)?;
        match CommandCodec::default().decode_static(&lifted.bytes) {
            Ok(([], command)) => Ok(Decoded::Codec(command, lifted.extras)),
            _ => Err(DecodeError::Syntax),
        }
    }

    /// Whether the command so far, which ends with a literal's
    /// announcement, is good up to that literal: its tag if so.
    pub(crate) fn good_so_far(&self, message: &[u8]) -> Result<Tag<'static>, Refused> {
        if multiappend::is_append(message) {
            let tag = || lexical_tag(message).ok_or(Refused::Syntax);
            return match multiappend::parse(message, self.append_bounds()) {
                Ok(Parsed::AwaitingLiteral) => tag(),
                Ok(Parsed::Complete(_)) | Err(AppendError::Syntax(_)) => Err(Refused::Syntax),
                Err(error) => Err(Refused::Limit { tag: tag()?, text: error.to_string() }),
            };
        }
        match self.lift(message) {
            Ok(lifted) => match CommandCodec::default().decode(&lifted.bytes) {
                Err(CommandDecodeError::LiteralFound { tag, .. }) => Ok(tag.into_static()),
                _ => Err(Refused::Syntax),
            },
            Err(_) => Err(Refused::Syntax),
        }
    }
}

/// Why the extension syntax is refused (the command is answered BAD).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LiftError {
    #[error(transparent)]
    Return(#[from] ReturnError),
    #[error("RETURN needs a parenthesised list of options")]
    ReturnList,
    #[error("CANCELUPDATE needs one or more quoted tags")]
    CancelUpdate,
    #[error(transparent)]
    Partial(#[from] BadPartial),
    #[error(transparent)]
    List(#[from] ListError),
}

/// Lifts what the codec cannot read out of `message`; `saved` writes the
/// saved result as a sequence set of the given kind (never empty).
pub(crate) fn lift<'m>(
    message: &'m [u8],
    saved: &dyn Fn(SetKind) -> String,
) -> Result<Lifted<'m>, LiftError> {
    let tokens = lex(message);
    let word =
        |i: usize| tokens.get(i).filter(|t| t.kind == Kind::Word).map(|t| &message[t.span()]);
    let is =
        |i: usize, name: &str| word(i).is_some_and(|w| w.eq_ignore_ascii_case(name.as_bytes()));
    let dollar = |i: usize| word(i) == Some(&b"$"[..]);
    let unchanged = Lifted { bytes: Cow::Borrowed(message), extras: Extras::default() };
    let uid = is(1, "UID");
    let verb_at = if uid { 2 } else { 1 };
    let Some(verb) = word(verb_at).map(|w| w.to_ascii_uppercase()) else { return Ok(unchanged) };
    let mut edits: Edits = Vec::new();
    let mut returns = None;
    let mut list = None;
    let mut at = verb_at + 1;
    let set_kind = if uid { SetKind::Uid } else { SetKind::Sequence };
    match verb.as_slice() {
        b"CANCELUPDATE" if !uid => {
            let tag = word(0).ok_or(LiftError::CancelUpdate)?;
            let tags: Vec<String> = tokens[at..]
                .iter()
                .map(|t| match t.kind {
                    Kind::Quoted => unquote(&message[t.span()]).ok_or(LiftError::CancelUpdate),
                    _ => Err(LiftError::CancelUpdate),
                })
                .collect::<Result<_, _>>()?;
            if tags.is_empty() {
                return Err(LiftError::CancelUpdate);
            }
            let mut bytes = tag.to_vec();
            bytes.extend_from_slice(b" NOOP\r\n");
            let extras = Extras { cancel: Some(tags), ..Extras::default() };
            return Ok(Lifted { bytes: Cow::Owned(bytes), extras });
        }
        b"FETCH" | b"STORE" | b"COPY" | b"MOVE" | b"EXPUNGE" if dollar(at) => {
            edits.push((tokens[at].span(), saved(set_kind).into_bytes()));
        }
        b"SEARCH" | b"SORT" | b"THREAD" => {
            if verb != b"THREAD" && is(at, "RETURN") {
                if tokens.get(at + 1).map(|t| t.kind) != Some(Kind::Open) {
                    return Err(LiftError::ReturnList);
                }
                let close = (at + 2..tokens.len())
                    .find(|&i| tokens[i].kind != Kind::Word)
                    .filter(|&i| tokens[i].kind == Kind::Close)
                    .ok_or(LiftError::ReturnList)?;
                let items: Vec<&[u8]> =
                    tokens[at + 2..close].iter().map(|t| &message[t.span()]).collect();
                returns = Some(ReturnOptions::parse(&items)?);
                // From the space before RETURN to the closing parenthesis.
                edits.push((tokens[at - 1].end..tokens[close].end, Vec::new()));
                at = close + 1;
            }
            at = match verb.as_slice() {
                // The sort criteria, then the charset.
                b"SORT" => after_list(&tokens, at) + 2,
                b"THREAD" => at + 2,
                _ if is(at, "CHARSET") => at + 2,
                _ => at,
            };
            for (index, kind) in search_sets(message, &tokens, at) {
                edits.push((tokens[index].span(), saved(kind).into_bytes()));
            }
        }
        b"LIST" if !uid => {
            if let Some((options, list_edits)) = list_extended(message, &tokens, at)? {
                list = Some(options);
                edits = list_edits;
            }
        }
        _ => {}
    }
    let mut fetch_partial = None;
    if verb == b"FETCH"
        && let Some((range, partial)) = fetch_partial_modifier(message, &tokens, verb_at + 2)?
    {
        edits.push((range, Vec::new()));
        fetch_partial = Some(partial);
    }
    if edits.is_empty() && returns.is_none() && list.is_none() {
        return Ok(unchanged);
    }
    let mut bytes = Vec::with_capacity(message.len());
    let mut from = 0;
    for (range, replacement) in edits {
        bytes.extend_from_slice(&message[from..range.start]);
        bytes.extend_from_slice(&replacement);
        from = range.end;
    }
    bytes.extend_from_slice(&message[from..]);
    Ok(Lifted {
        bytes: Cow::Owned(bytes),
        extras: Extras { returns, fetch_partial, list, ..Extras::default() },
    })
}

/// FETCH's `PARTIAL range` modifier (RFC 9394): what to cut out of the
/// command (with the modifier list when it held nothing else) and the
/// range. The modifier list is the last top-level list after the items
/// (from `items_at` on), when it opens with a modifier's name.
fn fetch_partial_modifier(
    message: &[u8],
    tokens: &[Token],
    items_at: usize,
) -> Result<Option<(Range<usize>, Partial)>, LiftError> {
    let Some(close) = tokens.len().checked_sub(1).filter(|&i| tokens[i].kind == Kind::Close) else {
        return Ok(None);
    };
    let mut depth = 0usize;
    let mut open = None;
    for index in (0..=close).rev() {
        match tokens[index].kind {
            Kind::Close => depth += 1,
            Kind::Open => {
                depth -= 1;
                if depth == 0 {
                    open = Some(index);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(open) = open.filter(|&open| open > items_at) else { return Ok(None) };
    let name = |i: usize| {
        let t = tokens[i];
        (t.kind == Kind::Word).then(|| message[t.span()].to_ascii_uppercase())
    };
    let first = name(open + 1).unwrap_or_default();
    if !matches!(first.as_slice(), b"CHANGEDSINCE" | b"VANISHED" | b"PARTIAL") {
        return Ok(None);
    }
    let Some(at) = (open + 1..close).find(|&i| name(i).as_deref() == Some(&b"PARTIAL"[..])) else {
        return Ok(None);
    };
    let range = (at + 1 < close && tokens[at + 1].kind == Kind::Word)
        .then(|| &message[tokens[at + 1].span()])
        .ok_or(BadPartial)?;
    let partial = Partial::parse(range)?;
    let cut = if open + 1 == at && at + 2 == close {
        // The list held only PARTIAL: it goes, with the space before it.
        tokens[open - 1].end..tokens[close].end
    } else if open + 1 == at {
        tokens[at].start..tokens[at + 2].start
    } else {
        tokens[at - 1].end..tokens[at + 1].end
    };
    Ok(Some((cut, partial)))
}

/// A quoted string's content (`"a\"b"` is `a"b`), if it is UTF-8 and
/// closed.
fn unquote(quoted: &[u8]) -> Option<String> {
    String::from_utf8(unescape(quoted)?).ok()
}

/// The bytes a quoted string stands for; `None` if it is not one.
fn unescape(quoted: &[u8]) -> Option<Vec<u8>> {
    let inner = quoted.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&byte) = bytes.next() {
        out.push(if byte == b'\\' { *bytes.next()? } else { byte });
    }
    Some(out)
}

/// Byte ranges of a command and what replaces each, in order.
type Edits = Vec<(Range<usize>, Vec<u8>)>;

/// An extended LIST from its first argument at `at`: its options and the
/// edits that leave `LIST reference first-pattern` for the codec; `None`
/// for a plain LIST.
fn list_extended(
    message: &[u8],
    tokens: &[Token],
    mut at: usize,
) -> Result<Option<(ListOptions, Edits)>, LiftError> {
    let kind = |i: usize| tokens.get(i).map(|t| t.kind);
    let is_value = |i: usize| matches!(kind(i), Some(Kind::Word | Kind::Quoted | Kind::Literal));
    let mut edits = Vec::new();
    let mut options = ListOptions::default();
    let mut extended = false;
    if kind(at) == Some(Kind::Open) {
        let close = words_until_close(tokens, at + 1).ok_or(ListError::NoPattern)?;
        let words: Vec<&[u8]> = tokens[at + 1..close].iter().map(|t| &message[t.span()]).collect();
        options.selection = Selection::parse(&words)?;
        // From the option list through the space after it.
        let end = tokens.get(close + 1).map_or(tokens[close].end, |t| t.start);
        edits.push((tokens[at].start..end, Vec::new()));
        extended = true;
        at = close + 1;
    }
    // The reference.
    if !is_value(at) {
        return Ok(None);
    }
    at += 1;
    if kind(at) == Some(Kind::Open) {
        // Tokens that end early are a literal not yet here: judged whole.
        let Some(close) = (at + 1..tokens.len()).find(|&i| !is_value(i)) else {
            return Ok(None);
        };
        if kind(close) != Some(Kind::Close) {
            return Err(ListError::NoPattern.into());
        }
        if close == at + 1 {
            return Err(ListError::NoPattern.into());
        }
        if close - at - 1 > MAX_PATTERNS {
            return Err(ListError::TooManyPatterns.into());
        }
        options.patterns = tokens[at + 1..close].iter().map(|t| text(message, t)).collect();
        // The codec reads the first pattern where the list was.
        let first = &message[tokens[at + 1].span()];
        edits.push((tokens[at].start..tokens[close].end, first.to_vec()));
        extended = true;
        at = close + 1;
    } else if is_value(at) {
        options.patterns = vec![text(message, &tokens[at])];
        at += 1;
    } else {
        return Ok(None);
    }
    let is_return = tokens
        .get(at)
        .is_some_and(|t| t.kind == Kind::Word && message[t.span()].eq_ignore_ascii_case(b"RETURN"));
    if is_return {
        if kind(at + 1) != Some(Kind::Open) {
            return Err(LiftError::ReturnList);
        }
        let mut items = Vec::new();
        let mut i = at + 2;
        loop {
            match kind(i) {
                Some(Kind::Word) => items.push(ReturnItem::Word(&message[tokens[i].span()])),
                Some(Kind::Open) => {
                    let close = words_until_close(tokens, i + 1).ok_or(LiftError::ReturnList)?;
                    let words = tokens[i + 1..close].iter().map(|t| &message[t.span()]);
                    items.push(ReturnItem::List(words.collect()));
                    i = close;
                }
                Some(Kind::Close) => break,
                _ => return Err(LiftError::ReturnList),
            }
            i += 1;
        }
        options.returns = Returns::parse(&items)?;
        // From the space before RETURN to the closing parenthesis.
        edits.push((tokens[at - 1].end..tokens[i].end, Vec::new()));
        extended = true;
    }
    Ok(extended.then_some((options, edits)))
}

/// The index of the `)` after words from `from` on, if only words come
/// before it.
fn words_until_close(tokens: &[Token], from: usize) -> Option<usize> {
    (from..tokens.len())
        .find(|&i| tokens[i].kind != Kind::Word)
        .filter(|&i| tokens[i].kind == Kind::Close)
}

/// What a word, quoted string or literal says.
fn text(message: &[u8], token: &Token) -> Vec<u8> {
    let bytes = &message[token.span()];
    match token.kind {
        // The tokenizer made it, so it is a whole quoted string.
        Kind::Quoted => unescape(bytes).unwrap_or_else(|| bytes.to_vec()),
        Kind::Literal => {
            let at = bytes.iter().position(|&b| b == b'\n').map_or(bytes.len(), |n| n + 1);
            bytes[at..].to_vec()
        }
        _ => bytes.to_vec(),
    }
}

/// The `$` tokens among search keys from `start` on, and what they stand
/// for: a key of its own is sequence numbers, the argument of `UID` UIDs;
/// a `$` that is another key's argument (a string, a date) is left alone.
fn search_sets(message: &[u8], tokens: &[Token], start: usize) -> Vec<(usize, SetKind)> {
    let mut found = Vec::new();
    let mut index = start;
    while index < tokens.len() {
        let token = &tokens[index];
        index += 1;
        if token.kind != Kind::Word {
            continue;
        }
        let text = &message[token.span()];
        if text == b"$" {
            found.push((index - 1, SetKind::Sequence));
            continue;
        }
        let arguments = match text.to_ascii_uppercase().as_slice() {
            b"UID" => {
                let argument = tokens.get(index);
                if argument.is_some_and(|t| t.kind == Kind::Word && &message[t.span()] == b"$") {
                    found.push((index, SetKind::Uid));
                }
                1
            }
            b"HEADER" => 2,
            // MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162).
            b"MODSEQ" => match tokens.get(index).map(|t| t.kind) {
                Some(Kind::Quoted | Kind::Literal) => 3,
                _ => 1,
            },
            b"BCC" | b"BEFORE" | b"BODY" | b"CC" | b"FROM" | b"KEYWORD" | b"LARGER" | b"ON"
            | b"SENTBEFORE" | b"SENTON" | b"SENTSINCE" | b"SINCE" | b"SMALLER" | b"SUBJECT"
            | b"TEXT" | b"TO" | b"UNKEYWORD" | b"OLDER" | b"YOUNGER" => 1,
            _ => 0,
        };
        index += arguments;
    }
    found
}

/// The index of the `)` closing the list that opens at `open` (or the end).
fn after_list(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (index, token) in tokens.iter().enumerate().skip(open) {
        match token.kind {
            Kind::Open => depth += 1,
            Kind::Close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return index;
                }
            }
            _ if depth == 0 => return index,
            _ => {}
        }
    }
    tokens.len()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An atom, number, sequence set or anything else up to a delimiter.
    Word,
    Quoted,
    /// `{n}` with its line end and its bytes.
    Literal,
    Open,
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

impl Token {
    fn span(&self) -> Range<usize> {
        self.start..self.end
    }
}

/// The tokens of a command up to the line end that closes it. A literal
/// whose bytes have not all arrived ends the list.
fn lex(message: &[u8]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < message.len() {
        let start = at;
        match message[at] {
            b' ' => {
                at += 1;
                continue;
            }
            b'\r' | b'\n' => break,
            b'(' | b')' => {
                let kind = if message[at] == b'(' { Kind::Open } else { Kind::Close };
                tokens.push(Token { kind, start, end: at + 1 });
                at += 1;
            }
            b'"' => {
                at += 1;
                while at < message.len() && message[at] != b'"' {
                    if message[at] == b'\\' {
                        at += 1;
                    }
                    at += 1;
                }
                at = (at + 1).min(message.len());
                tokens.push(Token { kind: Kind::Quoted, start, end: at });
            }
            _ => {
                while at < message.len() && !b" ()\"\r\n".contains(&message[at]) {
                    at += 1;
                }
                match literal_length(&message[start..at]) {
                    Some(length) => {
                        let rest = &message[at..];
                        let eol = if rest.starts_with(b"\r\n") {
                            2
                        } else if rest.starts_with(b"\n") {
                            1
                        } else {
                            0
                        };
                        let end = at + eol + length;
                        if eol == 0 || end > message.len() {
                            break;
                        }
                        at = end;
                        tokens.push(Token { kind: Kind::Literal, start, end });
                    }
                    None => tokens.push(Token { kind: Kind::Word, start, end: at }),
                }
            }
        }
    }
    tokens
}

/// `{n}` or `{n+}`: the literal's length.
fn literal_length(word: &[u8]) -> Option<usize> {
    let inner = word.strip_prefix(b"{")?.strip_suffix(b"}")?;
    let digits = inner.strip_suffix(b"+").unwrap_or(inner);
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse::<u32>().ok().map(|n| n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(kind: SetKind) -> String {
        match kind {
            SetKind::Sequence => "1:2".into(),
            SetKind::Uid => "10,12".into(),
        }
    }

    fn lifted(line: &str) -> (String, Option<ReturnOptions>) {
        let lifted = lift(line.as_bytes(), &saved).unwrap();
        (String::from_utf8(lifted.bytes.into_owned()).unwrap(), lifted.extras.returns)
    }

    #[test]
    fn dollar_becomes_the_saved_set_where_a_set_may_stand() {
        let cases = [
            ("a FETCH $ FLAGS\r\n", "a FETCH 1:2 FLAGS\r\n"),
            ("a UID FETCH $ (UID FLAGS)\r\n", "a UID FETCH 10,12 (UID FLAGS)\r\n"),
            ("a uid store $ +FLAGS (\\Seen)\r\n", "a uid store 10,12 +FLAGS (\\Seen)\r\n"),
            ("a COPY $ Trash\r\n", "a COPY 1:2 Trash\r\n"),
            ("a UID MOVE $ Trash\r\n", "a UID MOVE 10,12 Trash\r\n"),
            ("a UID EXPUNGE $\r\n", "a UID EXPUNGE 10,12\r\n"),
            ("a SEARCH $ SEEN\r\n", "a SEARCH 1:2 SEEN\r\n"),
            ("a UID SEARCH $\r\n", "a UID SEARCH 1:2\r\n"),
            ("a SEARCH UID $ NOT $\r\n", "a SEARCH UID 10,12 NOT 1:2\r\n"),
            ("a SEARCH OR (UID $) $\r\n", "a SEARCH OR (UID 10,12) 1:2\r\n"),
            ("a SEARCH CHARSET UTF-8 $\r\n", "a SEARCH CHARSET UTF-8 1:2\r\n"),
            ("a SORT (DATE) UTF-8 $\r\n", "a SORT (DATE) UTF-8 1:2\r\n"),
            (
                "a UID THREAD REFERENCES UTF-8 UID $\r\n",
                "a UID THREAD REFERENCES UTF-8 UID 10,12\r\n",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(lifted(line).0, want, "{line:?}");
        }
    }

    #[test]
    fn dollar_as_a_string_or_flag_is_left_alone() {
        for line in [
            "a SEARCH SUBJECT $\r\n",
            "a SEARCH HEADER X-Cost $\r\n",
            "a SEARCH HEADER $ x\r\n",
            "a SEARCH SUBJECT HEADER KEYWORD $\r\n",
            "a SEARCH KEYWORD $\r\n",
            "a SEARCH \"$\"\r\n",
            "a STORE 1 +FLAGS ($)\r\n",
            "a SEARCH $x\r\n",
            "a LIST \"\" $\r\n",
            "a SEARCH TEXT {1}\r\n$\r\n",
            "a NOOP\r\n",
        ] {
            let lifted = lift(line.as_bytes(), &saved).unwrap();
            assert!(matches!(lifted.bytes, Cow::Borrowed(_)), "{line:?}");
            assert_eq!(lifted.extras.returns, None);
        }
        // After a string key's argument, the next `$` is a key again.
        assert_eq!(lifted("a SEARCH SUBJECT HEADER $\r\n").0, "a SEARCH SUBJECT HEADER 1:2\r\n");
        assert_eq!(lifted("a SEARCH TEXT {1}\r\n$ $\r\n").0, "a SEARCH TEXT {1}\r\n$ 1:2\r\n");
    }

    #[test]
    fn return_options_are_lifted() {
        let (bytes, returns) = lifted("t1 SEARCH RETURN (MIN COUNT) UNSEEN\r\n");
        assert_eq!(bytes, "t1 SEARCH UNSEEN\r\n");
        assert_eq!(returns, Some(ReturnOptions { min: true, count: true, ..Default::default() }));
        let (bytes, returns) = lifted("t2 UID SEARCH RETURN () CHARSET UTF-8 $\r\n");
        assert_eq!(bytes, "t2 UID SEARCH CHARSET UTF-8 1:2\r\n");
        assert!(returns.unwrap().all);
        let (bytes, returns) = lifted("t3 UID SORT RETURN (ALL) (REVERSE DATE) UTF-8 ALL\r\n");
        assert_eq!(bytes, "t3 UID SORT (REVERSE DATE) UTF-8 ALL\r\n");
        assert!(returns.unwrap().all);
        let (bytes, returns) = lifted("t4 search return (partial 4:2) all\r\n");
        assert_eq!(bytes, "t4 search all\r\n");
        assert!(returns.unwrap().partial.is_some());
        // A literal announced after the options: the bytes so far lift too.
        let (bytes, _) = lifted("t5 SEARCH RETURN (SAVE) SUBJECT {4}\r\n");
        assert_eq!(bytes, "t5 SEARCH SUBJECT {4}\r\n");
    }

    #[test]
    fn bad_return_lists_are_refused() {
        let refused = |line: &str| lift(line.as_bytes(), &saved).unwrap_err();
        assert_eq!(refused("a SEARCH RETURN MIN ALL\r\n"), LiftError::ReturnList);
        assert_eq!(refused("a SEARCH RETURN (MIN ALL\r\n"), LiftError::ReturnList);
        assert!(matches!(refused("a SEARCH RETURN (FOO) ALL\r\n"), LiftError::Return(_)));
        assert!(matches!(refused("a SEARCH RETURN (PARTIAL 1) ALL\r\n"), LiftError::Return(_)));
        assert!(matches!(
            refused("a SORT RETURN (ALL PARTIAL 1:2) (DATE) UTF-8 ALL\r\n"),
            LiftError::Return(_)
        ));
    }

    #[test]
    fn fetch_partial_is_lifted_out_of_the_modifiers() {
        let cases = [
            (
                "a UID FETCH 1:* (FLAGS) (PARTIAL -1:-30)\r\n",
                "a UID FETCH 1:* (FLAGS)\r\n",
                "-1:-30",
            ),
            ("a FETCH 1:* FLAGS (partial 2:1)\r\n", "a FETCH 1:* FLAGS\r\n", "1:2"),
            (
                "a UID FETCH 1:* (UID) (PARTIAL 1:5 CHANGEDSINCE 7)\r\n",
                "a UID FETCH 1:* (UID) (CHANGEDSINCE 7)\r\n",
                "1:5",
            ),
            (
                "a UID FETCH $ (UID) (CHANGEDSINCE 7 PARTIAL -1:-1)\r\n",
                "a UID FETCH 10,12 (UID) (CHANGEDSINCE 7)\r\n",
                "-1:-1",
            ),
        ];
        for (line, want, range) in cases {
            let lifted = lift(line.as_bytes(), &saved).unwrap();
            assert_eq!(String::from_utf8_lossy(&lifted.bytes), want, "{line:?}");
            assert_eq!(lifted.extras.fetch_partial, Partial::parse(range.as_bytes()).ok());
        }
        // Items that look like modifiers are left alone.
        for line in [
            "a FETCH 1 (FLAGS PARTIAL)\r\n",
            "a FETCH 1 BODY[HEADER.FIELDS (PARTIAL)]\r\n",
            "a FETCH 1 (UID) (CHANGEDSINCE 3)\r\n",
        ] {
            let lifted = lift(line.as_bytes(), &saved).unwrap();
            assert!(matches!(lifted.bytes, Cow::Borrowed(_)), "{line:?}");
        }
        for line in ["a FETCH 1:* (UID) (PARTIAL)\r\n", "a FETCH 1:* (UID) (PARTIAL 1:*)\r\n"] {
            assert!(
                matches!(lift(line.as_bytes(), &saved), Err(LiftError::Partial(_))),
                "{line:?}"
            );
        }
    }

    #[test]
    fn cancelupdate_is_lifted_whole() {
        let lifted = lift(b"c1 CANCELUPDATE \"B01\" \"a\\\"b\"\r\n", &saved).unwrap();
        assert_eq!(&lifted.bytes[..], b"c1 NOOP\r\n");
        assert_eq!(lifted.extras.cancel, Some(vec!["B01".to_string(), "a\"b".to_string()]));
        let refused = |line: &str| lift(line.as_bytes(), &saved).unwrap_err();
        for line in
            ["c CANCELUPDATE\r\n", "c CANCELUPDATE B01\r\n", "c CANCELUPDATE {3}\r\nB01\r\n"]
        {
            assert_eq!(refused(line), LiftError::CancelUpdate, "{line:?}");
        }
        // UID CANCELUPDATE is no command: left to the codec to refuse.
        assert!(lift(b"c UID CANCELUPDATE \"x\"\r\n", &saved).unwrap().extras.cancel.is_none());
    }

    #[test]
    fn extended_list_syntax_is_lifted() {
        let list = |line: &str| {
            let lifted = lift(line.as_bytes(), &saved).unwrap();
            (String::from_utf8(lifted.bytes.into_owned()).unwrap(), lifted.extras.list)
        };
        let (bytes, options) = list(
            "a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"x\" y*) RETURN (CHILDREN STATUS (MESSAGES))\r\n",
        );
        assert_eq!(bytes, "a LIST \"\" \"x\"\r\n");
        let options = options.unwrap();
        assert!(options.selection.subscribed && options.selection.recursive_match);
        assert!(options.returns.children);
        assert_eq!(options.returns.status.as_deref().map(<[_]>::len), Some(1));
        assert_eq!(options.patterns, [b"x".to_vec(), b"y*".to_vec()]);
        // A quoted pattern is unescaped; a literal's bytes are the pattern.
        let (bytes, options) = list("b list \"\" (\"a\\\\b\" {2}\r\nc%)\r\n");
        assert_eq!(bytes, "b list \"\" \"a\\\\b\"\r\n");
        assert_eq!(options.unwrap().patterns, [b"a\\b".to_vec(), b"c%".to_vec()]);
        let (bytes, options) = list("c LIST \"\" % RETURN ()\r\n");
        assert_eq!(bytes, "c LIST \"\" %\r\n");
        assert_eq!(options.unwrap().patterns, [b"%".to_vec()]);
        // A plain LIST (and LSUB) is left alone.
        for line in ["d LIST \"\" *\r\n", "e LSUB \"\" (x)\r\n", "f LIST \"\" {3}\r\n"] {
            let lifted = lift(line.as_bytes(), &saved).unwrap();
            assert!(matches!(lifted.bytes, Cow::Borrowed(_)) && lifted.extras.list.is_none());
        }
        let refused = |line: &str| lift(line.as_bytes(), &saved).unwrap_err();
        assert!(matches!(refused("a LIST (imaptest) \"\" \"\"\r\n"), LiftError::List(_)));
        assert!(matches!(refused("a LIST (recursivematch) \"\" \"\"\r\n"), LiftError::List(_)));
        assert!(matches!(refused("a LIST \"\" \"\" return (imaptest)\r\n"), LiftError::List(_)));
        assert!(matches!(refused("a LIST \"\" ()\r\n"), LiftError::List(_)));
        assert_eq!(refused("a LIST \"\" x RETURN CHILDREN\r\n"), LiftError::ReturnList);
    }

    #[test]
    fn tokens() {
        let message = b"a SEARCH \"q \\\" ( x\" (X) {2}\r\nab {9}\r\nshort";
        let kinds: Vec<Kind> = lex(message).iter().map(|t| t.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Word,
                Kind::Word,
                Kind::Quoted,
                Kind::Open,
                Kind::Word,
                Kind::Close,
                Kind::Literal
            ]
        );
        assert_eq!(literal_length(b"{12+}"), Some(12));
        assert_eq!(literal_length(b"{}"), None);
        assert_eq!(literal_length(b"{x}"), None);
    }
}
