//! `epost notify send|list|watch`: notifications through the running node.

use std::io::Write;

use anyhow::{Context, Result};
use epost_node::control::{Received, SendNotification, SendReport};
use futures::StreamExt;

use crate::cli::NotifyCommand;
use crate::client::{ApiClient, path_segment};
use crate::datadir::DataDir;
use crate::output::emit;

pub(crate) async fn run(dir: &DataDir, command: NotifyCommand, json: bool) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    match command {
        NotifyCommand::Send { from, to, text, capability } => {
            let body = SendNotification { from, to, text, capability };
            let report: SendReport = client.post("/v1/notify", &body).await?;
            emit(json, &report, |r| {
                format!(
                    "sent {}: held by {} inbox holder(s){}",
                    r.id,
                    r.holders,
                    if r.direct { ", delivered directly" } else { "" }
                )
            })?;
        }
        NotifyCommand::List { user } => {
            let list: Vec<Received> =
                client.get_json(&format!("/v1/notify/{}", path_segment(&user))).await?;
            emit(json, &list, |items| {
                items
                    .iter()
                    .map(|n| format!("{}\t{}\t{}", n.time, n.from, n.summary))
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        NotifyCommand::Watch { user } => {
            let path = format!("/v1/notify/{}/watch", path_segment(&user));
            let response = client.send(client.request(reqwest::Method::GET, &path)).await?;
            let mut stream = response.bytes_stream();
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.context("the node closed the watch")?;
                out.write_all(&chunk).context("cannot write to standard output")?;
                out.flush().context("cannot write to standard output")?;
            }
        }
    }
    Ok(())
}
