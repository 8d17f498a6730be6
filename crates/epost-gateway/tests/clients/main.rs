//! The gateway driven by real clients (Python's smtplib, imaplib and
//! poplib, and raw sockets for hostile ones) over real sockets, in front
//! of the in-memory backend.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod hardening;
mod imap;
mod pop3;
mod smtp;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use epost_gateway::memory::MemoryBackend;
use epost_gateway::tls::TlsSource;
use epost_gateway::{Gateway, GatewayConfig};
use epost_types::address::Address;

/// A gateway on loopback ports chosen by the OS, with alice and bob
/// (passwords "alice-pw" and "bob-pw") in realm example.test.
pub struct Running {
    pub gateway: Gateway,
    pub backend: MemoryBackend,
    pub dir: tempfile::TempDir,
}

pub fn addr(text: &str) -> Address {
    text.parse().unwrap()
}

impl Running {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut GatewayConfig)) -> Self {
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
            tls: TlsSource::SelfSigned { dir: dir.path().into(), names: vec!["localhost".into()] },
            hostname: "gateway.example.test".into(),
            limits: Default::default(),
            relay_for_submitters: false,
        };
        adjust(&mut config);
        let gateway = Gateway::start(config, backend.clone()).await.unwrap();
        Self { gateway, backend, dir }
    }

    pub fn port(&self, which: Option<SocketAddr>) -> String {
        which.expect("listener configured").port().to_string()
    }
}

/// Runs a Python 3 script (standard library only) with `args`, off the
/// async runtime; panics with its output unless it exits 0. Returns stdout.
pub async fn python(script: &'static str, args: Vec<String>) -> String {
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
