//! ePOST mail (`spec/mail.md`): messages as objects, folders as the replay
//! of each user's mail log, delivery by notification.
//!
//! - [`MailService::deliver`] stores a message once (parts as convergent
//!   objects, a manifest naming them) and returns only once it is durable
//!   for every recipient: appended to the INBOX of a recipient hosted here,
//!   or held by the overlay as a sealed notification carrying the
//!   manifest's capability for one hosted elsewhere.
//! - The recipient's node turns each mail notification into an INBOX
//!   insert, exactly once (the notification id is in the log), on arrival
//!   and on a periodic pass over what was received, so a crash between the
//!   two loses nothing.
//! - Each hosted user's mail belongs to one task ([`account`]).

pub mod account;
mod cache;
mod checkpoint;
pub mod expunged;
pub mod import;
mod leases;
pub mod message;
mod open;
pub mod state;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use epost_types::address::Address;
use epost_types::capability::Capability;
use epost_types::id::ObjectId;
use epost_types::identity::ANY_DOMAIN;
use epost_types::mail::{MessageManifest, MessageRef, Piece};
use epost_types::mailbox::{Change, MailError, Recipient, Route, StoredObjects};
use epost_types::mime::{self, MessageOutline};
use epost_types::notify::relay_address;
use epost_types::time::Timestamp;
use futures::StreamExt;
use tokio::sync::broadcast;
use tracing::{debug, warn};

pub use account::{Changed, Mailbox};

use crate::chain::Chain;
use crate::identity::{Identity, IdentityError};
use crate::keyed::PerKey;
use crate::lease::LeaseBook;
use crate::logs::LogService;
use crate::notify::{NotifyError, NotifyService, Received, ReceivedCursor};
use crate::stop::{Stop, StopSignal};
use crate::storage::StorageService;
use crate::worker::{self, DRAIN, Worker, WorkerCtx, Workers};

/// How often received notifications are checked against the INBOX.
const RECONCILE: Duration = Duration::from_secs(60);
/// Bytes of messages kept in memory for repeated reads (IMAP clients
/// fetch headers, then structure, then bodies of the same message).
const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Bytes of manifests kept in memory: a client's ENVELOPE, BODYSTRUCTURE
/// and header fetches are answered from a message's manifest alone.
const MANIFEST_CACHE_BYTES: usize = 16 * 1024 * 1024;
/// Received notifications filed at once.
const FILING: usize = 64;
/// What a mail notification's summary starts with.
const MAIL_SUMMARY: &str = "mail";

/// The mail service. Clone freely.
#[derive(Clone)]
pub struct MailService {
    inner: Arc<Inner>,
}

struct Inner {
    storage: StorageService,
    logs: LogService,
    identity: Identity,
    notifications: NotifyService,
    book: LeaseBook,
    /// One task per user's mailbox, the only one that changes it.
    mailboxes: PerKey<Address, Mailbox>,
    /// Messages recently stored or read here.
    cache: Mutex<cache::Cache<Bytes>>,
    /// Their manifests.
    manifests: Mutex<cache::Cache<Arc<MessageManifest>>>,
    /// Tells the mailbox tasks to stop.
    mailboxes_stop: Stop,
}

/// Who signs the notification that announces mail to a user hosted
/// elsewhere.
enum Announcer {
    /// A user hosted here (the submitter, or the realm's postmaster).
    User(Address),
    /// This node, as a named MX of the recipient's realm.
    Mx,
}

/// The filing worker and the mailbox tasks, for an orderly shutdown.
pub(crate) struct MailTask {
    receive: Worker,
    mailboxes: StopSignal,
}

impl MailTask {
    /// Stops filing, lets every mailbox task finish its batch, and waits.
    pub(crate) async fn shutdown(self, service: &MailService) {
        self.receive.shutdown(DRAIN).await;
        self.mailboxes.stop();
        if tokio::time::timeout(DRAIN, service.inner.mailboxes.close()).await.is_err() {
            warn!("mailbox tasks did not finish their batches in time; abandoned");
        }
    }
}

impl MailService {
    /// Starts the service and the worker that files received mail.
    pub(crate) fn start(
        storage: StorageService,
        logs: LogService,
        identity: Identity,
        notifications: NotifyService,
        book: LeaseBook,
        workers: &Workers,
    ) -> (Self, MailTask) {
        let (mailboxes, mailboxes_stop) = StopSignal::new();
        let service = Self {
            inner: Arc::new(Inner {
                storage,
                logs,
                identity,
                notifications,
                book,
                mailboxes: PerKey::new(),
                cache: Mutex::new(cache::Cache::new(CACHE_BYTES)),
                manifests: Mutex::new(cache::Cache::new(MANIFEST_CACHE_BYTES)),
                mailboxes_stop,
            }),
        };
        let filer = service.clone();
        let receive = workers.start("mail-filing", |ctx| receive(filer, ctx));
        (service, MailTask { receive, mailboxes })
    }

    /// The mailbox of a user hosted here (its task starts on first use).
    pub fn mailbox(&self, address: &Address) -> Result<Mailbox, MailError> {
        self.inner.identity.user(address).map_err(|_| MailError::NotHosted(address.clone()))?;
        self.inner
            .mailboxes
            .get_or_start(address, || {
                let services = account::Services {
                    logs: self.inner.logs.clone(),
                    book: self.inner.book.clone(),
                    storage: self.inner.storage.clone(),
                };
                Mailbox::start(address.clone(), services, self.inner.mailboxes_stop.clone())
            })
            .map_err(|_| MailError::Stopped)
    }

    /// Whether and how mail for `address` can be delivered; an error
    /// when it cannot be told now (the overlay could not be asked).
    pub async fn route(&self, address: &Address) -> Result<Route, MailError> {
        if self.inner.identity.user(address).is_ok() {
            return Ok(Route::Local);
        }
        let trusted = self.inner.identity.trusted();
        let ours = trusted.keys(address.domain()).next().is_some()
            || trusted.keys(ANY_DOMAIN).next().is_some();
        if !ours {
            return Ok(Route::Foreign);
        }
        let found = self.inner.identity.lookup_certificate(address).await;
        route_of_lookup(found.map(|_| ()))
    }

    /// Stores a message durably, sealed under the convergence secret of
    /// `realm_of`'s realm when this node has it (so the same attachment is
    /// one object across the realm), else under this node's; returns how
    /// folders refer to it, and its objects (for the lease book).
    pub async fn store_message(
        &self,
        raw: &[u8],
        realm_of: &Address,
    ) -> Result<(MessageRef, StoredObjects), MailError> {
        let secret = self.inner.identity.realm_secret(realm_of.domain());
        let stored = message::store(&self.inner.storage, secret.as_ref(), raw)
            .await
            .map_err(|e| MailError::unavailable("cannot store the message", e))?;
        self.cache().insert(stored.capability.id, Bytes::copy_from_slice(raw), raw.len());
        self.keep_manifest(stored.capability.id, Arc::new(stored.manifest));
        let message = MessageRef {
            manifest: stored.capability,
            size: raw.len() as u64,
            internal_date: Timestamp::now().as_millis(),
            envelope_from: None,
        };
        Ok((message, StoredObjects { members: stored.members, expires: stored.expires }))
    }

    /// A stored message's exact bytes.
    pub async fn fetch(&self, message: &MessageRef) -> Result<Bytes, MailError> {
        if let Some(hit) = self.cache().get(&message.manifest.id) {
            return Ok(hit);
        }
        let manifest = self.manifest(&message.manifest).await?;
        self.load(&message.manifest, &manifest).await
    }

    /// A stored message's MIME structure and its bytes through its
    /// header, for answering ENVELOPE, BODYSTRUCTURE and header fetches:
    /// from its manifest (the structure stored when it was received, the
    /// header in its inline pieces) without reading its part objects. For
    /// mail stored before structures were kept (or with one this node
    /// cannot read) the structure is found from the whole message.
    pub async fn outline(&self, message: &MessageRef) -> Result<MessageOutline, MailError> {
        let manifest = self.manifest(&message.manifest).await?;
        let id = message.manifest.id;
        let structure = match manifest.structure() {
            Some(Ok(structure)) => structure,
            found => {
                if let Some(Err(e)) = found {
                    debug!(%id, error = %Chain(&e), "the stored structure is not used; parsing the message");
                }
                let raw = self.fetch(message).await?;
                return Ok(MessageOutline::of(&raw, mime::parse(&raw).structure));
            }
        };
        if let Some(raw) = self.cache().get(&id) {
            return Ok(MessageOutline::of(&raw, structure));
        }
        let len = structure.head_len() as u64;
        let head = message::load_head(&self.inner.storage, &manifest, len)
            .await
            .map_err(|e| read_error(id, e))?;
        Ok(MessageOutline { structure, head })
    }

    /// A message's manifest, from the cache or the overlay.
    async fn manifest(&self, capability: &Capability) -> Result<Arc<MessageManifest>, MailError> {
        let id = capability.id;
        if let Some(hit) = self.manifests().get(&id) {
            return Ok(hit);
        }
        let manifest = message::load_manifest(&self.inner.storage, capability)
            .await
            .map_err(|e| read_error(id, e))?;
        let manifest = Arc::new(manifest);
        self.keep_manifest(id, manifest.clone());
        Ok(manifest)
    }

    fn keep_manifest(&self, id: ObjectId, manifest: Arc<MessageManifest>) {
        let inline: usize = manifest
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Inline(bytes) => bytes.len(),
                Piece::Part { .. } => 128,
            })
            .sum();
        let weight = inline + manifest.structure.as_ref().map_or(0, Vec::len);
        self.manifests().insert(id, manifest, weight);
    }

    async fn load(
        &self,
        capability: &Capability,
        manifest: &MessageManifest,
    ) -> Result<Bytes, MailError> {
        let id = capability.id;
        let raw =
            message::load(&self.inner.storage, manifest).await.map_err(|e| read_error(id, e))?;
        let raw = Bytes::from(raw);
        self.cache().insert(id, raw.clone(), raw.len());
        Ok(raw)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, cache::Cache<Bytes>> {
        self.inner.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn manifests(&self) -> std::sync::MutexGuard<'_, cache::Cache<Arc<MessageManifest>>> {
        self.inner.manifests.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Delivers `raw` to every recipient by the route decided for it when
    /// it was accepted (Local or Remote; any other is refused), and returns
    /// once it is durable for all of them. Mail for a remote recipient is
    /// announced by a notification signed by `submitter` if hosted here,
    /// else by `postmaster@<recipient's domain>` hosted here, else by this
    /// node if the realm's MX record names it.
    pub async fn deliver(
        &self,
        submitter: Option<&Address>,
        recipients: &[Recipient],
        raw: &[u8],
    ) -> Result<(), MailError> {
        // The sender's realm, else the (first) recipient's.
        let realm_of = submitter
            .or(recipients.first().map(|r| &r.address))
            .ok_or_else(|| MailError::NotAllowed("a message needs a recipient".to_owned()))?;
        let (message, objects) = self.store_message(raw, realm_of).await?;
        let summary = summary_of(raw);
        let capability = message.manifest.clone();
        let sends = recipients.iter().map(|rcpt| {
            let message = message.clone();
            let objects = objects.clone();
            let capability = capability.clone();
            let summary = summary.clone();
            async move {
                let address = &rcpt.address;
                match rcpt.route {
                    Route::Local => {
                        let insert =
                            Change::insert("INBOX", message, Vec::new(), None, Some(objects));
                        return self.mailbox(address)?.change(insert).await.map(|_| ());
                    }
                    Route::Remote => {}
                    Route::Unknown => return Err(MailError::UnknownUser(address.clone())),
                    Route::Foreign => {
                        return Err(MailError::NotAllowed(format!(
                            "{address} is outside the realms trusted here"
                        )));
                    }
                }
                let notifications = &self.inner.notifications;
                let sent = match self.announcer(submitter, address).await? {
                    Announcer::User(signer) => {
                        notifications.send(&signer, address, Some(capability), summary).await
                    }
                    Announcer::Mx => {
                        notifications.send_relayed(address, Some(capability), summary).await
                    }
                };
                sent.map(|_| ()).map_err(|e| match e {
                    NotifyError::Identity(IdentityError::NoCertificate { .. }) => {
                        MailError::Undeliverable { address: address.clone(), cause: Arc::new(e) }
                    }
                    other => MailError::unavailable("cannot announce the message", other),
                })
            }
        });
        for result in futures::future::join_all(sends).await {
            result?;
        }
        Ok(())
    }

    /// Who announces mail for `rcpt`, hosted elsewhere: the submitter if
    /// hosted here, else a `postmaster@` of its domain hosted here, else
    /// this node as a named MX of the realm. An error says why none can
    /// (`NotAllowed`: this node is not named; `Unavailable`: the MX
    /// record cannot be looked up now).
    async fn announcer(
        &self,
        submitter: Option<&Address>,
        rcpt: &Address,
    ) -> Result<Announcer, MailError> {
        if let Some(submitter) = submitter
            && self.inner.identity.user(submitter).is_ok()
        {
            return Ok(Announcer::User(submitter.clone()));
        }
        let domain = rcpt.domain();
        let postmaster = relay_address(domain)
            .map_err(|_| MailError::NotAllowed(format!("no postmaster for {rcpt}")))?;
        if self.inner.identity.user(&postmaster).is_ok() {
            return Ok(Announcer::User(postmaster));
        }
        match self.inner.identity.relays_for(domain).await {
            Ok(true) => Ok(Announcer::Mx),
            Ok(false) => Err(MailError::NotAllowed(format!(
                "{rcpt} is hosted on another node, and the MX record of {domain} does not name                  this node (`epost realm mx add {domain} {}` on the node holding its realm key)",
                self.inner.identity.node_peer_id()
            ))),
            Err(e) => Err(MailError::unavailable("cannot look up the realm's MX record", e)),
        }
    }

    /// Whether mail for `rcpt` (hosted elsewhere) can be announced from
    /// here, as [`Self::deliver`] would: what the MX asks at RCPT, so
    /// that a node that cannot relay says so before the message comes.
    pub async fn can_announce(
        &self,
        submitter: Option<&Address>,
        rcpt: &Address,
    ) -> Result<(), MailError> {
        self.announcer(submitter, rcpt).await.map(drop)
    }

    /// Files one received notification into INBOX if it is mail.
    async fn file(&self, received: &Received) -> Result<bool, MailError> {
        if !is_mail(&received.summary) {
            return Ok(false);
        }
        let Some(capability) = &received.capability else { return Ok(false) };
        let id = data_encoding::HEXLOWER
            .decode(received.id.as_bytes())
            .map_err(|e| MailError::corrupt("the notification id is not hex", e))?;
        let mailbox = self.mailbox(&received.to)?;
        let delivered = id.clone();
        if mailbox.read(move |state| state.delivered.contains_key(&delivered)).await? {
            return Ok(false);
        }
        // The size comes from the manifest itself, not the sender's word
        // (and the manifest stays cached for the client's first fetches).
        let manifest = self.manifest(capability).await?;
        let message = MessageRef {
            manifest: capability.clone(),
            size: manifest.size,
            internal_date: received.received,
            envelope_from: None,
        };
        // Stored by the sender's node: the renewal lists its objects.
        let insert = Change::insert("INBOX", message, Vec::new(), Some(id), None);
        Ok(mailbox.change(insert).await?.applied)
    }

    /// Files everything received but not yet in an INBOX (runs every
    /// minute and when the notification stream lagged). Only what arrived
    /// after the user's filing mark is read: the mark moves past every
    /// notification filed (or not mail) that arrived more than
    /// [`FILING_SETTLED`] ago, so one still being written is never passed.
    pub async fn reconcile(&self) {
        for user in self.inner.identity.hosted_users() {
            let address = user.keys.address.clone();
            if let Err(e) = self.reconcile_user(&address).await {
                debug!(%address, error = %Chain(&e), "filing pass stopped; the next one retries");
            }
        }
    }

    async fn reconcile_user(&self, address: &Address) -> Result<(), MailError> {
        let key = filing_mark_key(address);
        let mark = self.inner.book.mark(&key).ok().flatten().map(ReceivedCursor);
        let settled = Timestamp::now().as_millis().saturating_sub(millis(FILING_SETTLED));
        let mut cursor = mark.clone();
        let mut advance = None;
        let mut blocked = false;
        loop {
            let page = self
                .inner
                .notifications
                .list_after(address, cursor.as_ref(), FILING_PAGE)
                .map_err(|e| MailError::unavailable("cannot list what was received", e))?;
            let full = page.len() == FILING_PAGE;
            for (at, item) in page {
                match self.file(&item).await {
                    Ok(_) if !blocked && item.received < settled => advance = Some(at.clone()),
                    Ok(_) => {}
                    Err(e) => {
                        debug!(%address, id = %item.id, error = %Chain(&e), "not filed yet; the next pass retries");
                        blocked = true;
                    }
                }
                cursor = Some(at);
            }
            if !full {
                break;
            }
        }
        if let Some(at) = advance.filter(|at| Some(at) != mark.as_ref()) {
            let change = crate::lease::Change { marks: vec![(key, at.0)], ..Default::default() };
            self.inner
                .book
                .change(change)
                .await
                .map_err(|e| MailError::unavailable("cannot move the filing mark", e))?;
        }
        Ok(())
    }
}

/// Why a message could not be read: damaged, or not reachable now.
fn read_error(id: ObjectId, e: message::MessageError) -> MailError {
    if e.is_corrupt() {
        MailError::corrupt(format!("message {id}"), e)
    } else {
        MailError::unavailable("cannot read the message", e)
    }
}

/// Notifications received this long ago are surely on disk: the filing
/// mark may pass them.
const FILING_SETTLED: Duration = Duration::from_secs(600);
/// Received notifications read per page by a filing pass.
const FILING_PAGE: usize = 256;

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The key of a user's filing mark: the last received notification
/// before which everything is filed.
fn filing_mark_key(address: &Address) -> Vec<u8> {
    let mut key = crate::lease::OwnerId::mail(address).as_bytes().to_vec();
    key.push(b'f');
    key
}

fn is_mail(summary: &str) -> bool {
    summary == MAIL_SUMMARY || summary.starts_with("mail\n")
}

/// "mail", then the subject (shortened) for `notify list`.
fn summary_of(raw: &[u8]) -> String {
    let subject = mail_parser::MessageParser::default()
        .parse_headers(raw)
        .and_then(|m| m.subject().map(str::to_owned))
        .unwrap_or_default();
    let mut summary = format!("{MAIL_SUMMARY}\n{subject}");
    let limit = epost_types::limits::MAX_SUMMARY;
    if summary.len() > limit {
        let mut cut = limit;
        while !summary.is_char_boundary(cut) {
            cut -= 1;
        }
        summary.truncate(cut);
    }
    summary
}

async fn receive(service: MailService, ctx: WorkerCtx) {
    let mut events = service.inner.notifications.subscribe();
    let mut tick = worker::every(RECONCILE, true);
    // Filing many at once lets each mailbox group-commit their inserts
    // (the mailbox drops a notification filed twice).
    let mut filing = futures::stream::FuturesUnordered::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let _busy = ctx.busy();
                service.reconcile().await;
            }
            Some(()) = filing.next(), if !filing.is_empty() => {}
            event = events.recv(), if filing.len() < FILING => match event {
                Ok(received) => {
                    let service = service.clone();
                    let ctx = ctx.clone();
                    filing.push(async move {
                        let _busy = ctx.busy();
                        if let Err(e) = service.file(&received).await {
                            ctx.failed(&e);
                            warn!(to = %received.to, error = %Chain(&e), "received mail not filed yet; the next pass retries");
                        }
                    });
                }
                Err(broadcast::error::RecvError::Lagged(_)) => service.reconcile().await,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            () = ctx.stop.stopped() => break,
        }
    }
    // Finish what was started; anything else is filed by the next start's pass.
    while filing.next().await.is_some() {}
}

/// The route of an address of a trusted realm not hosted here, from what
/// looking up its certificate said: found is `Remote`; certainly absent
/// (every holder asked answered, none has a valid one) is `Unknown`;
/// anything else (the overlay could not be asked, a local failure) is
/// an error to try again on, never `Unknown`.
fn route_of_lookup(found: Result<(), IdentityError>) -> Result<Route, MailError> {
    match found {
        Ok(()) => Ok(Route::Remote),
        Err(IdentityError::NoCertificate { .. } | IdentityError::Certificate(_)) => {
            Ok(Route::Unknown)
        }
        Err(why) => Err(MailError::unavailable("the certificate lookup failed", why)),
    }
}

#[cfg(test)]
mod route_tests {
    use super::*;
    use epost_types::mailbox::MailErrorKind;

    #[test]
    fn unknown_only_when_the_realm_certainly_has_no_such_user() {
        let bob: Address = "bob@example.org".parse().unwrap();
        let no_cert = || IdentityError::NoCertificate { address: bob.clone() };
        let unreachable =
            || IdentityError::Unreachable { address: bob.clone(), why: "no peer answered".into() };
        let publish = || IdentityError::Publish("the overlay is shutting down".into());
        // (what the lookup said, the route, or the kind of error)
        let cases: [(Result<(), IdentityError>, Result<Route, MailErrorKind>); 4] = [
            (Ok(()), Ok(Route::Remote)),
            (Err(no_cert()), Ok(Route::Unknown)),
            (Err(unreachable()), Err(MailErrorKind::Temporary)),
            (Err(publish()), Err(MailErrorKind::Temporary)),
        ];
        for (found, want) in cases {
            let shown = format!("{found:?}");
            let got = route_of_lookup(found).map_err(|e| e.kind());
            assert_eq!(got, want, "{shown}");
        }
        let e = route_of_lookup(Err(unreachable())).unwrap_err();
        assert_eq!(
            e.with_causes(),
            "the certificate lookup failed: cannot look up bob@example.org in the overlay now: no peer answered"
        );
    }
}
