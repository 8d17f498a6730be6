//! The load both systems get and how delivery is seen: SMTP sessions, as
//! a mail exchanger is reached (no AUTH), each sending its next message as
//! soon as the last got its reply; one IMAP session per recipient polling
//! with NOOP (Dovecot holds IDLE notifications back by half a second to
//! batch them, so IDLE would measure that choice rather than delivery);
//! and afterwards a FETCH of the subjects tells which message each
//! sequence number is.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::corpus::Message;
use crate::mail_clients::{Imap, Smtp};

/// Between two NOOPs of one watcher.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(10);
/// A watcher that sees nothing new for this long gives up on the rest.
const SILENCE: Duration = Duration::from_secs(60);

/// One message's SMTP outcome.
pub(crate) struct Sent {
    pub(crate) index: usize,
    /// Just before the final `.`.
    pub(crate) dot: Instant,
    /// The reply to the final `.`.
    pub(crate) code: u16,
    pub(crate) replied: Instant,
}

/// Sends `messages` over `connections` sessions (message i on session
/// i mod connections); returns every outcome.
pub(crate) async fn submit(
    smtp: SocketAddr,
    messages: Arc<Vec<Message>>,
    connections: usize,
) -> Result<Vec<Sent>> {
    let mut tasks = Vec::new();
    for c in 0..connections {
        let messages = messages.clone();
        tasks.push(tokio::spawn(async move {
            let mut session = Smtp::connect(smtp).await?;
            let mut out = Vec::new();
            for index in (c..messages.len()).step_by(connections) {
                let m = &messages[index];
                let to: Vec<&str> = m.to.iter().map(String::as_str).collect();
                let s = session.send(&m.from, &to, &m.bytes).await?;
                out.push(Sent { index, dot: s.dot, code: s.code, replied: s.dot + s.took });
            }
            session.quit().await;
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

/// A recipient's IMAP session, polling.
pub(crate) struct Watcher {
    user: String,
    imap: Imap,
    /// Messages in INBOX when the watch began.
    start: u32,
}

/// What a watcher saw: `(count, when)` each time the count grew, and the
/// subject of each new sequence number.
pub(crate) struct Seen {
    pub(crate) user: String,
    pub(crate) growth: Vec<(u32, Instant)>,
    pub(crate) subjects: HashMap<u32, String>,
    /// NOOPs sent.
    pub(crate) polls: u64,
}

impl Watcher {
    pub(crate) async fn login(imap: SocketAddr, user: &str, password: &str) -> Result<Self> {
        let session = Imap::login(imap, user, password).await?;
        let start = session.exists;
        Ok(Self { user: user.to_owned(), imap: session, start })
    }

    /// Polls until `expect` new messages are in (or nothing new came for a
    /// while), then reads their subjects.
    pub(crate) async fn watch(mut self, expect: u32) -> Result<Seen> {
        let mut growth = Vec::new();
        let mut count = self.start;
        let mut polls = 0;
        let mut last_news = Instant::now();
        while count < self.start + expect && last_news.elapsed() < SILENCE {
            let asked = Instant::now();
            polls += 1;
            if let Some(n) = self.imap.poll().await?
                && n > count
            {
                count = n;
                last_news = Instant::now();
                growth.push((n, last_news));
            }
            tokio::time::sleep_until((asked + POLL_EVERY).into()).await;
        }
        let subjects = if count > self.start {
            self.imap.subjects(self.start + 1).await?
        } else {
            HashMap::new()
        };
        self.imap.logout().await;
        Ok(Seen { user: self.user, growth, subjects, polls })
    }
}

/// When each (message index, recipient) became visible, from what the
/// watchers saw: sequence number s is visible at the first growth to s or
/// more.
pub(crate) fn visible_at(
    seen: &[Seen],
    index_of: &HashMap<&str, usize>,
) -> Result<HashMap<(usize, String), Instant>> {
    let mut out = HashMap::new();
    for s in seen {
        for (seq, subject) in &s.subjects {
            let Some(&index) = index_of.get(subject.as_str()) else { continue };
            let at = s
                .growth
                .iter()
                .find(|(n, _)| n >= seq)
                .map(|(_, at)| *at)
                .context("a message seen without its count growing")?;
            let fresh = out.insert((index, s.user.clone()), at).is_none();
            ensure!(fresh, "{subject} is in {}'s INBOX twice", s.user);
        }
    }
    Ok(out)
}

/// Every user's whole INBOX fetched by one session per user at once;
/// returns messages, bytes and the wall time.
pub(crate) async fn fetch_everything(
    imap: SocketAddr,
    users: &[String],
    password: &str,
) -> Result<(u32, u64, Duration)> {
    let mut sessions = Vec::new();
    for user in users {
        sessions.push(Imap::login(imap, user, password).await?);
    }
    let start = Instant::now();
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let got = s.fetch_all().await;
                s.logout().await;
                got
            })
        })
        .collect();
    let (mut messages, mut bytes) = (0, 0);
    for task in tasks {
        let (m, b) = task.await??;
        messages += m;
        bytes += b;
    }
    Ok((messages, bytes, start.elapsed()))
}
