//! `epost status`: the running node's view of the overlay.

use anyhow::Result;
use epost_node::control::Status;

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
        for warning in &s.warnings {
            text.push_str(&format!("\nwarning:   {warning}"));
        }
        text
    })?;
    Ok(())
}
