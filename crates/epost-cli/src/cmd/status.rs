//! `epost status`: the running node's view of the overlay.

use anyhow::Result;
use epost_node::control::{Status, WorkerInfo, WorkerState};

use crate::client::ApiClient;
use crate::datadir::DataDir;
use crate::output::emit;

pub(crate) async fn run(
    dir: &DataDir,
    wait_peers: Option<usize>,
    timeout: u64,
    json: bool,
) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    let path = match wait_peers {
        Some(n) => format!("/v1/status?min_peers={n}&wait_secs={timeout}"),
        None => "/v1/status".to_owned(),
    };
    let status: Status = client.get_json(&path).await?;
    emit(json, &status, |s| {
        let mut text = format!(
            "peer id:   {}\npeers:     {} connected, {} known\nstore:     {} fragments, {} bytes\ncoding:    {}+{}",
            s.peer_id,
            s.peers,
            s.known_peers,
            s.fragments,
            s.bytes,
            s.data_fragments,
            s.parity_fragments,
        );
        if let Some(joining) = &s.joining {
            text.push_str(&format!("\noverlay:   {}", joining_line(joining)));
        }
        if let Some(reach) = &s.reachability {
            text.push_str(&format!("\nreachable: {}", reachability_line(reach)));
        }
        if !s.workers.is_empty() {
            text.push_str(&format!("\nworkers:   {}", worker_summary(&s.workers)));
        }
        for w in s.workers.iter().filter(|w| w.errors > 0) {
            let last = w.last_error.as_deref().unwrap_or("");
            text.push_str(&format!("\nerrors:    {} {} (last: {last})", w.name, w.errors));
        }
        for warning in &s.warnings {
            text.push_str(&format!("\nwarning:   {warning}"));
        }
        text
    })?;
    Ok(())
}

/// "public at ADDR", "behind NAT, via relay ADDR (2 peers direct after
/// hole punch)", "behind NAT, no relay yet", or "not known yet".
fn reachability_line(reach: &epost_dht::Reachability) -> String {
    use epost_dht::NatState;
    let punched = match reach.direct_peers {
        0 => String::new(),
        1 => " (1 peer direct after hole punch)".to_owned(),
        n => format!(" ({n} peers direct after hole punch)"),
    };
    let addrs = |list: &[epost_dht::Multiaddr]| {
        list.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    };
    match reach.state {
        NatState::Public if reach.public_addrs.is_empty() => "public".to_owned(),
        NatState::Public => format!("public at {}", addrs(&reach.public_addrs)),
        NatState::Private if reach.relays.is_empty() => {
            format!("behind NAT, no relay yet{punched}")
        }
        NatState::Private => format!("behind NAT, via relay {}{punched}", addrs(&reach.relays)),
        NatState::Unknown => format!("not known yet (no peer has probed it){punched}"),
    }
}

/// "joined", "alone", or "retrying (3 rounds, next in 8 s)".
fn joining_line(joining: &epost_dht::Joining) -> String {
    match joining {
        epost_dht::Joining::Joined => "joined".to_owned(),
        epost_dht::Joining::Alone => "alone (no peer known to dial)".to_owned(),
        epost_dht::Joining::Retrying { attempts, next_in_secs, .. } => {
            format!("retrying ({attempts} rounds, next in {next_in_secs} s)")
        }
    }
}

/// "12 running: 10 idle, 2 busy (repair, renew)", then any not running.
fn worker_summary(workers: &[WorkerInfo]) -> String {
    let named = |state: WorkerState| -> Vec<&str> {
        workers.iter().filter(|w| w.state == state).map(|w| w.name.as_str()).collect()
    };
    let (idle, busy) = (named(WorkerState::Idle), named(WorkerState::Busy));
    let mut text =
        format!("{} running: {} idle, {} busy", idle.len() + busy.len(), idle.len(), busy.len());
    if !busy.is_empty() {
        text.push_str(&format!(" ({})", busy.join(", ")));
    }
    for state in [WorkerState::Stopping, WorkerState::Stopped, WorkerState::Panicked] {
        let names = named(state);
        if !names.is_empty() {
            text.push_str(&format!("; {}: {}", state.as_str(), names.join(", ")));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(name: &str, state: WorkerState) -> WorkerInfo {
        WorkerInfo { name: name.into(), state, runs: 0, errors: 0, last_error: None }
    }

    #[test]
    fn the_summary_names_busy_and_stopped_workers() {
        let workers = [
            worker("sweep", WorkerState::Idle),
            worker("repair", WorkerState::Busy),
            worker("renew", WorkerState::Busy),
            worker("notify-holder", WorkerState::Panicked),
        ];
        assert_eq!(
            worker_summary(&workers),
            "3 running: 1 idle, 2 busy (repair, renew); panicked: notify-holder"
        );
    }

    #[test]
    fn reachability_reads_as_a_line() {
        use epost_dht::{NatState, Reachability};
        let relay: epost_dht::Multiaddr = "/ip4/203.0.113.1/tcp/4100/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit".parse().unwrap();
        let public: epost_dht::Multiaddr = "/ip4/203.0.113.2/tcp/4100".parse().unwrap();
        let reach = |state,
                     public_addrs: &[&epost_dht::Multiaddr],
                     relays: &[&epost_dht::Multiaddr],
                     direct_peers| Reachability {
            state,
            public_addrs: public_addrs.iter().map(|a| (*a).clone()).collect(),
            relays: relays.iter().map(|a| (*a).clone()).collect(),
            direct_peers,
        };
        let table = [
            (
                reach(NatState::Unknown, &[], &[], 0),
                "not known yet (no peer has probed it)".to_owned(),
            ),
            (reach(NatState::Public, &[&public], &[], 0), format!("public at {public}")),
            (reach(NatState::Private, &[], &[], 0), "behind NAT, no relay yet".to_owned()),
            (
                reach(NatState::Private, &[], &[&relay], 2),
                format!("behind NAT, via relay {relay} (2 peers direct after hole punch)"),
            ),
            (
                reach(NatState::Private, &[], &[&relay], 1),
                format!("behind NAT, via relay {relay} (1 peer direct after hole punch)"),
            ),
        ];
        for (reach, want) in table {
            assert_eq!(reachability_line(&reach), want);
        }
    }
}
