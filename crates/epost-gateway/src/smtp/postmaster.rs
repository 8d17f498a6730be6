//! `RCPT TO:<postmaster>` without a domain (RFC 5321 section 4.5.1): every
//! SMTP server must take it, on every port, from anyone.
//!
//! Where it goes is decided here, purely: the configured
//! `gateway.postmaster` first (the operator said so), then `postmaster@`
//! each mail domain the backend serves, the realms this node holds
//! first. The session asks the backend for each in turn and takes the
//! first that is a user ([`crate::backend::MailBackend::domains`]).

use epost_types::address::Address;

/// The addresses to try for a bare `<postmaster>`, best first, each once.
pub(super) fn candidates(configured: Option<&Address>, domains: &[String]) -> Vec<Address> {
    let mut out: Vec<Address> = configured.into_iter().cloned().collect();
    for domain in domains {
        if let Ok(address) = format!("postmaster@{domain}").parse::<Address>()
            && !out.contains(&address)
        {
            out.push(address);
        }
    }
    out
}

/// Whether a RCPT line's path is the bare `<postmaster>` (any case).
/// The parser reads both `<>` and `<postmaster>` as the empty address;
/// only the line tells them apart.
pub(super) fn named(line: &[u8]) -> bool {
    let Some(start) = line.iter().position(|&b| b == b'<') else { return false };
    let rest = &line[start + 1..];
    let Some(end) = rest.iter().position(|&b| b == b'>') else { return false };
    rest[..end].eq_ignore_ascii_case(b"postmaster")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Address {
        text.parse().unwrap()
    }

    #[test]
    fn the_configured_address_then_each_domain_once() {
        let domains = |list: &[&str]| list.iter().map(|d| d.to_string()).collect::<Vec<_>>();
        let cases: [(Option<Address>, Vec<String>, Vec<&str>); 4] = [
            (None, domains(&[]), vec![]),
            (None, domains(&["a.test", "b.test"]), vec!["postmaster@a.test", "postmaster@b.test"]),
            (
                Some(addr("root@b.test")),
                domains(&["a.test"]),
                vec!["root@b.test", "postmaster@a.test"],
            ),
            (Some(addr("postmaster@a.test")), domains(&["a.test"]), vec!["postmaster@a.test"]),
        ];
        for (configured, domains, want) in cases {
            let got = candidates(configured.as_ref(), &domains);
            let got: Vec<&str> = got.iter().map(Address::as_str).collect();
            assert_eq!(got, want, "{configured:?} {domains:?}");
        }
    }

    #[test]
    fn only_the_bare_postmaster_path_is_named() {
        for (line, want) in [
            (&b"RCPT TO:<postmaster>\r\n"[..], true),
            (b"RCPT TO:<PostMaster> NOTIFY=NEVER\r\n", true),
            (b"RCPT TO:<>\r\n", false),
            (b"RCPT TO:<postmaster@a.test>\r\n", false),
            (b"RCPT TO:postmaster\r\n", false),
        ] {
            assert_eq!(named(line), want, "{}", String::from_utf8_lossy(line));
        }
    }
}
