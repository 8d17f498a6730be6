//! What every session shares: the backend, TLS, limits and the login
//! throttle.

use std::time::Duration;

use tokio_rustls::TlsAcceptor;

/// Size and time limits for every protocol.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest message (SMTP SIZE, IMAP APPEND literal), bytes.
    pub max_message: usize,
    /// Longest command line, bytes (data lines are bounded by max_message).
    pub max_line: usize,
    /// Longest IMAP command line, literals excluded, bytes. Longer than
    /// SMTP's: a legal ID, SEARCH or UID set is easily tens of kilobytes
    /// (Dovecot allows 64 KiB).
    pub max_imap_line: usize,
    /// Most messages in one IMAP APPEND (MULTIAPPEND, RFC 3502). They are
    /// stored as one change, which must fit one mail log entry.
    pub max_append_messages: usize,
    /// Most parts of one IMAP CATENATE (RFC 4469); each URL part is a
    /// message read.
    pub max_catenate_parts: usize,
    /// Most recipients of one SMTP transaction.
    pub max_recipients: usize,
    /// Most bad commands in a session before it is closed.
    pub max_errors: usize,
    /// A session with no input for this long is closed (IMAP IDLE included,
    /// as RFC 9051 allows after 30 minutes).
    pub idle_timeout: Duration,
    /// Once a command line (or an AUTH response) has begun, it must be
    /// complete within this long, however the bytes trickle in: a client
    /// sending one byte just inside the idle timeout cannot hold a session.
    pub command_timeout: Duration,
    /// Once message content (SMTP DATA or BDAT, an IMAP literal) has
    /// begun, it must be complete within this long.
    pub data_timeout: Duration,
    /// Most open sessions in all; more are refused at once, with the
    /// protocol's "try later" (SMTP 421, IMAP BYE, POP3 -ERR).
    pub max_sessions: usize,
    /// The login throttle: failures are remembered this long ...
    pub login_window: Duration,
    /// ... this many per source (a client IP and the address it tried)
    /// cost nothing, each further one is answered more slowly ...
    pub login_free_failures: u32,
    /// ... and from this many on, that source's logins are refused
    /// without checking the password until the window has passed (an IP
    /// failing for many addresses: at five times this, for all of them).
    pub login_lockout: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message: 25 * 1024 * 1024,
            max_line: 8 * 1024,
            max_imap_line: 64 * 1024,
            max_append_messages: 100,
            max_catenate_parts: 100,
            max_recipients: 100,
            max_errors: 20,
            idle_timeout: Duration::from_secs(30 * 60),
            command_timeout: Duration::from_secs(5 * 60),
            data_timeout: Duration::from_secs(30 * 60),
            max_sessions: 1024,
            login_window: Duration::from_secs(15 * 60),
            login_free_failures: 3,
            login_lockout: 10,
        }
    }
}

impl Limits {
    /// The login throttle these limits describe.
    pub fn throttle(&self) -> Throttle {
        Throttle::new(self.login_window, self.login_free_failures, self.login_lockout)
    }
}

/// Everything the sessions of one gateway share.
pub struct Shared<B> {
    pub backend: B,
    /// For STARTTLS/STLS; `None` disables them.
    pub tls: Option<TlsAcceptor>,
    pub limits: Limits,
    pub throttle: Throttle,
    /// The name the gateway greets with.
    pub hostname: String,
    /// Whether SMTP accepts mail for foreign domains from authenticated
    /// submitters (the backend queues them for delivery to other domains).
    pub relay_for_submitters: bool,
    /// Where `RCPT TO:<postmaster>` goes, if configured.
    pub postmaster: Option<epost_types::address::Address>,
    /// Checks of unauthenticated MX mail before delivery.
    pub inbound: Option<crate::inbound::InboundChecks>,
    /// Becomes true when the gateway shuts down; sessions finish the
    /// command at hand and say goodbye.
    pub stopped: tokio::sync::watch::Receiver<bool>,
    /// Which IMAP session has taken which messages as `\Recent`.
    pub(crate) recent: crate::imap::RecentClaims,
}

pub use crate::throttle::{Throttle, Verdict};
