//! `epost status`: the running node's view of the overlay.

use anyhow::Result;
use serde_json::Value;

use crate::client::ApiClient;
use crate::datadir::DataDir;
use crate::output::emit;

pub(crate) async fn run(dir: &DataDir, json: bool) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    let status: Value = client.get_json("/v1/status").await?;
    emit(json, &status, |s| {
        let mut text = format!(
            "peer id:   {}\npeers:     {} connected, {} known\nstore:     {} fragments, {} bytes\ncoding:    {}+{}",
            s["peer_id"].as_str().unwrap_or_default(),
            s["peers"],
            s["known_peers"],
            s["fragments"],
            s["bytes"],
            s["data_fragments"],
            s["parity_fragments"],
        );
        for warning in s["warnings"].as_array().into_iter().flatten() {
            text.push_str(&format!("\nwarning:   {}", warning.as_str().unwrap_or_default()));
        }
        text
    });
    Ok(())
}
