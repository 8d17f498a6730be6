//! One module per command family; `run` dispatches.

mod config;
mod dev;
mod dkim;
mod folder;
mod identity;
mod init;
mod logs;
mod mail;
pub(crate) mod node;
mod notify;
mod objects;
mod queue;
mod status;

use anyhow::Result;

use crate::cli::{Cli, Command, NodeCommand};
use crate::datadir::DataDir;

pub(crate) async fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    match cli.command {
        // A fresh directory unless one is given, not the default node's.
        Command::Dev(args) => dev::run(cli.data_dir, &args, json).await,
        command => on_node(DataDir::resolve(cli.data_dir)?, command, json).await,
    }
}

async fn on_node(dir: DataDir, command: Command, json: bool) -> Result<()> {
    let dir = &dir;
    match command {
        Command::Init(args) => init::run(dir, &args, json),
        Command::Config(command) => config::run(dir, &command, json),
        Command::Node(NodeCommand::Run(args)) => node::run(dir, &args).await,
        Command::Put { file } => objects::put(dir, &file, json).await,
        Command::Get { capability, output } => {
            objects::get(dir, &capability, output.as_deref()).await
        }
        Command::Status { wait_peers, timeout } => {
            status::run(dir, wait_peers, timeout, json).await
        }
        Command::Check { capability, user, folder, uid } => {
            let path = match (capability, user, uid) {
                (Some(capability), _, _) => {
                    format!("/v1/objects/{}/check", crate::client::path_segment(&capability))
                }
                (None, Some(user), Some(uid)) => format!(
                    "/v1/mail/{}/folders/{}/{uid}/check",
                    crate::client::path_segment(&user),
                    crate::client::path_segment(&folder)
                ),
                _ => anyhow::bail!("give a capability or object id, or --user and --uid"),
            };
            objects::check(dir, &path, json).await
        }
        Command::Refresh { capability } => objects::refresh(dir, &capability, json).await,
        Command::Repair => objects::repair(dir, json).await,
        Command::Renew { progress: false, .. } => objects::renew(dir, json).await,
        Command::Renew { progress: true, wait_renewed, timeout } => {
            objects::renew_progress(dir, wait_renewed, timeout, json).await
        }
        Command::Realm(command) => identity::realm(dir, command, json).await,
        Command::User(command) => identity::user(dir, command, json).await,
        Command::Log(command) => logs::run(dir, command, json).await,
        Command::Notify(command) => notify::run(dir, command, json).await,
        Command::Mail(command) => mail::run(dir, command, json).await,
        Command::Folder(command) => folder::run(dir, command, json).await,
        Command::Queue(command) => queue::run(dir, command, json).await,
        Command::Dev(args) => dev::run(Some(dir.root().to_path_buf()), &args, json).await,
    }
}
