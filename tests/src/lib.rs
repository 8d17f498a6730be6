//! Helpers for end-to-end tests that drive real `epost` processes, the way a
//! user or an acceptance test does: through the binary, its files and its
//! exit codes. Nothing here reaches into the crates' internals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// The `epost` binary built for this test run: `$EPOST_BIN`, or the one
/// cargo put next to this test binary's directory (target/<profile>/epost).
pub fn epost_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("EPOST_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe().context("cannot locate the test binary")?;
    // target/<profile>/deps/<test> -> target/<profile>/epost
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test binary is not inside a cargo target directory")?;
    let bin = profile_dir.join("epost");
    if !bin.exists() {
        bail!(
            "{} not found: build it with `cargo build -p epost-cli` or set EPOST_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

/// An `epost` command with `--data-dir` set and the environment scrubbed of
/// anything that could point it elsewhere.
pub fn epost(data_dir: &Path) -> Result<Command> {
    let mut cmd = Command::new(epost_bin()?);
    cmd.env_remove("EPOST_DATA_DIR").env_remove("RUST_LOG").arg("--data-dir").arg(data_dir);
    Ok(cmd)
}

/// The last line a command printed (where the CLI puts the value asked for).
pub fn last_line(out: &str) -> Result<String> {
    out.lines().last().map(str::to_owned).context("no output")
}

/// Runs a command to completion, returning its output whatever the exit code.
pub fn run(cmd: &mut Command) -> Result<Output> {
    cmd.output().with_context(|| format!("cannot run {cmd:?}"))
}

/// Runs a command that must succeed; the error carries its stderr.
pub fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8(out.stdout).context("stdout is not UTF-8")
}

/// Runs a command that must succeed with `input` as its standard input.
pub fn run_ok_with_input(cmd: &mut Command, input: &[u8]) -> Result<String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    child.stdin.take().context("no stdin")?.write_all(input)?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8(out.stdout).context("stdout is not UTF-8")
}

pub mod cluster;
pub mod internet;
pub mod realm;
