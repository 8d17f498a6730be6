//! The control API's requests and replies, one type per message: the node
//! serialises its replies and reads its requests with these, and the CLI
//! (or any Rust client) uses the same types the other way, so neither side
//! reads the other by string keys. Routes: spec/dht.md section 9 and the
//! API sections of each service's spec.

use serde::{Deserialize, Serialize};

pub use crate::identity::{RealmInfo, UserInfo};
pub use crate::lease::{RenewProgress, RenewReport};
pub use crate::logs::{AppendReport, HeadReport};
pub use crate::notify::{Received, SendReport};
pub use crate::outbound::{QueueChanged, QueueEntry, QueueFigures, QueueId, RetryRequest};
pub use crate::storage::{CheckReport, PutReport, RefreshReport, RepairReport};
pub use crate::worker::{WorkerInfo, WorkerState};

/// `GET /v1/status`: the node's view of the overlay and its store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub peer_id: String,
    /// Peers with an open connection.
    pub peers: usize,
    /// Peers in the routing table.
    pub known_peers: usize,
    pub listen_addrs: Vec<String>,
    pub records: usize,
    pub fragments: u64,
    pub bytes: u64,
    pub data_fragments: u8,
    pub parity_fragments: u8,
    pub warnings: Vec<String>,
    /// The node's background workers, in start order.
    #[serde(default)]
    pub workers: Vec<WorkerInfo>,
    /// Whether the node is connected to the overlay or retrying its peers
    /// (absent from an older node's reply).
    #[serde(default)]
    pub joining: Option<epost_dht::Joining>,
    /// Whether peers can dial this node: public, or behind NAT through
    /// relays, with the peers reached directly after a hole punch (absent
    /// from an older node's reply).
    #[serde(default)]
    pub reachability: Option<epost_dht::Reachability>,
}

/// One data entry of `GET /v1/logs/{address}/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub seq: u64,
    pub time: u64,
    /// The entry as text when it is UTF-8, else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The entry's bytes, base64.
    pub data: String,
}

/// `POST /v1/notify`: a notification to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendNotification {
    pub from: String,
    pub to: String,
    pub text: String,
    #[serde(default)]
    pub capability: Option<String>,
}

/// `POST /v1/realms`: make (or return) the realm key of a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealmInit {
    pub domain: String,
}

/// `GET /v1/realms`: the realm keys held here and the keys trusted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Realms {
    pub held: Vec<RealmInfo>,
    pub trusted: epost_types::identity::TrustedRealms,
}

/// `POST /v1/realms/{domain}/mx`: name a node in the realm's MX record
/// (`named`), or take it out; `peer` is its peer id, or this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MxChange {
    pub peer: Option<String>,
    pub named: bool,
}

/// `GET /v1/realms/{domain}/mx`, and the answer to an [`MxChange`]: the
/// realm's current MX record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxInfo {
    pub domain: String,
    /// The named nodes' peer ids.
    pub nodes: Vec<String>,
    pub serial: u64,
    /// Unix milliseconds.
    pub expires: u64,
    /// Whether this node is one of them.
    pub this_node: bool,
}

/// `POST /v1/trust`: trust a realm key, for one domain or (`None`) any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    pub key: String,
    #[serde(default)]
    pub domain: Option<String>,
}

/// What `POST /v1/trust` trusted: the key, and its domain (`*` for any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trusted {
    pub key: String,
    pub domain: String,
}

/// `POST /v1/users`: host a new user of a realm held here.
// No Debug: it carries a password or passphrase.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddUser {
    pub address: String,
    #[serde(default)]
    pub password: Option<String>,
}

/// `POST /v1/users/{address}/export`: the user's bundle, optionally
/// wrapped under a passphrase.
// No Debug: it carries a password or passphrase.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportUser {
    #[serde(default)]
    pub passphrase: Option<String>,
}

/// `POST /v1/users/import`: host a user from an exported bundle.
// No Debug: it carries a password or passphrase.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportUser {
    /// The bundle, base64 (standard alphabet, padded).
    pub bundle: String,
    #[serde(default)]
    pub passphrase: Option<String>,
    /// A gateway password to set (else the bundle's, if it has one).
    #[serde(default)]
    pub password: Option<String>,
}

/// `POST /v1/users/{address}/password`.
// No Debug: it carries a password or passphrase.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    pub password: String,
}

/// `POST /v1/mail/{address}/send?to=...`: what was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub from: String,
    pub to: Vec<String>,
    pub size: usize,
}

/// One folder of `GET /v1/mail/{address}/folders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderSummary {
    pub name: String,
    pub uid_validity: u32,
    pub uid_next: u32,
    pub messages: usize,
    pub unseen: usize,
    /// Whether IMAP clients see it in LSUB (a new folder is subscribed).
    #[serde(default)]
    pub subscribed: bool,
}

/// `POST /v1/mail/{address}/folders`: make a folder (answered with its
/// [`FolderSummary`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFolder {
    pub name: String,
}

/// `POST /v1/mail/{address}/folders/{folder}/rename`: give a folder a new
/// name (answered with the renamed folder's [`FolderSummary`]). Renaming
/// INBOX moves its messages to the new folder and leaves INBOX empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameFolder {
    pub to: String,
}

/// `DELETE /v1/mail/{address}/folders/{folder}`: what went with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderDeleted {
    pub name: String,
    /// The messages it held (the objects of those no other folder holds
    /// are no longer renewed).
    pub messages: usize,
}

/// `POST /v1/mail/{address}/folders/{folder}/import?create=true` makes
/// the folder first if it is missing; without it a missing folder is an
/// error, so a mistyped name never becomes a new folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    #[serde(default)]
    pub create: bool,
}

/// One message of `GET /v1/mail/{address}/folders/{folder}`, in UID order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSummary {
    pub uid: u32,
    pub size: u64,
    pub internal_date: u64,
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope_from: Option<String>,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub date: String,
    /// Why the headers could not be read, if they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /v1/mail/{address}/folders/{folder}`: where the message went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appended {
    pub uid: u32,
    pub uid_validity: u32,
}

/// `POST /v1/mail/{address}/folders/{folder}/import`: how many were filed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    pub imported: u64,
    pub folder: String,
}
