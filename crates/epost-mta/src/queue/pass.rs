//! One delivery pass: every due message's pending recipients, grouped by
//! domain, handed to the [`Transport`] in parallel (at most
//! [`QueueConfig::per_domain`] at once per domain and
//! [`QueueConfig::total`] in all); each outcome recorded durably as soon
//! as the transport returns it; then the schedule and the DSNs.
//!
//! Exactly-once, as far as SMTP allows: a recipient recorded delivered is
//! never sent to again, and the record is fsynced right after the remote
//! `250`. A crash between that `250` and the fsync resends to the
//! recipients not yet recorded: that window (RFC 1047) no SMTP client can
//! close.
//!
//! [`QueueConfig::per_domain`]: super::QueueConfig::per_domain
//! [`QueueConfig::total`]: super::QueueConfig::total

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use epost_types::time::Timestamp;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::notices;
use super::record::{QueueId, RcptState, Record};
use super::{Persist, Queue, Slot, domain_of};
use crate::dsn::{self, Action, RcptReport};
use crate::outbound::{Message, Outcome, Recipient, Ret, Status, Transport};

/// Where DSNs go: into the sender's mailbox (the node files them through
/// its local delivery).
pub trait FileDsn: Send + Sync {
    /// Files the DSN `dsn` for the sender `to`.
    fn file(&self, to: &str, dsn: Vec<u8>)
    -> impl Future<Output = Result<(), DsnFileError>> + Send;
}

/// Why a DSN was not filed.
#[derive(Debug, thiserror::Error)]
pub enum DsnFileError {
    /// The sender (this address) is no user who can get mail here, a
    /// decision with no error beneath it: the DSN is dropped with a
    /// warning, never retried.
    #[error("the sender {0} cannot receive reports here")]
    NoSender(String),
    /// The delivery refused it for good: dropped with a warning too.
    #[error("the report to {to} was refused")]
    Refused {
        to: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Worth another try at the next pass.
    #[error("cannot file the report now")]
    Temporary(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What went wrong on our side in a pass; the pass goes on after each.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// An attempt's outcomes are not on disk (they are in memory, and
    /// written with the next change of the message).
    #[error("cannot record the delivery outcomes of {id}")]
    Record {
        id: QueueId,
        #[source]
        source: Persist,
    },
    /// A DSN is still due; it is tried again at the next pass.
    #[error("cannot file a delivery status notification for {id}")]
    File {
        id: QueueId,
        #[source]
        source: DsnFileError,
    },
    #[error("cannot update {id} in the outbound queue after a pass")]
    Settle {
        id: QueueId,
        #[source]
        source: Persist,
    },
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct PassReport {
    /// Messages that were due.
    pub messages: usize,
    pub delivered: usize,
    pub deferred: usize,
    pub failed: usize,
    /// DSNs filed.
    pub bounces: usize,
    /// What went wrong on our side (a state not written, a DSN not filed).
    pub errors: Vec<PassError>,
}

/// Reason given for a recipient the transport returned no outcome for.
const NO_OUTCOME: &str = "the transport returned no outcome for this recipient";

/// A pending recipient's reason, as listings and DSNs show it.
fn describe(host: Option<&str>, reply: Option<&crate::outbound::Reply>, reason: &str) -> String {
    match (host, reply) {
        (Some(host), Some(reply)) => format!("{host} said {} {}", reply.code, reply.text),
        (None, Some(reply)) => format!("{} {}", reply.code, reply.text),
        (Some(host), None) => format!("{host}: {reason}"),
        (None, None) => reason.to_owned(),
    }
}

/// Applies one attempt's outcomes to the recipients at `indices`; returns
/// (delivered, deferred, failed).
fn apply(record: &mut Record, indices: &[usize], outcomes: Vec<Outcome>) -> (usize, usize, usize) {
    let mut counts = (0, 0, 0);
    let mut outcomes = outcomes.into_iter();
    for &i in indices {
        let outcome = outcomes.next().unwrap_or(Outcome::Deferred {
            host: None,
            reply: None,
            reason: NO_OUTCOME.into(),
        });
        let Some(rcpt) = record.recipients.get_mut(i) else { continue };
        if !rcpt.is_pending() {
            continue;
        }
        rcpt.attempts += 1;
        match outcome {
            Outcome::Delivered { host, reply } => {
                rcpt.state = RcptState::Delivered { host, reply };
                rcpt.last_error = None;
                counts.0 += 1;
            }
            Outcome::Deferred { host, reply, reason } => {
                rcpt.last_error = Some(describe(host.as_deref(), reply.as_ref(), &reason));
                counts.1 += 1;
            }
            Outcome::Failed { host, reply, status, reason } => {
                rcpt.last_error = Some(describe(host.as_deref(), reply.as_ref(), &reason));
                rcpt.state = RcptState::Failed { host, reply, status, reason };
                counts.2 += 1;
            }
        }
    }
    counts
}

/// The pending recipients of a message, by domain (indices into its list).
fn by_domain(record: &Record) -> BTreeMap<String, Vec<usize>> {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, rcpt) in record.recipients.iter().enumerate() {
        if rcpt.is_pending() {
            groups.entry(domain_of(&rcpt.recipient.address)).or_default().push(i);
        }
    }
    groups
}

struct Limits {
    total: Semaphore,
    per_domain: usize,
    domains: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Limits {
    fn domain(&self, domain: &str) -> Arc<Semaphore> {
        let mut domains = self.domains.lock().unwrap_or_else(|p| p.into_inner());
        domains
            .entry(domain.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_domain.max(1))))
            .clone()
    }
}

impl Queue {
    /// Tries every due message once; returns what happened.
    pub async fn pass<T: Transport, F: FileDsn>(&self, transport: &T, filer: &F) -> PassReport {
        let now = self.now();
        let mut due = Vec::new();
        for slot in self.slots() {
            let held = slot.lock().await;
            if !held.removed && held.record.next_attempt <= now {
                drop(held);
                due.push(slot);
            }
        }
        let limits = Limits {
            total: Semaphore::new(self.config().total.max(1)),
            per_domain: self.config().per_domain,
            domains: Mutex::new(HashMap::new()),
        };
        let report = Mutex::new(PassReport { messages: due.len(), ..PassReport::default() });
        futures::future::join_all(
            due.iter().map(|slot| self.one_message(slot, transport, filer, &limits, &report)),
        )
        .await;
        report.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    async fn one_message<T: Transport, F: FileDsn>(
        &self,
        slot: &Arc<tokio::sync::Mutex<Slot>>,
        transport: &T,
        filer: &F,
        limits: &Limits,
        report: &Mutex<PassReport>,
    ) {
        let (snapshot, groups) = {
            let held = slot.lock().await;
            if held.removed {
                return;
            }
            (held.record.clone(), by_domain(&held.record))
        };
        let tried = !groups.is_empty();
        futures::future::join_all(groups.into_iter().map(|(domain, indices)| {
            self.one_domain(slot, &snapshot, domain, indices, transport, limits, report)
        }))
        .await;
        self.settle(slot, tried, filer, report).await;
    }

    #[allow(clippy::too_many_arguments)]
    async fn one_domain<T: Transport>(
        &self,
        slot: &Arc<tokio::sync::Mutex<Slot>>,
        snapshot: &Record,
        domain: String,
        indices: Vec<usize>,
        transport: &T,
        limits: &Limits,
        report: &Mutex<PassReport>,
    ) {
        let per_domain = limits.domain(&domain);
        // The domain's permit first, so a message waiting for a busy
        // domain does not hold one of the total's.
        let Ok(_domain_permit) = per_domain.acquire().await else { return };
        let Ok(_permit) = limits.total.acquire().await else { return };
        let recipients: Vec<Recipient> =
            indices.iter().map(|&i| snapshot.recipients[i].recipient.clone()).collect();
        let outcomes = match self.read(snapshot).await {
            Ok(body) => {
                let message = Message {
                    reverse_path: snapshot.reverse_path.as_deref(),
                    recipients: &recipients,
                    body: &body,
                    envid: snapshot.envid.as_deref(),
                    ret: snapshot.ret,
                    smtputf8: snapshot.smtputf8,
                    eight_bit: snapshot.eight_bit,
                };
                transport.send(&domain, message).await
            }
            Err(e) => {
                warn!(id = %snapshot.id, error = %e, "cannot read a queued message");
                let reason = format!("cannot read the queued message: {e}");
                recipients
                    .iter()
                    .map(|_| Outcome::Deferred { host: None, reply: None, reason: reason.clone() })
                    .collect()
            }
        };
        let mut held = slot.lock().await;
        if held.removed {
            return;
        }
        let (delivered, deferred, failed) = apply(&mut held.record, &indices, outcomes);
        debug!(id = %snapshot.id, %domain, delivered, deferred, failed, "delivery attempt");
        let written = self.persist(&held.record).await;
        drop(held);
        let counters = self.counters();
        counters.delivered.fetch_add(delivered as u64, Ordering::Relaxed);
        counters.deferred.fetch_add(deferred as u64, Ordering::Relaxed);
        counters.failed.fetch_add(failed as u64, Ordering::Relaxed);
        let mut report = report.lock().unwrap_or_else(|p| p.into_inner());
        report.delivered += delivered;
        report.deferred += deferred;
        report.failed += failed;
        if let Err(source) = written {
            warn!(id = %snapshot.id, error = %source, "cannot record delivery outcomes");
            report.errors.push(PassError::Record { id: snapshot.id.clone(), source });
        }
    }

    /// After the attempts: expiry, the next attempt, the DSNs due, and
    /// the message's removal once nothing is left to do.
    async fn settle<F: FileDsn>(
        &self,
        slot: &Arc<tokio::sync::Mutex<Slot>>,
        tried: bool,
        filer: &F,
        report: &Mutex<PassReport>,
    ) {
        let now = self.now();
        let schedule = self.config().schedule;
        let mut held = slot.lock().await;
        if held.removed {
            return;
        }
        let record = &mut held.record;
        if tried {
            record.attempts += 1;
        }
        let mut warn_delay = false;
        if record.has_pending() {
            let plan = schedule.plan(record.queued_at, now, record.attempts, record.delay_warned);
            warn_delay = plan.warn_delay;
            record.next_attempt = plan.next_attempt;
            if plan.expire {
                let days = schedule.lifetime.as_secs() / (24 * 3600);
                let mut expired = 0;
                for rcpt in record.recipients.iter_mut().filter(|r| r.is_pending()) {
                    let last =
                        rcpt.last_error.clone().unwrap_or_else(|| "no attempt succeeded".into());
                    rcpt.state = RcptState::Failed {
                        host: None,
                        reply: None,
                        status: Status { class: 4, subject: 4, detail: 7 },
                        reason: format!("gave up after {days} days in the queue; last: {last}"),
                    };
                    expired += 1;
                }
                self.counters().failed.fetch_add(expired, Ordering::Relaxed);
                report.lock().unwrap_or_else(|p| p.into_inner()).failed += expired as usize;
            }
        }
        let due = notices::due(record, warn_delay);
        for &i in &due.quiet {
            record.recipients[i].reported = true;
        }
        if !due.report.is_empty() {
            let filed = self.file_dsn(record, &due.report, now, filer).await;
            match filed {
                Ok(()) => {
                    for &(i, action) in &due.report {
                        if action != Action::Delayed {
                            record.recipients[i].reported = true;
                        }
                    }
                    if warn_delay {
                        record.delay_warned = true;
                    }
                    self.counters().bounces.fetch_add(1, Ordering::Relaxed);
                    report.lock().unwrap_or_else(|p| p.into_inner()).bounces += 1;
                }
                Err(source) => {
                    warn!(id = %record.id, error = %source, "cannot file a delivery status notification; tried again later");
                    report
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .errors
                        .push(PassError::File { id: record.id.clone(), source });
                    if !record.has_pending() {
                        record.next_attempt = now.checked_add(schedule.min_backoff).unwrap_or(now);
                    }
                }
            }
        } else if warn_delay {
            // Nobody asked to hear of the delay: it is not considered again.
            record.delay_warned = true;
        }
        let result = if record.is_done() {
            self.remove(&mut held).await
        } else {
            self.persist(&held.record).await
        };
        if let Err(source) = result {
            warn!(error = %source, "cannot update the outbound queue after a pass");
            let id = held.record.id.clone();
            report
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .errors
                .push(PassError::Settle { id, source });
        }
    }

    /// Builds and files one DSN for the recipients in `due`. A sender that
    /// cannot receive it here counts as filed (with a warning).
    async fn file_dsn<F: FileDsn>(
        &self,
        record: &Record,
        due: &[(usize, Action)],
        now: Timestamp,
        filer: &F,
    ) -> Result<(), DsnFileError> {
        let Some(sender) = record.reverse_path.as_deref() else { return Ok(()) };
        let until = record.queued_at.checked_add(self.config().schedule.lifetime);
        let recipients: Vec<RcptReport> = due
            .iter()
            .map(|&(i, action)| {
                let rcpt = &record.recipients[i];
                let base = RcptReport {
                    final_recipient: rcpt.recipient.address.clone(),
                    original_recipient: rcpt.recipient.orcpt.clone(),
                    action,
                    status: dsn::default_status(action),
                    remote_mta: None,
                    diagnostic: None,
                    reason: rcpt.last_error.clone(),
                    will_retry_until: None,
                };
                match &rcpt.state {
                    RcptState::Failed { host, reply, status, reason } => RcptReport {
                        status: *status,
                        remote_mta: host.clone(),
                        diagnostic: reply.clone(),
                        reason: Some(reason.clone()),
                        ..base
                    },
                    RcptState::Delivered { host, reply } => RcptReport {
                        remote_mta: Some(host.clone()),
                        diagnostic: Some(reply.clone()),
                        reason: None,
                        ..base
                    },
                    RcptState::Pending => RcptReport { will_retry_until: until, ..base },
                }
            })
            .collect();
        // A message that cannot be read any more is reported without it.
        let original = self.read(record).await.unwrap_or_default();
        let domain = domain_of(sender);
        let dsn = dsn::build(&dsn::Report {
            reporting_mta: &self.config().hostname,
            to: sender,
            domain: &domain,
            id: &record.id.0,
            envid: record.envid.as_deref(),
            arrival: record.queued_at,
            date: now,
            recipients: &recipients,
            ret: record.ret.unwrap_or(Ret::Headers),
            original: &original,
        });
        match filer.file(sender, dsn).await {
            Err(e @ (DsnFileError::NoSender(_) | DsnFileError::Refused { .. })) => {
                warn!(id = %record.id, error = %e, "the sender cannot receive its DSN; dropped");
                Ok(())
            }
            other => other,
        }
    }
}
