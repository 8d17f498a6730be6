//! `epost folder list|create|rename|delete`: a hosted user's folders,
//! through the running node (the same changes an IMAP client's CREATE,
//! RENAME and DELETE make, so every session sees them at once).

use anyhow::{Context, Result};
use epost_node::control::{CreateFolder, FolderDeleted, FolderSummary, RenameFolder};

use crate::cli::FolderCommand;
use crate::client::{ApiClient, path_segment};
use crate::datadir::DataDir;
use crate::output::emit;

pub(crate) async fn run(dir: &DataDir, command: FolderCommand, json: bool) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    match command {
        FolderCommand::List { user } => {
            let path = format!("/v1/mail/{}/folders", path_segment(&user));
            let list: Vec<FolderSummary> = client.get_json(&path).await?;
            emit(json, &list, |folders| {
                let width = folders.iter().map(|f| f.name.chars().count()).max().unwrap_or(0);
                folders
                    .iter()
                    .map(|f| {
                        format!(
                            "{:<width$}  {:>6} messages  {:>6} unseen{}",
                            f.name,
                            f.messages,
                            f.unseen,
                            if f.subscribed { "" } else { "  (not subscribed)" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        FolderCommand::Create { user, name } => {
            let path = format!("/v1/mail/{}/folders", path_segment(&user));
            let made: FolderSummary = client.post(&path, &CreateFolder { name }).await?;
            emit(json, &made, |f| format!("created {}", f.name))?;
        }
        FolderCommand::Rename { user, from, to } => {
            let path =
                format!("/v1/mail/{}/folders/{}/rename", path_segment(&user), path_segment(&from));
            let renamed: FolderSummary = client.post(&path, &RenameFolder { to }).await?;
            emit(json, &renamed, |f| {
                format!("renamed {from} to {} ({} messages)", f.name, f.messages)
            })?;
        }
        FolderCommand::Delete { user, name } => {
            let path = format!("/v1/mail/{}/folders/{}", path_segment(&user), path_segment(&name));
            let request = client.request(reqwest::Method::DELETE, &path);
            let response = client.send(request).await?;
            let deleted: FolderDeleted =
                response.json().await.context("the node answered with invalid JSON")?;
            emit(json, &deleted, |d| format!("deleted {} ({} messages)", d.name, d.messages))?;
        }
    }
    Ok(())
}
