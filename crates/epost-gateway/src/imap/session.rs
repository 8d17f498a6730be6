//! The IMAP session as a state machine: decoded commands in, imap-types
//! responses out (untagged ones through a [`Sink`] as they are made, so a
//! large FETCH streams; the tagged completion as a [`Done`]). No sockets
//! and no bytes here; the command families live in their own files.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use epost_types::address::Address;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{Tag, Text};
use imap_codec::imap_types::flag::{Flag, FlagFetch, FlagPerm};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{
    Code, CodeOther, Data, Response, Status, StatusBody, StatusKind, Tagged,
};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use epost_types::mailbox::{MailError, MailErrorKind};

use crate::backend::{MailBackend, MessageMeta};
use crate::context::Shared;
use crate::imap::enable::Enabled;
use crate::imap::esearch::Esearch;
use crate::imap::lift::{Decoded, Extras};
use crate::imap::utf7;

/// Where untagged responses go while a command runs.
pub(crate) trait Sink: Send {
    fn send(
        &mut self,
        response: Response<'static>,
    ) -> impl Future<Output = Result<(), Gone>> + Send;

    /// Sends one response already encoded: one imap-codec cannot write
    /// (a partial BINARY's origin, an ESEARCH).
    fn send_encoded(&mut self, bytes: Vec<u8>) -> impl Future<Output = Result<(), Gone>> + Send;

    /// An `* ESEARCH` response, which imap-types has no type for.
    fn send_esearch(&mut self, esearch: Esearch) -> impl Future<Output = Result<(), Gone>> + Send {
        let mut line = esearch.encode();
        line.extend_from_slice(b"\r\n");
        self.send_encoded(line)
    }
}

/// What the client would read, for tests.
#[cfg(test)]
impl Sink for Vec<u8> {
    async fn send(&mut self, response: Response<'static>) -> Result<(), Gone> {
        use imap_codec::ResponseCodec;
        use imap_codec::encode::Encoder;
        self.extend(ResponseCodec::default().encode(&response).dump());
        Ok(())
    }

    async fn send_encoded(&mut self, bytes: Vec<u8>) -> Result<(), Gone> {
        self.extend(bytes);
        Ok(())
    }
}

/// The client went away while a command was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the client connection is gone")]
pub(crate) struct Gone;

/// How a command ends.
#[derive(Debug)]
pub(crate) enum Done {
    /// Send the tagged status (after `delay`: failed logins are slowed
    /// down), then read the next command.
    Status { status: Status<'static>, delay: Duration },
    /// Send the status, then start TLS on the connection.
    StartTls(Status<'static>),
    /// Send the status, then close (LOGOUT).
    Close(Status<'static>),
    /// Send a continuation request, then idle until DONE.
    Idle(Tag<'static>),
    /// Send an empty continuation request and read a SASL PLAIN response.
    AuthPlain(Tag<'static>),
    /// Send the status, then deflate the connection both ways (RFC 4978).
    Compress(Status<'static>),
}

impl Done {
    pub(crate) fn now(status: Status<'static>) -> Self {
        Done::Status { status, delay: Duration::ZERO }
    }
}

/// The selected folder as this session has shown it to the client.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    pub(crate) name: String,
    pub(crate) read_only: bool,
    pub(crate) uid_validity: u32,
    pub(crate) uid_next: u32,
    /// The folder's HIGHESTMODSEQ when the view last caught up with it
    /// (what the client may be told: no change at or below it is untold).
    pub(crate) highest_modseq: u64,
    /// In sequence order (ascending UIDs). Messages expunged elsewhere stay
    /// until the client may be told (RFC 3501 section 7.4.1).
    pub(crate) messages: Vec<MessageMeta>,
    /// The UIDs that are `\Recent` in this session (see [`crate::imap::recent`]).
    pub(crate) recent: BTreeSet<u32>,
    /// The keywords the client was told of in FLAGS: every keyword a
    /// message in the view carries is among them (RFC 3501 section 7.2.6).
    pub(crate) keywords: BTreeSet<String>,
    /// The UIDs SEARCH ... RETURN (SAVE) kept for `$` (RFC 5182).
    pub(crate) saved: Vec<u32>,
    /// The live SEARCH and SORT results (RFC 5267), at most
    /// [`crate::imap::contexts::MAX_CONTEXTS`].
    pub(crate) contexts: Vec<crate::imap::contexts::Context>,
}

impl Selected {
    /// A view of `messages`, with `recent` as this session's recent ones.
    pub(crate) fn new(
        name: String,
        read_only: bool,
        snapshot: &crate::backend::FolderSnapshot,
        recent: impl IntoIterator<Item = u32>,
    ) -> Self {
        let mut selected = Selected {
            name,
            read_only,
            uid_validity: snapshot.uid_validity,
            uid_next: snapshot.uid_next,
            highest_modseq: snapshot.highest_modseq,
            messages: snapshot.messages.clone(),
            recent: recent.into_iter().collect(),
            keywords: BTreeSet::new(),
            saved: Vec::new(),
            contexts: Vec::new(),
        };
        let all: Vec<String> =
            selected.messages.iter().flat_map(|m| m.flags.iter().cloned()).collect();
        selected.learn_keywords(&all);
        selected
    }

    /// Adds the keywords among `flags` to those the client knows; whether
    /// any was new (then FLAGS must be sent again, before they are used).
    pub(crate) fn learn_keywords(&mut self, flags: &[String]) -> bool {
        let mut grew = false;
        for flag in flags.iter().filter(|f| !f.starts_with('\\')) {
            if !self.keywords.contains(flag) && Flag::try_from(flag.as_str()).is_ok() {
                self.keywords.insert(flag.clone());
                grew = true;
            }
        }
        grew
    }

    /// FLAGS and PERMANENTFLAGS for this view: the system flags and every
    /// keyword known; any keyword may be made (`\*`) unless read-only.
    pub(crate) fn flags_responses(&self) -> Vec<Response<'static>> {
        let mut flags = vec![Flag::Answered, Flag::Flagged, Flag::Deleted, Flag::Seen, Flag::Draft];
        flags.extend(
            self.keywords
                .iter()
                .filter_map(|k| Flag::try_from(k.as_str()).ok().map(IntoStatic::into_static)),
        );
        let mut permanent: Vec<FlagPerm<'static>> =
            flags.iter().cloned().map(FlagPerm::Flag).collect();
        permanent.push(FlagPerm::Asterisk);
        if self.read_only {
            permanent.clear();
        }
        vec![
            Response::Data(Data::Flags(flags)),
            untagged(StatusKind::Ok, Some(Code::PermanentFlags(permanent)), "flags that stay"),
        ]
    }

    /// Whether the message with this UID is recent in this session.
    pub(crate) fn is_recent(&self, uid: u32) -> bool {
        self.recent.contains(&uid)
    }
}

/// One client's session.
pub(crate) struct Session<B: MailBackend> {
    pub(crate) shared: Arc<Shared<B>>,
    pub(crate) peer: IpAddr,
    pub(crate) tls: bool,
    pub(crate) user: Option<(Address, B::Account)>,
    pub(crate) selected: Option<Selected>,
    /// COMPRESS=DEFLATE is on (it cannot be turned off, nor TLS started).
    pub(crate) compressed: bool,
    /// What [`Session::lift`] took out of the command being answered.
    pub(crate) lifted: Extras,
    /// CONDSTORE and QRESYNC, once the client turned them on.
    pub(crate) enabled: Enabled,
}

impl<B: MailBackend> Session<B> {
    pub(crate) fn new(shared: Arc<Shared<B>>, peer: IpAddr, tls: bool) -> Self {
        Self {
            shared,
            peer,
            tls,
            user: None,
            selected: None,
            compressed: false,
            lifted: Extras::default(),
            enabled: Enabled::default(),
        }
    }

    /// Answers a command whose extension syntax [`Session::lift`] took out,
    /// then tells the live search contexts' changes (RFC 5267).
    pub(crate) async fn handle_lifted<O: Sink>(
        &mut self,
        command: Command<'static>,
        mut extras: Extras,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let done = match extras.cancel.take() {
            Some(tags) => self.cancel_update(&command.tag, &tags),
            None => {
                self.lifted = extras;
                let done = self.handle(command, out).await;
                self.lifted = Extras::default();
                done?
            }
        };
        if matches!(done, Done::Status { .. }) {
            self.update_contexts(out).await?;
        }
        Ok(done)
    }

    /// Answers a command as [`Session::decode`] read it.
    pub(crate) async fn handle_decoded<O: Sink>(
        &mut self,
        decoded: Decoded,
        out: &mut O,
    ) -> Result<Done, Gone> {
        match decoded {
            Decoded::Codec(command, extras) => self.handle_lifted(command, extras, out).await,
            Decoded::Append(append) if self.user.is_none() => {
                Ok(Done::now(bad(&append.tag, "log in first")))
            }
            Decoded::Append(append) => self.append(append, out).await,
        }
    }

    /// Answers one command.
    pub(crate) async fn handle<O: Sink>(
        &mut self,
        command: Command<'static>,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let tag = command.tag;
        let body = command.body;
        // Commands valid in any state.
        match body {
            CommandBody::Capability => return self.capability(tag, out).await,
            CommandBody::Noop => return self.noop(tag, out).await,
            CommandBody::Logout => return self.logout(tag, out).await,
            CommandBody::Id { .. } => return self.id(tag, out).await,
            _ => {}
        }
        if self.user.is_none() {
            return Ok(match body {
                CommandBody::StartTLS => self.starttls(tag),
                CommandBody::Login { username, password } => {
                    let password = password.declassify().as_ref().to_vec();
                    self.login(tag, username.as_ref(), &password).await
                }
                CommandBody::Authenticate { mechanism, initial_response } => {
                    let initial = initial_response.map(|r| r.declassify().to_vec());
                    self.authenticate(tag, mechanism, initial).await
                }
                _ => Done::now(bad(&tag, "log in first")),
            });
        }
        match body {
            CommandBody::StartTLS
            | CommandBody::Login { .. }
            | CommandBody::Authenticate { .. } => Ok(Done::now(bad(&tag, "already logged in"))),
            CommandBody::Namespace => self.namespace(tag, out).await,
            CommandBody::Compress { algorithm } => Ok(self.compress(tag, algorithm)),
            CommandBody::Enable { capabilities } => self.enable(tag, &capabilities, out).await,
            CommandBody::Select { mailbox, parameters } => {
                self.select(tag, &mailbox, false, &parameters, out).await
            }
            CommandBody::Examine { mailbox, parameters } => {
                self.select(tag, &mailbox, true, &parameters, out).await
            }
            CommandBody::Create { mailbox } => Ok(self.create(tag, &mailbox).await),
            CommandBody::Delete { mailbox } => Ok(self.delete(tag, &mailbox).await),
            CommandBody::Rename { from, to } => Ok(self.rename(tag, &from, &to).await),
            CommandBody::Subscribe { mailbox } => Ok(self.subscribe(tag, &mailbox, true).await),
            CommandBody::Unsubscribe { mailbox } => Ok(self.subscribe(tag, &mailbox, false).await),
            CommandBody::List { reference, mailbox_wildcard } => {
                self.list(tag, &reference, &mailbox_wildcard, false, out).await
            }
            CommandBody::Lsub { reference, mailbox_wildcard } => {
                self.list(tag, &reference, &mailbox_wildcard, true, out).await
            }
            CommandBody::Status { mailbox, item_names } => {
                self.status(tag, &mailbox, &item_names, out).await
            }
            CommandBody::GetQuotaRoot { mailbox } => self.get_quota_root(tag, &mailbox, out).await,
            CommandBody::GetQuota { root } => self.get_quota(tag, &root, out).await,
            CommandBody::SetQuota { .. } => Ok(self.set_quota(tag)),
            CommandBody::Append { mailbox, flags, date, message } => {
                let command = crate::imap::append::single(tag, mailbox, flags, date, message);
                self.append(command, out).await
            }
            CommandBody::Idle => Ok(match self.selected {
                Some(_) => Done::Idle(tag),
                None => Done::now(bad(&tag, "select a mailbox first")),
            }),
            body if self.selected.is_none() => {
                Ok(Done::now(bad(&tag, &format!("{} needs a selected mailbox", body.name()))))
            }
            CommandBody::Check => self.noop(tag, out).await,
            CommandBody::Close => self.close(tag).await,
            CommandBody::Unselect => {
                self.selected = None;
                Ok(Done::now(ok(&tag, None, "UNSELECT completed")))
            }
            CommandBody::Expunge => self.expunge(tag, None, out).await,
            CommandBody::ExpungeUid { sequence_set } => {
                self.expunge(tag, Some(sequence_set), out).await
            }
            CommandBody::Search { charset, criteria, uid } => {
                self.search(tag, charset, criteria, uid, out).await
            }
            CommandBody::Sort { sort_criteria, charset, search_criteria, uid } => {
                self.sort(tag, sort_criteria, charset, search_criteria, uid, out).await
            }
            CommandBody::Thread { algorithm, charset, search_criteria, uid } => {
                self.thread(tag, algorithm, charset, search_criteria, uid, out).await
            }
            CommandBody::Fetch { sequence_set, macro_or_item_names, uid, modifiers } => {
                self.fetch(tag, &sequence_set, macro_or_item_names, uid, &modifiers, out).await
            }
            CommandBody::Store { sequence_set, kind, response, flags, uid, modifiers } => {
                self.store(tag, &sequence_set, kind, response, flags, uid, &modifiers, out).await
            }
            CommandBody::Copy { sequence_set, mailbox, uid } => {
                self.copy(tag, &sequence_set, &mailbox, uid, false, out).await
            }
            CommandBody::Move { sequence_set, mailbox, uid } => {
                self.copy(tag, &sequence_set, &mailbox, uid, true, out).await
            }
            other => Ok(Done::now(bad(&tag, &format!("{} is not supported", other.name())))),
        }
    }

    /// The logged-in user's address, as the recent claims key it.
    pub(crate) fn user_name(&self) -> String {
        self.user.as_ref().map(|(address, _)| address.to_string()).unwrap_or_default()
    }

    /// The logged-in account (a clone: accounts are cheap handles).
    pub(crate) fn account(&self) -> Option<B::Account> {
        self.user.as_ref().map(|(_, account)| account.clone())
    }
}

// ---- Building responses --------------------------------------------------

/// Text safe for a status line: ASCII without CR, LF or NUL, never empty.
pub(crate) fn text(message: &str) -> Text<'static> {
    let clean: String = message
        .chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
        .collect();
    let clean = if clean.starts_with('[') { format!(" {clean}") } else { clean };
    Text::try_from(clean).unwrap_or_else(|_| Text::unvalidated("-"))
}

pub(crate) fn status(
    tag: &Tag<'static>,
    kind: StatusKind,
    code: Option<Code<'static>>,
    message: &str,
) -> Status<'static> {
    Status::Tagged(Tagged {
        tag: tag.clone(),
        body: StatusBody { kind, code, text: text(message) },
    })
}

pub(crate) fn ok(
    tag: &Tag<'static>,
    code: Option<Code<'static>>,
    message: &str,
) -> Status<'static> {
    status(tag, StatusKind::Ok, code, message)
}

pub(crate) fn no(
    tag: &Tag<'static>,
    code: Option<Code<'static>>,
    message: &str,
) -> Status<'static> {
    status(tag, StatusKind::No, code, message)
}

pub(crate) fn bad(tag: &Tag<'static>, message: &str) -> Status<'static> {
    status(tag, StatusKind::Bad, None, message)
}

/// An untagged status response.
pub(crate) fn untagged(
    kind: StatusKind,
    code: Option<Code<'static>>,
    message: &str,
) -> Response<'static> {
    Response::Status(Status::Untagged(StatusBody { kind, code, text: text(message) }))
}

/// A response code imap-types has no variant for (RFC 5530 and friends).
pub(crate) fn code(name: &'static str) -> Code<'static> {
    Code::Other(CodeOther::unvalidated(name.as_bytes()))
}

/// A backend failure as a tagged NO with the matching RFC 5530 code.
pub(crate) fn mail_error(tag: &Tag<'static>, error: &MailError) -> Status<'static> {
    let code = match error.kind() {
        MailErrorKind::NoFolder | MailErrorKind::NoMessage => code("NONEXISTENT"),
        MailErrorKind::FolderExists => code("ALREADYEXISTS"),
        MailErrorKind::Refused => code("CANNOT"),
        MailErrorKind::TooLarge => Code::TooBig,
        MailErrorKind::Temporary => code("UNAVAILABLE"),
    };
    no(tag, Some(code), &error.with_causes())
}

pub(crate) fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// Our flag strings as IMAP flags, with `\Recent` if the message is
/// recent in this session; ones IMAP cannot carry are left out.
pub(crate) fn fetch_flags(flags: &[String], recent: bool) -> Vec<FlagFetch<'static>> {
    let mut out: Vec<FlagFetch<'static>> = flags
        .iter()
        .filter_map(|f| Flag::try_from(f.as_str()).ok().map(|f| FlagFetch::Flag(f.into_static())))
        .collect();
    if recent {
        out.push(FlagFetch::Recent);
    }
    out
}

/// An IMAP flag as the backend stores it (`\Seen`, `$Forwarded`).
pub(crate) fn flag_string(flag: &Flag<'_>) -> String {
    flag.to_string()
}

pub(crate) fn has_flag(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

/// A FETCH response with just the flags (and the UID, which clients want).
pub(crate) fn flags_response(seq: usize, meta: &MessageMeta, recent: bool) -> Response<'static> {
    use imap_codec::imap_types::core::Vec1;
    use imap_codec::imap_types::fetch::MessageDataItem;
    let items = vec![
        MessageDataItem::Flags(fetch_flags(&meta.flags, recent)),
        MessageDataItem::Uid(nonzero(meta.uid)),
    ];
    Response::Data(Data::Fetch {
        seq: nonzero(seq as u32),
        items: Vec1::try_from(items)
            .unwrap_or_else(|_| Vec1::from(MessageDataItem::Uid(nonzero(meta.uid)))),
    })
}

// ---- Names -----------------------------------------------------------------

/// The backend's name for a mailbox the client named: modified UTF-7 in
/// IMAP4rev1 (a name already in UTF-8 is taken as it is), UTF-8 as
/// written in IMAP4rev2 (`utf8`; RFC 9051 section 5.1); INBOX in any
/// case is INBOX.
pub(crate) fn name_of(mailbox: &Mailbox<'_>, utf8: bool) -> Option<String> {
    match mailbox {
        Mailbox::Inbox => Some("INBOX".to_owned()),
        Mailbox::Other(other) => {
            let raw = std::str::from_utf8(other.as_ref()).ok()?;
            let name = if utf8 { raw.to_owned() } else { utf7::decode(raw)? };
            if name.is_empty() || name.contains(['\r', '\n', '\0']) {
                return None;
            }
            Some(name)
        }
    }
}

/// A backend folder name as the client sees it: modified UTF-7, or in
/// IMAP4rev2 (`utf8`) UTF-8, quoted (RFC 9051 allows UTF-8 in quoted
/// strings).
pub(crate) fn mailbox_of(name: &str, utf8: bool) -> Option<Mailbox<'static>> {
    use imap_codec::imap_types::core::{AString, IString};
    use imap_codec::imap_types::extensions::utf8::QuotedUtf8;
    use imap_codec::imap_types::mailbox::MailboxOther;
    if !utf8 {
        return Mailbox::try_from(utf7::encode(name)).ok();
    }
    if name.is_ascii() {
        return Mailbox::try_from(name.to_owned()).ok();
    }
    let quoted = QuotedUtf8::try_from(name.to_owned()).ok()?;
    let other = MailboxOther::try_from(AString::String(IString::QuotedUtf8(quoted))).ok()?;
    Some(Mailbox::Other(other))
}

impl<B: MailBackend> Session<B> {
    /// [`name_of`] in this session's mode.
    pub(crate) fn folder_name(&self, mailbox: &Mailbox<'_>) -> Option<String> {
        name_of(mailbox, self.enabled.imap4rev2)
    }

    /// [`mailbox_of`] in this session's mode.
    pub(crate) fn mailbox_name(&self, name: &str) -> Option<Mailbox<'static>> {
        mailbox_of(name, self.enabled.imap4rev2)
    }
}

// ---- Sequence sets -----------------------------------------------------------

/// The positions (0-based, ascending, without duplicates) in `messages`
/// that a sequence set names, by sequence number or by UID.
pub(crate) fn resolve(set: &SequenceSet, uid: bool, messages: &[MessageMeta]) -> Vec<usize> {
    let count = messages.len() as u32;
    let largest = if uid { messages.last().map_or(0, |m| m.uid) } else { count };
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for sequence in set.0.as_ref() {
        let (a, b) = match sequence {
            Sequence::Single(v) => (value(v), value(v)),
            Sequence::Range(a, b) => (value(a), value(b)),
        };
        let (lo, hi) = (a.min(b), a.max(b));
        let span = if uid {
            let start = messages.partition_point(|m| m.uid < lo);
            let end = messages.partition_point(|m| m.uid <= hi);
            (start, end)
        } else {
            let lo = lo.max(1) as usize;
            let hi = (hi.min(count)) as usize;
            (lo - 1, hi.max(lo - 1))
        };
        if span.0 < span.1 {
            ranges.push(span);
        }
    }
    ranges.sort_unstable();
    let mut positions = Vec::new();
    let mut next = 0;
    for (start, end) in ranges {
        for position in start.max(next)..end {
            positions.push(position);
        }
        next = next.max(end);
    }
    positions
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::memory::MemoryBackend;
    use crate::testing::Setup;
    use imap_codec::ResponseCodec;
    use imap_codec::encode::Encoder;

    /// A session for alice on loopback, over the in-memory backend.
    pub(crate) fn session() -> (Session<MemoryBackend>, MemoryBackend) {
        session_on(|backend| backend)
    }

    /// A session on loopback over the test backend as `adjust` leaves it
    /// (one that keeps no structures, say).
    pub(crate) fn session_on(
        adjust: impl FnOnce(MemoryBackend) -> MemoryBackend,
    ) -> (Session<MemoryBackend>, MemoryBackend) {
        // Users after `adjust`: what it changes holds for their accounts.
        let gateway = Setup { users: &[], ..Setup::default() }.start_over(adjust);
        let backend = gateway.shared.backend.clone();
        for (user, password) in crate::testing::USERS {
            backend.add_user(&crate::testing::addr(user), password);
        }
        (Session::new(gateway.shared, "127.0.0.1".parse().unwrap(), false), backend)
    }

    /// Another session on the same gateway as `session` (its users, its
    /// recent claims), not logged in.
    pub(crate) fn session_for(
        session: &Session<MemoryBackend>,
        backend: &MemoryBackend,
    ) -> (Session<MemoryBackend>, MemoryBackend) {
        let peer = "127.0.0.1".parse().unwrap();
        (Session::new(session.shared.clone(), peer, false), backend.clone())
    }

    /// Runs one command line (literals and all), lifted and decoded as a
    /// connection does; returns everything the client would see.
    pub(crate) async fn run(session: &mut Session<MemoryBackend>, line: &str) -> String {
        let input = format!("{line}\r\n");
        let decoded = session
            .decode(input.as_bytes())
            .unwrap_or_else(|e| panic!("{line:?} does not parse: {e}"));
        let mut out: Vec<u8> = Vec::new();
        let done = session.handle_decoded(decoded, &mut out).await.unwrap();
        let mut text = String::from_utf8_lossy(&out).into_owned();
        let status = match done {
            Done::Status { status, .. } | Done::StartTls(status) | Done::Close(status) => status,
            Done::Idle(tag) => ok(&tag, None, "(idle)"),
            Done::AuthPlain(tag) => ok(&tag, None, "(auth continues)"),
            Done::Compress(status) => status,
        };
        let response = Response::Status(status);
        text.push_str(&String::from_utf8_lossy(&ResponseCodec::default().encode(&response).dump()));
        text
    }

    pub(crate) async fn logged_in() -> (Session<MemoryBackend>, MemoryBackend) {
        let (mut session, backend) = session();
        let reply = run(&mut session, "a LOGIN alice@example.test alice-pw").await;
        assert!(reply.starts_with("a OK"), "{reply}");
        (session, backend)
    }

    fn meta(uid: u32) -> MessageMeta {
        MessageMeta { uid, flags: vec![], internal_date: 0, size: 1, modseq: 1 }
    }

    #[test]
    fn sequence_sets_resolve_by_number_and_by_uid() {
        let messages: Vec<_> = [3, 5, 9, 10].into_iter().map(meta).collect();
        let set = |s: &str| SequenceSet::try_from(s).unwrap();
        assert_eq!(resolve(&set("1:*"), false, &messages), vec![0, 1, 2, 3]);
        assert_eq!(resolve(&set("2,4,2:3"), false, &messages), vec![1, 2, 3]);
        assert_eq!(resolve(&set("9"), false, &messages), Vec::<usize>::new());
        assert_eq!(resolve(&set("4:9"), true, &messages), vec![1, 2]);
        assert_eq!(resolve(&set("*"), true, &messages), vec![3]);
        assert_eq!(resolve(&set("20:*"), true, &messages), vec![3]);
        assert_eq!(resolve(&set("1:*"), true, &[]), Vec::<usize>::new());
    }

    #[test]
    fn status_text_is_always_valid() {
        assert_eq!(text("").as_ref(), "-");
        assert_eq!(text("caf\u{e9}\r\n").as_ref(), "caf???");
        assert_eq!(text("[x]").as_ref(), " [x]");
    }

    #[tokio::test]
    async fn commands_need_the_right_state() {
        let (mut session, _) = session();
        assert!(run(&mut session, "a SELECT INBOX").await.starts_with("a BAD"));
        let (mut session, _) = logged_in().await;
        assert!(run(&mut session, "b FETCH 1 FLAGS").await.starts_with("b BAD"));
        assert!(run(&mut session, "c LOGIN x y").await.starts_with("c BAD"));
        assert!(run(&mut session, "d NOOP").await.starts_with("d OK"));
    }
}
