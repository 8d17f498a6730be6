//! The `epost` binary's surface: version, help with examples, argument errors.
//! (Data-directory workflows with real processes live in the workspace's tests/.)

use std::process::Command;

fn epost(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_epost")).args(args).output().expect("run epost")
}

#[test]
fn version_names_the_crate_version() {
    let out = epost(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim(), format!("epost {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_has_examples_and_every_command() {
    let out = epost(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in ["Examples:", "init", "config", "--data-dir", "--json"] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
}

#[test]
fn unknown_command_fails_with_usage() {
    let out = epost(&["frobnicate"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("unrecognized subcommand") && err.contains("Usage"), "{err}");
}
