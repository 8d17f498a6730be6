//! Command-line definitions (clap). Parsing only: no side effects here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  epost --data-dir ./node1 init --listen /ip4/127.0.0.1/tcp/0
  epost --data-dir ./node1 node run &
  epost --data-dir ./node1 put photo.jpg
  epost --data-dir ./node1 get 'epost:...#...' -o photo.jpg
  epost --data-dir ./node1 status --json
  epost --data-dir ./node1 config check
  EPOST_DATA_DIR=./node1 epost config show --json
";

/// epost: serverless, end-to-end encrypted mail and storage on a peer-to-peer overlay.
#[derive(Debug, Parser)]
#[command(name = "epost", version, about, after_help = EXAMPLES, propagate_version = true)]
pub(crate) struct Cli {
    /// The node's data directory (keys, config, store). Defaults to the
    /// platform's data directory for epost.
    #[arg(long, global = true, env = "EPOST_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a data directory: a fresh node key (mode 0600) and a documented config.toml.
    #[command(
        after_help = "Example:\n  epost --data-dir ./node1 init --listen /ip4/127.0.0.1/tcp/0 \\\n      --bootstrap /ip4/127.0.0.1/tcp/4100/p2p/12D3KooW..."
    )]
    Init(InitArgs),

    /// Inspect the node's configuration.
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Run the node daemon.
    #[command(subcommand)]
    Node(NodeCommand),

    /// Store a file in the overlay; prints its capability (last line).
    #[command(
        after_help = "Example:\n  epost --data-dir ./node1 put report.pdf\n  tar c dir | epost put -"
    )]
    Put {
        /// The file to store, or `-` for standard input.
        file: PathBuf,
    },

    /// Fetch and verify an object by capability.
    #[command(
        after_help = "Example:\n  epost --data-dir ./node2 get 'epost:...#...' -o report.pdf"
    )]
    Get {
        /// `epost:<id>#<key>`.
        capability: String,
        /// Write here instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },

    /// Show the running node's view of the overlay and its store.
    Status,

    /// Count the live fragments of an object (and of its chunks).
    Check {
        /// `epost:<id>#<key>`.
        capability: String,
    },

    /// Extend the lease of an object (and its chunks) by a full lease from now.
    #[command(after_help = "Objects expire unless refreshed; deleting is not refreshing.")]
    Refresh {
        /// `epost:<id>#<key>`.
        capability: String,
    },

    /// Run a maintenance pass (repair, hand-over, garbage collection) now.
    Repair,
}

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Run the node in the foreground until SIGINT or SIGTERM.
    #[command(
        after_help = "Writes DIR/node.json (peer id, listen addresses, API URL) once listening."
    )]
    Run(NodeRunArgs),
}

#[derive(Debug, Args)]
pub(crate) struct NodeRunArgs {
    /// Listen here instead of network.listen (repeatable).
    #[arg(long = "listen", value_name = "MULTIADDR")]
    pub(crate) listen: Vec<String>,
    /// Bootstrap through these instead of network.bootstrap (repeatable).
    #[arg(long = "bootstrap", value_name = "MULTIADDR")]
    pub(crate) bootstrap: Vec<String>,
    /// Serve the control API here instead of api.listen.
    #[arg(long = "api-listen", value_name = "ADDR:PORT")]
    pub(crate) api_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Address to listen on for peers (libp2p multiaddr); repeatable.
    /// `/ip4/127.0.0.1/tcp/0` lets the OS pick the port.
    #[arg(long = "listen", value_name = "MULTIADDR")]
    pub(crate) listen: Vec<String>,

    /// A peer to join the overlay through (multiaddr ending in /p2p/<peer id>); repeatable.
    #[arg(long = "bootstrap", value_name = "MULTIADDR")]
    pub(crate) bootstrap: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Load and validate config.toml; exit non-zero naming the bad key and value.
    Check,
    /// Print the effective configuration (file merged over defaults).
    Show,
}
