//! `epost node run`: the daemon in the foreground until SIGINT/SIGTERM.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use epost_node::{Node, NodeOptions};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use crate::cli::NodeRunArgs;
use crate::config::Config;
use crate::datadir::{DataDir, replace_file};
use crate::{keys, settings};

/// What `node.json` says about a running node; scripts and the CLI read it.
#[derive(Debug, Serialize, serde::Deserialize)]
pub(crate) struct NodeInfo {
    pub(crate) peer_id: String,
    pub(crate) listen_addrs: Vec<String>,
    pub(crate) api_url: String,
    pub(crate) pid: u32,
    pub(crate) version: String,
}

pub(crate) async fn run(dir: &DataDir, args: &NodeRunArgs) -> Result<()> {
    dir.require_initialised()?;
    let mut config = Config::load(&dir.config_path())?;
    if !args.listen.is_empty() {
        config.network.listen.clone_from(&args.listen);
    }
    if !args.bootstrap.is_empty() {
        config.network.bootstrap.clone_from(&args.bootstrap);
    }
    if let Some(api) = args.api_listen {
        config.api.listen = api;
    }
    config.validate_all(&dir.config_path().display().to_string())?;
    settings::init_logging(&config.log);

    let seed = keys::load_node_seed(&dir.node_key_path())?;
    let secret = keys::load_or_create_convergence_secret(&dir.convergence_path())?;
    let token = keys::new_api_token()?;

    let options = NodeOptions {
        data_dir: dir.root().to_path_buf(),
        identity_seed: seed,
        convergence_secret: secret,
        backend: settings::backend(config.storage.backend),
        dht: settings::dht(&config)?,
        storage: settings::storage(&config),
        identity: settings::identity(&config),
        notify: Default::default(),
        api_listen: config.api.listen,
        api_token: token.clone(),
    };
    let node = Node::start(options)
        .await
        .with_context(|| format!("cannot start the node in {}", dir.root().display()))?;
    // Only now, with the data directory ours: a second instance that fails
    // to start must not replace the running node's token.
    crate::datadir::write_private(&dir.api_token_path(), token.as_bytes())?;

    let info = NodeInfo {
        peer_id: node.peer_id.to_string(),
        listen_addrs: node.listen_addrs.iter().map(ToString::to_string).collect(),
        api_url: format!("http://{}", node.api_addr),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let json = serde_json::to_vec_pretty(&info)?;
    replace_file(&dir.node_info_path(), &json)?;
    // The same facts as one line on stdout: a supervisor (or a test) can
    // wait for this line instead of polling for the file.
    println!("{}", serde_json::to_string(&info)?);
    info!(peer_id = %info.peer_id, api = %info.api_url, "node running; SIGINT or SIGTERM stops it");

    wait_for_signal().await?;
    info!("shutting down");
    let _ = std::fs::remove_file(dir.node_info_path());
    // A hung peer must not keep the process alive forever.
    if tokio::time::timeout(Duration::from_secs(30), node.shutdown()).await.is_err() {
        tracing::warn!(
            "shutdown took over 30 s; exiting anyway (everything acknowledged is on disk)"
        );
    }
    Ok(())
}

async fn wait_for_signal() -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Reads `node.json` of a data directory, saying what to do if absent.
pub(crate) fn read_info(path: &Path, dir: &Path) -> Result<NodeInfo> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "no node is running on {} (no node.json); start one with `epost --data-dir {} node run`",
            dir.display(),
            dir.display()
        )
    })?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid", path.display()))
}
