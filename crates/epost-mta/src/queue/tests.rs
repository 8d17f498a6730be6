//! The queue with a fake transport, a fake signer and a clock of its own:
//! the crash shapes of the spool, the schedule as it plays out, the DSNs,
//! exactly-once across a restart, and the concurrency limits.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use epost_types::time::Timestamp;

use super::*;
use crate::outbound::{Message, Notify, Outcome, Reply, Sign, SignError, Status, Transport};

const T0: u64 = 1_700_000_000_000;
const RAW: &[u8] = b"From: alice@here.test\r\nSubject: hi\r\n\r\nhello\r\n";

/// Adds a fake signature; has no key for `nokey.test`.
struct FakeSigner;

impl Sign for FakeSigner {
    fn sign(&self, domain: &str, _message: &[u8]) -> Result<Vec<u8>, SignError> {
        if domain == "nokey.test" {
            return Err(SignError::NoKey { domain: domain.into() });
        }
        Ok(format!("DKIM-Signature: fake; d={domain}\r\n").into_bytes())
    }
}

/// One send: the domain, the recipients, the bytes.
type Call = (String, Vec<String>, Vec<u8>);

/// Outcomes scripted per recipient (deferred when the script is empty);
/// every call is recorded.
#[derive(Default)]
struct FakeTransport {
    script: Mutex<HashMap<String, VecDeque<Outcome>>>,
    calls: Mutex<Vec<Call>>,
}

impl FakeTransport {
    fn will(&self, rcpt: &str, outcome: Outcome) {
        self.script.lock().unwrap().entry(rcpt.into()).or_default().push_back(outcome);
    }

    fn sent_to(&self) -> Vec<String> {
        self.calls.lock().unwrap().iter().flat_map(|(_, r, _)| r.clone()).collect()
    }
}

impl Transport for FakeTransport {
    async fn send(&self, domain: &str, message: Message<'_>) -> Vec<Outcome> {
        let addresses: Vec<String> = message.recipients.iter().map(|r| r.address.clone()).collect();
        self.calls.lock().unwrap().push((domain.into(), addresses.clone(), message.body.to_vec()));
        let mut script = self.script.lock().unwrap();
        addresses
            .iter()
            .map(|a| {
                script.get_mut(a).and_then(VecDeque::pop_front).unwrap_or(Outcome::Deferred {
                    host: Some("mx.far.test".into()),
                    reply: Some(reply(451, "try later")),
                    reason: "deferred".into(),
                })
            })
            .collect()
    }
}

/// Collects DSNs; fails while `failing`.
#[derive(Default)]
struct FakeFiler {
    filed: Mutex<Vec<(String, String)>>,
    failing: AtomicBool,
}

impl FakeFiler {
    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut self.filed.lock().unwrap())
    }
}

impl FileDsn for FakeFiler {
    async fn file(&self, to: &str, dsn: Vec<u8>) -> Result<(), DsnFileError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(DsnFileError::Temporary("the mailbox is busy".into()));
        }
        self.filed.lock().unwrap().push((to.into(), String::from_utf8(dsn).unwrap()));
        Ok(())
    }
}

fn reply(code: u16, text: &str) -> Reply {
    let status = Status { class: (code / 100) as u8, subject: 0, detail: 0 };
    Reply { code, status: Some(status), text: text.into() }
}

fn delivered() -> Outcome {
    Outcome::Delivered { host: "mx.far.test".into(), reply: reply(250, "queued as X") }
}

fn failed() -> Outcome {
    Outcome::Failed {
        host: Some("mx.far.test".into()),
        reply: Some(reply(550, "no such user")),
        status: Status { class: 5, subject: 1, detail: 1 },
        reason: "refused".into(),
    }
}

struct Env {
    dir: tempfile::TempDir,
    clock: Arc<AtomicU64>,
    config: QueueConfig,
}

impl Env {
    fn new() -> Self {
        Self::with(QueueConfig { hostname: "node.here.test".into(), ..QueueConfig::default() })
    }

    fn with(config: QueueConfig) -> Self {
        Self { dir: tempfile::tempdir().unwrap(), clock: Arc::new(AtomicU64::new(T0)), config }
    }

    async fn open(&self) -> Queue {
        let clock = self.clock.clone();
        Queue::open_with_clock(
            self.dir.path(),
            self.config.clone(),
            Arc::new(FakeSigner),
            Arc::new(move || Timestamp::from_millis(clock.load(Ordering::Relaxed))),
        )
        .await
        .unwrap()
    }

    fn advance(&self, by: Duration) {
        self.clock.fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }
}

fn rcpt(address: &str) -> Recipient {
    Recipient { address: address.into(), notify: Notify::default(), orcpt: None }
}

fn submission(from: Option<&str>, to: &[&str]) -> Submission {
    Submission {
        reverse_path: from.map(str::to_owned),
        recipients: to.iter().map(|a| rcpt(a)).collect(),
        raw: RAW.to_vec(),
        envid: Some("env-1".into()),
        ret: None,
        signing_domain: "here.test".into(),
    }
}

fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test]
async fn an_enqueue_is_signed_once_stored_and_survives_a_reopen() {
    let env = Env::new();
    let queue = env.open().await;
    let id = queue.enqueue(submission(Some("alice@here.test"), &["bob@far.test"])).await.unwrap();
    assert_eq!(files(&env.path("messages")), 1);
    assert_eq!(files(&env.path("states")), 1);
    let stored = std::fs::read(env.path("messages").join(&id.0)).unwrap();
    assert!(stored.starts_with(b"DKIM-Signature: fake; d=here.test\r\nFrom: alice"));
    let listed = queue.list().await;
    drop(queue);
    let queue = env.open().await;
    assert_eq!(queue.list().await, listed);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].from, "alice@here.test");
    assert_eq!(listed[0].recipients[0].state, RcptState::Pending);
    assert_eq!(queue.figures().messages, 1);
    assert_eq!(queue.figures().bytes, stored.len() as u64);
    // Retries send the very bytes that were stored.
    let transport = FakeTransport::default();
    transport.will("bob@far.test", delivered());
    queue.pass(&transport, &FakeFiler::default()).await;
    assert_eq!(transport.calls.lock().unwrap()[0].2, stored);
}

#[tokio::test]
async fn no_key_no_recipients_and_a_full_queue_refuse() {
    let env = Env::with(QueueConfig { max_messages: 1, ..QueueConfig::default() });
    let queue = env.open().await;
    let mut s = submission(Some("x@nokey.test"), &["bob@far.test"]);
    s.signing_domain = "nokey.test".into();
    let e = queue.enqueue(s).await.unwrap_err();
    assert!(matches!(e, EnqueueError::Sign(SignError::NoKey { .. })), "{e:?}");
    assert!(
        e.to_string().contains("no DKIM key for nokey.test")
            || format!("{:?}", e).contains("nokey.test")
    );
    let e = queue.enqueue(submission(Some("a@here.test"), &[])).await.unwrap_err();
    assert!(matches!(e, EnqueueError::NoRecipients));
    queue.enqueue(submission(Some("a@here.test"), &["b@far.test"])).await.unwrap();
    let e = queue.enqueue(submission(Some("a@here.test"), &["b@far.test"])).await.unwrap_err();
    assert!(matches!(e, EnqueueError::Full { messages: 1, .. }), "{e:?}");
    // Nothing of the refused ones is on disk.
    assert_eq!(files(&env.path("messages")), 1);

    let env = Env::with(QueueConfig { max_bytes: 10, ..QueueConfig::default() });
    let e = env.open().await.enqueue(submission(Some("a@here.test"), &["b@far.test"])).await;
    assert!(matches!(e, Err(EnqueueError::Full { messages: 0, bytes: 0 })));
}

#[tokio::test]
async fn crash_shapes_are_cleaned_or_quarantined_at_open() {
    let env = Env::new();
    let queue = env.open().await;
    let good = queue.enqueue(submission(Some("a@here.test"), &["b@far.test"])).await.unwrap();
    let garbled = queue.enqueue(submission(Some("a@here.test"), &["c@far.test"])).await.unwrap();
    let no_message = queue.enqueue(submission(Some("a@here.test"), &["d@far.test"])).await.unwrap();
    let damaged = queue.enqueue(submission(Some("a@here.test"), &["e@far.test"])).await.unwrap();
    drop(queue);
    // An enqueue that died before its commit point: a message, no state.
    std::fs::write(env.path("messages").join("00ff"), b"half").unwrap();
    // A torn state.
    let state = env.path("states").join(format!("{garbled}.json"));
    let text = std::fs::read(&state).unwrap();
    std::fs::write(&state, &text[..text.len() / 2]).unwrap();
    std::fs::remove_file(env.path("messages").join(&no_message.0)).unwrap();
    std::fs::write(env.path("messages").join(&damaged.0), b"not what was queued").unwrap();
    std::fs::write(env.path("tmp").join("left-over"), b"x").unwrap();

    let queue = env.open().await;
    let ids: Vec<QueueId> = queue.list().await.into_iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![good.clone()]);
    assert_eq!(queue.figures().corrupt, 3);
    assert_eq!(queue.figures().messages, 1);
    assert!(!env.path("messages").join("00ff").exists());
    assert_eq!(files(&env.path("tmp")), 0);
    // States and the messages that were there are kept for a human.
    let corrupt: Vec<String> = std::fs::read_dir(env.path("corrupt"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for name in [
        format!("{garbled}.json"),
        garbled.0.clone(),
        format!("{no_message}.json"),
        damaged.0.clone(),
    ] {
        assert!(corrupt.contains(&name), "{name} not in {corrupt:?}");
    }
    // And a second open finds the same.
    drop(queue);
    let queue = env.open().await;
    assert_eq!(queue.list().await.len(), 1);
    assert_eq!(queue.figures().corrupt, 0);
}

#[tokio::test]
async fn deferred_then_delivered_on_the_schedule() {
    let env = Env::new();
    let queue = env.open().await;
    let (transport, filer) = (FakeTransport::default(), FakeFiler::default());
    queue.enqueue(submission(Some("alice@here.test"), &["bob@far.test"])).await.unwrap();
    let report = queue.pass(&transport, &filer).await;
    assert_eq!((report.messages, report.deferred, report.delivered), (1, 1, 0));
    let entry = &queue.list().await[0];
    assert_eq!(entry.attempts, 1);
    assert_eq!(entry.next_attempt, Timestamp::from_millis(T0 + 300_000));
    assert_eq!(entry.last_error.as_deref(), Some("mx.far.test said 451 try later"));
    // Not due yet: nothing is sent.
    env.advance(Duration::from_secs(299));
    assert_eq!(queue.pass(&transport, &filer).await.messages, 0);
    assert_eq!(transport.calls.lock().unwrap().len(), 1);
    env.advance(Duration::from_secs(1));
    transport.will(
        "bob@far.test",
        Outcome::Deferred { host: None, reply: None, reason: "timeout".into() },
    );
    queue.pass(&transport, &filer).await;
    assert_eq!(queue.list().await[0].next_attempt, Timestamp::from_millis(T0 + 300_000 + 600_000));
    env.advance(Duration::from_secs(600));
    transport.will("bob@far.test", delivered());
    let report = queue.pass(&transport, &filer).await;
    assert_eq!(report.delivered, 1);
    assert!(queue.list().await.is_empty());
    assert_eq!((files(&env.path("messages")), files(&env.path("states"))), (0, 0));
    assert!(filer.take().is_empty(), "no DSN unless asked for success");
    let f = queue.figures();
    assert_eq!((f.messages, f.bytes, f.delivered, f.deferred), (0, 0, 1, 2));
}

#[tokio::test]
async fn mixed_outcomes_per_recipient_grouped_by_domain() {
    let env = Env::new();
    let queue = env.open().await;
    let (transport, filer) = (FakeTransport::default(), FakeFiler::default());
    let mut s = submission(Some("alice@here.test"), &["a@one.test", "b@one.test", "c@TWO.test"]);
    s.recipients[1].orcpt = Some("rfc822;B@one.test".into());
    queue.enqueue(s).await.unwrap();
    transport.will("a@one.test", delivered());
    transport.will("b@one.test", failed());
    queue.pass(&transport, &filer).await;
    let mut calls: Vec<(String, Vec<String>)> =
        transport.calls.lock().unwrap().iter().map(|(d, r, _)| (d.clone(), r.clone())).collect();
    calls.sort();
    assert_eq!(
        calls,
        vec![
            ("one.test".into(), vec!["a@one.test".into(), "b@one.test".into()]),
            ("two.test".into(), vec!["c@TWO.test".into()]),
        ]
    );
    let filed = filer.take();
    assert_eq!(filed.len(), 1);
    let (to, dsn) = &filed[0];
    assert_eq!(to, "alice@here.test");
    assert!(
        dsn.contains("Final-Recipient: rfc822; b@one.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"),
        "{dsn}"
    );
    assert!(dsn.contains("Original-Recipient: rfc822; B@one.test\r\n"), "{dsn}");
    assert!(dsn.contains("Diagnostic-Code: smtp; 550 5.0.0 no such user\r\n"), "{dsn}");
    assert!(dsn.contains("Original-Envelope-Id: env-1\r\n"), "{dsn}");
    assert!(dsn.contains("From: Mail Delivery System <MAILER-DAEMON@here.test>"), "{dsn}");
    assert!(!dsn.contains("a@one.test"), "{dsn}");
    assert!(!dsn.contains("c@TWO.test"), "{dsn}");
    let states: Vec<RcptState> =
        queue.list().await[0].recipients.iter().map(|r| r.state.clone()).collect();
    assert!(matches!(states[0], RcptState::Delivered { .. }));
    assert!(matches!(states[1], RcptState::Failed { .. }));
    assert_eq!(states[2], RcptState::Pending);
    env.advance(Duration::from_secs(300));
    transport.will("c@TWO.test", delivered());
    queue.pass(&transport, &filer).await;
    assert!(queue.list().await.is_empty());
    assert!(filer.take().is_empty());
    assert_eq!(transport.sent_to().len(), 4);
}

#[tokio::test]
async fn one_delay_warning_then_expiry_fails_with_a_dsn() {
    let env = Env::new();
    let queue = env.open().await;
    let (transport, filer) = (FakeTransport::default(), FakeFiler::default());
    queue.enqueue(submission(Some("alice@here.test"), &["bob@far.test"])).await.unwrap();
    queue.pass(&transport, &filer).await;
    assert!(filer.take().is_empty());
    let mut warnings = 0;
    let mut failures = Vec::new();
    // Five days and a bit, an hour at a time (every pass is due by then).
    for _ in 0..121 {
        env.advance(Duration::from_secs(3600));
        queue.pass(&transport, &filer).await;
        for (_, dsn) in filer.take() {
            if dsn.contains("Action: delayed") {
                assert!(dsn.contains("Will-Retry-Until: "), "{dsn}");
                assert!(dsn.contains("Subject: Delayed Mail"), "{dsn}");
                warnings += 1;
            } else {
                failures.push(dsn);
            }
        }
    }
    assert_eq!(warnings, 1);
    assert_eq!(failures.len(), 1);
    assert!(failures[0].contains("Action: failed\r\nStatus: 4.4.7\r\n"), "{}", failures[0]);
    assert!(failures[0].contains("gave up after 5 days"), "{}", failures[0]);
    assert!(failures[0].contains("Content-Type: text/rfc822-headers"), "{}", failures[0]);
    assert!(queue.list().await.is_empty());
    assert_eq!(queue.figures().bounces, 2);
}

#[tokio::test]
async fn a_bounce_is_never_bounced_and_never_asked_is_never_told() {
    let env = Env::new();
    let queue = env.open().await;
    let (transport, filer) = (FakeTransport::default(), FakeFiler::default());
    queue.enqueue(submission(None, &["bob@far.test"])).await.unwrap();
    let mut never = submission(Some("alice@here.test"), &["carol@far.test"]);
    never.recipients[0].notify = Notify { success: false, failure: false, delay: false };
    queue.enqueue(never).await.unwrap();
    transport.will("bob@far.test", failed());
    transport.will("carol@far.test", failed());
    queue.pass(&transport, &filer).await;
    assert!(filer.take().is_empty());
    assert!(queue.list().await.is_empty());
    // Nor is a bounce warned of delay, nor told of expiry.
    queue.enqueue(submission(None, &["dan@far.test"])).await.unwrap();
    for _ in 0..130 {
        env.advance(Duration::from_secs(3600));
        queue.pass(&transport, &filer).await;
    }
    assert!(filer.take().is_empty());
    assert!(queue.list().await.is_empty());
}

#[tokio::test]
async fn success_dsns_only_when_asked_and_ret_full_carries_the_body() {
    let env = Env::new();
    let queue = env.open().await;
    let (transport, filer) = (FakeTransport::default(), FakeFiler::default());
    let mut s = submission(Some("alice@here.test"), &["bob@far.test"]);
    s.recipients[0].notify.success = true;
    s.ret = Some(Ret::Full);
    queue.enqueue(s).await.unwrap();
    transport.will("bob@far.test", delivered());
    queue.pass(&transport, &filer).await;
    let filed = filer.take();
    assert_eq!(filed.len(), 1);
    assert!(filed[0].1.contains("Action: relayed\r\nStatus: 2.0.0\r\n"), "{}", filed[0].1);
    assert!(filed[0].1.contains("Content-Type: message/rfc822\r\n"), "{}", filed[0].1);
    assert!(filed[0].1.contains("hello\r\n"), "{}", filed[0].1);
}

#[tokio::test]
async fn a_recorded_delivery_is_never_resent_after_a_restart() {
    let env = Env::new();
    let queue = env.open().await;
    let (transport, filer) = (FakeTransport::default(), FakeFiler::default());
    queue
        .enqueue(submission(Some("alice@here.test"), &["a@one.test", "c@two.test"]))
        .await
        .unwrap();
    transport.will("a@one.test", delivered());
    queue.pass(&transport, &filer).await;
    drop(queue);
    let queue = env.open().await;
    let transport = FakeTransport::default();
    env.advance(Duration::from_secs(300));
    transport.will("c@two.test", delivered());
    queue.pass(&transport, &filer).await;
    assert_eq!(transport.sent_to(), vec!["c@two.test".to_owned()]);
    assert!(queue.list().await.is_empty());
}

#[tokio::test]
async fn a_dsn_that_cannot_be_filed_is_tried_again() {
    let env = Env::new();
    let queue = env.open().await;
    let (transport, filer) = (FakeTransport::default(), FakeFiler::default());
    queue.enqueue(submission(Some("alice@here.test"), &["bob@far.test"])).await.unwrap();
    transport.will("bob@far.test", failed());
    filer.failing.store(true, Ordering::Relaxed);
    let report = queue.pass(&transport, &filer).await;
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert_eq!(queue.list().await.len(), 1);
    // It survives a restart too, and is not sent again.
    drop(queue);
    let queue = env.open().await;
    filer.failing.store(false, Ordering::Relaxed);
    env.advance(Duration::from_secs(300));
    queue.pass(&transport, &filer).await;
    assert_eq!(filer.take().len(), 1);
    assert!(queue.list().await.is_empty());
    assert_eq!(transport.calls.lock().unwrap().len(), 1);
}

/// Holds every send until released; says how many are in flight.
struct Gated {
    gate: tokio::sync::Semaphore,
    in_flight: tokio::sync::watch::Sender<HashMap<String, usize>>,
    max_per_domain: AtomicUsize,
}

impl Transport for Gated {
    async fn send(&self, domain: &str, message: Message<'_>) -> Vec<Outcome> {
        self.in_flight.send_modify(|m| {
            let n = m.entry(domain.into()).or_default();
            *n += 1;
            self.max_per_domain.fetch_max(*n, Ordering::Relaxed);
        });
        let _permit = self.gate.acquire().await.unwrap();
        self.in_flight.send_modify(|m| *m.get_mut(domain).unwrap() -= 1);
        let deferred = Outcome::Deferred { host: None, reply: None, reason: "later".into() };
        vec![deferred; message.recipients.len()]
    }
}

#[tokio::test]
async fn deliveries_run_in_parallel_within_the_limits() {
    let env = Env::with(QueueConfig { per_domain: 2, total: 3, ..QueueConfig::default() });
    let queue = env.open().await;
    for i in 0..6 {
        queue.enqueue(submission(Some("a@here.test"), &[&format!("r{i}@one.test")])).await.unwrap();
        queue.enqueue(submission(Some("a@here.test"), &[&format!("r{i}@two.test")])).await.unwrap();
    }
    let (in_flight, mut watch) = tokio::sync::watch::channel(HashMap::new());
    let transport = Arc::new(Gated {
        gate: tokio::sync::Semaphore::new(0),
        in_flight,
        max_per_domain: AtomicUsize::new(0),
    });
    let pass = tokio::spawn({
        let (queue, transport) = (queue.clone(), transport.clone());
        async move { queue.pass(&*transport, &FakeFiler::default()).await }
    });
    // The total limit is reached, with no domain above its own.
    watch.wait_for(|m| m.values().sum::<usize>() == 3).await.unwrap();
    assert_eq!(transport.max_per_domain.load(Ordering::Relaxed), 2);
    transport.gate.add_permits(100);
    let report = pass.await.unwrap();
    assert_eq!(report.deferred, 12);
    assert_eq!(transport.max_per_domain.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn retry_makes_due_and_delete_takes_out_without_a_bounce() {
    let env = Env::new();
    let queue = env.open().await;
    let (transport, filer) = (FakeTransport::default(), FakeFiler::default());
    let one = queue.enqueue(submission(Some("a@here.test"), &["b@far.test"])).await.unwrap();
    let two = queue.enqueue(submission(Some("a@here.test"), &["c@far.test"])).await.unwrap();
    queue.pass(&transport, &filer).await;
    assert_eq!(queue.pass(&transport, &filer).await.messages, 0);
    assert_eq!(queue.retry(Some(&one)).await.unwrap().messages, 1);
    assert_eq!(queue.pass(&transport, &filer).await.messages, 1);
    assert_eq!(queue.retry(None).await.unwrap().messages, 2);
    assert_eq!(queue.pass(&transport, &filer).await.messages, 2);
    assert_eq!(queue.delete(&two).await.unwrap().messages, 1);
    assert!(matches!(queue.delete(&two).await, Err(ManageError::NoSuchMessage(_))));
    let missing = QueueId("ff".into());
    assert!(matches!(queue.retry(Some(&missing)).await, Err(ManageError::NoSuchMessage(_))));
    assert_eq!(queue.list().await.len(), 1);
    assert_eq!(queue.figures().messages, 1);
    assert!(filer.take().is_empty());
    drop(queue);
    assert_eq!(env.open().await.list().await.len(), 1);
}

#[tokio::test]
async fn a_clock_set_back_across_a_restart_never_reuses_a_queued_id() {
    let env = Env::new();
    let first = env.open().await.enqueue(submission(Some("a@here.test"), &["b@far.test"])).await;
    let first = first.unwrap();
    // Same millisecond, fresh counter: the id it would make is taken.
    let queue = env.open().await;
    let second = queue.enqueue(submission(Some("a@here.test"), &["c@far.test"])).await.unwrap();
    assert_ne!(first, second);
    let listed = queue.list().await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].recipients[0].address, "b@far.test");
}

#[tokio::test]
async fn a_listing_serialises_as_json() {
    let env = Env::new();
    let queue = env.open().await;
    queue.enqueue(submission(Some("a@here.test"), &["b@far.test"])).await.unwrap();
    queue.pass(&FakeTransport::default(), &FakeFiler::default()).await;
    let json = serde_json::to_value(queue.list().await).unwrap();
    let entry = &json[0];
    assert_eq!(entry["from"], "a@here.test");
    assert_eq!(entry["recipients"][0]["address"], "b@far.test");
    assert_eq!(entry["recipients"][0]["state"], "pending");
    assert_eq!(entry["attempts"], 1);
    assert_eq!(entry["queued_at"], T0);
    assert_eq!(entry["next_attempt"], T0 + 300_000);
    assert!(entry["last_error"].as_str().unwrap().contains("451"));
    let back: Vec<QueueEntry> = serde_json::from_value(json).unwrap();
    assert_eq!(back, queue.list().await);
}
