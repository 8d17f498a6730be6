//! `epost notify send|list|watch`: notifications through the running node.

use std::io::Write;

use anyhow::{Context, Result};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::cli::NotifyCommand;
use crate::client::{ApiClient, path_segment};
use crate::datadir::DataDir;
use crate::output::emit;

pub(crate) async fn run(dir: &DataDir, command: NotifyCommand, json: bool) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    match command {
        NotifyCommand::Send { from, to, text, capability } => {
            let body = json!({ "from": from, "to": to, "text": text, "capability": capability });
            let report: Value = client.post("/v1/notify", &body).await?;
            emit(json, &report, |r| {
                format!(
                    "sent {}: held by {} inbox holder(s){}",
                    r["id"].as_str().unwrap_or_default(),
                    r["holders"],
                    if r["direct"].as_bool() == Some(true) { ", delivered directly" } else { "" }
                )
            })?;
        }
        NotifyCommand::List { user } => {
            let list: Value =
                client.get_json(&format!("/v1/notify/{}", path_segment(&user))).await?;
            emit(json, &list, |items| {
                items
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|n| {
                        format!(
                            "{}\t{}\t{}",
                            n["time"],
                            n["from"].as_str().unwrap_or_default(),
                            n["summary"].as_str().unwrap_or_default()
                        )
                    })
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
