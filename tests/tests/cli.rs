//! `epost init` and config loading, through the real binary.

use std::os::unix::fs::PermissionsExt;

use anyhow::Result;
use epost_e2e::{epost, run, run_ok};

#[test]
fn init_makes_a_private_key_and_a_valid_config() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("node");
    let out =
        run_ok(epost(&dir)?.args(["--json", "init", "--listen", "/ip4/127.0.0.1/tcp/0"]).args([
            "--bootstrap",
            "/ip4/127.0.0.1/tcp/4100/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
        ]))?;
    let report: serde_json::Value = serde_json::from_str(&out)?;
    assert!(report["public_key"].as_str().is_some_and(|k| k.len() == 52), "{report}");

    let key_mode = std::fs::metadata(dir.join("node.key"))?.permissions().mode() & 0o777;
    assert_eq!(key_mode, 0o600, "node key must be private");
    let dir_mode = std::fs::metadata(&dir)?.permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);

    let shown: serde_json::Value =
        serde_json::from_str(&run_ok(epost(&dir)?.args(["--json", "config", "show"]))?)?;
    assert_eq!(shown["network"]["listen"][0], "/ip4/127.0.0.1/tcp/0");
    assert_eq!(shown["storage"]["data_fragments"], 4);
    assert_eq!(shown["storage"]["parity_fragments"], 4);
    assert_eq!(shown["storage"]["lease_days"], 180);
    assert_eq!(shown["storage"]["renew_after_days"], 30);
    run_ok(epost(&dir)?.args(["config", "check"]))?;
    Ok(())
}

#[test]
fn init_refuses_to_overwrite_keys() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    run_ok(epost(tmp.path())?.arg("init"))?;
    let key_before = std::fs::read(tmp.path().join("node.key"))?;
    let out = run(epost(tmp.path())?.arg("init"))?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already initialised"));
    assert_eq!(std::fs::read(tmp.path().join("node.key"))?, key_before);
    Ok(())
}

#[test]
fn bad_listen_flag_leaves_nothing_behind() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("node");
    let out = run(epost(&dir)?.args(["init", "--listen", "/ip4/127.0.0.1/tcp/99999"]))?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("network.listen") && err.contains("99999"), "{err}");
    assert!(!dir.exists(), "a failed init must not create the directory");
    Ok(())
}

#[test]
fn bad_config_names_key_and_value() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    run_ok(epost(tmp.path())?.arg("init"))?;
    let path = tmp.path().join("config.toml");
    let text =
        std::fs::read_to_string(&path)?.replace("parity_fragments = 4", "parity_fragments = 300");
    std::fs::write(&path, text)?;
    let out = run(epost(tmp.path())?.args(["config", "check"]))?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("parity_fragments") && err.contains("300"), "{err}");
    Ok(())
}

#[test]
fn data_dir_comes_from_the_environment() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cmd = std::process::Command::new(epost_e2e::epost_bin()?);
    cmd.env("EPOST_DATA_DIR", tmp.path()).arg("init");
    run_ok(&mut cmd)?;
    assert!(tmp.path().join("config.toml").exists());
    Ok(())
}

#[test]
fn commands_on_an_uninitialised_dir_say_what_to_do() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = run(epost(tmp.path())?.args(["config", "check"]))?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("init"), "{err}");
    Ok(())
}

#[test]
fn realm_dkim_makes_keys_once_and_prints_the_same_records() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    run_ok(epost(tmp.path())?.arg("init"))?;
    let first: serde_json::Value = serde_json::from_str(&run_ok(epost(tmp.path())?.args([
        "--json",
        "realm",
        "dkim",
        "Example.ORG",
    ]))?)?;
    assert_eq!(first["domain"], "example.org");
    assert_eq!(first["created"], true);
    let records = first["records"].as_array().expect("records");
    assert_eq!(records.len(), 2);
    let zone = |i: usize| records[i]["zone"].as_str().unwrap_or_default().to_owned();
    assert!(
        zone(0).starts_with("epost-ed-")
            && zone(0).contains("._domainkey.example.org. IN TXT \"v=DKIM1; k=ed25519; p="),
        "{}",
        zone(0)
    );
    assert!(
        zone(1).starts_with("epost-rsa-") && zone(1).contains("\"v=DKIM1; k=rsa; p="),
        "{}",
        zone(1)
    );
    // A 2048-bit key's text is longer than one TXT string: split at 255.
    assert!(zone(1).contains("\" \""), "{}", zone(1));

    let again: serde_json::Value = serde_json::from_str(&run_ok(epost(tmp.path())?.args([
        "--json",
        "realm",
        "dkim",
        "example.org",
    ]))?)?;
    assert_eq!(again["created"], false);
    assert_eq!(again["records"], first["records"]);
    for entry in std::fs::read_dir(tmp.path().join("dkim/example.org"))? {
        assert_eq!(entry?.metadata()?.permissions().mode() & 0o777, 0o600);
    }

    let text = run_ok(epost(tmp.path())?.args(["realm", "dkim", "example.org"]))?;
    assert!(text.contains(&zone(0)) && text.contains(&zone(1)), "{text}");
    let bad = run(epost(tmp.path())?.args(["realm", "dkim", "../etc"]))?;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a domain name"));
    Ok(())
}
