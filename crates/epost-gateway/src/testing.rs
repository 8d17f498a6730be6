//! The gateway as the unit tests (and the fuzzing entry points) set it
//! up: realm `example.test` in the in-memory backend with alice and bob,
//! what every session shares (limits, throttle, TLS, the greeting's name)
//! with defaults a test adjusts, and a sans-IO line session (SMTP or
//! POP3) fed bytes the way a client sends them.
//!
//! Test-only (and the `fuzzing` feature's): nothing shipped may use it.

#![allow(clippy::expect_used, reason = "a fixture that cannot be set up is a broken test")]
// The fuzzing entry points need only the set-up.
#![cfg_attr(not(test), allow(dead_code))]

use std::sync::Arc;

use bytes::Bytes;
use epost_types::address::Address;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::backend::{Account, FolderSnapshot, MailBackend};
use crate::context::{Limits, Shared, Throttle};
use crate::line::{LineSession, Step};
use crate::memory::{MemoryAccount, MemoryBackend};

/// The test realm.
pub(crate) const REALM: &str = "example.test";

/// The realm's users and their passwords.
pub const USERS: [(&str, &str); 2] =
    [("alice@example.test", "alice-pw"), ("bob@example.test", "bob-pw")];

/// `text` as an address; a test's literal that is not one is a broken test.
pub(crate) fn addr(text: &str) -> Address {
    text.parse().expect("a test address")
}

/// How a test gateway is set up. The default: [`USERS`], no TLS, the
/// default limits and throttle, greeting as `gw.example.test`, no relaying.
pub(crate) struct Setup {
    pub(crate) users: &'static [(&'static str, &'static str)],
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) limits: Limits,
    pub(crate) throttle: Throttle,
    pub(crate) hostname: &'static str,
    pub(crate) relay: bool,
    /// `gateway.postmaster`.
    pub(crate) postmaster: Option<Address>,
    /// Checks of MX mail (none: delivered unchecked).
    pub(crate) inbound: Option<crate::inbound::InboundChecks>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            users: &USERS,
            tls: None,
            limits: Limits::default(),
            throttle: Throttle::default(),
            hostname: "gw.example.test",
            relay: false,
            postmaster: None,
            inbound: None,
        }
    }
}

/// A self-signed acceptor for `localhost` (the keys stay in memory once
/// it is made).
#[cfg(test)]
pub(crate) fn tls() -> TlsAcceptor {
    use crate::tls::{TlsSource, acceptor};
    let dir = tempfile::tempdir().expect("a temporary directory");
    let source = TlsSource::SelfSigned { dir: dir.path().into(), names: vec!["localhost".into()] };
    acceptor(&source).expect("a self-signed certificate")
}

impl Setup {
    /// The gateway over the in-memory backend.
    pub(crate) fn start(self) -> Fixture {
        self.start_over(|backend| backend)
    }

    /// The gateway over `wrap` of the in-memory backend (a backend that
    /// fails on purpose, say).
    pub(crate) fn start_over<B>(self, wrap: impl FnOnce(MemoryBackend) -> B) -> Fixture<B> {
        let backend = MemoryBackend::new(&[REALM]);
        for (user, password) in self.users {
            backend.add_user(&addr(user), password);
        }
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            backend: wrap(backend.clone()),
            tls: self.tls,
            limits: self.limits,
            throttle: self.throttle,
            hostname: self.hostname.into(),
            relay_for_submitters: self.relay,
            postmaster: self.postmaster,
            inbound: self.inbound,
            stopped,
            recent: Default::default(),
        });
        Fixture { backend, shared, stop }
    }
}

/// A test gateway: its backend, what its sessions share, and the switch
/// that stops it (sessions see it stopping once this is sent or dropped).
pub(crate) struct Fixture<B = MemoryBackend> {
    pub(crate) backend: MemoryBackend,
    pub(crate) shared: Arc<Shared<B>>,
    pub(crate) stop: watch::Sender<bool>,
}

impl<B> Fixture<B> {
    async fn account(&self, user: &str) -> MemoryAccount {
        self.backend.account(&addr(user)).await.expect("a test user")
    }

    /// Stores `raw` in `user`'s INBOX, as delivery would; its UID.
    pub(crate) async fn deliver(&self, user: &str, raw: &'static [u8]) -> u32 {
        let account = self.account(user).await;
        let stored = account.append("INBOX", Bytes::from_static(raw), Vec::new(), None).await;
        stored.expect("the message fits").1
    }

    /// `user`'s INBOX as it is now.
    pub(crate) async fn snapshot(&self, user: &str) -> FolderSnapshot {
        self.account(user).await.snapshot("INBOX").await.expect("an INBOX")
    }

    /// Every message in `user`'s INBOX, oldest first.
    pub(crate) async fn inbox(&self, user: &str) -> Vec<Vec<u8>> {
        let account = self.account(user).await;
        let mut all = Vec::new();
        for meta in self.snapshot(user).await.messages {
            all.push(account.fetch("INBOX", meta.uid).await.expect("a listed message").to_vec());
        }
        all
    }
}

/// A line session (SMTP or POP3) fed bytes by a test, on a [`Fixture`].
pub(crate) struct Fed<L> {
    pub(crate) session: L,
    pub(crate) gateway: Fixture,
}

impl<L: LineSession> Fed<L> {
    /// Opens a session on `gateway`; returns it and its greeting.
    pub(crate) fn open(
        gateway: Fixture,
        open: impl FnOnce(Arc<Shared<MemoryBackend>>) -> L,
    ) -> (Self, String) {
        let mut session = open(gateway.shared.clone());
        let greeting = String::from_utf8(session.take_output()).expect("a text greeting");
        (Self { session, gateway }, greeting)
    }

    /// Sends `bytes`; what the server said, and what the connection does next.
    pub(crate) async fn send(&mut self, bytes: impl AsRef<[u8]>) -> (String, Step) {
        let step = self.session.feed(bytes.as_ref()).await;
        (String::from_utf8_lossy(&self.session.take_output()).into_owned(), step)
    }

    /// Sends up to 20 reads of noise ([`noise`]), `seed` carried on, until
    /// the session stops reading.
    pub(crate) async fn babble(&mut self, seed: &mut u64, most: u64, alphabet: &[u8]) {
        for _ in 0..20 {
            if self.send(noise(seed, most, alphabet)).await.1 != Step::Continue {
                break;
            }
        }
    }
}

/// Fewer than `most` bytes of `alphabet` picked by xorshift from `seed`
/// (which moves on): cheap reproducible garbage with protocol words in it.
pub(crate) fn noise(seed: &mut u64, most: u64, alphabet: &[u8]) -> Vec<u8> {
    let mut chunk = Vec::new();
    for _ in 0..(*seed % most) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        chunk.push(alphabet[(*seed % alphabet.len() as u64) as usize]);
    }
    chunk
}
