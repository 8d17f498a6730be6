//! What every client test starts from: a gateway on loopback ports in
//! front of the in-memory backend with alice and bob, a look into their
//! mailboxes, and Python client scripts run with their output read back.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use epost_gateway::backend::{Account, MailBackend};
use epost_gateway::memory::{MemoryAccount, MemoryBackend};
use epost_gateway::tls::TlsSource;
use epost_gateway::{Gateway, GatewayConfig};
use epost_types::address::Address;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

/// A gateway on loopback ports chosen by the OS, with alice and bob
/// (passwords "alice-pw" and "bob-pw") in realm example.test.
pub(crate) struct Running {
    pub(crate) gateway: Gateway,
    pub(crate) backend: MemoryBackend,
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) fn addr(text: &str) -> Address {
    text.parse().unwrap()
}

impl Running {
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(adjust: impl FnOnce(&mut GatewayConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let backend = MemoryBackend::new(&["example.test"]);
        backend.add_user(&addr("alice@example.test"), "alice-pw");
        backend.add_user(&addr("bob@example.test"), "bob-pw");
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut config = GatewayConfig {
            smtp: Some(any),
            submission: Some(any),
            imap: Some(any),
            pop3: Some(any),
            submissions: None,
            imaps: None,
            pop3s: None,
            postmaster: None,
            tls: TlsSource::SelfSigned { dir: dir.path().into(), names: vec!["localhost".into()] },
            hostname: "gateway.example.test".into(),
            limits: Default::default(),
            relay_for_submitters: false,
            inbound: None,
        };
        adjust(&mut config);
        let gateway = Gateway::start(config, backend.clone()).await.unwrap();
        Self { gateway, backend, dir }
    }

    pub(crate) fn port(&self, which: Option<SocketAddr>) -> String {
        which.expect("listener configured").port().to_string()
    }

    /// `user`'s mailboxes, as the gateway sees them.
    pub(crate) async fn account(&self, user: &str) -> MemoryAccount {
        self.backend.account(&addr(user)).await.unwrap()
    }

    /// Every message in `user`'s INBOX, oldest first.
    pub(crate) async fn inbox(&self, user: &str) -> Vec<Vec<u8>> {
        let account = self.account(user).await;
        let snapshot = account.snapshot("INBOX").await.unwrap();
        let mut all = Vec::new();
        for meta in snapshot.messages {
            all.push(account.fetch("INBOX", meta.uid).await.unwrap().to_vec());
        }
        all
    }
}

/// Python source for a client script: `import ssl, sys` and `$modules`;
/// `HOST`, the gateway's address; `tls()`, a context that accepts its
/// self-signed certificate; then `$rest` (more helpers, the body).
macro_rules! client_script {
    ($modules:literal, $($rest:expr),+) => {
        concat!(
            "\nimport ssl, sys, ",
            $modules,
            r#"
HOST = "127.0.0.1"
def tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
"#,
            $($rest),+
        )
    };
}
pub(crate) use client_script;

/// Runs a Python 3 script (standard library only) with `args`, off the
/// async runtime; panics with its output unless it exits 0. Returns stdout.
pub(crate) async fn python(script: &'static str, args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("python3")
            .arg("-")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "python failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    })
    .await
    .unwrap()
}

/// `key value` lines printed by a script, as a map (a key printed again
/// replaces the earlier value).
pub(crate) fn results(stdout: &str) -> HashMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Reads one reply line from the server.
pub(crate) async fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    line
}
