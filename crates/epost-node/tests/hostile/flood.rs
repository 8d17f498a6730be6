//! A peer that floods requests: over its rate its fragment and notify
//! requests are refused (`Busy`, `RateLimited`) before they reach a
//! service, its Kademlia puts are dropped unread, and far over it the
//! peer is cut off for a while; honest peers' requests go on being
//! served. Each refusal shows in `/metrics`.

use std::time::Duration;

use epost_dht::{DhtConfig, Rate, RequestLimits};
use epost_testkit::{NetConfig, TestNet};
use epost_types::wire::frag::{FragRequest, FragResponse, RefusalReason};
use epost_types::wire::notify::{NotifyRefusal, NotifyRequest, NotifyResponse};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::rogue::{Fragments, Rogue};
use crate::{content, get, metric, put};

/// Low rates (one a second after a burst), so a flood is far over them
/// however slow the machine, and a block that outlasts the test.
fn limits() -> RequestLimits {
    RequestLimits {
        frag: Rate::new(1, 40),
        notify: Rate::new(1, 10),
        kad_put: Rate::new(1, 10),
        flood_block: Duration::from_secs(3600),
        ..RequestLimits::default()
    }
}

/// Three honest nodes with low request rates. One rogue asks node 0 for
/// fragments one after another until it is told `Busy` (rate limited),
/// sends notify requests until told `RateLimited`, then floods both:
/// it is cut off. Another floods node 0 with Kademlia puts: they are
/// dropped and it is cut off too. Meanwhile honest nodes put and read
/// objects through node 0 as before. Asserted on node 0's counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_is_throttled_then_cut_off_and_honest_peers_are_served() {
    let config = NetConfig {
        dht: DhtConfig { requests: limits(), ..DhtConfig::default() },
        ..NetConfig::default()
    };
    let net = TestNet::start(3, config).await.unwrap();
    let holder = net.node(0);
    let target = holder.peer_id;
    let boot = holder.listen_addrs.clone();
    let asker = Rogue::start(0xf0, &boot, Fragments::Honest, Vec::new()).await;
    let probe = || FragRequest::Probe { objects: vec![[3; 32]] };

    // One at a time: the burst is served, then a clear refusal.
    let mut served = 0;
    let refusal = loop {
        match asker.dht.request(target, probe()).await.unwrap() {
            FragResponse::Held(_) if served < 1000 => served += 1,
            other => break other,
        }
    };
    assert!(
        matches!(&refusal, FragResponse::Refused { reason: RefusalReason::Busy, detail } if detail.contains("rate limited")),
        "{refusal:?}"
    );
    let deliver = || NotifyRequest::Deliver { notifications: Vec::new() };
    let mut refusal = None;
    for _ in 0..1000 {
        let answer = asker.dht.notify(target, deliver()).await.unwrap();
        if let NotifyResponse::Refused { reason: NotifyRefusal::RateLimited, detail } = answer {
            refusal = Some(detail);
            break;
        }
    }
    let refusal = refusal.expect("1000 notify requests at one a second, none refused");
    assert!(refusal.contains("rate limited"), "{refusal}");
    let frag = "epost_requests_throttled_total{protocol=\"frag\"}";
    let notify = "epost_requests_throttled_total{protocol=\"notify\"}";
    assert_eq!(metric(holder, frag).await, 1);
    assert_eq!(metric(holder, notify).await, 1);
    assert_eq!(metric(holder, "epost_flood_blocks_total").await, 0);

    // Honest traffic is unaffected: each peer has its own bucket.
    let data = content(90, 20_000);
    let cap = put(net.node(1), &data).await;
    assert_eq!(get(holder, &cap).await.map_err(|(e, _)| e).unwrap(), data);

    // A flood: refused, then cut off.
    let mut asks: FuturesUnordered<_> =
        (0..400).map(|_| asker.dht.request(target, probe())).collect();
    let mut cut = 0;
    while let Some(answer) = asks.next().await {
        cut += usize::from(answer.is_err());
    }
    drop(asks);
    assert!(cut > 0, "the flooder was never cut off");
    assert!(metric(holder, frag).await > 1);
    assert_eq!(metric(holder, "epost_flood_blocks_total").await, 1);
    assert!(asker.dht.request(target, probe()).await.is_err(), "still blocked");

    // Kademlia puts: they cannot be refused on the wire, so over the rate
    // they are dropped unread; far over it, the putter is cut off.
    let putter = Rogue::start(0xf1, &boot, Fragments::Honest, Vec::new()).await;
    let puts: FuturesUnordered<_> = (0..200u32)
        .map(|i| {
            let dht = putter.dht.clone();
            async move { dht.put_record(&i.to_be_bytes(), b"junk".to_vec()).await }
        })
        .collect();
    let _ = puts.collect::<Vec<_>>().await;
    let wait = holder.dht().defence_until(|s| s.flood_blocks >= 2);
    let cut = tokio::time::timeout(Duration::from_secs(30), wait).await.is_ok();
    assert!(cut, "never cut off: {:?}", holder.dht().defence());
    assert!(metric(holder, "epost_requests_throttled_total{protocol=\"kad_put\"}").await > 1);
    assert_eq!(metric(holder, "epost_flood_blocked_peers").await, 2);

    // Still serving honest peers, both ways.
    let data = content(91, 30_000);
    let cap = put(holder, &data).await;
    assert_eq!(get(net.node(2), &cap).await.map_err(|(e, _)| e).unwrap(), data);
    asker.shutdown().await;
    putter.shutdown().await;
    net.shutdown().await;
}
