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
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        run_ok(epost(&self.dir)?.args(args))
    }

    /// Like [`Self::cli`], with `input` on standard input.
    pub fn cli_input(&self, args: &[&str], input: &[u8]) -> Result<String> {
        crate::run_ok_with_input(epost(&self.dir)?.args(args), input)
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
        let mut child = epost(&self.dir)?
            .args(["node", "run"])
            .env("RUST_LOG", "warn")
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
}

impl Default for ClusterConfig {
    fn default() -> Self {
        // Passes are triggered explicitly by tests; a long interval keeps
        // background passes from racing the assertions.
        Self { repair_interval_secs: 3600, grace_secs: 1 }
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
            let mut node = ClusterNode { dir, info: Value::Null, child: None };
            node.start()?;
            nodes.push(node);
        }
        Ok(Self { nodes, _root: root })
    }

    /// The nodes still running.
    pub fn alive(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|n| n.is_running())
    }
}

fn tune(dir: &Path, config: &ClusterConfig) -> Result<()> {
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path)?
        .replace(
            "repair_interval_secs = 60",
            &format!("repair_interval_secs = {}", config.repair_interval_secs),
        )
        .replace("grace_secs = 300", &format!("grace_secs = {}", config.grace_secs));
    std::fs::write(&path, text)?;
    Ok(())
}
