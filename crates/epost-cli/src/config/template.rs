//! The file `epost init` writes: every key with what it means. The values
//! are not written here but filled in from a [`Config`] (the defaults,
//! with whatever `init` was given), so the file and the defaults cannot
//! disagree; a test checks that every key appears.

use super::Config;

/// Why a config could not be written out as a file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TemplateError {
    #[error("cannot write the configuration as TOML: {0}")]
    Serialize(#[from] toml::ser::Error),
    #[error("the config template has a line for `{key}`, which the configuration does not have")]
    NoSuchKey { key: String },
}

/// The commented file for `config`: each `key = @` line of [`TEXT`] gets
/// the value `config` has for that key of its section.
pub(crate) fn template(config: &Config) -> Result<String, TemplateError> {
    let values = toml::Table::try_from(config)?;
    let mut out = String::with_capacity(TEXT.len() + 512);
    let mut section = "";
    for line in TEXT.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name;
        }
        match line.strip_suffix(" = @") {
            Some(key) => {
                let value = values
                    .get(section)
                    .and_then(toml::Value::as_table)
                    .and_then(|table| table.get(key))
                    .ok_or_else(|| TemplateError::NoSuchKey { key: format!("{section}.{key}") })?;
                out.push_str(&format!("{key} = {value}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// The file's words; `key = @` marks where a value goes.
const TEXT: &str = r#"# epost node configuration. Every key is optional; the values shown
# are the defaults unless `epost init` was given others.

[network]
# libp2p multiaddrs to listen on for peers: TCP (/tcp/<port>) and QUIC
# (/udp/<port>/quic-v1), IPv4 and IPv6. /ip4/127.0.0.1/tcp/0 lets the OS
# pick a port (the chosen one is written to node.json when the node runs).
# An IPv6 wildcard (/ip6/::/...) on a host without IPv6 is skipped with a
# warning; any other address that cannot be bound stops the start.
listen = @
# Peers to join the overlay through: multiaddrs ending in /p2p/<peer id>.
bootstrap = @
# Seconds `node run` waits at start for a first peer (bootstrap or remembered
# from the last run) to answer. If none does, the node runs alone, serves its
# users, says so in `epost status`, and keeps dialling them with backoff.
bootstrap_timeout_secs = @
# Relay for peers behind NAT (circuit relay v2), within limits per peer and
# per connection (spec/dht.md, "Reachability"). Useful on a node with a
# public address; harmless elsewhere.
relay = @
# When AutoNAT finds this node cannot be dialled (home NAT, firewall), it
# holds reservations on this many relays among the peers it dialled, so
# others reach it through them, and hole-punches (DCUtR) to direct
# connections where the NATs allow.
relays = @
# AutoNAT normally trusts only global addresses. true: also probe and be
# probed at private and loopback ones (a network that lives on one LAN).
nat_probe_private = @
# Peers this node refuses to talk to, in either direction, from the start
# (peer ids as `epost status` prints them, e.g. "12D3KooW...").
ban = @
# Connection limits for a node that faces the internet; over them a new
# connection is refused at the handshake (see spec/security.md).
max_incoming_connections = @
max_pending_incoming = @
max_connections_per_peer = @
# No new connection, in or out, while this process uses more than this
# percentage of the machine's memory.
max_memory_percent = @
# Requests one peer may send each second, and twice that at once; past that
# it is told to slow down (fragments: Busy, notifications: RateLimited,
# Kademlia puts: dropped unread). A peer that keeps asking at more than one
# and a half times its rate although refused is cut off for flood_block_secs.
frag_requests_per_sec = @
notify_requests_per_sec = @
kad_puts_per_sec = @
flood_block_secs = @

[storage]
# Each object is erasure-coded into data_fragments (k) + parity_fragments (m)
# fragments on the k+m nodes closest to its id; any k rebuild it, so it
# survives the loss of any m. 4+4 stores 2x the object size.
data_fragments = @
parity_fragments = @
# Objects expire unless their owner renews them; deletion is non-renewal.
# The node renews, for the users it hosts, everything their mail and logs
# still reference, once renew_after_days have passed since its lease was
# last secured, in passes every renew_interval_secs (and at start), at most
# renew_rate objects a second. So everything always has at least
# lease_days - renew_after_days - 1 day left: with the defaults a node
# switched off for 149 days still finds every message when it returns
# (see spec/store.md). Deleted mail stays readable on holders for up to
# lease_days after its last renewal.
lease_days = @
renew_after_days = @
renew_interval_secs = @
renew_rate = @
# Seconds between sweeps of expired records (Kademlia records, received
# notifications, seen nonces) from the local store.
sweep_interval_secs = @
# Large plaintexts are split into chunks of this many bytes (64 KiB to 16 MiB).
chunk_size = @
# Local storage engine: "redb" (default) or "sled" (needs the `sled` build feature).
backend = @
# Seconds between maintenance passes (repair, hand-over, garbage collection).
repair_interval_secs = @
# A peer must be unreachable this many seconds before its fragments are
# rebuilt elsewhere, so a restart does not cause a repair storm.
grace_secs = @
# MiB of fragments this node keeps, its own and other peers' together; past
# that it refuses stores (NoSpace) and peers place their fragments elsewhere.
capacity_mib = @
# Each peer may fill peer_quota_percent of the capacity, or at least
# peer_quota_floor_mib, counted by the fragments it stored or extended here;
# past that it is refused (OverQuota) and places elsewhere. A small private
# network where one node hosts everyone's mail may want 100.
peer_quota_percent = @
peer_quota_floor_mib = @

[api]
# The control API used by the `epost` CLI (HTTP+JSON, token in the data dir).
# Loopback only; port 0 lets the OS pick one.
listen = @

[identity]
# Realm keys this node trusts to certify users (like a CA bundle): per mail
# domain, a list of keys as `epost realm init` prints them; "*" for keys
# trusted for any domain. `epost realm trust` adds to this at run time.
# Example: trusted_realms = { "example.org" = ["abcd..."] }
trusted_realms = @
# Seconds between republishing hosted users' certificates and presence.
republish_interval_secs = @

[gateway]
# Where mail clients connect (host:port; port 0 lets the OS pick, and the
# bound addresses go into node.json; "" turns a protocol off). Loopback by
# default: several nodes on one machine must not fight over ports. For a
# real server use e.g. "0.0.0.0:25", "0.0.0.0:587", "0.0.0.0:143", "0.0.0.0:110".
smtp_listen = @
submission_listen = @
imap_listen = @
pop3_listen = @
# The same with TLS from the first byte (RFC 8314), beside STARTTLS above:
# for a real server "0.0.0.0:465", "0.0.0.0:993", "0.0.0.0:995".
submissions_listen = @
imaps_listen = @
pop3s_listen = @
# Where mail to a bare <postmaster> goes (a user of a trusted realm); empty:
# postmaster@ the first realm this node holds, or trusts, that has one.
postmaster = @
# The name in greetings and in the self-signed certificate.
hostname = @
# PEM certificate chain and private key for STARTTLS and the TLS ports; leave
# both empty for a self-signed certificate made on first start (kept in the
# data directory; it names localhost, 127.0.0.1, ::1, the hostname and the
# addresses above, and is made again with the same key if one is missing).
tls_cert = @
tls_key = @
# Largest message accepted (SMTP SIZE, IMAP APPEND), in bytes.
max_message_bytes = @
# Where the outbound queue hands authenticated users' mail for domains
# outside the trusted realms ("host:port"); empty: no transport, and such
# mail waits in the queue (deferred, "no transport configured").
smart_host = @
# How the smart host's connection is protected: "may" (STARTTLS when
# offered, any certificate; plaintext if not), "starttls" (required),
# "implicit" (TLS from the first byte, port 465) or "none".
smart_host_tls = @
# With "starttls" and "implicit": check its certificate and name.
smart_host_verify = @
# AUTH to the smart host, over TLS only: the user, and a file whose first
# line is the password (both, or "" for no AUTH).
smart_host_user = @
smart_host_password_file = @

[dns]
# DNS servers for MX lookups of outgoing mail and the checks of incoming
# mail, as "IP:PORT" (asked over UDP and TCP); empty: the system's
# resolver configuration (/etc/resolv.conf).
nameservers = @

[outbound]
# The durable queue of mail for other domains (in <data-dir>/outbound).
# Submission answers 250 once a message is in it. Beyond these limits a
# submission is refused with 451 (try later).
max_messages = @
max_mib = @
# Retries: the first after min_backoff_secs, each wait doubled up to
# max_backoff_secs. A recipient not delivered lifetime_secs after queueing
# fails and its sender gets a bounce (a DSN); after delay_warning_secs the
# sender is told once that delivery is late (0: never).
min_backoff_secs = @
max_backoff_secs = @
lifetime_secs = @
delay_warning_secs = @
# Deliveries at once to one domain, and in all.
per_domain = @
total = @
# The port of other domains' MX hosts: 25, but in a lab or a test.
mx_port = @

[inbound]
# Mail from outside at the MX is checked with SPF, DKIM and DMARC, and the
# results go into an Authentication-Results header. How far the sender
# domain's DMARC policy is honoured: "reject" (refuse with 550 what its
# p=reject covers, deliver marked what p=quarantine covers), "quarantine"
# (never refuse, deliver marked), "none" (only the header).
dmarc = @
# Check mail from clients on loopback too. Off: a loopback client is this
# machine (a local script, or a filter in front that checked already).
check_loopback = @

[log]
# "text" or "json".
format = @
# tracing filter directive; the RUST_LOG environment variable overrides it.
filter = @
"#;
