//! `epost dev` as a newcomer uses it, twice on one directory: its users'
//! passwords survive the restart (a mail client set up yesterday still
//! logs in), dev.json is private, and the CLI pointed at the network's
//! directory says which node to use.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use epost_e2e::{epost, run};
use serde_json::Value;

/// A running `epost dev`, ended however the test ends: [`stop`] asks it
/// to stop and checks it did; a test that fails first kills it here.
struct Dev(Option<Child>);

impl Drop for Dev {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `epost dev` on `dir`; returns it and its description (the
/// `--json` line it prints once ready).
fn dev(dir: &std::path::Path) -> Result<(Dev, Value)> {
    let mut child = epost(dir)?
        .args(["--json", "dev", "--nodes", "1"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Some(Ok(line))) => {
            let dev = Dev(Some(child));
            Ok((dev, serde_json::from_str(&line)?))
        }
        _ => {
            let _ = child.kill();
            bail!("epost dev did not become ready")
        }
    }
}

fn stop(mut dev: Dev) -> Result<()> {
    let child = dev.0.as_mut().context("stopped already")?;
    let sent =
        std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status()?;
    ensure!(sent.success(), "cannot interrupt epost dev");
    let status = child.wait()?;
    dev.0 = None;
    ensure!(status.success(), "epost dev exited with {status}");
    Ok(())
}

fn login(imap: &str, user: &str, password: &str) -> Result<()> {
    let (host, port) = imap.rsplit_once(':').context("imap address")?;
    let script = format!(
        "import imaplib; m = imaplib.IMAP4({host:?}, {port}); m.login({user:?}, {password:?}); m.logout()"
    );
    let out = run(std::process::Command::new("python3").args(["-c", &script]))?;
    ensure!(out.status.success(), "IMAP login as {user}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// Logs in over IMAPS as a careful client does: trusting only the dev
/// network's self-signed certificate, and checking that it names the
/// address dialled (an IP address, as msmtp or fetchmail would use).
fn login_imaps(imaps: &str, cafile: &std::path::Path, user: &str, password: &str) -> Result<()> {
    let (host, port) = imaps.rsplit_once(':').context("imaps address")?;
    let cafile = cafile.to_str().context("certificate path")?;
    let script = format!(
        "import imaplib, ssl\n\
         ctx = ssl.create_default_context(cafile={cafile:?})\n\
         assert ctx.check_hostname\n\
         m = imaplib.IMAP4_SSL({host:?}, {port}, ssl_context=ctx)\n\
         assert 'STARTTLS' not in ' '.join(m.capabilities).upper(), m.capabilities\n\
         m.login({user:?}, {password:?}); m.logout()"
    );
    let out = std::process::Command::new("python3").args(["-c", &script]).output()?;
    ensure!(
        out.status.success(),
        "IMAPS login as {user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn a_restarted_dev_network_keeps_its_passwords() -> Result<()> {
    let root = tempfile::tempdir()?;
    let (child, first) = dev(root.path())?;
    let mode = std::fs::metadata(root.path().join("dev.json"))?.permissions().mode() & 0o777;
    ensure!(mode == 0o600, "dev.json holds passwords but is {mode:o}");
    // The network's own directory is not a node's: the CLI says which is.
    let out = run(epost(root.path())?.args(["inbox", "--user", "alice@example.test"]))?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success() && err.contains("node0"), "unhelpful advice: {err}");
    stop(child)?;

    let (child, second) = dev(root.path())?;
    ensure!(
        first["users"] == second["users"],
        "the passwords changed:\n{}\n{}",
        first["users"],
        second["users"]
    );
    let imap = second["imap"].as_str().context("no IMAP address")?;
    for user in second["users"].as_array().context("users")? {
        login(
            imap,
            user["address"].as_str().context("address")?,
            user["password"].as_str().context("password")?,
        )?;
    }
    let imaps = second["imaps"].as_str().context("no IMAPS address")?;
    let alice = &second["users"][0];
    let secure = login_imaps(
        imaps,
        &root.path().join("node0").join("gateway-cert.pem"),
        alice["address"].as_str().context("address")?,
        alice["password"].as_str().context("password")?,
    );
    stop(child)?;
    secure
}
