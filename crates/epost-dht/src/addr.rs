//! Reading the overlay's addresses from text: one to listen on, one to
//! dial. Callers (the config loader, flags) turn a typo into an error that
//! names the bad part at load, rather than when the overlay starts.
//!
//! It checks only what this crate knows: the multiaddr grammar, that the
//! transport is one the swarm is built with (TCP, or QUIC over UDP), and
//! where a peer id belongs. It never resolves names or touches the network.

use std::net::{IpAddr, SocketAddr};

use libp2p::multiaddr::{self, Protocol};

use crate::Multiaddr;

/// Why a text is not an address the overlay can use.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    #[error("a multiaddr starts with '/'")]
    NoLeadingSlash,
    #[error("{component:?} is not valid")]
    Component {
        /// The failing part, e.g. `/tcp/99999`.
        component: String,
        /// Why, e.g. the port's number did not fit.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "no /tcp/<port> or /udp/<port>/quic-v1 in the address (the overlay speaks TCP and QUIC)"
    )]
    NoTransport,
    #[error(
        "a listen address is an IP address and a transport (/ip4, /ip6 then /tcp or /udp/<port>/quic-v1)"
    )]
    ListenNotIp,
    #[error("a listen address must not name a peer (/p2p/...)")]
    ListenNamesPeer,
    #[error("a bootstrap address must end in /p2p/<peer id>")]
    DialWithoutPeer,
}

/// Parses an address to listen on: an IP address, TCP or QUIC, no peer id.
pub fn parse_listen(text: &str) -> Result<Multiaddr, AddrError> {
    let addr = parse(text)?;
    check_listen(&addr)?;
    Ok(addr)
}

/// Parses an address to dial: TCP or QUIC (or a relay's circuit), ending
/// in the peer's id.
pub fn parse_dial(text: &str) -> Result<Multiaddr, AddrError> {
    let addr = parse(text)?;
    check_dial(&addr)?;
    Ok(addr)
}

/// The address to listen on at a TCP socket address (port 0: the OS picks).
pub fn tcp_listen(at: SocketAddr) -> Multiaddr {
    Multiaddr::empty().with(ip_of(at.ip())).with(Protocol::Tcp(at.port()))
}

/// The address to listen on for QUIC at a UDP socket address.
pub fn quic_listen(at: SocketAddr) -> Multiaddr {
    Multiaddr::empty().with(ip_of(at.ip())).with(Protocol::Udp(at.port())).with(Protocol::QuicV1)
}

fn ip_of(ip: IpAddr) -> Protocol<'static> {
    match ip {
        IpAddr::V4(ip) => Protocol::Ip4(ip),
        IpAddr::V6(ip) => Protocol::Ip6(ip),
    }
}

/// Checks an already typed address to listen on.
pub fn check_listen(addr: &Multiaddr) -> Result<(), AddrError> {
    check_transport(addr)?;
    if addr.iter().any(|p| matches!(p, Protocol::P2p(_))) {
        return Err(AddrError::ListenNamesPeer);
    }
    if !matches!(addr.iter().next(), Some(Protocol::Ip4(_) | Protocol::Ip6(_))) {
        return Err(AddrError::ListenNotIp);
    }
    Ok(())
}

/// Checks an already typed address to dial.
pub fn check_dial(addr: &Multiaddr) -> Result<(), AddrError> {
    check_transport(addr)?;
    match addr.iter().last() {
        Some(Protocol::P2p(_)) => Ok(()),
        _ => Err(AddrError::DialWithoutPeer),
    }
}

/// Whether the address runs over QUIC (else TCP).
pub fn is_quic(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::QuicV1))
}

/// Whether the address goes through a relay (`/p2p-circuit`).
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// A transport the swarm is built with: `/tcp/<port>`, or `/udp/<port>`
/// directly followed by `/quic-v1`.
fn check_transport(addr: &Multiaddr) -> Result<(), AddrError> {
    let parts: Vec<Protocol<'_>> = addr.iter().collect();
    let tcp = parts.iter().any(|p| matches!(p, Protocol::Tcp(_)));
    let quic = parts.windows(2).any(|pair| matches!(pair, [Protocol::Udp(_), Protocol::QuicV1]));
    if tcp || quic { Ok(()) } else { Err(AddrError::NoTransport) }
}

/// Parses one component at a time (as `Multiaddr`'s own `FromStr` does),
/// so an error can say which part is wrong.
fn parse(text: &str) -> Result<Multiaddr, AddrError> {
    let mut parts = text.split('/').peekable();
    if parts.next() != Some("") {
        return Err(AddrError::NoLeadingSlash);
    }
    let mut addr = Multiaddr::empty();
    while parts.peek().is_some() {
        let ahead = parts.clone();
        let protocol = Protocol::from_str_parts(&mut parts).map_err(|source| {
            // The name and, when there was one, the value it was given.
            let component: String = ahead.take(2).map(|part| format!("/{part}")).collect();
            // multiaddr's wrapper repeats its cause's words; keep the cause.
            let source = match source {
                multiaddr::Error::ParsingError(cause) => cause,
                other => Box::new(other),
            };
            AddrError::Component { component, source }
        })?;
        addr.push(protocol);
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";

    #[test]
    fn accepts_usual_forms() {
        for listen in [
            "/ip4/127.0.0.1/tcp/0",
            "/ip6/::1/tcp/4100",
            "/ip4/0.0.0.0/tcp/4100",
            "/ip6/::/udp/4100/quic-v1",
            "/ip4/0.0.0.0/udp/0/quic-v1",
        ] {
            let addr = parse_listen(listen).unwrap();
            assert_eq!(addr.to_string(), listen);
        }
        for dial in [
            format!("/ip4/10.0.0.1/tcp/4100/p2p/{PEER}"),
            format!("/dns4/node.example.org/tcp/4100/p2p/{PEER}"),
            format!("/ip6/2001:db8::1/udp/4100/quic-v1/p2p/{PEER}"),
            format!("/ip4/203.0.113.1/tcp/4100/p2p/{PEER}/p2p-circuit/p2p/{PEER}"),
        ] {
            let addr = parse_dial(&dial).unwrap();
            assert_eq!(addr.to_string(), dial);
        }
    }

    #[test]
    fn rejects_typos_naming_the_part() {
        // (text, listen or dial, words the message must hold)
        let cases: &[(&str, bool, &[&str])] = &[
            ("ip4/127.0.0.1/tcp/0", true, &["starts with '/'"]),
            ("", true, &["/tcp/<port> or /udp/<port>/quic-v1"]),
            ("/ip4/127.0.0.256/tcp/0", true, &["/ip4/127.0.0.256"]),
            ("/ip4/1.2.3/tcp/1", true, &["/ip4/1.2.3"]),
            ("/ip4/127.0.0.1/tcp/70000", true, &["/tcp/70000"]),
            ("/ip4/127.0.0.1/tcp", true, &["/tcp"]),
            ("/ip4/127.0.0.1", true, &["/tcp/<port>"]),
            ("/ip4/127.0.0.1/sctp/5", true, &["/tcp/<port>"]),
            ("/ip4/127.0.0.1/udp/5", true, &["/udp/<port>/quic-v1"]),
            ("/ip4/127.0.0.1/udp/5/quic", true, &["/udp/<port>/quic-v1"]),
            ("/dns4/example.org/tcp/5", true, &["an IP address"]),
            (
                "/ip4/127.0.0.1/bogus/5",
                true,
                &["\"/bogus/5\" is not valid: unknown protocol string: bogus"],
            ),
            ("/ip4/127.0.0.1/tcp/x", true, &["\"/tcp/x\" is not valid: invalid digit"]),
            (
                "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
                true,
                &["must not name a peer"],
            ),
            ("/ip4/127.0.0.1/tcp/1", false, &["/p2p/<peer id>"]),
            ("/ip4/127.0.0.1/tcp/1/p2p/short", false, &["/p2p/short"]),
            (
                "/ip4/127.0.0.1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
                false,
                &["/tcp/<port>"],
            ),
        ];
        for (text, listen, words) in cases {
            let e = if *listen { parse_listen(text) } else { parse_dial(text) }.unwrap_err();
            let mut shown = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                shown = format!("{shown}: {c}");
                cause = c.source();
            }
            for word in *words {
                assert!(shown.contains(word), "{text:?}: {shown:?} lacks {word:?}");
            }
        }
    }

    #[test]
    fn quic_listen_reads_back() {
        for (at, text) in
            [("0.0.0.0:4100", "/ip4/0.0.0.0/udp/4100/quic-v1"), ("[::]:0", "/ip6/::/udp/0/quic-v1")]
        {
            let addr = quic_listen(at.parse().unwrap());
            assert_eq!(addr.to_string(), text);
            assert!(is_quic(&addr));
            check_listen(&addr).unwrap();
        }
    }

    #[test]
    fn tcp_listen_reads_back() {
        for (at, text) in [
            ("0.0.0.0:4100", "/ip4/0.0.0.0/tcp/4100"),
            ("127.0.0.1:0", "/ip4/127.0.0.1/tcp/0"),
            ("[::1]:5", "/ip6/::1/tcp/5"),
        ] {
            let addr = tcp_listen(at.parse().unwrap());
            assert_eq!(addr.to_string(), text);
            check_listen(&addr).unwrap();
        }
    }

    #[test]
    fn a_bad_part_keeps_its_cause() {
        let e = parse_listen("/ip4/127.0.0.1/tcp/70000").unwrap_err();
        assert!(std::error::Error::source(&e).is_some());
    }
}
