//! Hostile storage holders: fragments served corrupt, forged or for the
//! wrong object; stores acknowledged and dropped, or refused.

use epost_node::storage::GetError;
use epost_testkit::{NetConfig, TestNet};

use crate::rogue::{Fragments, Rogue};
use crate::{await_known_peers, content, get, put};

/// Maintenance passes on every honest node until each object has all its
/// k + m fragments on reachable peers (bounded); returns the repairs.
pub(crate) async fn repair_until_full(
    net: &TestNet,
    caps: &[epost_types::capability::Capability],
) -> u64 {
    let mut repaired = 0;
    for _round in 0..6 {
        for i in net.running() {
            repaired += net.node(i).storage.repair_now().await.expect("repair").fragments_repaired;
        }
        let mut full = true;
        for cap in caps {
            let report = net.node(0).storage.check(cap).await.expect("check");
            full &= report.fragments_alive == report.fragments_total;
        }
        if full {
            return repaired;
        }
    }
    panic!("objects not back to full redundancy after 6 rounds");
}

fn bad_responses(net: &TestNet) -> u64 {
    let count = |i: &usize| {
        net.node(*i).storage.metrics().bad_peer_responses.load(std::sync::atomic::Ordering::Relaxed)
    };
    net.running().iter().map(count).sum()
}

/// Five honest nodes and three rogues, each serving its fragments wrong in
/// its own way (a flipped bit, a self-consistent forgery, another object's
/// fragment): with 4 + 4 coding on eight peers every object has a
/// fragment on each rogue, yet every read returns exactly the bytes put.
/// Fragments corrupted on honest disks as well are scrubbed and rebuilt;
/// with fewer than k good fragments left, a read is a typed error and
/// writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_fragments_never_reach_a_reader() {
    let net = TestNet::start(5, NetConfig::default()).await.unwrap();
    let boot = net.node(0).listen_addrs.clone();
    let modes = [Fragments::FlipBit, Fragments::Forge, Fragments::Misdirect];
    let mut rogues = Vec::new();
    for (i, mode) in modes.into_iter().enumerate() {
        rogues.push(Rogue::start(0xa0 + i as u8, &boot, mode, Vec::new()).await);
    }
    await_known_peers(&net, 7).await;

    let objects: Vec<Vec<u8>> = (0..6).map(|i| content(i, 6_000 + i * 5_000)).collect();
    let mut caps = Vec::new();
    for (i, data) in objects.iter().enumerate() {
        caps.push(put(net.node(i % 5), data).await);
    }
    for cap in &caps {
        let report = net.node(1).storage.check(cap).await.unwrap();
        assert_eq!(report.details[0].holders, 8, "one fragment on each of the 8 peers: {report:?}");
    }
    for (i, cap) in caps.iter().enumerate() {
        for reader in net.running() {
            let got = get(net.node(reader), cap).await.map_err(|(e, _)| e);
            assert_eq!(got.expect("read despite the rogues"), objects[i], "object {i}");
        }
    }
    for (rogue, mode) in rogues.iter().zip(modes) {
        assert!(rogue.lies() > 0, "{mode:?} rogue was never asked: the test proves nothing");
    }
    // Readers counted the lies they checked (a forgery that verifies on
    // its own is outvoted instead; answers to hedged requests a reader no
    // longer needed are never looked at).
    assert!(bad_responses(&net) > 0, "no bad fragment was counted");

    // A failing disk on one honest holder as well, of an object whose
    // closest peer (the one that leads its repair) is a rogue, which never
    // repairs: three rogues and one bad disk leave exactly k = 4 good
    // fragments, and an honest holder must take the lead.
    let mut peers: Vec<_> = net.running().iter().map(|i| net.node(*i).peer_id).collect();
    let rogue_ids: Vec<_> = rogues.iter().map(|r| r.dht.local_peer_id()).collect();
    peers.extend(&rogue_ids);
    let t = caps
        .iter()
        .position(|c| {
            rogue_ids.contains(&epost_dht::closest_of(c.id.as_bytes(), peers.clone(), 1)[0])
        })
        .expect("no object led by a rogue: add objects");
    let mut flipped = false;
    for i in net.running() {
        if !flipped {
            flipped = net.node(i).storage.inject_corruption(caps[t].id).await;
        }
    }
    assert!(flipped);
    for reader in net.running() {
        let got = get(net.node(reader), &caps[t]).await.map_err(|(e, _)| e);
        assert_eq!(got.expect("k good fragments are enough"), objects[t]);
    }
    // Maintenance scrubs and rebuilds the honest copy (the rogues' copies
    // look held to probes; only readers can tell, and they do).
    let corrupt_before: u64 =
        net.running().iter().map(|i| net.node(*i).storage.metrics().corrupt_count()).sum();
    repair_until_full(&net, &caps).await;
    let corrupt_after: u64 =
        net.running().iter().map(|i| net.node(*i).storage.metrics().corrupt_count()).sum();
    assert!(corrupt_after >= 1 && corrupt_after >= corrupt_before, "the flipped copy was found");
    assert_eq!(corrupt_after, 1, "one flipped fragment, detected once");
    for reader in net.running() {
        assert_eq!(get(net.node(reader), &caps[t]).await.map_err(|(e, _)| e).unwrap(), objects[t]);
    }

    // Two failing disks on another object: three good fragments, k = 4.
    // The read is a typed error and no byte of it was written.
    let u = (t + 1) % caps.len();
    let mut flipped = 0;
    for i in net.running() {
        if flipped < 2 && net.node(i).storage.inject_corruption(caps[u].id).await {
            flipped += 1;
        }
    }
    assert_eq!(flipped, 2);
    for reader in net.running() {
        match get(net.node(reader), &caps[u]).await {
            Ok(data) => panic!("read {} bytes from too few good fragments", data.len()),
            Err((e, written)) => {
                assert!(
                    matches!(e, GetError::NotEnoughFragments { .. } | GetError::Corrupt(_)),
                    "{e}"
                );
                assert!(written.is_empty(), "{} bytes written before the error", written.len());
            }
        }
    }
    for rogue in rogues {
        rogue.shutdown().await;
    }
    net.shutdown().await;
}

/// Six honest nodes, one rogue that refuses every store and one that
/// acknowledges every store and keeps nothing. Puts still succeed, every
/// object stays readable, and maintenance brings every object back to
/// all k + m fragments on peers that really keep them (an acknowledged
/// store is checked with a probe), then stays put: later passes rebuild
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_that_refuse_or_drop_stores_cost_no_redundancy_after_repair() {
    let net = TestNet::start(6, NetConfig::default()).await.unwrap();
    let boot = net.node(0).listen_addrs.clone();
    let refuser = Rogue::start(0xb0, &boot, Fragments::Refuse, Vec::new()).await;
    let dropper = Rogue::start(0xb1, &boot, Fragments::AckAndDrop, Vec::new()).await;
    await_known_peers(&net, 7).await;

    let objects: Vec<Vec<u8>> = (0..4).map(|i| content(40 + i, 9_000 + i * 3_000)).collect();
    let mut caps = Vec::new();
    for (i, data) in objects.iter().enumerate() {
        caps.push(put(net.node(i % 6), data).await);
    }
    assert!(refuser.offered.load(std::sync::atomic::Ordering::Relaxed) > 0, "never asked");
    assert!(dropper.offered.load(std::sync::atomic::Ordering::Relaxed) > 0, "never asked");
    // The dropped fragments are missing: the put believed an acknowledgement.
    let alive: usize = {
        let mut sum = 0;
        for cap in &caps {
            sum += net.node(0).storage.check(cap).await.unwrap().fragments_alive;
        }
        sum
    };
    assert!(alive < 8 * caps.len(), "the dropper held nothing, yet all fragments are alive");
    for (i, cap) in caps.iter().enumerate() {
        for reader in net.running() {
            assert_eq!(get(net.node(reader), cap).await.map_err(|(e, _)| e).unwrap(), objects[i]);
        }
    }

    let repaired = repair_until_full(&net, &caps).await;
    assert!(repaired >= (8 * caps.len() - alive) as u64, "{repaired} rebuilt");
    // Stable: nothing more to rebuild, and nothing lost by handing a
    // fragment to the dropper.
    for _ in 0..2 {
        let mut again = 0;
        for i in net.running() {
            again += net.node(i).storage.repair_now().await.unwrap().fragments_repaired;
        }
        assert_eq!(again, 0, "repairs keep happening: a lying holder is believed");
        for cap in &caps {
            let report = net.node(3).storage.check(cap).await.unwrap();
            assert_eq!(report.fragments_alive, report.fragments_total, "{report:?}");
        }
    }
    for (i, cap) in caps.iter().enumerate() {
        assert_eq!(get(net.node(5), cap).await.map_err(|(e, _)| e).unwrap(), objects[i]);
    }
    refuser.shutdown().await;
    dropper.shutdown().await;
    net.shutdown().await;
}
