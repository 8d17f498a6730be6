//! `epost log append|show|head`: a user's logs through the running node.

use std::io::Read;

use anyhow::{Context, Result};
use epost_node::control::{AppendReport, HeadReport, LogEntry};

use crate::cli::LogCommand;
use crate::client::{ApiClient, path_segment};
use crate::datadir::DataDir;
use crate::output::emit;

pub(crate) async fn run(dir: &DataDir, command: LogCommand, json: bool) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    match command {
        LogCommand::Append { user, name } => {
            let mut entry = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut entry)
                .context("cannot read the entry from standard input")?;
            let path = format!("/v1/logs/{}/{}", path_segment(&user), path_segment(&name));
            let response =
                client.send(client.request(reqwest::Method::POST, &path).body(entry)).await?;
            let report: AppendReport =
                response.json().await.context("the node answered with invalid JSON")?;
            emit(json, &report, |r| r.seq.to_string())?;
        }
        LogCommand::Show { user, name } => {
            let path = format!("/v1/logs/{}/{}", path_segment(&user), path_segment(&name));
            let entries: Vec<LogEntry> = client.get_json(&path).await?;
            emit(json, &entries, |list| {
                list.iter()
                    .map(|e| match &e.text {
                        Some(text) => format!("{}\t{}", e.seq, text.trim_end_matches('\n')),
                        None => format!("{}\t(binary, base64) {}", e.seq, e.data),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        LogCommand::Head { address, name } => {
            let path = format!("/v1/heads/{}/{}", path_segment(&address), path_segment(&name));
            let head: HeadReport = client.get_json(&path).await?;
            emit(json, &head, |h| {
                format!(
                    "log {} of {}: seq {}, newest entry {}, signed by {}",
                    h.name, h.address, h.seq, h.newest, h.signer,
                )
            })?;
        }
    }
    Ok(())
}
