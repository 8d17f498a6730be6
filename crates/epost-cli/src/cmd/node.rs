//! `epost node run`: the daemon in the foreground until SIGINT/SIGTERM.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use epost_node::{Node, NodeOptions};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

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
    /// The mail gateway's bound addresses ("host:port"), when serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) smtp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) submission: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) imap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pop3: Option<String>,
    /// The implicit-TLS ports (RFC 8314).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) submissions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) imaps: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pop3s: Option<String>,
}

pub(crate) async fn run(dir: &DataDir, args: &NodeRunArgs) -> Result<()> {
    dir.require_initialised()?;
    let mut config = Config::load(&dir.config_path())?;
    if !args.listen.is_empty() {
        config.network.listen = crate::config::listen_flags(&args.listen)?;
    }
    if !args.bootstrap.is_empty() {
        config.network.bootstrap = crate::config::bootstrap_flags(&args.bootstrap)?;
    }
    if let Some(api) = args.api_listen {
        config.api.listen = api;
    }
    config.validate_all(&dir.config_path().display().to_string())?;
    settings::init_logging(&config.log);

    let daemon = Daemon::start(dir, &config).await?;
    // The same facts as node.json, as one line on stdout: a supervisor (or
    // a test) can wait for this line instead of polling for the file.
    if let Err(e) = crate::output::line(&serde_json::to_string(&daemon.info)?) {
        // node.json says the same; the node runs on.
        warn!(error = %e, "cannot write the ready line to standard output");
    }
    info!(peer_id = %daemon.info.peer_id, api = %daemon.info.api_url, "node running; SIGINT or SIGTERM stops it");

    wait_for_signal().await?;
    info!("shutting down");
    daemon.stop().await;
    Ok(())
}

/// A node with its gateway, announced in `node.json`.
pub(crate) struct Daemon {
    pub(crate) node: Node,
    gateway: epost_gateway::Gateway,
    pub(crate) info: NodeInfo,
    info_path: std::path::PathBuf,
}

impl Daemon {
    /// Starts the node and its gateway from a validated config, then
    /// writes the API token and `node.json`.
    pub(crate) async fn start(dir: &DataDir, config: &Config) -> Result<Self> {
        let seed = keys::load_node_seed(&dir.node_key_path())?;
        let secret = keys::load_or_create_convergence_secret(&dir.convergence_path())?;
        let token = keys::new_api_token()?;

        let options = NodeOptions {
            data_dir: dir.root().to_path_buf(),
            identity_seed: seed,
            convergence_secret: secret,
            backend: settings::backend(config.storage.backend),
            dht: settings::dht(config),
            storage: settings::storage(config),
            identity: settings::identity(config),
            notify: settings::notify(config),
            lease: settings::lease(config),
            sweep_interval: settings::sweep_interval(config),
            api_listen: config.api.listen,
            api_token: token.clone(),
            outbound: crate::outbound::options(config, dir.root())?,
        };
        let node = Node::start(options)
            .await
            .with_context(|| format!("cannot start the node in {}", dir.root().display()))?;
        // Only now, with the data directory ours: a second instance that
        // fails to start must not replace the running node's token.
        crate::datadir::write_private(&dir.api_token_path(), token.as_bytes())?;
        let started = match crate::inbound::checks(config) {
            Ok(inbound) => crate::gateway::start(&node, &config.gateway, dir.root(), inbound).await,
            Err(e) => Err(e),
        };
        let gateway = match started {
            Ok(gateway) => gateway,
            Err(e) => {
                node.shutdown().await;
                return Err(e);
            }
        };
        let shown = |addr: Option<std::net::SocketAddr>| addr.map(|a| a.to_string());
        let info = NodeInfo {
            peer_id: node.peer_id.to_string(),
            listen_addrs: node.listen_addrs.iter().map(ToString::to_string).collect(),
            api_url: format!("http://{}", node.api_addr),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            smtp: shown(gateway.addrs.smtp),
            submission: shown(gateway.addrs.submission),
            imap: shown(gateway.addrs.imap),
            pop3: shown(gateway.addrs.pop3),
            submissions: shown(gateway.addrs.submissions),
            imaps: shown(gateway.addrs.imaps),
            pop3s: shown(gateway.addrs.pop3s),
        };
        replace_file(&dir.node_info_path(), &serde_json::to_vec_pretty(&info)?)?;
        Ok(Self { node, gateway, info, info_path: dir.node_info_path() })
    }

    /// Stops the gateway (sessions finish their command), then the node.
    pub(crate) async fn stop(self) {
        let _ = std::fs::remove_file(&self.info_path);
        self.gateway.shutdown().await;
        // A hung peer must not keep the process alive forever.
        if tokio::time::timeout(Duration::from_secs(30), self.node.shutdown()).await.is_err() {
            tracing::warn!(
                "shutdown took over 30 s; exiting anyway (everything acknowledged is on disk)"
            );
        }
    }
}

pub(crate) async fn wait_for_signal() -> Result<()> {
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
        // The directory of an `epost dev` network holds one per node; its
        // users live on the first.
        let first = dir.join("node0");
        if first.join("node.key").exists() {
            format!(
                "{} is the directory of an `epost dev` network; its users are hosted on its first node: use `--data-dir {}`",
                dir.display(),
                first.display()
            )
        } else {
            format!(
                "no node is running on {} (no node.json); start one with `epost --data-dir {} node run`",
                dir.display(),
                dir.display()
            )
        }
    })?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid", path.display()))
}
