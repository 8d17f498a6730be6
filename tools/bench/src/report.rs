//! The provenance block every result starts with, and timing helpers.

use std::fmt::Write;
use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) fn header(args: &[String]) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or_else(|| "?".to_owned(), |kb| format!("{} GiB", kb / 1024 / 1024));
    let commit = capture("git", &["rev-parse", "--short", "HEAD"]);
    let date = capture("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let mut out = String::new();
    let _ = writeln!(out, "- command: `cargo run --release -p epost-bench -- {}`", args.join(" "));
    let _ = writeln!(out, "- machine: {cpu}, {cores} cores, {mem}");
    let _ = writeln!(out, "- commit: {commit}, date: {date}\n");
    out
}

/// Today's date, UTC, as `YYYY-MM-DD` (results files are named by it).
pub(crate) fn today() -> String {
    capture("date", &["-u", "+%Y-%m-%d"])
}

fn capture(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Runs `f` repeatedly for at least `min` and returns calls per second.
pub(crate) fn rate(min: Duration, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < min {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

pub(crate) const MIB: f64 = 1024.0 * 1024.0;
