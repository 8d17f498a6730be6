//! Hostile peers among honest in-process nodes: holders that serve corrupt
//! or forged fragments, acknowledge stores and drop them, refuse them,
//! serve stale or forged log heads and certificates, lie in routing
//! answers, and flood inboxes with junk, oversized and forged
//! notifications; and peers that store past their quota, open too many
//! connections or flood requests. Readers get the right data or a typed
//! error; nothing a rogue sends is believed without verification; what a
//! node refuses shows in its `/metrics`.
//!
//! The rogues ([`rogue::Rogue`]) are real overlay peers (the same
//! `epost-dht` the nodes run) whose request handlers the test writes, so
//! the honest nodes meet them exactly as they would meet a hostile node.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod connections;
mod flood;
mod logs;
mod notify;
mod quota;
mod rogue;
mod routing;
mod storage;

use epost_node::Node;
use epost_node::storage::GetError;
use epost_testkit::TestNet;
use epost_types::capability::Capability;

/// Deterministic test content (object ids, hence placements, are stable
/// from run to run).
pub(crate) fn content(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed * 13) % 251) as u8).collect()
}

pub(crate) async fn put(node: &Node, data: &[u8]) -> Capability {
    let report = node.storage.put_reader(data).await.expect("put");
    report.capability
}

/// The plaintext, or the typed error; on error, also what was written
/// before it (which must be nothing wrong).
pub(crate) async fn get(node: &Node, cap: &Capability) -> Result<Vec<u8>, (GetError, Vec<u8>)> {
    let mut out = Vec::new();
    match node.storage.get_to(cap, &mut out).await {
        Ok(_) => Ok(out),
        Err(e) => Err((e, out)),
    }
}

/// Waits (bounded, on overlay events) until every running node of `net`
/// has at least `peers` peers in its routing table (rogues included).
pub(crate) async fn await_known_peers(net: &TestNet, peers: usize) {
    assert!(net.known_peers_reach(peers).await, "the nodes never learned {peers} peers");
}

/// The value of one series (`name{labels}` as written) in `node`'s
/// `/metrics`, read over HTTP as a scraper would.
pub(crate) async fn metric(node: &Node, series: &str) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(node.api_addr).await.expect("the API answers");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    let line = text
        .lines()
        .find(|l| l.strip_prefix(series).is_some_and(|rest| rest.starts_with(' ')))
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"));
    line[series.len()..].trim().parse().unwrap_or_else(|e| panic!("{line}: {e}"))
}
