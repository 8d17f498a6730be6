//! epost's benchmarks. Each prints a Markdown section with the command,
//! machine, commit and date, so results committed under `tools/results/`
//! say how to reproduce them. Throughput is compared as ratios measured
//! side by side in one run, never as absolute pass/fail thresholds.
//!
//! Usage: `cargo run --release -p epost-bench -- <crypto|erasure|store|network|transport|defence|logs|notify|mail|mailbox|compare|all>`

mod compare;
mod crypto;
mod defence;
mod erasure;
mod mail;
mod mail_clients;
mod mail_services;
mod mailbox;
mod measure;
mod network;
mod report;
mod store;
mod transport;

use anyhow::{Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map(String::as_str).unwrap_or("all");
    let mut out = report::header(&args);
    match which {
        "crypto" => crypto::run(&mut out)?,
        "erasure" => erasure::run(&mut out)?,
        "store" => store::run(&mut out)?,
        "network" => network::run(&mut out)?,
        "transport" => transport::run(&mut out)?,
        "defence" => defence::run(&mut out, &args[1..])?,
        "logs" => mail_services::run_logs(&mut out)?,
        "notify" => mail_services::run_notify(&mut out)?,
        "mail" => mail::run(&mut out)?,
        "compare" => compare::run(&mut out, &args[1..])?,
        "mailbox" => mailbox::run(&mut out, &args[1..])?,
        "all" => {
            crypto::run(&mut out)?;
            erasure::run(&mut out)?;
            store::run(&mut out)?;
            network::run(&mut out)?;
            mail_services::run_logs(&mut out)?;
            mail_services::run_notify(&mut out)?;
            mail::run(&mut out)?;
        }
        "-h" | "--help" => {
            println!(
                "usage: epost-bench <crypto|erasure|store|network|transport|defence|logs|notify|mail|mailbox|compare|all>"
            );
            return Ok(());
        }
        other => bail!(
            "unknown benchmark {other:?}; try crypto, erasure, store, network, transport, defence, logs, notify, mail or all"
        ),
    }
    print!("{out}");
    Ok(())
}
