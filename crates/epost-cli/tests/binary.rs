//! The `epost` binary's surface: version, help with examples, argument errors.
//! (Data-directory workflows with real processes live in the workspace's tests/.)

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

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

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_str().unwrap();
    let init = epost(&["--data-dir", dir, "init", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    assert!(init.status.success(), "{init:?}");
    // The reader is gone before anything is written (`| head` that ended).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_epost"))
        .args(["--data-dir", dir, "config", "show"])
        .stdout(writer)
        .output()
        .expect("run epost");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "nothing on stderr, no panic: {err}");
    // As a Unix tool killed by SIGPIPE: 128 + 13.
    assert_eq!(out.status.code(), Some(141));
}
