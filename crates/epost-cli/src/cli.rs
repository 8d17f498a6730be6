//! Command-line definitions (clap). Parsing only: no side effects here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  epost dev
  epost --data-dir ./node1 init --listen /ip4/127.0.0.1/tcp/0
  epost --data-dir ./node1 node run &
  epost --data-dir ./node1 put photo.jpg
  epost --data-dir ./node1 get 'epost:...#...' -o photo.jpg
  epost --data-dir ./node1 status --json
  epost --data-dir ./node1 realm init example.org
  echo 'secret' | epost --data-dir ./node1 user add alice@example.org --password-stdin
  echo 'hello' | epost --data-dir ./node1 log append --user alice@example.org notes
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
    #[command(
        after_help = "Example (wait until the node has joined):\n  epost status --wait-peers 2 --timeout 30"
    )]
    Status {
        /// Answer once this many peers are connected (or at --timeout).
        #[arg(long, value_name = "N")]
        wait_peers: Option<usize>,
        /// Seconds to wait for --wait-peers (at most 300).
        #[arg(long, value_name = "SECS", default_value_t = 30, requires = "wait_peers")]
        timeout: u64,
    },

    /// Count the live fragments of an object (and of its chunks), or of a message's objects.
    #[command(
        after_help = "Examples:\n  epost check 'epost:...#...'\n  epost check <object id>            # one object, no key needed\n  epost check --user bob@example.org --uid 3   # a message: manifest, parts, chunks"
    )]
    Check {
        /// `epost:<id>#<key>`, or a bare object id.
        #[arg(required_unless_present = "uid")]
        capability: Option<String>,
        /// With --uid: the user whose message to check (hosted here).
        #[arg(long, requires = "uid")]
        user: Option<String>,
        #[arg(long, default_value = "INBOX", requires = "uid")]
        folder: String,
        /// A message's UID (as `epost inbox` lists it).
        #[arg(long, requires = "user", conflicts_with = "capability")]
        uid: Option<u32>,
    },

    /// Extend the lease of an object (and its chunks) by a full lease from now.
    #[command(after_help = "Objects expire unless refreshed; deleting is not refreshing.")]
    Refresh {
        /// `epost:<id>#<key>`.
        capability: String,
    },

    /// Run a maintenance pass (repair, hand-over, garbage collection) now.
    Repair,

    /// Renew now everything the users hosted here still reference; returns when done.
    #[command(
        after_help = "Passes also run at start and every storage.renew_interval_secs.\nExamples:\n  epost renew --json\n  epost renew --progress --wait-renewed 100 --timeout 60   # watch the pass under way, start none"
    )]
    Renew {
        /// Show how the pass under way is going instead of running one.
        #[arg(long)]
        progress: bool,
        /// With --progress: answer once that pass has renewed this many objects (or at --timeout).
        #[arg(long, value_name = "N", requires = "progress")]
        wait_renewed: Option<u64>,
        /// Seconds to wait for --wait-renewed (at most 300).
        #[arg(long, value_name = "SECS", default_value_t = 30, requires = "wait_renewed")]
        timeout: u64,
    },

    /// Realm authority keys (a realm is a mail domain) and which realms to trust.
    #[command(subcommand)]
    Realm(RealmCommand),

    /// Users hosted on this node: add, move between nodes, set passwords.
    #[command(subcommand)]
    User(UserCommand),

    /// A user's single-writer signed logs: append, show, and check heads.
    #[command(subcommand)]
    Log(LogCommand),

    #[command(flatten)]
    Mail(MailCommand),

    /// A hosted user's folders: list, create, rename, delete.
    #[command(subcommand)]
    Folder(FolderCommand),

    /// A whole local network in one process with the mail gateway, ready for a mail client.
    #[command(
        after_help = "Example:\n  epost dev\n  epost dev --nodes 7 --data-dir ./devnet\n\nWrites DIR/dev.json (gateway addresses, users and passwords); Ctrl-C stops it."
    )]
    Dev(DevArgs),

    /// Signed, sealed notifications between users: send, list, watch.
    #[command(subcommand)]
    Notify(NotifyCommand),

    /// The outbound queue of mail for other domains: list, retry, delete.
    #[command(subcommand)]
    Queue(QueueCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// Every queued message with its recipients' state, oldest first.
    #[command(after_help = "Examples:
  epost queue list --json
  epost queue list --wait-empty --timeout 60   (answers once everything has left)")]
    List {
        /// Answer once the queue is empty (or at --timeout, with what is left).
        #[arg(long)]
        wait_empty: bool,
        /// Seconds to wait for --wait-empty (at most 300).
        #[arg(long, value_name = "SECS", default_value_t = 30, requires = "wait_empty")]
        timeout: u64,
    },
    /// Try one message (or every one) again now, whatever its schedule.
    #[command(after_help = "Examples:
  epost queue retry 018c1a2b3c4d000001
  epost queue retry --all")]
    Retry {
        /// The message's queue id, as `epost queue list` shows it.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Take a message out of the queue. No bounce is sent: tell the sender if needed.
    #[command(after_help = "Example:
  epost queue delete 018c1a2b3c4d000001")]
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum NotifyCommand {
    /// Send a notification from a user hosted here to any certified user.
    #[command(
        after_help = "Example:\n  epost notify send --from alice@example.org --to bob@example.net 'lunch?'"
    )]
    Send {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// A short summary (at most 256 bytes).
        text: String,
        /// An object the notification points to (`epost:<id>#<key>`).
        #[arg(long)]
        capability: Option<String>,
    },
    /// List the notifications a user hosted here has received, oldest first.
    List {
        #[arg(long)]
        user: String,
    },
    /// Print each notification the user receives from now on, one JSON object per line.
    Watch {
        #[arg(long)]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum FolderCommand {
    /// List the user's folders with their message counts.
    #[command(after_help = "Example:\n  epost folder list --user alice@example.org --json")]
    List {
        #[arg(long)]
        user: String,
    },
    /// Make a new, empty folder (subscribed, so IMAP clients show it).
    #[command(
        after_help = "Example:\n  epost folder create --user alice@example.org Lists/rust\nA hierarchy is written with `/`, as IMAP clients see it."
    )]
    Create {
        #[arg(long)]
        user: String,
        name: String,
    },
    /// Give a folder a new name (its messages keep their order; UIDs start afresh).
    #[command(
        after_help = "Example:\n  epost folder rename --user alice@example.org Old Archive/2025\nRenaming INBOX moves its messages to the new folder and leaves INBOX empty."
    )]
    Rename {
        #[arg(long)]
        user: String,
        from: String,
        to: String,
    },
    /// Delete a folder and the messages in it (INBOX cannot be deleted).
    #[command(after_help = "Example:\n  epost folder delete --user alice@example.org Junk/old")]
    Delete {
        #[arg(long)]
        user: String,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum LogCommand {
    /// Append standard input as one entry; prints the entry's sequence number (last line).
    #[command(
        after_help = "Example:\n  echo 'hello' | epost log append --user alice@example.org notes"
    )]
    Append {
        /// The log's owner (hosted on this node).
        #[arg(long)]
        user: String,
        /// The log's name.
        name: String,
    },
    /// Print the log's entries in order (text entries as text).
    #[command(after_help = "Example:\n  epost log show --user alice@example.org notes --json")]
    Show {
        #[arg(long)]
        user: String,
        name: String,
    },
    /// Show the newest signed head of anyone's log (verified against their certificate).
    #[command(after_help = "Example:\n  epost log head alice@example.org notes --json")]
    Head { address: String, name: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RealmCommand {
    /// Make a realm authority key for DOMAIN on this node; prints the realm's public key (last line).
    #[command(after_help = "Example:\n  epost realm init example.org")]
    Init {
        /// The mail domain, e.g. example.org.
        domain: String,
    },
    /// Trust another realm's key to certify its users (federation).
    #[command(
        after_help = "Example:\n  epost realm trust 3xq...  --domain example.net\nWithout --domain the key is trusted for any domain, like a CA bundle entry."
    )]
    Trust {
        /// The realm's public key, as `epost realm init` printed it.
        key: String,
        /// Only trust the key for this domain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// List the realm keys held here and the realms trusted.
    List,
    /// Make DOMAIN's DKIM keys in this data directory if missing, print the DNS TXT records to publish.
    #[command(
        after_help = "Example:\n  epost realm dkim example.org\nRun again, it prints the same records. The keys are DIR/dkim/DOMAIN/*.pem (mode 0600):\ncopy that directory to the realm's other nodes; nodes read their keys at start."
    )]
    Dkim {
        /// The mail domain, e.g. example.org.
        domain: String,
    },
    /// Name the nodes that may take DOMAIN's mail from the internet for users hosted anywhere (the realm's MX).
    #[command(
        subcommand,
        after_help = "Examples:\n  epost realm mx add example.org 12D3KooW...   (on the node holding the realm key)\n  epost realm mx show example.org --json\nA node the record does not name answers 451 4.3.5 for users it does not host.\nPublish DNS MX records for the same nodes' gateways."
    )]
    Mx(MxCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum MxCommand {
    /// Name a node (its peer id, as `epost status` prints it; default: this node).
    Add { domain: String, peer: Option<String> },
    /// Take a node out (default: this node).
    Remove { domain: String, peer: Option<String> },
    /// Show the realm's current MX record, as the overlay holds it.
    Show { domain: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Make a user's keys, certify them with this node's realm key, host them here.
    #[command(
        after_help = "Example:\n  echo 'correct horse' | epost user add alice@example.org --password-stdin"
    )]
    Add {
        /// The user's mail address.
        address: String,
        /// Read the gateway (IMAP/SMTP) password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Write the user's key bundle to standard output (to move them with `user import`).
    #[command(
        after_help = "Example:\n  epost user export alice@example.org > alice.user\nThe bundle holds the user's secret keys: keep it private, or use --passphrase-stdin."
    )]
    Export {
        address: String,
        /// Protect the bundle with a passphrase read from standard input.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Host a user from a bundle made by `user export` on another node.
    #[command(after_help = "Example:\n  epost user import alice.user")]
    Import {
        /// The bundle file, or `-` for standard input.
        file: PathBuf,
        /// Read the bundle's passphrase from standard input.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Stop hosting a user here (after `user import` on their new node).
    #[command(
        after_help = "Deletes the user's keys from this node; their certificate, logs and mail stay in the overlay.\nExport first if this node holds the only copy of the keys."
    )]
    Remove { address: String },
    /// Set a hosted user's gateway password (read from standard input).
    Passwd { address: String },
    /// List the users hosted here.
    List,
}

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Run the node in the foreground until SIGINT or SIGTERM.
    #[command(
        after_help = "Writes DIR/node.json (peer id, listen addresses, API URL) once listening."
    )]
    Run(NodeRunArgs),
}

/// Mail as a hosted user, through the running node.
#[derive(Debug, Subcommand)]
pub(crate) enum MailCommand {
    /// Send mail (the body is read from standard input).
    #[command(
        after_help = "Example:\n  echo 'See attached.' | epost send --from alice@example.test --to bob@example.test \\\n      --subject 'Figures' --attach figures.pdf"
    )]
    Send {
        /// The sender, hosted on this node.
        #[arg(long)]
        from: String,
        /// A recipient (repeatable, or comma-separated).
        #[arg(long, required = true)]
        to: Vec<String>,
        #[arg(long, default_value = "")]
        subject: String,
        /// A file to attach (repeatable).
        #[arg(long, value_name = "FILE")]
        attach: Vec<PathBuf>,
    },
    /// List the messages of a folder (INBOX unless --folder).
    #[command(
        after_help = "Example (wait until mail has arrived):\n  epost inbox --user bob@example.org --wait-messages 2 --timeout 30"
    )]
    Inbox {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "INBOX")]
        folder: String,
        /// Answer once the folder holds this many messages (or at --timeout).
        #[arg(long, value_name = "N")]
        wait_messages: Option<usize>,
        /// Seconds to wait for --wait-messages (at most 300).
        #[arg(long, value_name = "SECS", default_value_t = 30, requires = "wait_messages")]
        timeout: u64,
    },
    /// Print one message exactly as stored.
    Read {
        #[arg(long)]
        user: String,
        /// The message's UID (as `epost inbox` lists it).
        uid: u32,
        #[arg(long, default_value = "INBOX")]
        folder: String,
    },
    /// Import messages from an mbox file or a maildir into a folder.
    #[command(
        after_help = "Example:\n  epost import --user alice@example.test mbox ~/old-mail.mbox\n  epost import --user alice@example.test --folder Archive/2019 --create mbox 2019.mbox"
    )]
    Import {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "INBOX")]
        folder: String,
        /// Make --folder first if it does not exist (without it, a missing folder is an error).
        #[arg(long)]
        create: bool,
        format: ImportFormat,
        path: PathBuf,
    },
    /// Export a folder to an mbox file.
    #[command(
        after_help = "Example:\n  epost export --user alice@example.test --folder INBOX mbox inbox.mbox"
    )]
    Export {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "INBOX")]
        folder: String,
        format: ExportFormat,
        path: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ImportFormat {
    Mbox,
    Maildir,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    Mbox,
}

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// How many nodes to run.
    #[arg(long, default_value_t = 5)]
    pub(crate) nodes: usize,
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
