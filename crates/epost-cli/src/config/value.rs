//! How typed config values are written in the file: the forms a user has
//! always written (seconds, days, `""` for "off") read straight into the
//! types the node uses, so nothing re-parses text after load.
//!
//! An address that does not parse is reported with its key and value
//! here, at deserialisation; toml adds the line and column.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use epost_dht::addr::AddrError;
use epost_dht::{Multiaddr, PeerId};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A whole number of seconds.
pub(super) mod secs {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        value.as_secs().serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// A whole number of days.
pub(super) mod days {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let days = u32::try_from(super::days_of(*value))
            .map_err(|_| S::Error::custom("more days than fit the file"))?;
        if Duration::from_secs(u64::from(days) * DAY) != *value {
            return Err(S::Error::custom("not a whole number of days"));
        }
        days.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u32::deserialize(d).map(|days| Duration::from_secs(u64::from(days) * DAY))
    }
}

const DAY: u64 = 24 * 3600;

/// Whole days in `value`, as the file shows them.
pub(super) fn days_of(value: Duration) -> u64 {
    value.as_secs() / DAY
}

/// A path, `""` meaning none.
pub(super) mod path_or_none {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<PathBuf>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(path) => path.serialize(s),
            None => "".serialize(s),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<PathBuf>, D::Error> {
        let path = PathBuf::deserialize(d)?;
        Ok(if path.as_os_str().is_empty() { None } else { Some(path) })
    }
}

/// A listen address, `""` meaning "turned off".
pub(super) fn serialize_off<S: Serializer>(
    value: &Option<SocketAddr>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(addr) => addr.serialize(s),
        None => "".serialize(s),
    }
}

fn socket_or_off<'de, D: Deserializer<'de>>(
    d: D,
    key: &str,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    if text.is_empty() || text == "off" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        bad(key, &text, "must be IP:PORT (port 0 picks one), or \"\" or \"off\" to turn it off")
    })
}

/// A mail address, `""` meaning none.
fn address_or_none<'de, D: Deserializer<'de>>(
    d: D,
    key: &str,
) -> Result<Option<epost_types::address::Address>, D::Error> {
    let text = String::deserialize(d)?;
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| bad(key, &text, format!("not a mail address: {e}")))
}

/// An address written as text, `""` for none.
pub(super) fn serialize_address<S: Serializer>(
    value: &Option<epost_types::address::Address>,
    s: S,
) -> Result<S::Ok, S::Error> {
    value.as_ref().map(|a| a.as_str()).unwrap_or("").serialize(s)
}

fn socket<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| bad(key, &text, "must be IP:PORT (port 0 picks one)"))
}

fn sockets<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<Vec<SocketAddr>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| {
            text.parse().map_err(|_| bad(key, text, "must be IP:PORT, e.g. \"127.0.0.1:53\""))
        })
        .collect()
}

fn listen_addrs<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<Vec<Multiaddr>, D::Error> {
    multiaddrs(d, key, epost_dht::addr::parse_listen)
}

fn dial_addrs<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<Vec<Multiaddr>, D::Error> {
    multiaddrs(d, key, epost_dht::addr::parse_dial)
}

fn multiaddrs<'de, D: Deserializer<'de>>(
    d: D,
    key: &str,
    parse: fn(&str) -> Result<Multiaddr, AddrError>,
) -> Result<Vec<Multiaddr>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| parse(text).map_err(|e| bad(key, text, chain(&e))))
        .collect()
}

/// The same words as a value refused after load: key, value, reason.
fn bad<E: serde::de::Error>(key: &str, value: &str, reason: impl Display) -> E {
    E::custom(format!("`{key}` = {value:?}: {reason}"))
}

/// An error and its causes on one line, as the binary prints a chain:
/// serde keeps only text.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// One deserialiser per key, so each error names its key.
macro_rules! keyed {
    ($($name:ident: $key:literal => $read:ident -> $ty:ty;)*) => {$(
        pub(super) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
            $read(d, $key)
        }
    )*};
}

/// Peer ids as libp2p prints them (`12D3KooW...`).
fn peer_ids<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<Vec<PeerId>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| text.parse().map_err(|e| bad(key, text, format!("not a peer id: {e}"))))
        .collect()
}

/// Peer ids written as text.
pub(super) fn serialize_peer_ids<S: Serializer>(value: &[PeerId], s: S) -> Result<S::Ok, S::Error> {
    value.iter().map(ToString::to_string).collect::<Vec<_>>().serialize(s)
}

/// A whole number of MiB, read into bytes.
pub(super) mod mib {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    pub(crate) fn serialize<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
        if !value.is_multiple_of(MIB) {
            return Err(S::Error::custom("not a whole number of MiB"));
        }
        (value / MIB).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let mib = u64::deserialize(d)?;
        mib.checked_mul(MIB).ok_or_else(|| serde::de::Error::custom("more MiB than fit in bytes"))
    }
}

keyed! {
    network_ban: "network.ban" => peer_ids -> Vec<PeerId>;
    network_listen: "network.listen" => listen_addrs -> Vec<Multiaddr>;
    network_bootstrap: "network.bootstrap" => dial_addrs -> Vec<Multiaddr>;
    api_listen: "api.listen" => socket -> SocketAddr;
    smtp_listen: "gateway.smtp_listen" => socket_or_off -> Option<SocketAddr>;
    submission_listen: "gateway.submission_listen" => socket_or_off -> Option<SocketAddr>;
    imap_listen: "gateway.imap_listen" => socket_or_off -> Option<SocketAddr>;
    pop3_listen: "gateway.pop3_listen" => socket_or_off -> Option<SocketAddr>;
    dns_nameservers: "dns.nameservers" => sockets -> Vec<SocketAddr>;
    submissions_listen: "gateway.submissions_listen" => socket_or_off -> Option<SocketAddr>;
    imaps_listen: "gateway.imaps_listen" => socket_or_off -> Option<SocketAddr>;
    pop3s_listen: "gateway.pop3s_listen" => socket_or_off -> Option<SocketAddr>;
    postmaster: "gateway.postmaster" => address_or_none -> Option<epost_types::address::Address>;
}
