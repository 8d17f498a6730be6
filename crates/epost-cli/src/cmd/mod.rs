//! One module per command family; `run` dispatches.

mod config;
mod identity;
mod init;
mod logs;
pub(crate) mod node;
mod notify;
mod objects;
mod status;

use anyhow::Result;

use crate::cli::{Cli, Command, NodeCommand};
use crate::datadir::DataDir;

pub(crate) async fn run(cli: Cli) -> Result<()> {
    let dir = DataDir::resolve(cli.data_dir)?;
    let json = cli.json;
    match cli.command {
        Command::Init(args) => init::run(&dir, &args, json),
        Command::Config(command) => config::run(&dir, &command, json),
        Command::Node(NodeCommand::Run(args)) => node::run(&dir, &args).await,
        Command::Put { file } => objects::put(&dir, &file, json).await,
        Command::Get { capability, output } => {
            objects::get(&dir, &capability, output.as_deref()).await
        }
        Command::Status => status::run(&dir, json).await,
        Command::Check { capability } => objects::check(&dir, &capability, json).await,
        Command::Refresh { capability } => objects::refresh(&dir, &capability, json).await,
        Command::Repair => objects::repair(&dir, json).await,
        Command::Realm(command) => identity::realm(&dir, command, json).await,
        Command::User(command) => identity::user(&dir, command, json).await,
        Command::Log(command) => logs::run(&dir, command, json).await,
        Command::Notify(command) => notify::run(&dir, command, json).await,
    }
}
