//! Where a domain's mail goes, decided from DNS answers: the order of its
//! MX hosts, the implicit MX, the null MX, and which DNS trouble is for
//! good and which worth another try. Pure functions; [`super::dns`] asks
//! the questions.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_resolver::net::NetError;

use crate::outbound::Status;

/// MX hosts of one domain looked at, at most: each costs a lookup, and a
/// domain with a hundred MX records must not cost a hundred.
pub(crate) const MAX_MX_HOSTS: usize = 10;

/// `5.1.2`: the destination domain does not exist (RFC 3463).
pub(crate) const NO_SUCH_DOMAIN: Status = Status { class: 5, subject: 1, detail: 2 };
/// `5.1.10`: the domain says it takes no mail (null MX, RFC 7505).
pub(crate) const NULL_MX: Status = Status { class: 5, subject: 1, detail: 10 };
/// `5.4.4`: no route to the domain (no host with an address).
pub(crate) const NO_ROUTE: Status = Status { class: 5, subject: 4, detail: 4 };

/// One DNS question's answer, as delivery sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer<T> {
    Found(Vec<T>),
    /// The name exists, without records of this type (NOERROR, no answer).
    NoData,
    /// The name does not exist (NXDOMAIN): an authoritative, final answer.
    NoDomain,
    /// No answer to rely on (SERVFAIL, REFUSED, a timeout, no network).
    Temporary(String),
}

/// The resolver's result as an [`Answer`]. Only NXDOMAIN and NODATA are
/// answers; every other failure says nothing about the domain.
pub(crate) fn classify<T>(result: Result<Vec<T>, NetError>) -> Answer<T> {
    match result {
        Ok(found) if found.is_empty() => Answer::NoData,
        Ok(found) => Answer::Found(found),
        Err(e) if e.is_nx_domain() => Answer::NoDomain,
        Err(e) if e.is_no_records_found() => Answer::NoData,
        Err(e) => Answer::Temporary(e.to_string()),
    }
}

/// One MX record: `exchange` without its final dot, empty for the root
/// (`.`, the null MX).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mx {
    pub(crate) preference: u16,
    pub(crate) exchange: String,
}

/// Where to take a domain's mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// These hosts, in this order. `implicit`: no MX records, the domain
    /// itself is its mail host (RFC 5321 5.1).
    Hosts {
        hosts: Vec<String>,
        implicit: bool,
    },
    Fail {
        status: Status,
        reason: String,
    },
    Defer {
        reason: String,
    },
}

/// The route to `domain` from its MX answer. `pick(n)` is a random index
/// below `n`, to shuffle hosts of equal preference (RFC 5321 5.1: spread
/// the load).
pub(crate) fn route(domain: &str, mx: Answer<Mx>, pick: &mut dyn FnMut(usize) -> usize) -> Route {
    match mx {
        Answer::Found(records) => {
            let (null, hosts): (Vec<Mx>, Vec<Mx>) =
                records.into_iter().partition(|r| r.exchange.is_empty());
            if hosts.is_empty() && !null.is_empty() {
                return Route::Fail {
                    status: NULL_MX,
                    reason: format!("{domain} accepts no mail (null MX)"),
                };
            }
            // A "." beside real hosts is a broken null MX: the real hosts
            // are what the domain's owner meant to keep.
            Route::Hosts { hosts: order(hosts, pick), implicit: false }
        }
        Answer::NoData => Route::Hosts { hosts: vec![domain.to_owned()], implicit: true },
        Answer::NoDomain => Route::Fail {
            status: NO_SUCH_DOMAIN,
            reason: format!("the domain {domain} does not exist"),
        },
        Answer::Temporary(why) => Route::Defer { reason: format!("MX lookup of {domain}: {why}") },
    }
}

/// By preference, lowest first; equal preferences shuffled; each host
/// once; at most [`MAX_MX_HOSTS`].
fn order(mut records: Vec<Mx>, pick: &mut dyn FnMut(usize) -> usize) -> Vec<String> {
    records.sort_by_key(|r| r.preference);
    let mut start = 0;
    while start < records.len() {
        let pref = records[start].preference;
        let end = start + records[start..].iter().take_while(|r| r.preference == pref).count();
        // Fisher-Yates over records[start..end].
        for i in (start + 1..end).rev() {
            let j = start + pick(i - start + 1).min(i - start);
            records.swap(i, j);
        }
        start = end;
    }
    let mut hosts: Vec<String> = Vec::new();
    for r in records {
        let name = r.exchange.to_ascii_lowercase();
        if !hosts.contains(&name) {
            hosts.push(name);
        }
    }
    hosts.truncate(MAX_MX_HOSTS);
    hosts
}

/// One host's addresses from its A and AAAA answers: IPv4 first (IPv6
/// reachability is the rarer of the two), then IPv6.
pub(crate) fn addresses(a: Answer<Ipv4Addr>, aaaa: Answer<Ipv6Addr>) -> Answer<IpAddr> {
    let mut found: Vec<IpAddr> = Vec::new();
    if let Answer::Found(v4) = &a {
        found.extend(v4.iter().copied().map(IpAddr::V4));
    }
    if let Answer::Found(v6) = &aaaa {
        found.extend(v6.iter().copied().map(IpAddr::V6));
    }
    if !found.is_empty() {
        return Answer::Found(found);
    }
    match (a, aaaa) {
        (Answer::Temporary(why), _) | (_, Answer::Temporary(why)) => Answer::Temporary(why),
        (Answer::NoDomain, Answer::NoDomain) => Answer::NoDomain,
        _ => Answer::NoData,
    }
}

/// What became of an attempt in which no host had an address to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoAddress {
    Defer { host: String, reason: String },
    Fail { status: Status, reason: String },
}

/// The verdict when none of the hosts had an address: `lookups` are their
/// address answers. Temporary trouble with any is worth another try; an
/// authoritative "none" from all of them is for good (Postfix bounces
/// too: a domain whose MX hosts do not exist takes no mail).
pub(crate) fn no_address(
    domain: &str,
    implicit: bool,
    lookups: &[(String, Answer<IpAddr>)],
) -> NoAddress {
    if let Some((host, Answer::Temporary(why))) =
        lookups.iter().find(|(_, a)| matches!(a, Answer::Temporary(_)))
    {
        return NoAddress::Defer {
            host: host.clone(),
            reason: format!("address lookup of {host}: {why}"),
        };
    }
    if implicit {
        if !lookups.is_empty() && lookups.iter().all(|(_, a)| *a == Answer::NoDomain) {
            return NoAddress::Fail {
                status: NO_SUCH_DOMAIN,
                reason: format!("the domain {domain} does not exist"),
            };
        }
        return NoAddress::Fail {
            status: NO_ROUTE,
            reason: format!("{domain} has neither an MX record nor an address"),
        };
    }
    NoAddress::Fail { status: NO_ROUTE, reason: format!("no MX host of {domain} has an address") }
}

#[cfg(test)]
mod tests {
    use hickory_resolver::net::{DnsError, NoRecords};
    use hickory_resolver::proto::op::{Query, ResponseCode};

    use super::*;

    fn mx(preference: u16, exchange: &str) -> Mx {
        Mx { preference, exchange: exchange.into() }
    }

    fn no_records(code: ResponseCode) -> NetError {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords::new(Query::default(), code)))
    }

    #[test]
    fn resolver_errors() {
        type Case = (Result<Vec<u8>, NetError>, Answer<u8>);
        let cases: Vec<Case> = vec![
            (Ok(vec![1]), Answer::Found(vec![1])),
            (Ok(vec![]), Answer::NoData),
            (Err(no_records(ResponseCode::NXDomain)), Answer::NoDomain),
            (Err(no_records(ResponseCode::NoError)), Answer::NoData),
        ];
        for (result, want) in cases {
            assert_eq!(classify(result), want);
        }
        let temporary = [
            NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)),
            NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)),
            NetError::Timeout,
            NetError::NoConnections,
        ];
        for e in temporary {
            assert!(matches!(classify::<u8>(Err(e)), Answer::Temporary(_)));
        }
    }

    #[test]
    fn routes() {
        let first = &mut |_: usize| 0;
        let hosts = |h: &[&str]| Route::Hosts {
            hosts: h.iter().map(|s| s.to_string()).collect(),
            implicit: false,
        };
        let cases: Vec<(Answer<Mx>, Route)> = vec![
            (
                Answer::Found(vec![mx(20, "b.example"), mx(10, "a.example")]),
                hosts(&["a.example", "b.example"]),
            ),
            (Answer::Found(vec![mx(10, "A.example"), mx(20, "a.example")]), hosts(&["a.example"])),
            (
                Answer::Found(vec![mx(0, "")]),
                Route::Fail {
                    status: NULL_MX,
                    reason: "d.example accepts no mail (null MX)".into(),
                },
            ),
            (Answer::Found(vec![mx(0, ""), mx(10, "mx.example")]), hosts(&["mx.example"])),
            (Answer::NoData, Route::Hosts { hosts: vec!["d.example".into()], implicit: true }),
            (
                Answer::NoDomain,
                Route::Fail {
                    status: NO_SUCH_DOMAIN,
                    reason: "the domain d.example does not exist".into(),
                },
            ),
            (
                Answer::Temporary("SERVFAIL".into()),
                Route::Defer { reason: "MX lookup of d.example: SERVFAIL".into() },
            ),
        ];
        for (answer, want) in cases {
            assert_eq!(route("d.example", answer.clone(), first), want, "{answer:?}");
        }
    }

    #[test]
    fn equal_preferences_are_shuffled_within_their_rank() {
        let records = vec![mx(10, "a"), mx(10, "b"), mx(10, "c"), mx(5, "first"), mx(20, "last")];
        let mut seen = std::collections::HashSet::new();
        // Every choice sequence the shuffle can make, as a counter.
        for seq in 0..9usize {
            let mut draws = [seq % 3, seq / 3].into_iter();
            let mut pick = |n: usize| draws.next().unwrap_or(0) % n;
            let hosts = order(records.clone(), &mut pick);
            assert_eq!(hosts.first().map(String::as_str), Some("first"));
            assert_eq!(hosts.last().map(String::as_str), Some("last"));
            let mut middle = hosts[1..4].to_vec();
            seen.insert(middle.clone());
            middle.sort();
            assert_eq!(middle, ["a", "b", "c"]);
        }
        assert_eq!(seen.len(), 6, "every order of the three is reachable");
    }

    #[test]
    fn mx_hosts_are_bounded() {
        let records = (0..50).map(|i| mx(i, &format!("mx{i}"))).collect();
        assert_eq!(order(records, &mut |_| 0).len(), MAX_MX_HOSTS);
    }

    #[test]
    fn address_answers() {
        let v4 = Ipv4Addr::new(192, 0, 2, 1);
        let v6 = Ipv6Addr::LOCALHOST;
        fn t<T>() -> Answer<T> {
            Answer::Temporary("timeout".into())
        }
        let cases: Vec<(Answer<Ipv4Addr>, Answer<Ipv6Addr>, Answer<IpAddr>)> = vec![
            (
                Answer::Found(vec![v4]),
                Answer::Found(vec![v6]),
                Answer::Found(vec![v4.into(), v6.into()]),
            ),
            (t(), Answer::Found(vec![v6]), Answer::Found(vec![v6.into()])),
            (Answer::NoData, t(), t()),
            (Answer::NoDomain, Answer::NoDomain, Answer::NoDomain),
            (Answer::NoData, Answer::NoDomain, Answer::NoData),
        ];
        for (a, aaaa, want) in cases {
            assert_eq!(addresses(a.clone(), aaaa.clone()), want, "{a:?} {aaaa:?}");
        }
    }

    #[test]
    fn when_no_host_has_an_address() {
        let h = |s: &str| s.to_string();
        type Lookups = Vec<(String, Answer<IpAddr>)>;
        let cases: Vec<(bool, Lookups, NoAddress)> = vec![
            (
                false,
                vec![(h("mx"), Answer::NoDomain), (h("mx2"), Answer::Temporary(h("timeout")))],
                NoAddress::Defer { host: h("mx2"), reason: h("address lookup of mx2: timeout") },
            ),
            (
                false,
                vec![(h("mx"), Answer::NoDomain), (h("mx2"), Answer::NoData)],
                NoAddress::Fail { status: NO_ROUTE, reason: h("no MX host of d has an address") },
            ),
            (
                true,
                vec![(h("d"), Answer::NoData)],
                NoAddress::Fail {
                    status: NO_ROUTE,
                    reason: h("d has neither an MX record nor an address"),
                },
            ),
            (
                true,
                vec![(h("d"), Answer::NoDomain)],
                NoAddress::Fail {
                    status: NO_SUCH_DOMAIN,
                    reason: h("the domain d does not exist"),
                },
            ),
        ];
        for (implicit, lookups, want) in cases {
            assert_eq!(no_address("d", implicit, &lookups), want);
        }
    }
}
