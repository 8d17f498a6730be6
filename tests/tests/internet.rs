//! Mail to and from the rest of the internet, with the internet built in
//! the test: a DNS server on loopback (dnsmasq) serving `elsewhere.test`
//! and the epost realm's records, and a real Postfix as `elsewhere.test`'s
//! MX.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use epost_e2e::cluster::{Cluster, ClusterConfig};
use epost_e2e::internet::{Dns, Postfix, PostfixConfig, Zone};
use epost_e2e::{realm, run};

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

/// Postfix as the MX of elsewhere.test, whose one user is bob.
fn elsewhere(dir: &Path) -> Result<Postfix> {
    Postfix::start(
        &dir.join("postfix"),
        &PostfixConfig {
            domain: "elsewhere.test".into(),
            users: vec!["bob".into()],
            relay: Vec::new(),
            extra: Vec::new(),
        },
    )
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

    let postfix = elsewhere(dir.path())?;
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
    // A new next hop, then down and up again.
    let mut postfix = postfix;
    postfix.relay_to("example.test", "127.0.0.1:9".parse()?)?;
    postfix.stop()?;
    postfix.restart()?;
    postfix.stop()?;
    Ok(())
}

/// The first `name` field of a message, unfolded.
fn header(raw: &str, name: &str) -> Option<String> {
    let mut lines = raw.lines().take_while(|l| !l.is_empty());
    let prefix = format!("{name}:");
    let first = lines
        .find(|l| l.len() >= prefix.len() && l[..prefix.len()].eq_ignore_ascii_case(&prefix))?;
    let mut value = first.to_owned();
    for more in lines.take_while(|l| l.starts_with([' ', '\t'])) {
        value.push(' ');
        value.push_str(more.trim());
    }
    Some(value)
}

/// The domains of the test internet, with the epost realm's DKIM records.
fn zone(dkim: &serde_json::Value) -> Result<Zone> {
    let mut zone = Zone::new()
        .mx("elsewhere.test", "mx.elsewhere.test", 10)
        .a("mx.elsewhere.test", "127.0.0.1")
        .txt("elsewhere.test", "v=spf1 ip4:127.0.0.1 -all")
        .txt("_dmarc.elsewhere.test", "v=DMARC1; p=reject")
        .mx("example.test", "mx.example.test", 10)
        .a("mx.example.test", "127.0.0.1")
        .txt("example.test", "v=spf1 ip4:127.0.0.1 -all")
        .txt("_dmarc.example.test", "v=DMARC1; p=reject")
        // A domain whose mail never comes from here, and says reject.
        .txt("forged.test", "v=spf1 -all")
        .txt("_dmarc.forged.test", "v=DMARC1; p=reject");
    for record in dkim["records"].as_array().context("DKIM records")? {
        let name = record["name"].as_str().context("name")?.trim_end_matches('.');
        zone = zone.txt(name, record["value"].as_str().context("value")?);
    }
    Ok(zone)
}

/// A realm on `nodes` nodes whose node 0 sends and receives the realm's
/// internet mail, a DNS server, and Postfix as elsewhere.test's MX
/// relaying example.test's mail to node 0.
struct World {
    // Dropped in this order: the servers before the directory they run in.
    postfix: Postfix,
    dns: Dns,
    cluster: Cluster,
    dir: tempfile::TempDir,
}

const ALICE: &str = "alice@example.test";
const ALICE_PW: &str = "alice-pw";
const CAROL: &str = "carol@example.test";

impl World {
    fn new(nodes: usize) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut dns = Dns::start(&dir.path().join("dns"), &Zone::new())?;
        let mut postfix = elsewhere(dir.path())?;
        let config = ClusterConfig {
            settings: vec![
                ("nameservers", format!("[{:?}]", dns.addr.to_string())),
                ("mx_port", postfix.smtp.port().to_string()),
                ("min_backoff_secs", "1".into()),
                ("max_backoff_secs", "2".into()),
                // The test's "internet" is on loopback too.
                ("check_loopback", "true".into()),
            ],
            ..ClusterConfig::default()
        };
        let mut cluster = Cluster::start(nodes, &config)?;
        realm::realm(&cluster)?;
        realm::host(&cluster, ALICE, ALICE_PW, 0)?;
        let dkim = cluster.nodes[0].cli_json(&["realm", "dkim", "example.test"])?;
        dns.serve(&zone(&dkim)?)?;
        // The node reads its DKIM keys at start.
        cluster.nodes[0].kill()?;
        cluster.restart(0)?;
        cluster.wait_connected()?;
        postfix.relay_to("example.test", cluster.nodes[0].gateway("smtp")?.parse()?)?;
        Ok(Self { postfix, dns, cluster, dir })
    }

    fn message(&self, name: &str, text: &str) -> Result<std::path::PathBuf> {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text.replace('\n', "\r\n"))?;
        Ok(path)
    }

    /// Alice submits on node 0's submission port.
    fn alice_sends(&self, to: &str, subject: &str) -> Result<String> {
        let path = self.message(
            &format!("{subject}.eml"),
            &format!("From: Alice <{ALICE}>\nTo: <{to}>\nSubject: {subject}\nMessage-ID: <{subject}@example.test>\n\nHello from alice.\n"),
        )?;
        send(
            &self.cluster.nodes[0].gateway("submission")?,
            ALICE,
            to,
            &path,
            &["--login", ALICE, ALICE_PW],
        )
    }

    fn alice_inbox(&self, n: usize) -> Result<Vec<serde_json::Value>> {
        let listed = self.cluster.nodes[0].cli_json(&[
            "inbox",
            "--user",
            ALICE,
            "--wait-messages",
            &n.to_string(),
            "--timeout",
            "60",
        ])?;
        Ok(listed.as_array().context("a list")?.clone())
    }

    fn alice_reads(&self, uid: u64) -> Result<String> {
        self.cluster.nodes[0].cli(&["read", "--user", ALICE, &uid.to_string()])
    }

    fn queue(&self) -> Result<Vec<serde_json::Value>> {
        let listed = self.cluster.nodes[0].cli_json(&["queue", "list"])?;
        Ok(listed.as_array().context("a list")?.clone())
    }
}

/// alice -> bob@elsewhere.test through the queue, signed twice (Ed25519
/// and RSA) as an independent verifier sees it; bob's reply comes back
/// through Postfix to the realm's MX, with SPF, DKIM and DMARC results.
#[test]
fn mail_goes_out_signed_and_the_reply_comes_back_checked() -> Result<()> {
    let world = World::new(2)?;
    ensure!(world.alice_sends("bob@elsewhere.test", "outward")? == "sent");
    let kept = world.postfix.wait_for("bob", 1, Duration::from_secs(60))?;
    let file = world.dir.path().join("received.eml");
    std::fs::write(&file, &kept[0])?;
    let verified = run(std::process::Command::new("python3").args([
        &script("dkim_verify.py"),
        file.to_str().context("path")?,
        &world.dns.addr.to_string(),
    ]))?;
    let verified = String::from_utf8_lossy(&verified.stdout).into_owned();
    ensure!(verified.contains("dkim=pass a=ed25519-sha256 d=example.test"), "{verified}");
    ensure!(verified.contains("dkim=pass a=rsa-sha256 d=example.test"), "{verified}");
    ensure!(!verified.contains("dkim=fail"), "{verified}");
    ensure!(world.queue()?.is_empty(), "the queue still holds {:?}", world.queue()?);

    // bob answers through his own MX, which relays to the realm's.
    let reply = world.message(
        "reply.eml",
        "From: Bob <bob@elsewhere.test>\nTo: <alice@example.test>\nSubject: inward\nIn-Reply-To: <outward@example.test>\n\nHello back.\n",
    )?;
    let verdict = send(&world.postfix.smtp.to_string(), "bob@elsewhere.test", ALICE, &reply, &[])?;
    ensure!(verdict == "sent", "{verdict}");
    let inbox = world.alice_inbox(1)?;
    ensure!(
        inbox.len() == 1 && inbox[0]["subject"] == "inward",
        "{inbox:?}\n{}",
        world.postfix.log()
    );
    let raw = world.alice_reads(inbox[0]["uid"].as_u64().context("uid")?)?;
    let results = header(&raw, "Authentication-Results")
        .with_context(|| format!("no Authentication-Results in {raw}"))?;
    ensure!(results.contains("spf=pass") && results.contains("dmarc=pass"), "{results}");
    Ok(())
}

/// The remote MX down: alice's mail waits in the queue (retried), the
/// sending node is SIGKILLed with it full, and once both are back every
/// message arrives exactly once.
#[test]
fn the_queue_outlives_a_down_mx_and_a_sigkill_and_delivers_once() -> Result<()> {
    let mut world = World::new(2)?;
    world.postfix.stop()?;
    let subjects: Vec<String> = (0..5).map(|i| format!("queued-{i}")).collect();
    for subject in &subjects {
        ensure!(world.alice_sends("bob@elsewhere.test", subject)? == "sent");
    }
    let queued = world.queue()?;
    ensure!(queued.len() == 5, "{queued:?}");
    world.cluster.nodes[0].kill()?;
    world.cluster.restart(0)?;
    ensure!(world.queue()?.len() == 5, "the restarted node's queue: {:?}", world.queue()?);
    world.postfix.restart()?;
    world.cluster.nodes[0].cli(&["queue", "retry", "--all"])?;
    // Everything has left epost's queue, and Postfix has delivered all it
    // took: a message sent twice would be in the Maildir now.
    let left =
        world.cluster.nodes[0].cli_json(&["queue", "list", "--wait-empty", "--timeout", "90"])?;
    ensure!(left.as_array().is_some_and(Vec::is_empty), "still queued: {left:?}");
    world.postfix.settled(Duration::from_secs(60))?;
    let kept = world.postfix.maildir("bob")?;
    let mut got: Vec<String> = kept
        .iter()
        .filter_map(|m| {
            String::from_utf8_lossy(m)
                .lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned))
        })
        .collect();
    got.sort();
    ensure!(got == subjects, "bob has {got:?}");
    Ok(())
}

/// A refusal for good (Postfix's 550 for an unknown user) comes back to
/// alice as a delivery status notification.
#[test]
fn a_refusal_comes_back_as_a_dsn() -> Result<()> {
    let world = World::new(2)?;
    ensure!(world.alice_sends("nobody@elsewhere.test", "doomed")? == "sent");
    let inbox = world.alice_inbox(1)?;
    ensure!(inbox.len() == 1, "{inbox:?}");
    let raw = world.alice_reads(inbox[0]["uid"].as_u64().context("uid")?)?;
    ensure!(
        raw.contains("multipart/report") && raw.contains("report-type=delivery-status"),
        "{raw}"
    );
    ensure!(
        raw.contains("Final-Recipient: rfc822; nobody@elsewhere.test")
            || raw.contains("Final-Recipient: rfc822;nobody@elsewhere.test"),
        "{raw}"
    );
    ensure!(raw.contains("Action: failed") && raw.contains("Status: 5."), "{raw}");
    ensure!(world.queue()?.is_empty(), "{:?}", world.queue()?);
    Ok(())
}

/// Mail claiming a DMARC-reject domain it does not come from is refused
/// at the MX; with the overlay cut off, an unknown recipient is "try
/// later", not "no such user".
#[test]
fn forged_mail_is_refused_and_a_cut_off_mx_says_try_later() -> Result<()> {
    let mut world = World::new(2)?;
    let forged = world.message(
        "forged.eml",
        "From: The Bank <security@forged.test>\nTo: <alice@example.test>\nSubject: verify your account\n\nclick\n",
    )?;
    let mx = world.cluster.nodes[0].gateway("smtp")?;
    let verdict =
        send(&mx, "security@forged.test", ALICE, &forged, &["--ehlo", "mail.forged.test"])?;
    ensure!(verdict.starts_with("refused 550"), "{verdict}");
    ensure!(world.alice_inbox(0)?.is_empty());

    let hello = world.message(
        "hello.eml",
        "From: <bob@elsewhere.test>\nTo: <zed@example.test>\nSubject: hi\n\nhi\n",
    )?;
    let verdict = send(&mx, "bob@elsewhere.test", "zed@example.test", &hello, &[])?;
    ensure!(verdict.starts_with("refused 550"), "an unknown user with the overlay up: {verdict}");
    world.cluster.nodes[1].kill()?;
    let verdict = send(&mx, "bob@elsewhere.test", "zed@example.test", &hello, &[])?;
    ensure!(
        verdict.starts_with("refused 451"),
        "an unknown user with the overlay cut off: {verdict}"
    );
    Ok(())
}

/// Internet mail for a user hosted on another node than the MX, with no
/// postmaster anywhere: the MX says "try later" (451 4.3.5, naming the
/// command) until the realm's MX record names it; then the mail Postfix
/// relays is announced through the overlay, signed by the MX node, and
/// lands in carol's INBOX on her node with the MX's checks.
#[test]
fn the_named_mx_takes_mail_for_a_user_hosted_on_another_node() -> Result<()> {
    let world = World::new(2)?;
    realm::host(&world.cluster, CAROL, "carol-pw", 1)?;
    let mail = world.message(
        "far.eml",
        "From: Bob <bob@elsewhere.test>\nTo: <carol@example.test>\nSubject: far\n\nHello carol.\n",
    )?;
    let mx = world.cluster.nodes[0].gateway("smtp")?;
    let verdict = send(&mx, "bob@elsewhere.test", CAROL, &mail, &["--ehlo", "mx.elsewhere.test"])?;
    ensure!(
        verdict.starts_with("refused 451 ") && verdict.contains("epost realm mx add example.test"),
        "not named yet: {verdict}"
    );

    let named = world.cluster.nodes[0].cli_json(&["realm", "mx", "add", "example.test"])?;
    ensure!(named["this_node"] == true && named["serial"] == 1, "{named}");
    let shown = world.cluster.nodes[1].cli_json(&["realm", "mx", "show", "example.test"])?;
    ensure!(shown["nodes"] == named["nodes"] && shown["this_node"] == false, "{shown}");

    let verdict = send(&world.postfix.smtp.to_string(), "bob@elsewhere.test", CAROL, &mail, &[])?;
    ensure!(verdict == "sent", "{verdict}");
    let carol = &world.cluster.nodes[1];
    let listed =
        carol.cli_json(&["inbox", "--user", CAROL, "--wait-messages", "1", "--timeout", "60"])?;
    let inbox = listed.as_array().context("a list")?;
    ensure!(inbox.len() == 1 && inbox[0]["subject"] == "far", "{inbox:?}\n{}", world.postfix.log());
    let uid = inbox[0]["uid"].as_u64().context("uid")?.to_string();
    let raw = carol.cli(&["read", "--user", CAROL, &uid])?;
    let results = header(&raw, "Authentication-Results")
        .with_context(|| format!("no Authentication-Results in {raw}"))?;
    ensure!(results.contains("spf=pass") && results.contains("dmarc=pass"), "{results}");
    Ok(())
}
