//! Hostile-input entry points for the fuzz targets (`fuzz/`, feature
//! `fuzzing`) and this crate's property tests: the SMTP, IMAP and POP3
//! sessions fed arbitrary client bytes, read by read, against the
//! in-memory backend, with everything the server says collected.
//!
//! SMTP and POP3 sessions are fed directly (they are sans-IO); IMAP runs
//! its real connection loop over an in-memory pipe, since framing and
//! literals live there. Each run has its own single-threaded runtime
//! with a paused clock, so throttle delays and timeouts cost no wall
//! time, and a run can never hang: with every task waiting, the clock
//! jumps to the next timeout, which ends the session.
//!
//! Not part of the gateway's API: nothing outside tests and fuzzing may
//! depend on it.

#![allow(
    clippy::expect_used,
    reason = "a fixed set-up that fails is a broken harness, and a panic is how a fuzzer reports"
)]

use std::net::IpAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::context::{Limits, Shared};
use crate::line::{LineSession, Step};
use crate::memory::MemoryBackend;
use crate::smtp::Mode;
use crate::testing::Setup;

/// Users of the fuzzed gateway: `alice@example.test` with password
/// `alice-pw` (her INBOX holds [`PRELOADED`]) and `bob@example.test` with
/// `bob-pw`; realm `example.test`.
pub use crate::testing::USERS;

/// Messages in alice's INBOX at the start: a plain one and a multipart
/// one, so FETCH, SEARCH, TOP and RETR have something to chew on.
pub const PRELOADED: [&[u8]; 2] = [
    b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: hello\r\n\
Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nHi Alice,\r\n.dot line\r\nBye\r\n",
    b"From: carol@elsewhere.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nK\xc3\xb6rper\r\n\
--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
AAECAwQ=\r\n--b1--\r\n",
];

/// Limits small enough that fuzzed input reaches the edges (long lines,
/// large literals and messages, error counts) within a few kilobytes.
pub fn limits() -> Limits {
    Limits {
        max_message: 4096,
        max_line: 512,
        max_imap_line: 512,
        max_recipients: 5,
        max_errors: 50,
        ..Limits::default()
    }
}

/// What the server did with the client's bytes.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// Everything written to the client, greeting included.
    pub output: Vec<u8>,
    /// The server ended the session (or asked to start TLS) before the
    /// input ran out.
    pub closed: bool,
}

/// How the client connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// 127.0.0.1: may log in without TLS.
    Loopback,
    /// 192.0.2.1: must start TLS first (which these runs cannot).
    Remote,
}

impl Peer {
    fn ip(self) -> IpAddr {
        match self {
            Peer::Loopback => IpAddr::from([127, 0, 0, 1]),
            Peer::Remote => IpAddr::from([192, 0, 2, 1]),
        }
    }
}

/// The most a session may write for `input`: a few kilobytes per command
/// line, plus every stored byte once per line (a FETCH or RETR of
/// everything). Linear in the lines, so a run's output is bounded.
pub fn output_bound(input: &[u8]) -> usize {
    let lines = input.iter().filter(|&&b| b == b'\n').count() + 2;
    let stored: usize = PRELOADED.iter().map(|m| m.len()).sum::<usize>() + input.len();
    lines.saturating_mul(4096 + 2 * stored)
}

/// Feeds `reads` to an SMTP session (MX, or submission when `submission`).
pub fn smtp(submission: bool, peer: Peer, reads: &[Vec<u8>]) -> Transcript {
    let mode = if submission { Mode::Submission } else { Mode::Inbound };
    run(|shared| feed(crate::smtp::Session::new(shared, mode, peer.ip()), reads))
}

/// Feeds `reads` to a POP3 session.
pub fn pop3(peer: Peer, reads: &[Vec<u8>]) -> Transcript {
    run(|shared| feed(crate::pop3::Session::new(shared, peer.ip()), reads))
}

/// Feeds `reads` to a line session, read by read, until it stops reading.
async fn feed(mut session: impl LineSession, reads: &[Vec<u8>]) -> Transcript {
    let mut transcript = Transcript { output: session.take_output(), closed: false };
    for read in reads {
        let step = session.feed(read).await;
        transcript.output.extend(session.take_output());
        if step != Step::Continue {
            transcript.closed = true;
            break;
        }
    }
    transcript
}

/// Sends `reads` to an IMAP connection, then closes the client's side;
/// collects at most `max_output` bytes of what the server writes (more is
/// reported as [`Transcript::output`] cut at `max_output + 1` bytes).
pub fn imap(peer: Peer, reads: &[Vec<u8>], max_output: usize) -> Transcript {
    run(|shared| async move {
        let (client, mut server) = tokio::io::duplex(16 * 1024);
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let serve = async move {
            crate::imap::serve_stream(&mut server, peer.ip(), shared).await;
        };
        let send = async move {
            for read in reads {
                if to_server.write_all(read).await.is_err() {
                    return;
                }
            }
            let _ = to_server.shutdown().await;
        };
        let receive = async move {
            let mut output = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                match from_server.read(&mut chunk).await {
                    Ok(0) | Err(_) => return output,
                    Ok(n) => output.extend_from_slice(&chunk[..n]),
                }
                if output.len() > max_output {
                    // Dropping our end makes the server's writes fail.
                    output.truncate(max_output + 1);
                    return output;
                }
            }
        };
        let ((), (), output) = tokio::join!(serve, send, receive);
        Transcript { output, closed: true }
    })
}

/// Runs `body` against a fresh gateway state on a paused-clock runtime.
fn run<F, Fut>(body: F) -> Transcript
where
    F: FnOnce(Arc<Shared<MemoryBackend>>) -> Fut,
    Fut: Future<Output = Transcript>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds");
    runtime.block_on(async move {
        let gateway = Setup { limits: limits(), ..Setup::default() }.start();
        for message in PRELOADED {
            gateway.deliver(USERS[0].0, message).await;
        }
        // Nobody stops this gateway; it lives as long as the run.
        let transcript = body(gateway.shared.clone()).await;
        drop(gateway);
        transcript
    })
}
