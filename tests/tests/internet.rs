//! Mail to and from the rest of the internet, with the internet built in
//! the test: a DNS server on loopback (dnsmasq) serving `elsewhere.test`
//! and the epost realm's records, and a real Postfix as `elsewhere.test`'s
//! MX.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use epost_e2e::internet::{Dns, Postfix, PostfixConfig, Zone};
use epost_e2e::run;

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("py").join(name).display().to_string()
}

/// `smtp_send.py`'s verdict line.
fn send(addr: &str, from: &str, to: &str, message: &Path, extra: &[&str]) -> Result<String> {
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script("smtp_send.py"))
        .args([addr, from, to, message.to_str().context("path")?])
        .args(extra);
    let out = run(&mut cmd)?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    ensure!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    Ok(stdout)
}

/// The harness itself: dnsmasq answers what the zone says (and NXDOMAIN
/// for the rest of `.test`), Postfix keeps mail for its user and refuses
/// a stranger.
#[test]
fn the_test_internet_answers_and_keeps_mail() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let zone = Zone::new()
        .mx("elsewhere.test", "mx.elsewhere.test", 10)
        .a("mx.elsewhere.test", "127.0.0.1")
        .txt("elsewhere.test", "v=spf1 ip4:127.0.0.1 -all")
        .txt("long.elsewhere.test", &"k".repeat(600));
    let dns = Dns::start(&dir.path().join("dns"), &zone)?;
    let answers = run(std::process::Command::new("python3").args([
        &script("dns_query.py"),
        &dns.addr.to_string(),
        "elsewhere.test:MX",
        "mx.elsewhere.test:A",
        "long.elsewhere.test:TXT",
        "nowhere.test:A",
    ]))?;
    let answers = String::from_utf8_lossy(&answers.stdout).into_owned();
    ensure!(answers.contains("elsewhere.test MX 10 mx.elsewhere.test."), "{answers}");
    ensure!(answers.contains("mx.elsewhere.test A 127.0.0.1"), "{answers}");
    ensure!(answers.contains(&format!("long.elsewhere.test TXT {}", "k".repeat(600))), "{answers}");
    ensure!(answers.contains("nowhere.test A NXDOMAIN"), "{answers}");

    let postfix = Postfix::start(
        &dir.path().join("postfix"),
        &PostfixConfig {
            domain: "elsewhere.test".into(),
            users: vec!["bob".into()],
            relay: Vec::new(),
            extra: Vec::new(),
        },
    )?;
    let message = dir.path().join("m.eml");
    std::fs::write(
        &message,
        b"From: x@example.test\r\nTo: bob@elsewhere.test\r\nSubject: hi\r\n\r\nbody\r\n",
    )?;
    let smtp = postfix.smtp.to_string();
    let verdict = send(&smtp, "x@example.test", "bob@elsewhere.test", &message, &[])?;
    ensure!(verdict == "sent", "{verdict}\n{}", postfix.log());
    let verdict = send(&smtp, "x@example.test", "nobody@elsewhere.test", &message, &[])?;
    ensure!(verdict.starts_with("refused 550"), "{verdict}");
    let kept = postfix.wait_for("bob", 1, Duration::from_secs(30))?;
    ensure!(String::from_utf8_lossy(&kept[0]).contains("Subject: hi"), "{:?}", kept[0]);
    Ok(())
}
