//! Syntax checks for libp2p multiaddrs in the config, so a typo is reported
//! at load with the key and value rather than when the overlay starts.
//! (Only the overlay crate names libp2p; this checks the text form only.)

use std::net::{Ipv4Addr, Ipv6Addr};

/// Checks an address to listen on.
pub(crate) fn validate_listen(addr: &str) -> Result<(), String> {
    let parts = parse(addr)?;
    if parts.iter().any(|(proto, _)| *proto == "p2p") {
        return Err("a listen address must not name a peer (/p2p/...)".to_owned());
    }
    Ok(())
}

/// Checks an address to dial: it must end in the peer's id.
pub(crate) fn validate_dial(addr: &str) -> Result<(), String> {
    let parts = parse(addr)?;
    match parts.last() {
        Some(("p2p", _)) => Ok(()),
        _ => Err("a bootstrap address must end in /p2p/<peer id>".to_owned()),
    }
}

fn parse(addr: &str) -> Result<Vec<(&str, &str)>, String> {
    let rest = addr.strip_prefix('/').ok_or("a multiaddr starts with '/'")?;
    let mut segments = rest.split('/');
    let mut parts = Vec::new();
    let mut transport = false;
    while let Some(proto) = segments.next() {
        let value = match proto {
            "quic-v1" => "",
            "ip4" | "ip6" | "dns" | "dns4" | "dns6" | "tcp" | "udp" | "p2p" => {
                segments.next().ok_or_else(|| format!("/{proto} needs a value"))?
            }
            other => return Err(format!("unsupported protocol /{other}")),
        };
        match proto {
            "ip4" => value
                .parse::<Ipv4Addr>()
                .map(drop)
                .map_err(|_| format!("{value:?} is not an IPv4 address"))?,
            "ip6" => value
                .parse::<Ipv6Addr>()
                .map(drop)
                .map_err(|_| format!("{value:?} is not an IPv6 address"))?,
            "tcp" | "udp" => {
                value.parse::<u16>().map_err(|_| format!("{value:?} is not a port"))?;
                transport = true;
            }
            "dns" | "dns4" | "dns6" if value.is_empty() => return Err("empty host name".to_owned()),
            "p2p" if value.len() < 32 || !value.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                return Err(format!("{value:?} is not a peer id"));
            }
            _ => {}
        }
        parts.push((proto, value));
    }
    if !transport {
        return Err("no /tcp/<port> or /udp/<port>/quic-v1 in the address".to_owned());
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";

    #[test]
    fn accepts_usual_forms() {
        validate_listen("/ip4/127.0.0.1/tcp/0").unwrap();
        validate_listen("/ip6/::1/udp/4100/quic-v1").unwrap();
        validate_dial(&format!("/ip4/10.0.0.1/tcp/4100/p2p/{PEER}")).unwrap();
        validate_dial(&format!("/dns4/node.example.org/tcp/4100/p2p/{PEER}")).unwrap();
    }

    #[test]
    fn rejects_typos() {
        assert!(validate_listen("ip4/127.0.0.1/tcp/0").is_err());
        assert!(validate_listen("/ip4/127.0.0.256/tcp/0").is_err());
        assert!(validate_listen("/ip4/127.0.0.1/tcp/70000").is_err());
        assert!(validate_listen("/ip4/127.0.0.1").is_err());
        assert!(validate_listen("/ip4/127.0.0.1/sctp/5").is_err());
        assert!(validate_dial("/ip4/127.0.0.1/tcp/1").is_err());
        assert!(validate_dial("/ip4/127.0.0.1/tcp/1/p2p/short").is_err());
    }
}
