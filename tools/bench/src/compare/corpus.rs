//! The messages both systems receive: generated from a fixed seed, so every
//! run and both systems get the same bytes. Sizes follow a log-normal
//! spread around NinjaMail's 4.7 KB average (most mail is small, a few
//! messages are tens of KB); a share carries the same 1 MiB attachment and
//! goes to several recipients, which is where storing a part once pays.

use std::fmt::Write;

/// The mean message size the corpus aims at (NinjaMail's figure).
pub(crate) const MEAN_SIZE: f64 = 4700.0;
/// Log-normal spread of the sizes (sigma of the underlying normal).
const SIGMA: f64 = 0.9;
/// Smallest and largest plain message.
const MIN_SIZE: usize = 600;
const MAX_SIZE: usize = 128 * 1024;
/// The shared attachment.
pub(crate) const ATTACHMENT_BYTES: usize = 1024 * 1024;

/// One message to send.
pub(crate) struct Message {
    /// Unique per message: the Subject line, told apart in FETCH answers.
    pub(crate) token: String,
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
    /// RFC 5322 bytes, CRLF line ends, ending with CRLF.
    pub(crate) bytes: Vec<u8>,
}

/// splitmix64: small, fast and the same everywhere.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

const WORDS: &[&str] = &[
    "meeting", "report", "budget", "draft", "schedule", "review", "project", "update", "team",
    "deadline", "invoice", "agenda", "notes", "proposal", "contract", "release", "server",
    "network", "storage", "the", "a", "and", "of", "to", "in", "for", "on", "with", "please",
    "thanks", "tomorrow", "friday", "attached", "see", "below", "question", "answer", "figures",
];

/// `len` bytes of text in lines of about 72 characters.
fn text(rng: &mut Rng, len: usize) -> String {
    let mut out = String::with_capacity(len + 80);
    let mut line = 0;
    while out.len() < len {
        let word = WORDS[rng.below(WORDS.len())];
        if line + word.len() + 1 > 72 {
            out.push_str("\r\n");
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out.push_str("\r\n");
    out
}

fn headers(out: &mut String, from: &str, to: &[String], token: &str) {
    let _ = write!(
        out,
        "From: <{from}>\r\nTo: {}\r\nSubject: {token}\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\nMessage-ID: <{token}@corpus.test>\r\nMIME-Version: 1.0\r\n",
        to.iter().map(|t| format!("<{t}>")).collect::<Vec<_>>().join(", ")
    );
}

/// The shared attachment's bytes (the same in every message that has it).
fn attachment() -> String {
    let mut rng = Rng::new(0xA77A_C4ED);
    let raw: Vec<u8> =
        (0..ATTACHMENT_BYTES / 8).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
    let encoded = data_encoding::BASE64.encode(&raw);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// The corpus: `plain` messages of the log-normal sizes, each to one of
/// `users`, then `with_attachment` messages carrying the shared attachment,
/// each to `fan_out` of them.
pub(crate) fn generate(
    users: &[String],
    plain: usize,
    with_attachment: usize,
    fan_out: usize,
) -> (Vec<Message>, Vec<Message>) {
    let mut rng = Rng::new(0xE905_7C0A);
    let median = MEAN_SIZE / (SIGMA * SIGMA / 2.0).exp();
    let from = "sender@corpus.test".to_owned();
    let mut first = Vec::with_capacity(plain);
    for i in 0..plain {
        let size = (median * (SIGMA * rng.normal()).exp()).round() as usize;
        let size = size.clamp(MIN_SIZE, MAX_SIZE);
        let to = vec![users[rng.below(users.len())].clone()];
        let token = format!("corpus-{i:06}");
        let mut out = String::with_capacity(size + 100);
        headers(&mut out, &from, &to, &token);
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
        let body = size.saturating_sub(out.len()).max(1);
        out.push_str(&text(&mut rng, body));
        first.push(Message { token, from: from.clone(), to, bytes: out.into_bytes() });
    }
    let shared = attachment();
    let mut second = Vec::with_capacity(with_attachment);
    for i in 0..with_attachment {
        let start = rng.below(users.len());
        let to: Vec<String> = (0..fan_out.min(users.len()))
            .map(|k| users[(start + k) % users.len()].clone())
            .collect();
        let token = format!("corpus-att-{i:04}");
        let mut out = String::with_capacity(shared.len() + 4096);
        headers(&mut out, &from, &to, &token);
        let _ = write!(
            out,
            "Content-Type: multipart/mixed; boundary=\"b-{token}\"\r\n\r\n--b-{token}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n--b-{token}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"figures.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{shared}--b-{token}--\r\n",
            text(&mut rng, 1200)
        );
        second.push(Message { token, from: from.clone(), to, bytes: out.into_bytes() });
    }
    (first, second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_is_deterministic_and_near_the_mean() {
        let users: Vec<String> = (0..4).map(|i| format!("u{i}@example.test")).collect();
        let (a, att) = generate(&users, 2000, 2, 3);
        let (b, _) = generate(&users, 2000, 2, 3);
        assert!(a.iter().zip(&b).all(|(x, y)| x.bytes == y.bytes && x.to == y.to));
        let mean = a.iter().map(|m| m.bytes.len()).sum::<usize>() as f64 / a.len() as f64;
        assert!((mean - MEAN_SIZE).abs() < MEAN_SIZE * 0.1, "mean {mean}");
        assert!(a.iter().all(|m| m.bytes.ends_with(b"\r\n")));
        assert_eq!(att[0].to.len(), 3);
        assert!(att[0].bytes.len() > ATTACHMENT_BYTES);
    }
}
