//! `epost queue list|retry|delete`: the node's outbound queue, through its
//! control API (the same request and reply types the node uses).

use anyhow::{Context, Result};
use epost_node::control::{QueueChanged, QueueEntry, QueueId, RetryRequest};

use crate::cli::QueueCommand;
use crate::client::{ApiClient, path_segment};
use crate::datadir::DataDir;
use crate::output::emit;

pub(crate) async fn run(dir: &DataDir, command: QueueCommand, json: bool) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    match command {
        QueueCommand::List { wait_empty, timeout } => {
            let path = if wait_empty {
                format!("/v1/queue?wait_empty_secs={timeout}")
            } else {
                "/v1/queue".to_owned()
            };
            let list: Vec<QueueEntry> = client.get_json(&path).await?;
            emit(json, &list, |entries| human(entries))?;
        }
        QueueCommand::Retry { id, all: _ } => {
            let request = RetryRequest { id: id.map(QueueId) };
            let changed: QueueChanged = client.post("/v1/queue/retry", &request).await?;
            emit(json, &changed, |c| format!("{} message(s) due now", c.messages))?;
        }
        QueueCommand::Delete { id } => {
            let path = format!("/v1/queue/{}", path_segment(&id));
            let response = client.send(client.request(reqwest::Method::DELETE, &path)).await?;
            let changed: QueueChanged =
                response.json().await.context("the node answered with invalid JSON")?;
            emit(json, &changed, |_| format!("deleted {id} (no bounce sent)"))?;
        }
    }
    Ok(())
}

/// One block per message: id, sender, size, attempts, then a line per
/// recipient.
fn human(entries: &[QueueEntry]) -> String {
    use epost_mta::queue::RcptState;
    if entries.is_empty() {
        return "the outbound queue is empty".into();
    }
    let mut out = Vec::new();
    for e in entries {
        let from = if e.from.is_empty() { "<>" } else { &e.from };
        out.push(format!(
            "{}  from {from}  {} bytes  queued {}  {} attempt(s)  next {}",
            e.id,
            e.size,
            epost_types::maildate::rfc5322(e.queued_at.as_millis() / 1000),
            e.attempts,
            epost_types::maildate::rfc5322(e.next_attempt.as_millis() / 1000),
        ));
        for r in &e.recipients {
            let state = match &r.state {
                RcptState::Pending => match &r.last_error {
                    Some(why) => format!("pending: {why}"),
                    None => "pending".into(),
                },
                RcptState::Delivered { host, .. } => format!("delivered to {host}"),
                RcptState::Failed { reason, .. } => format!("failed: {reason}"),
            };
            out.push(format!("    {}  {state}", r.address));
        }
    }
    out.join("\n")
}
