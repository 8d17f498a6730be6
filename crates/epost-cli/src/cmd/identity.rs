//! `epost realm ...` and `epost user ...`: identity through the running node.

use std::io::{BufRead, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use epost_node::control::{
    AddUser, ExportUser, ImportUser, MxChange, MxInfo, RealmInfo, RealmInit, Realms, SetPassword,
    Trust, Trusted, UserInfo,
};
use serde_json::json;

use crate::cli::{MxCommand, RealmCommand, UserCommand};
use crate::client::{ApiClient, path_segment};
use crate::datadir::DataDir;
use crate::output::emit;

const ARMOR_BEGIN: &str = "-----BEGIN EPOST USER-----";
const ARMOR_END: &str = "-----END EPOST USER-----";

pub(crate) async fn realm(dir: &DataDir, command: RealmCommand, json: bool) -> Result<()> {
    // Files in the data directory, not the running node's API.
    if let RealmCommand::Dkim { domain } = &command {
        return super::dkim::run(dir, domain, json);
    }
    let client = ApiClient::connect(dir)?;
    match command {
        RealmCommand::Dkim { .. } => {}
        RealmCommand::Init { domain } => {
            let realm: RealmInfo = client.post("/v1/realms", &RealmInit { domain }).await?;
            emit(json, &realm, |r| {
                let verb = if r.created { "created" } else { "exists" };
                format!(
                    "realm {} {verb}; its public key (give it to `epost realm trust` elsewhere):\n{}",
                    r.domain, r.key
                )
            })?;
        }
        RealmCommand::Mx(command) => {
            let (domain, change) = match command {
                MxCommand::Add { domain, peer } => (domain, Some(MxChange { peer, named: true })),
                MxCommand::Remove { domain, peer } => {
                    (domain, Some(MxChange { peer, named: false }))
                }
                MxCommand::Show { domain } => (domain, None),
            };
            let path = format!("/v1/realms/{}/mx", path_segment(&domain));
            let record: MxInfo = match change {
                Some(change) => client.post(&path, &change).await?,
                None => client.get_json(&path).await?,
            };
            emit(json, &record, |r| {
                let mut lines = vec![format!(
                    "MX record of {} (serial {}): {} node(s){}",
                    r.domain,
                    r.serial,
                    r.nodes.len(),
                    if r.this_node { ", this node among them" } else { "" }
                )];
                lines.extend(r.nodes.iter().map(|n| format!("  {n}")));
                lines.join("\n")
            })?;
        }
        RealmCommand::Trust { key, domain } => {
            let trusted: Trusted = client.post("/v1/trust", &Trust { key, domain }).await?;
            emit(json, &trusted, |t| format!("trusted {} for {}", t.key, t.domain))?;
        }
        RealmCommand::List => {
            let realms: Realms = client.get_json("/v1/realms").await?;
            emit(json, &realms, |r| {
                let mut lines: Vec<String> = r
                    .held
                    .iter()
                    .map(|held| format!("held     {} {}", held.domain, held.key))
                    .collect();
                for domain in r.trusted.domains() {
                    for key in r.trusted.keys(domain) {
                        lines.push(format!("trusted  {domain} {key}"));
                    }
                }
                if lines.is_empty() {
                    "no realms held or trusted".to_owned()
                } else {
                    lines.join("\n")
                }
            })?;
        }
    }
    Ok(())
}

pub(crate) async fn user(dir: &DataDir, command: UserCommand, json: bool) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    match command {
        UserCommand::Add { address, password_stdin } => {
            let password = password_stdin.then(|| read_secret_line("password")).transpose()?;
            let user: UserInfo = client.post("/v1/users", &AddUser { address, password }).await?;
            emit(json, &user, |u| {
                format!(
                    "added {} (certificate serial {}){}",
                    u.address,
                    u.serial,
                    if u.has_password { ", password set" } else { "" }
                )
            })?;
        }
        UserCommand::Export { address, passphrase_stdin } => {
            let passphrase =
                passphrase_stdin.then(|| read_secret_line("passphrase")).transpose()?;
            let path = format!("/v1/users/{}/export", path_segment(&address));
            let response = client
                .send(client.request(reqwest::Method::POST, &path).json(&ExportUser { passphrase }))
                .await?;
            let bytes = response.bytes().await.context("the node's answer was cut off")?;
            let mut out = std::io::stdout().lock();
            out.write_all(armor(&bytes).as_bytes()).context("cannot write to standard output")?;
        }
        UserCommand::Import { file, passphrase_stdin } => {
            let bytes = read_bundle(&file)?;
            let passphrase =
                passphrase_stdin.then(|| read_secret_line("passphrase")).transpose()?;
            let bundle = data_encoding::BASE64.encode(&bytes);
            let user: UserInfo = client
                .post("/v1/users/import", &ImportUser { bundle, passphrase, password: None })
                .await?;
            emit(json, &user, |u| {
                let address = &u.address;
                if u.has_password {
                    format!("imported {address}; the gateway password came with it")
                } else {
                    format!(
                        "imported {address}; it has no gateway password here: set one with `epost user passwd {address}`"
                    )
                }
            })?;
        }
        UserCommand::Remove { address } => {
            let path = format!("/v1/users/{}", path_segment(&address));
            client.send(client.request(reqwest::Method::DELETE, &path)).await?;
            emit(json, &json!({ "address": address, "removed": true }), |_| {
                format!("{address} is no longer hosted on this node")
            })?;
        }
        UserCommand::Passwd { address } => {
            let password = read_secret_line("password")?;
            let path = format!("/v1/users/{}/password", path_segment(&address));
            client
                .send(client.request(reqwest::Method::POST, &path).json(&SetPassword { password }))
                .await?;
            emit(json, &json!({ "address": address, "password_set": true }), |_| {
                format!("password set for {address}")
            })?;
        }
        UserCommand::List => {
            let users: Vec<UserInfo> = client.get_json("/v1/users").await?;
            emit(json, &users, |list| {
                let lines: Vec<String> =
                    list.iter().map(|u| format!("{} serial {}", u.address, u.serial)).collect();
                if lines.is_empty() { "no users hosted here".to_owned() } else { lines.join("\n") }
            })?;
        }
    }
    Ok(())
}

/// The first line of standard input, without its line ending.
fn read_secret_line(what: &str) -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    let secret = line.trim_end_matches(['\n', '\r']).to_owned();
    if secret.is_empty() {
        bail!("the {what} read from standard input is empty");
    }
    Ok(secret)
}

/// A bundle as text: base64 between BEGIN/END lines, 64 columns.
fn armor(bytes: &[u8]) -> String {
    let text = data_encoding::BASE64.encode(bytes);
    let mut out = format!("{ARMOR_BEGIN}\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(ARMOR_END);
    out.push('\n');
    out
}

/// Reads a bundle file, armored or raw.
fn read_bundle(file: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if file == Path::new("-") {
        std::io::stdin().lock().read_to_end(&mut bytes).context("cannot read standard input")?;
    } else {
        bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    }
    let Ok(text) = std::str::from_utf8(&bytes) else { return Ok(bytes) };
    let Some(start) = text.find(ARMOR_BEGIN) else { return Ok(bytes) };
    let body = &text[start + ARMOR_BEGIN.len()..];
    let end = body.find(ARMOR_END).context("the bundle's END line is missing (cut off?)")?;
    let base64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    data_encoding::BASE64.decode(base64.as_bytes()).context("the bundle's text is damaged")
}
