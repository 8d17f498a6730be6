//! A network of real `epost node run` processes on loopback, each with its
//! own data directory, for tests that kill, restart and corrupt nodes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{epost, run_ok};

/// How long a node may take to start before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One node of a [`Cluster`].
pub struct ClusterNode {
    pub dir: PathBuf,
    pub info: Value,
    /// The node's clock runs this far ahead (`EPOST_CLOCK_SKEW_SECS`) from
    /// its next start: a test lives through months in minutes.
    pub clock_skew_secs: i64,
    child: Option<Child>,
}

impl ClusterNode {
    /// The node's first listen address (with `/p2p/<peer id>`).
    pub fn addr(&self) -> String {
        self.info["listen_addrs"][0].as_str().unwrap_or_default().to_owned()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `epost --data-dir DIR <args>`, which must succeed; returns stdout.
    /// It runs with the node's clock, as everything on that machine would.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        run_ok(self.command()?.args(args))
    }

    fn command(&self) -> Result<std::process::Command> {
        let mut cmd = epost(&self.dir)?;
        cmd.env("EPOST_CLOCK_SKEW_SECS", self.clock_skew_secs.to_string());
        Ok(cmd)
    }

    /// The address (`host:port`) a gateway protocol listens on.
    pub fn gateway(&self, protocol: &str) -> Result<String> {
        self.info[protocol]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("node.json has no {protocol}"))
    }

    /// Like [`Self::cli`], with `input` on standard input.
    pub fn cli_input(&self, args: &[&str], input: &[u8]) -> Result<String> {
        crate::run_ok_with_input(self.command()?.args(args), input)
    }

    /// Like [`Self::cli`] with `--json`, parsed.
    pub fn cli_json(&self, args: &[&str]) -> Result<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        Ok(serde_json::from_str(&self.cli(&all)?)?)
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("cannot kill node")?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM, then waits: the node shuts down in order, as a supervisor
    /// would stop it.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status()?;
            if !sent.success() {
                bail!("cannot send SIGTERM to node {pid}");
            }
            let status = child.wait()?;
            if !status.success() {
                bail!("node {pid} exited with {status} after SIGTERM");
            }
        }
        Ok(())
    }

    /// Starts (or restarts) the node with its existing data directory.
    pub fn start(&mut self) -> Result<()> {
        self.start_through(&[])
    }

    /// Starts the node bootstrapping through `peers` (full multiaddrs)
    /// instead of its configured peers: they may have moved to other ports
    /// since the network was built.
    pub fn start_through(&mut self, peers: &[String]) -> Result<()> {
        if self.child.is_some() {
            bail!("node in {} is already running: stop it first", self.dir.display());
        }
        let mut command = epost(&self.dir)?;
        command.args(["node", "run"]);
        for peer in peers {
            command.args(["--bootstrap", peer]);
        }
        let log = std::env::var("EPOST_TEST_NODE_LOG").unwrap_or_else(|_| "warn".to_owned());
        let mut child = command
            .env("RUST_LOG", log)
            .env("EPOST_CLOCK_SKEW_SECS", self.clock_skew_secs.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start epost node run")?;
        let stdout = child.stdout.take().context("no stdout")?;
        self.child = Some(child);
        self.info = wait_ready(stdout, &self.dir)?;
        Ok(())
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Reads the node's stdout until its readiness line (node.json as one line).
fn wait_ready(stdout: ChildStdout, dir: &Path) -> Result<Value> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next();
        let _ = tx.send(first);
        // Keep draining so the node never blocks on a full pipe.
        for _ in lines {}
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(Ok(line))) => {
            serde_json::from_str(&line).with_context(|| format!("bad readiness line {line:?}"))
        }
        Ok(_) => bail!("node in {} exited before it was ready", dir.display()),
        Err(_) => bail!("node in {} was not ready within {START_TIMEOUT:?}", dir.display()),
    }
}

/// Settings every test node gets on top of `epost init`'s defaults.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub repair_interval_secs: u64,
    pub grace_secs: u64,
    /// Other `key = value` lines of config.toml to set (value as TOML).
    pub settings: Vec<(&'static str, String)>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        // Passes are triggered explicitly by tests; a long interval keeps
        // background passes from racing the assertions.
        Self { repair_interval_secs: 3600, grace_secs: 1, settings: Vec::new() }
    }
}

/// N nodes: the first one alone, the others bootstrapping through it.
pub struct Cluster {
    pub nodes: Vec<ClusterNode>,
    _root: tempfile::TempDir,
}

impl Cluster {
    pub fn start(n: usize, config: &ClusterConfig) -> Result<Self> {
        let root = tempfile::tempdir()?;
        let mut nodes: Vec<ClusterNode> = Vec::with_capacity(n);
        for i in 0..n {
            let dir = root.path().join(format!("node{i}"));
            let mut init = epost(&dir)?;
            init.args(["init", "--listen", "/ip4/127.0.0.1/tcp/0"]);
            if let Some(first) = nodes.first() {
                init.args(["--bootstrap", &first.addr()]);
            }
            run_ok(&mut init)?;
            tune(&dir, config)?;
            let mut node = ClusterNode { dir, info: Value::Null, clock_skew_secs: 0, child: None };
            node.start()?;
            nodes.push(node);
        }
        Ok(Self { nodes, _root: root })
    }

    /// The nodes still running.
    pub fn alive(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|n| n.is_running())
    }

    /// Starts node `i` again, bootstrapping through every running node
    /// (wherever each listens now: a whole network restarted on new ports
    /// is a full mesh again once its last node is up).
    pub fn restart(&mut self, i: usize) -> Result<()> {
        let peers: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(j, n)| *j != i && n.is_running())
            .map(|(_, n)| n.addr())
            .collect();
        self.nodes[i].start_through(&peers)
    }

    /// Waits (bounded) until every running node is connected to every
    /// other running node.
    pub fn wait_connected(&self) -> Result<()> {
        let others = self.alive().count().saturating_sub(1).to_string();
        for node in self.alive() {
            let status = node.cli_json(&["status", "--wait-peers", &others, "--timeout", "60"])?;
            let peers = status["peers"].as_u64().unwrap_or(0).to_string();
            if peers != others {
                bail!("{} is connected to {peers} of the {others} other nodes", node.dir.display());
            }
        }
        Ok(())
    }
}

fn tune(dir: &Path, config: &ClusterConfig) -> Result<()> {
    let path = dir.join("config.toml");
    let mut settings = vec![
        ("repair_interval_secs", config.repair_interval_secs.to_string()),
        ("grace_secs", config.grace_secs.to_string()),
    ];
    settings.extend(config.settings.iter().cloned());
    let mut text = String::new();
    let mut unset: Vec<&str> = settings.iter().map(|(k, _)| *k).collect();
    for line in std::fs::read_to_string(&path)?.lines() {
        let key = line.split_once(" = ").map(|(k, _)| k);
        match settings.iter().find(|(k, _)| Some(*k) == key) {
            Some((k, value)) => {
                text.push_str(&format!("{k} = {value}\n"));
                unset.retain(|u| u != k);
            }
            None => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    if !unset.is_empty() {
        bail!("config.toml has no line for {unset:?}");
    }
    std::fs::write(&path, text)?;
    Ok(())
}
