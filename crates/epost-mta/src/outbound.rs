//! What the outbound queue hands a transport, and what comes back: the
//! vocabulary shared by [`crate::queue`], [`crate::transport`],
//! [`crate::dkim`] and [`crate::dsn`].

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// One reply of a remote SMTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The basic code (250, 451, 550...).
    pub code: u16,
    /// The enhanced status code (RFC 3463), when the server gave one.
    pub status: Option<Status>,
    /// The reply's text, lines joined by spaces, without the codes.
    pub text: String,
}

/// An enhanced mail system status code, `class.subject.detail` (RFC 3463).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// When the sender wants a delivery status notification for a recipient
/// (RFC 3461 `NOTIFY`). `None` of all: `NOTIFY=NEVER`; absent: failures
/// and delays, as if the client had not asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Default for Notify {
    fn default() -> Self {
        Self { success: false, failure: true, delay: true }
    }
}

/// What a bounce carries of the message (RFC 3461 `RET`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ret {
    /// The whole message.
    Full,
    /// Its header only (the default).
    #[default]
    Headers,
}

/// One recipient of a queued message, with its RFC 3461 parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The address as given in `RCPT TO` (a UTF-8 local part needs
    /// SMTPUTF8 of the remote side).
    pub address: String,
    pub notify: Notify,
    /// `ORCPT`: the original recipient as the client gave it
    /// (`addr-type;xtext`, decoded).
    pub orcpt: Option<String>,
}

/// One message, as a transport sends it to one domain.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// `MAIL FROM`; `None` is the null reverse path `<>` (a bounce).
    pub reverse_path: Option<&'a str>,
    /// The recipients at this domain, in the order the outcomes come back.
    pub recipients: &'a [Recipient],
    /// The bytes to send after `DATA`, signed already, CRLF line ends,
    /// not dot-stuffed.
    pub body: &'a [u8],
    /// `ENVID` (decoded), passed on to a server that speaks DSN.
    pub envid: Option<&'a str>,
    pub ret: Option<Ret>,
    /// The envelope or the header needs SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// The body has 8-bit bytes (`BODY=8BITMIME`).
    pub eight_bit: bool,
}

/// What became of one recipient in one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The remote side said `250` to the data: it holds the message.
    Delivered { host: String, reply: Reply },
    /// Worth another try later (4xx, no answer, DNS trouble).
    Deferred { host: Option<String>, reply: Option<Reply>, reason: String },
    /// Refused for good (5xx, no such domain, a null MX).
    Failed { host: Option<String>, reply: Option<Reply>, status: Status, reason: String },
}

/// Where DNS questions go: the system's resolvers, or the listed
/// servers (a test's own DNS server on loopback, a local resolver).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    /// Empty: the system's configuration (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
}

/// One delivery attempt of one message to one domain. The queue calls it;
/// [`crate::transport`] implements it over SMTP, tests with a fake.
pub trait Transport: Send + Sync + 'static {
    /// Tries to hand `message` to `domain`'s mail servers; one outcome per
    /// recipient of `message`, in its order.
    fn send(
        &self,
        domain: &str,
        message: Message<'_>,
    ) -> impl std::future::Future<Output = Vec<Outcome>> + Send;
}

/// Signs what leaves a realm. The queue calls it once, at enqueue, so
/// every retry sends the same bytes; [`crate::dkim`] implements it.
pub trait Sign: Send + Sync + 'static {
    /// The header fields to put before `message` (CRLF-terminated), for
    /// mail whose author is in `domain`.
    fn sign(&self, domain: &str, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// Why a message could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// This node holds no DKIM key of the domain: it must not send the
    /// domain's mail unsigned.
    #[error("this node has no DKIM key for {domain}")]
    NoKey { domain: String },
    #[error("cannot sign mail of {domain}")]
    Failed {
        domain: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
