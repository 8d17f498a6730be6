//! Mail through the gateways of real `epost node run` processes, with
//! Python's smtplib, imaplib and poplib: alice (node 0) submits with AUTH
//! to bob (node 2) and carol (node 1); bob's IMAP IDLE sees it arrive and
//! FETCH returns the exact bytes; carol's POP3 RETR too.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use epost_e2e::cluster::{Cluster, ClusterConfig, ClusterNode};
use epost_e2e::{realm, run};

fn addr(node: &ClusterNode, key: &str) -> Result<String> {
    node.info[key].as_str().map(str::to_owned).with_context(|| format!("node.json has no {key}"))
}

#[test]
fn submission_idle_fetch_and_pop3_across_nodes_with_real_clients() -> Result<()> {
    let cluster = Cluster::start(3, &ClusterConfig::default())?;
    realm::realm(&cluster)?;
    let users = [("alice", 0), ("bob", 2), ("carol", 1)];
    let dir = tempfile::tempdir()?;
    let secrets = dir.path().join("passwords");
    let mut lines = String::new();
    for (name, home) in users {
        let address = format!("{name}@example.test");
        let password = format!("{name}-correct-horse");
        realm::host(&cluster, &address, &password, home)?;
        lines.push_str(&format!("{address} {password}\n"));
    }
    std::fs::write(&secrets, lines)?;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/mail_e2e.py");
    let out = run(std::process::Command::new("python3").args([
        script.to_str().context("path")?,
        &addr(&cluster.nodes[0], "submission")?,
        &addr(&cluster.nodes[2], "imap")?,
        &addr(&cluster.nodes[1], "pop3")?,
        secrets.to_str().context("path")?,
    ]))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "the mail clients failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // curl, as a script would send through the MX port of bob's node.
    if run(std::process::Command::new("curl").arg("--version")).is_ok_and(|o| o.status.success()) {
        let mail = dir.path().join("curl.eml");
        std::fs::write(&mail, "From: dave@example.org\r\nSubject: by curl\r\n\r\nhello\r\n")?;
        let smtp = addr(&cluster.nodes[2], "smtp")?;
        let sent = run(std::process::Command::new("curl").args([
            "--silent",
            "--show-error",
            "--url",
            &format!("smtp://{smtp}"),
            "--mail-from",
            "dave@example.org",
            "--mail-rcpt",
            "bob@example.test",
            "--upload-file",
            mail.to_str().context("path")?,
        ]))?;
        ensure!(sent.status.success(), "curl: {}", String::from_utf8_lossy(&sent.stderr));
        let inbox = cluster.nodes[2].cli_json(&["inbox", "--user", "bob@example.test"])?;
        let inbox = inbox.as_array().context("a list")?;
        ensure!(inbox.iter().any(|m| m["subject"] == "by curl"), "{inbox:?}");
    } else {
        eprintln!("curl is not installed; its part of this test is skipped");
    }

    // Carol moves to node 2: her folders, UIDs and UIDVALIDITY come with
    // her, replayed from her mail log.
    let before = cluster.nodes[1].cli_json(&["inbox", "--user", "carol@example.test"])?;
    let bundle = cluster.nodes[1].cli(&["user", "export", "carol@example.test"])?;
    cluster.nodes[2].cli_input(&["user", "import", "-"], bundle.as_bytes())?;
    cluster.nodes[1].cli(&["user", "remove", "carol@example.test"])?;
    let after = cluster.nodes[2].cli_json(&["inbox", "--user", "carol@example.test"])?;
    ensure!(before.as_array().is_some_and(|a| a.len() == 1), "{before}");
    ensure!(before == after, "carol's INBOX differs after the move:\n{before}\n{after}");
    Ok(())
}

#[test]
fn cli_send_inbox_read_and_a_thousand_message_mbox_round_trip() -> Result<()> {
    let cluster = Cluster::start(3, &ClusterConfig::default())?;
    let first = &cluster.nodes[0];
    realm::realm(&cluster)?;
    realm::host(&cluster, "alice@example.test", "a-pw", 0)?;
    realm::host(&cluster, "bob@example.test", "b-pw", 0)?;
    let dir = tempfile::tempdir()?;

    // send (local delivery answers once the message is in bob's INBOX).
    let attachment = dir.path().join("figures.bin");
    let figures: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&attachment, &figures)?;
    first.cli_input(
        &[
            "send",
            "--from",
            "alice@example.test",
            "--to",
            "bob@example.test",
            "--subject",
            "Quarterly figures",
            "--attach",
            attachment.to_str().context("path")?,
        ],
        b"See attached.\n",
    )?;
    let inbox = first.cli_json(&["inbox", "--user", "bob@example.test"])?;
    let inbox = inbox.as_array().context("a list")?;
    ensure!(inbox.len() == 1, "{inbox:?}");
    ensure!(inbox[0]["subject"] == "Quarterly figures", "{inbox:?}");
    ensure!(inbox[0]["from"] == "alice@example.test", "{inbox:?}");
    let uid = inbox[0]["uid"].as_u64().context("uid")?.to_string();
    let raw = first.cli(&["read", "--user", "bob@example.test", &uid])?;
    ensure!(raw.contains("Subject: Quarterly figures\r\n"), "{raw}");
    ensure!(raw.contains("filename=\"figures.bin\""), "{raw}");
    ensure!(first.cli(&["read", "--user", "bob@example.test", "999"]).is_err());

    // An mbox of 1,000 messages made by Python's mailbox module, imported
    // and exported again, is the same file.
    let mbox = dir.path().join("in.mbox");
    let maker = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/make_mbox.py");
    let made = run(std::process::Command::new("python3").args([
        maker.to_str().context("path")?,
        mbox.to_str().context("path")?,
        "1000",
    ]))?;
    ensure!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let imported = first.cli_json(&[
        "import",
        "--user",
        "alice@example.test",
        "--folder",
        "Archive",
        "mbox",
        mbox.to_str().context("path")?,
    ])?;
    ensure!(imported["imported"] == 1000, "{imported}");
    let out = dir.path().join("out.mbox");
    first.cli(&[
        "export",
        "--user",
        "alice@example.test",
        "--folder",
        "Archive",
        "mbox",
        out.to_str().context("path")?,
    ])?;
    let (before, after) = (std::fs::read(&mbox)?, std::fs::read(&out)?);
    ensure!(before.len() == after.len(), "sizes differ: {} vs {}", before.len(), after.len());
    ensure!(before == after, "the exported mbox differs from the imported one");
    // Flags came from the Status headers.
    let listed =
        first.cli_json(&["inbox", "--user", "alice@example.test", "--folder", "Archive"])?;
    let seen = listed
        .as_array()
        .context("a list")?
        .iter()
        .filter(|m| m["flags"].as_array().is_some_and(|f| f.iter().any(|f| f == "\\Seen")))
        .count();
    ensure!(seen == 334, "{seen} messages marked seen");
    Ok(())
}

#[test]
fn mail_for_other_domains_goes_through_the_queue_to_the_smart_host() -> Result<()> {
    let mut cluster = Cluster::start(2, &ClusterConfig::default())?;
    // Node 1 is another organisation's mail server: realm example.net,
    // which node 0 does not trust.
    realm::realm_on(&cluster, 0, "example.test", [0])?;
    realm::realm_on(&cluster, 1, "example.net", [1])?;
    cluster.nodes[0]
        .cli_input(&["user", "add", "alice@example.test", "--password-stdin"], b"a-pw")?;
    cluster.nodes[1].cli(&["user", "add", "dave@example.net"])?;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/relay.py");
    let submit = |node: &ClusterNode, expect: &str| -> Result<()> {
        let out = run(std::process::Command::new("python3").args([
            script.to_str().context("path")?,
            &addr(node, "submission")?,
            expect,
        ]))?;
        ensure!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    // With node 1's MX as the smart host, alice's mail is queued durably
    // (250) and handed to it ("may": its self-signed STARTTLS is taken,
    // unverified); dave gets it. Without a smart host the queue would ask
    // DNS for example.net's MX, which the tests of internet mail cover.
    let smart_host = addr(&cluster.nodes[1], "smtp")?;
    let node = &mut cluster.nodes[0];
    node.kill()?;
    let config = node.dir.join("config.toml");
    let text = std::fs::read_to_string(&config)?;
    std::fs::write(
        &config,
        text.replace("smart_host = \"\"", &format!("smart_host = {smart_host:?}")),
    )?;
    node.start()?;
    submit(&cluster.nodes[0], "accepted")?;
    cluster.nodes[0].cli(&["queue", "retry", "--all"])?;
    let queue = cluster.nodes[0].cli_json(&["queue", "list", "--wait-empty", "--timeout", "60"])?;
    ensure!(queue.as_array().is_some_and(Vec::is_empty), "still queued: {queue:?}");
    let inbox = cluster.nodes[1].cli_json(&["inbox", "--user", "dave@example.net"])?;
    let inbox = inbox.as_array().context("a list")?;
    ensure!(inbox.len() == 1 && inbox[0]["subject"] == "across the border", "{inbox:?}");
    Ok(())
}
