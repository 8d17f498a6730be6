//! `epost`: the node daemon, the command-line client and the local dev
//! network, in one binary.
//!
//! This crate is the only one that uses `anyhow`: it turns the libraries'
//! typed errors into messages for a person, and exit codes for scripts.
//! It must never hold protocol or storage logic of its own.

mod cli;
mod client;
mod cmd;
mod config;
mod datadir;
mod gateway;
mod inbound;
mod keys;
mod outbound;
mod output;
mod settings;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // Like a Unix tool killed by SIGPIPE: no message, status 128 + 13.
        Err(err) if output::is_closed_pipe(&err) => ExitCode::from(141),
        Err(err) => {
            eprintln!("error: {}", output::report(&err));
            ExitCode::FAILURE
        }
    }
}
