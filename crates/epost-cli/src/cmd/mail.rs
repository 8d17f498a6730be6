//! `epost send|inbox|read|import|export`: mail through the running node.

use std::io::{Read, Write};

use anyhow::{Context, Result, bail};
use epost_node::control::{Imported, MessageSummary, Sent};
use serde::Serialize;

use crate::cli::{ExportFormat, ImportFormat, MailCommand};
use epost_node::mail::import::{self, ImportMeta};

use crate::client::{ApiClient, path_segment};
use crate::datadir::DataDir;
use crate::output::{emit, progress};

pub(crate) mod compose;
pub(crate) mod mbox;

pub(crate) async fn run(dir: &DataDir, command: MailCommand, json: bool) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    match command {
        MailCommand::Send { from, to, subject, attach } => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .context("cannot read the body from standard input")?;
            let body = String::from_utf8(body).context("the body is not UTF-8 text")?;
            let mut attachments = Vec::new();
            for path in &attach {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read the attachment {}", path.display()))?;
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                attachments.push((name.unwrap_or_else(|| "attachment".into()), bytes));
            }
            let to: Vec<String> = to
                .iter()
                .flat_map(|t| t.split(','))
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect();
            if to.is_empty() {
                bail!("--to names no recipient");
            }
            let raw = compose::message(&from, &to, &subject, &body, &attachments)?;
            let path =
                format!("/v1/mail/{}/send?to={}", path_segment(&from), path_segment(&to.join(",")));
            let response =
                client.send(client.request(reqwest::Method::POST, &path).body(raw)).await?;
            let sent: Sent = response.json().await.context("the node's answer is not JSON")?;
            emit(json, &sent, |s| {
                format!("sent {} bytes from {} to {}", s.size, s.from, to.join(", "))
            })?;
        }
        MailCommand::Inbox { user, folder, wait_messages, timeout } => {
            let mut path =
                format!("/v1/mail/{}/folders/{}", path_segment(&user), path_segment(&folder));
            if let Some(n) = wait_messages {
                path.push_str(&format!("?min_messages={n}&wait_secs={timeout}"));
            }
            let list: Vec<MessageSummary> = client.get_json(&path).await?;
            emit(json, &list, |items| {
                let rows: Vec<String> = items
                    .iter()
                    .map(|m| {
                        let seen = m.flags.iter().any(|f| f == "\\Seen");
                        format!(
                            "{:>6} {} {:<32} {}",
                            m.uid,
                            if seen { " " } else { "N" },
                            truncate(&m.from, 32),
                            m.subject
                        )
                    })
                    .collect();
                if rows.is_empty() { format!("{folder} is empty") } else { rows.join("\n") }
            })?;
        }
        MailCommand::Read { user, uid, folder } => {
            let raw = fetch(&client, &user, &folder, uid).await?;
            let mut out = std::io::stdout().lock();
            out.write_all(&raw).context("cannot write to standard output")?;
            out.flush()?;
        }
        MailCommand::Import { user, folder, create, format, path } => {
            let messages = match format {
                ImportFormat::Mbox => mbox::read_mbox(&path)?,
                ImportFormat::Maildir => mbox::read_maildir(&path)?,
            };
            let bar = progress(messages.len() as u64, "importing");
            let counted = bar.clone();
            // One streamed request: the node stores several messages at a
            // time and files them in this order, many per log entry.
            let frames = futures::stream::iter(messages.into_iter().map(move |message| {
                let meta =
                    ImportMeta { flags: message.flags, date: message.date, from: message.from };
                counted.inc(1);
                Ok::<_, std::io::Error>(import::encode(&meta, &message.raw))
            }));
            let target = format!(
                "/v1/mail/{}/folders/{}/import{}",
                path_segment(&user),
                path_segment(&folder),
                if create { "?create=true" } else { "" }
            );
            let request = client
                .request(reqwest::Method::POST, &target)
                .body(reqwest::Body::wrap_stream(frames));
            let response = client.send(request).await.context("the messages were not imported")?;
            let report: Imported =
                response.json().await.context("the node answered with invalid JSON")?;
            bar.finish_and_clear();
            emit(json, &report, |r| format!("imported {} messages into {}", r.imported, r.folder))?;
        }
        MailCommand::Export { user, folder, format, path } => {
            let ExportFormat::Mbox = format;
            let list_path =
                format!("/v1/mail/{}/folders/{}", path_segment(&user), path_segment(&folder));
            let list: Vec<MessageSummary> = client.get_json(&list_path).await?;
            let bar = progress(list.len() as u64, "exporting");
            let mut out = mbox::MboxWriter::create(&path)?;
            for item in &list {
                let raw = fetch(&client, &user, &folder, item.uid).await?;
                out.write(&raw, item.envelope_from.as_deref(), item.internal_date)?;
                bar.inc(1);
            }
            out.finish()?;
            bar.finish_and_clear();
            let done = Exported { exported: list.len(), path: path.display().to_string() };
            emit(json, &done, |r| format!("exported {} messages to {}", r.exported, r.path))?;
        }
    }
    Ok(())
}

/// What `epost export` wrote.
#[derive(Serialize)]
struct Exported {
    exported: usize,
    path: String,
}

async fn fetch(client: &ApiClient, user: &str, folder: &str, uid: u32) -> Result<Vec<u8>> {
    let path = format!("/v1/mail/{}/folders/{}/{uid}", path_segment(user), path_segment(folder));
    let response = client.send(client.request(reqwest::Method::GET, &path)).await?;
    Ok(response.bytes().await.context("the message was cut off")?.to_vec())
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}
