//! An epost network as a user runs one: five `epost node run` processes on
//! loopback, each with its own data directory made by `epost init`, the
//! others bootstrapping through the first; a realm and the users added
//! with the CLI on the first node, whose gateway takes the mail.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use super::System;

/// How long a node may take to say it is ready.
const READY_WAIT: Duration = Duration::from_secs(60);
pub(crate) const DOMAIN: &str = "example.test";

pub(crate) struct EpostNet {
    bin: PathBuf,
    dirs: Vec<PathBuf>,
    children: Vec<Child>,
    smtp: SocketAddr,
    imap: SocketAddr,
}

pub(crate) fn cli(bin: &Path, dir: &Path, args: &[&str], input: Option<&[u8]>) -> Result<String> {
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.unwrap_or_default())?;
    }
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "epost {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts `epost node run` in `dir`; returns it and its node.json line.
pub(crate) fn start_node(bin: &Path, dir: &Path) -> Result<(Child, serde_json::Value)> {
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .args(["node", "run"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start epost node run")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    match rx.recv_timeout(READY_WAIT) {
        Ok(Some(Ok(line))) => Ok((child, serde_json::from_str(&line)?)),
        _ => {
            let _ = child.kill();
            bail!("the node in {} did not become ready", dir.display())
        }
    }
}

fn addr(info: &serde_json::Value, key: &str) -> Result<SocketAddr> {
    info[key]
        .as_str()
        .with_context(|| format!("node.json has no {key}"))?
        .parse()
        .with_context(|| format!("node.json's {key}"))
}

impl EpostNet {
    pub(crate) fn start(
        bin: &Path,
        root: &Path,
        nodes: usize,
        users: &[String],
        password: &str,
    ) -> Result<Self> {
        let mut net = Self {
            bin: bin.to_path_buf(),
            dirs: Vec::new(),
            children: Vec::new(),
            smtp: "127.0.0.1:0".parse()?,
            imap: "127.0.0.1:0".parse()?,
        };
        let mut first_addr = String::new();
        for i in 0..nodes {
            let dir = root.join(format!("node{i}"));
            let mut args = vec!["init", "--listen", "/ip4/127.0.0.1/tcp/0"];
            if i > 0 {
                args.extend(["--bootstrap", &first_addr]);
            }
            cli(bin, &dir, &args, None)?;
            let (child, info) = start_node(bin, &dir)?;
            if i == 0 {
                first_addr =
                    info["listen_addrs"][0].as_str().context("no listen address")?.to_owned();
                net.smtp = addr(&info, "smtp")?;
                net.imap = addr(&info, "imap")?;
            }
            net.children.push(child);
            net.dirs.push(dir);
        }
        let first = net.dirs[0].clone();
        let wait = (nodes - 1).to_string();
        for dir in &net.dirs {
            cli(bin, dir, &["status", "--wait-peers", &wait, "--timeout", "60"], None)?;
        }
        let out = cli(bin, &first, &["realm", "init", DOMAIN], None)?;
        let key = out.lines().last().context("realm init printed nothing")?.trim().to_owned();
        for dir in &net.dirs {
            cli(bin, dir, &["realm", "trust", &key, "--domain", DOMAIN], None)?;
        }
        for user in users {
            cli(
                bin,
                &first,
                &["user", "add", user, "--password-stdin"],
                Some(password.as_bytes()),
            )?;
        }
        Ok(net)
    }
}

impl EpostNet {
    /// Node `i`'s data directory.
    pub(crate) fn dir(&self, i: usize) -> &Path {
        &self.dirs[i]
    }

    /// Stops node `i` (SIGTERM, waiting for it).
    pub(crate) fn stop_node(&mut self, i: usize) -> Result<()> {
        let child = &mut self.children[i];
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        child.wait()?;
        Ok(())
    }

    /// Starts node `i` again; returns its pid once it says it is ready.
    pub(crate) fn start_again(&mut self, i: usize) -> Result<u32> {
        let (child, info) = start_node(&self.bin, &self.dirs[i])?;
        let pid = child.id();
        self.children[i] = child;
        if i == 0 {
            self.smtp = addr(&info, "smtp")?;
            self.imap = addr(&info, "imap")?;
        }
        Ok(pid)
    }

    /// Proves the share of nodes that can die: SIGKILLs nodes 1..=`k`,
    /// restarts node 0 (so nothing comes from its memory) and reads every
    /// mailbox whole again, which must give `messages` messages and
    /// `bytes` bytes as before.
    pub(crate) async fn survive(
        &mut self,
        k: usize,
        users: &[String],
        password: &str,
        messages: u32,
        bytes: u64,
    ) -> Result<()> {
        for child in self.children.iter_mut().skip(1).take(k) {
            child.kill()?;
            child.wait()?;
        }
        let first = &mut self.children[0];
        let _ = Command::new("kill").args(["-TERM", &first.id().to_string()]).status();
        first.wait()?;
        let (child, info) = start_node(&self.bin, &self.dirs[0])?;
        self.children[0] = child;
        self.smtp = addr(&info, "smtp")?;
        self.imap = addr(&info, "imap")?;
        let alive = (self.dirs.len() - 1 - k).to_string();
        cli(
            &self.bin,
            &self.dirs[0],
            &["status", "--wait-peers", &alive, "--timeout", "60"],
            None,
        )?;
        let (got, got_bytes, _) = super::load::fetch_everything(self.imap, users, password).await?;
        ensure!(
            (got, got_bytes) == (messages, bytes),
            "read {got} messages ({got_bytes} bytes) with {k} nodes dead, {messages} ({bytes} bytes) before"
        );
        Ok(())
    }
}

impl System for EpostNet {
    fn name(&self) -> &'static str {
        "epost"
    }

    fn smtp(&self) -> SocketAddr {
        self.smtp
    }

    fn imap(&self) -> SocketAddr {
        self.imap
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    fn disk_dirs(&self) -> Vec<PathBuf> {
        self.dirs.clone()
    }

    fn stop(&mut self) -> Result<()> {
        for child in &mut self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        for mut child in self.children.drain(..) {
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for EpostNet {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
