//! Whole attempts through [`Transport::send`], with the MX and address
//! lookups answered by a scripted DNS server on loopback (UDP).

use std::net::{Ipv4Addr, SocketAddr};

use hickory_resolver::proto::op::{Message as DnsMessage, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, MX};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

use super::*;

/// One record of the scripted zone: owner, type, data.
type Entry = (&'static str, RecordType, RData);

fn mx(owner: &'static str, preference: u16, exchange: &str) -> Entry {
    let exchange = Name::from_ascii(exchange).unwrap();
    (owner, RecordType::MX, RData::MX(MX::new(preference, exchange)))
}

fn a(owner: &'static str, ip: [u8; 4]) -> Entry {
    (owner, RecordType::A, RData::A(A(Ipv4Addr::from(ip))))
}

/// Answers from `zone`: the records of the asked type, NOERROR without
/// answers for a name that has others, NXDOMAIN for a name it lacks,
/// SERVFAIL for `servfail.test`.
async fn dns_server(zone: Vec<Entry>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(request) = DnsMessage::from_vec(&buf[..n]) else { continue };
            let Ok(bytes) = answer(&request, &zone).to_vec() else { continue };
            let _ = socket.send_to(&bytes, from).await;
        }
    });
    addr
}

fn answer(request: &DnsMessage, zone: &[Entry]) -> DnsMessage {
    let mut response = DnsMessage::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    let Some(query) = request.queries.first() else { return response };
    response.add_query(query.clone());
    let owner = query.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
    if owner == "servfail.test" {
        response.metadata.response_code = ResponseCode::ServFail;
        return response;
    }
    let known: Vec<&Entry> = zone.iter().filter(|(o, _, _)| *o == owner).collect();
    if known.is_empty() {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    for (_, kind, data) in known {
        if *kind == query.query_type() {
            response.add_answer(Record::from_rdata(query.name().clone(), 60, data.clone()));
        }
    }
    response
}

async fn transport(port: u16, zone: Vec<Entry>) -> SmtpTransport {
    let mut c = config(port);
    c.dns = DnsConfig { nameservers: vec![dns_server(zone).await] };
    SmtpTransport::new(c).unwrap()
}

#[tokio::test]
async fn mx_hosts_by_preference_then_delivery() {
    let (port, busy, good) = busy_then_good().await;
    let zone = vec![
        mx("theirs.test", 20, "mx2.theirs.test."),
        mx("theirs.test", 10, "mx1.theirs.test."),
        a("mx1.theirs.test", [127, 0, 0, 1]),
        a("mx2.theirs.test", [127, 0, 0, 2]),
    ];
    let t = transport(port, zone).await;
    let rcpts = [rcpt("bob@theirs.test")];
    let outcomes = t.send("theirs.test", message(&rcpts, BODY)).await;
    match &outcomes[0] {
        Outcome::Delivered { host, .. } => assert_eq!(host, "mx2.theirs.test"),
        other => panic!("{other:?}"),
    }
    // The preferred host was asked first.
    assert_eq!(busy.await.unwrap()[0].verbs(), ["QUIT"]);
    good.await.unwrap();
}

#[tokio::test]
async fn implicit_mx() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let server = serve(ls.remove(0), Script::default(), 1);
    let t = transport(port, vec![a("implicit.test", [127, 0, 0, 1])]).await;
    let rcpts = [rcpt("bob@implicit.test")];
    let outcomes = t.send("implicit.test", message(&rcpts, BODY)).await;
    match &outcomes[0] {
        Outcome::Delivered { host, .. } => assert_eq!(host, "implicit.test"),
        other => panic!("{other:?}"),
    }
    server.await.unwrap();
}

#[tokio::test]
async fn dns_answers_that_end_the_attempt() {
    let zone = vec![
        mx("null.test", 0, "."),
        mx("ghosts.test", 10, "gone.ghosts.test."),
        mx("noaddr.test", 10, "noaddr.test."),
    ];
    let t = transport(25, zone).await;
    let cases = [
        ("null.test", Some(route::NULL_MX)),
        ("nx.test", Some(route::NO_SUCH_DOMAIN)),
        ("ghosts.test", Some(route::NO_ROUTE)),
        ("noaddr.test", Some(route::NO_ROUTE)),
        ("servfail.test", None),
    ];
    for (domain, want) in cases {
        let rcpts = [rcpt("bob@x.test")];
        let outcomes = t.send(domain, message(&rcpts, BODY)).await;
        match (&outcomes[0], want) {
            (Outcome::Failed { status, host: None, .. }, Some(want)) => {
                assert_eq!(*status, want, "{domain}");
            }
            (Outcome::Deferred { host: None, reason, .. }, None) => {
                assert!(reason.contains("MX lookup of servfail.test"), "{reason}");
            }
            (other, _) => panic!("{domain}: {other:?}"),
        }
    }
}
