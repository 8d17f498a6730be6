//! `epost dev`: a whole local network in one process, ready for a mail
//! client. Nodes on loopback, realm `example.test`, users alice, bob and
//! carol (and postmaster) with fresh passwords, the gateway on node 0.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result};
use epost_types::address::Address;
use epost_types::keyfile::NodeKeyFile;
use epost_types::sign::{SigningKey, VerifyingKey};
use serde::Serialize;

use crate::cli::DevArgs;
use crate::cmd::node::{Daemon, wait_for_signal};
use crate::config::{self, Config};
use crate::datadir::{DataDir, write_new_file, write_private};
use crate::settings;

/// The dev network's mail domain.
pub(crate) const REALM: &str = "example.test";
const USERS: [&str; 4] = ["alice", "bob", "carol", "postmaster"];
/// Ports tried first, so a mail client set up once keeps working; taken
/// ones fall back to ports the OS picks.
const PORTS: [u16; 7] = [2525, 2587, 2143, 2110, 2465, 2993, 2995];

#[derive(Debug, Serialize, serde::Deserialize)]
struct DevUser {
    address: String,
    password: String,
}

#[derive(Debug, Serialize)]
struct DevInfo {
    data_dir: String,
    smtp: Option<String>,
    submission: Option<String>,
    imap: Option<String>,
    pop3: Option<String>,
    submissions: Option<String>,
    imaps: Option<String>,
    pop3s: Option<String>,
    users: Vec<DevUser>,
    nodes: Vec<String>,
}

pub(crate) async fn run(data_dir: Option<PathBuf>, args: &DevArgs, json: bool) -> Result<()> {
    anyhow::ensure!((1..=64).contains(&args.nodes), "--nodes must be between 1 and 64");
    let root = match data_dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("epost-dev-{}", std::process::id())),
    };
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let log = config::LogConfig {
        filter: "warn,epost_gateway=info".into(),
        ..config::LogConfig::default()
    };
    settings::init_logging(&log);

    let mut daemons: Vec<Daemon> = Vec::new();
    let result = start_all(&root, args.nodes, &mut daemons).await;
    let info = match result {
        Ok(info) => info,
        Err(e) => {
            for daemon in daemons.into_iter().rev() {
                daemon.stop().await;
            }
            return Err(e);
        }
    };
    // It holds the users' passwords: private.
    write_private(&root.join("dev.json"), &serde_json::to_vec_pretty(&info)?)?;
    let text = if json { serde_json::to_string(&info)? } else { welcome(&info) };
    // The network runs on whether anyone reads this or not.
    if let Err(e) = crate::output::line(text.trim_end()) {
        tracing::warn!(error = %e, "cannot write the welcome to standard output");
    }
    wait_for_signal().await?;
    eprintln!("stopping the dev network");
    let _ = std::fs::remove_file(root.join("dev.json"));
    for daemon in daemons.into_iter().rev() {
        daemon.stop().await;
    }
    Ok(())
}

async fn start_all(root: &Path, nodes: usize, daemons: &mut Vec<Daemon>) -> Result<DevInfo> {
    for i in 0..nodes {
        let dir = DataDir::resolve(Some(root.join(format!("node{i}"))))?;
        prepare(&dir)?;
        dkim_keys(root, &dir, i)?;
        let mut config = Config::load(&dir.config_path())?;
        config.network.listen = vec![loopback_any_port()];
        config.network.bootstrap =
            daemons.first().map(|first| first.node.listen_addrs.clone()).unwrap_or_default();
        let off = |c: &mut Config| {
            c.gateway.smtp_listen = None;
            c.gateway.submission_listen = None;
            c.gateway.imap_listen = None;
            c.gateway.pop3_listen = None;
            c.gateway.submissions_listen = None;
            c.gateway.imaps_listen = None;
            c.gateway.pop3s_listen = None;
        };
        let daemon = if i == 0 {
            let [smtp, submission, imap, pop3, submissions, imaps, pop3s] =
                PORTS.map(|p| Some(SocketAddr::from((Ipv4Addr::LOCALHOST, p))));
            let mut fixed = config.clone();
            fixed.gateway.smtp_listen = smtp;
            fixed.gateway.submission_listen = submission;
            fixed.gateway.imap_listen = imap;
            fixed.gateway.pop3_listen = pop3;
            fixed.gateway.submissions_listen = submissions;
            fixed.gateway.imaps_listen = imaps;
            fixed.gateway.pop3s_listen = pop3s;
            match Daemon::start(&dir, &fixed).await {
                Ok(daemon) => daemon,
                Err(e) => {
                    tracing::info!(error = %e, "the usual dev ports are taken; letting the OS pick");
                    Daemon::start(&dir, &config).await?
                }
            }
        } else {
            off(&mut config);
            Daemon::start(&dir, &config).await?
        };
        daemons.push(daemon);
    }

    // The realm lives on node 0; every node trusts it.
    let first = &daemons[0].node;
    let realm = match first.identity.realms().into_iter().find(|r| r.domain == REALM) {
        Some(realm) => realm,
        None => first.identity.realm_init(REALM)?,
    };
    let key = VerifyingKey::from_str(&realm.key).context("the realm key does not parse")?;
    for daemon in daemons.iter() {
        daemon.node.identity.trust(key, Some(REALM))?;
    }
    // Passwords chosen at an earlier start stay, so a mail client set up
    // then still logs in.
    let known = known_passwords(root);
    let mut users = Vec::new();
    for name in USERS {
        let address = Address::from_str(&format!("{name}@{REALM}"))?;
        let kept = known
            .get(address.as_str())
            .filter(|p| first.identity.check_password(&address, p))
            .cloned();
        let password = match kept {
            Some(password) => password,
            None => {
                let password = new_password()?;
                if first.identity.user(&address).is_ok() {
                    first.identity.set_password(&address, &password)?;
                } else {
                    first.identity.add_user(address.clone(), Some(&password)).await?;
                }
                password
            }
        };
        users.push(DevUser { address: address.to_string(), password });
    }
    write_private(&root.join(PASSWORDS), &serde_json::to_vec_pretty(&users)?)?;
    let gateway = &daemons[0].info;
    Ok(DevInfo {
        data_dir: root.display().to_string(),
        smtp: gateway.smtp.clone(),
        submission: gateway.submission.clone(),
        imap: gateway.imap.clone(),
        pop3: gateway.pop3.clone(),
        submissions: gateway.submissions.clone(),
        imaps: gateway.imaps.clone(),
        pop3s: gateway.pop3s.clone(),
        users,
        nodes: daemons.iter().map(|d| d.info.peer_id.clone()).collect(),
    })
}

/// Makes a node data directory (key and config) unless it exists.
fn prepare(dir: &DataDir) -> Result<()> {
    if dir.node_key_path().exists() {
        return Ok(());
    }
    dir.create_root()?;
    let key = SigningKey::generate().context("cannot generate a node key")?;
    write_new_file(&dir.node_key_path(), &NodeKeyFile::new(&key).encode(), 0o600)?;
    let mut config = Config::default();
    config.network.listen = vec![loopback_any_port()];
    let text = config::template(&config)?;
    write_new_file(&dir.config_path(), text.as_bytes(), 0o644)?;
    Ok(())
}

/// The realm's DKIM keys, made on node 0 and copied to the others (as an
/// operator copies them), before the node starts and loads them: mail
/// leaving the dev network is signed out of the box.
fn dkim_keys(root: &Path, dir: &DataDir, i: usize) -> Result<()> {
    if i == 0 {
        epost_mta::dkim::keys::ensure(dir.root(), REALM, epost_types::time::Timestamp::now())
            .context("cannot make the dev realm's DKIM keys")?;
    } else {
        epost_mta::dkim::keys::copy_domain(&root.join("node0"), dir.root(), REALM)
            .context("cannot copy the dev realm's DKIM keys")?;
    }
    Ok(())
}

/// Every dev node listens for peers on loopback, on a port the OS picks.
fn loopback_any_port() -> epost_dht::Multiaddr {
    epost_dht::addr::tcp_listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
}

/// The dev users' passwords, kept (0600) across restarts of one network;
/// dev.json says the same while the network runs.
const PASSWORDS: &str = "dev-passwords.json";

fn known_passwords(root: &Path) -> std::collections::HashMap<String, String> {
    let Ok(bytes) = std::fs::read(root.join(PASSWORDS)) else { return Default::default() };
    serde_json::from_slice::<Vec<DevUser>>(&bytes)
        .map(|users| users.into_iter().map(|u| (u.address, u.password)).collect())
        .unwrap_or_default()
}

fn new_password() -> Result<String> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 10];
    SystemRandom::new().fill(&mut bytes).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    Ok(data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase())
}

/// What `epost dev` says once its network is up.
fn welcome(info: &DevInfo) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let show = |addr: &Option<String>| addr.clone().unwrap_or_else(|| "off".into());
    let host_port = |addr: &Option<String>| {
        addr.as_deref()
            .and_then(|a| a.rsplit_once(':'))
            .map(|(h, p)| (h.to_owned(), p.to_owned()))
            .unwrap_or_default()
    };
    let (imap_host, imap_port) = host_port(&info.imap);
    let (sub_host, sub_port) = host_port(&info.submission);
    let _ = writeln!(
        text,
        "epost dev network: {} nodes, realm {REALM}, data in {}",
        info.nodes.len(),
        info.data_dir
    );
    let _ = writeln!(text);
    let _ = writeln!(text, "  SMTP (MX)    {}", show(&info.smtp));
    let _ = writeln!(
        text,
        "  submission   {}   (AUTH PLAIN/LOGIN; STARTTLS offered)",
        show(&info.submission)
    );
    let _ = writeln!(
        text,
        "  IMAP         {}   (STARTTLS offered; plain login allowed on loopback)",
        show(&info.imap)
    );
    let _ = writeln!(text, "  POP3         {}", show(&info.pop3));
    let _ = writeln!(text, "  submissions  {}   (TLS from the start)", show(&info.submissions));
    let _ = writeln!(text, "  IMAPS        {}", show(&info.imaps));
    let _ = writeln!(text, "  POP3S        {}", show(&info.pop3s));
    let _ = writeln!(text);
    for user in &info.users {
        let _ = writeln!(text, "  {:<24} password {}", user.address, user.password);
    }
    let _ = writeln!(text);
    let _ = writeln!(text, "Point a mail client at it (Thunderbird: manual setup):");
    let _ = writeln!(
        text,
        "  incoming IMAP {imap_host} port {imap_port}, outgoing SMTP {sub_host} port {sub_port},"
    );
    let _ = writeln!(
        text,
        "  user name = the full address, normal password, no SSL or STARTTLS (self-signed)."
    );
    let _ = writeln!(
        text,
        "  The self-signed certificate ({}/node0/gateway-cert.pem) names localhost,",
        info.data_dir
    );
    let _ = writeln!(
        text,
        "  127.0.0.1 and ::1: trust it once and clients that check names (msmtp, fetchmail, neomutt) connect by address."
    );
    let _ = writeln!(text, "Or from a shell:");
    let _ = writeln!(
        text,
        "  python3 -c \"import smtplib; s=smtplib.SMTP('{sub_host}', {sub_port}); s.login('alice@{REALM}', '<password>'); s.sendmail('alice@{REALM}', ['bob@{REALM}'], 'Subject: hi\\r\\n\\r\\nhello')\""
    );
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "Everything is also in {}/dev.json. Ctrl-C stops the network.",
        info.data_dir
    );
    text
}
