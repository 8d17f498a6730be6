//! mbox (mboxrd) and maildir for `epost import` and `epost export`.
//!
//! Import keeps each message's bytes except for the mbox framing: the
//! From_ line (its sender and date become the envelope sender and
//! INTERNALDATE), one level of `>From ` quoting, and Unix line ends, which
//! become CRLF for messages that have no CR at all. Export undoes exactly
//! that, so an mbox imported and exported again is byte for byte the same.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use epost_types::maildate;

/// Largest mbox or maildir message read, bytes.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// One message to import.
pub(crate) struct Message {
    pub(crate) raw: Vec<u8>,
    /// INTERNALDATE, ms since the UNIX epoch.
    pub(crate) date: Option<u64>,
    pub(crate) from: Option<String>,
    pub(crate) flags: Vec<String>,
}

/// Every message of an mbox file, in order.
pub(crate) fn read_mbox(path: &Path) -> Result<Vec<Message>> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_mbox(&text).with_context(|| format!("{} is not an mbox file", path.display()))
}

pub(crate) fn parse_mbox(text: &[u8]) -> Result<Vec<Message>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if !text.starts_with(b"From ") {
        bail!("it does not start with a \"From \" line");
    }
    let mut messages = Vec::new();
    let mut current: Option<(Vec<u8>, Vec<u8>)> = None;
    for line in text.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"From ") {
            if let Some((from_line, body)) = current.take() {
                messages.push(finish(&from_line, body)?);
            }
            current = Some((line.to_vec(), Vec::new()));
            continue;
        }
        let Some((_, body)) = current.as_mut() else { continue };
        let unquoted = match line.iter().position(|b| *b != b'>') {
            Some(n) if n > 0 && line[n..].starts_with(b"From ") => &line[1..],
            _ => line,
        };
        body.extend_from_slice(unquoted);
        if body.len() > MAX_MESSAGE {
            bail!("a message is larger than {MAX_MESSAGE} bytes");
        }
    }
    if let Some((from_line, body)) = current {
        messages.push(finish(&from_line, body)?);
    }
    Ok(messages)
}

fn finish(from_line: &[u8], mut body: Vec<u8>) -> Result<Message> {
    // The blank line that separates messages belongs to the framing.
    if body.ends_with(b"\n\n") {
        body.pop();
    } else if body.ends_with(b"\r\n\r\n") {
        body.truncate(body.len() - 2);
    }
    let line = String::from_utf8_lossy(from_line);
    let rest = line.trim_end().strip_prefix("From ").unwrap_or_default();
    let (sender, date) = rest.split_once(' ').unwrap_or((rest, ""));
    let flags = status_flags(&body);
    let raw = if body.contains(&b'\r') { body } else { to_crlf(&body) };
    Ok(Message {
        raw,
        date: maildate::parse_asctime(date.trim()).map(|secs| secs * 1000),
        from: Some(sender.to_owned()).filter(|s| !s.is_empty()),
        flags,
    })
}

/// Flags from the `Status:`/`X-Status:` headers mail programs write.
fn status_flags(message: &[u8]) -> Vec<String> {
    let end =
        find(message, b"\n\n").or_else(|| find(message, b"\r\n\r\n")).unwrap_or(message.len());
    let mut flags = Vec::new();
    for line in message[..end].split(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let lower = line.to_ascii_lowercase();
        let value = if let Some(v) = lower.strip_prefix("status:") {
            v.to_owned()
        } else if let Some(v) = lower.strip_prefix("x-status:") {
            v.to_owned()
        } else {
            continue;
        };
        for (letter, flag) in
            [('r', "\\Seen"), ('a', "\\Answered"), ('f', "\\Flagged"), ('d', "\\Deleted")]
        {
            if value.contains(letter) && !flags.iter().any(|f| f == flag) {
                flags.push(flag.to_owned());
            }
        }
    }
    flags
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn to_crlf(lf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lf.len() + lf.len() / 40);
    for b in lf {
        if *b == b'\n' {
            out.push(b'\r');
        }
        out.push(*b);
    }
    out
}

/// Every message of a maildir (cur/ and new/), oldest name first.
pub(crate) fn read_maildir(path: &Path) -> Result<Vec<Message>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for sub in ["cur", "new"] {
        let dir = path.join(sub);
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("{} is not a maildir (no {sub}/)", path.display()))?;
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    let mut messages = Vec::with_capacity(files.len());
    for file in files {
        let meta = std::fs::metadata(&file)?;
        if meta.len() > MAX_MESSAGE as u64 {
            bail!("{} is larger than {MAX_MESSAGE} bytes", file.display());
        }
        let raw =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let info = name.rsplit_once(":2,").map(|(_, f)| f.to_owned()).unwrap_or_default();
        let flags = [
            ('S', "\\Seen"),
            ('R', "\\Answered"),
            ('F', "\\Flagged"),
            ('T', "\\Deleted"),
            ('D', "\\Draft"),
        ]
        .iter()
        .filter(|(c, _)| info.contains(*c))
        .map(|(_, f)| (*f).to_owned())
        .collect();
        let date = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64);
        let raw = if raw.contains(&b'\r') { raw } else { to_crlf(&raw) };
        messages.push(Message { raw, date, from: None, flags });
    }
    Ok(messages)
}

/// Writes an mbox (mboxrd) file, replacing it only when finished.
pub(crate) struct MboxWriter {
    out: BufWriter<std::fs::File>,
    tmp: PathBuf,
    path: PathBuf,
}

impl MboxWriter {
    pub(crate) fn create(path: &Path) -> Result<Self> {
        let mut name = path.file_name().context("the export path names no file")?.to_os_string();
        name.push(".partial");
        let tmp = path.with_file_name(name);
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(Self { out: BufWriter::new(file), tmp, path: path.to_path_buf() })
    }

    pub(crate) fn write(&mut self, raw: &[u8], from: Option<&str>, date_ms: u64) -> Result<()> {
        let from = from
            .filter(|f| !f.is_empty() && !f.contains(char::is_whitespace))
            .unwrap_or("MAILER-DAEMON");
        writeln!(self.out, "From {from} {}", maildate::asctime(date_ms / 1000))?;
        let body = if raw.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r')
            && raw.first() != Some(&b'\n')
        {
            from_crlf(raw)
        } else {
            raw.to_vec()
        };
        for line in body.split_inclusive(|b| *b == b'\n') {
            let quoted = match line.iter().position(|b| *b != b'>') {
                Some(n) => line[n..].starts_with(b"From "),
                None => false,
            };
            if quoted {
                self.out.write_all(b">")?;
            }
            self.out.write_all(line)?;
        }
        if !body.ends_with(b"\n") {
            self.out.write_all(b"\n")?;
        }
        self.out.write_all(b"\n")?;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("cannot move the export into {}", self.path.display()))?;
        Ok(())
    }
}

fn from_crlf(crlf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(crlf.len());
    let mut i = 0;
    while i < crlf.len() {
        if crlf[i] == b'\r' && crlf.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(crlf[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mbox_survives_import_and_export_byte_for_byte() {
        let mbox = b"From MAILER-DAEMON Mon Nov 23 08:34:56 2026\n\
Subject: one\nStatus: RO\n\nHello\n>From the start\n>>From deeper\n\n\
From alice@example.test Thu Jan  1 00:00:00 1970\nSubject: two\n\nbody\n\n";
        let messages = parse_mbox(mbox).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages[0].raw,
            b"Subject: one\r\nStatus: RO\r\n\r\nHello\r\nFrom the start\r\n>From deeper\r\n"
        );
        assert_eq!(messages[0].flags, vec!["\\Seen".to_string()]);
        assert_eq!(messages[0].date, Some(1_795_422_896_000));
        assert_eq!(messages[1].from.as_deref(), Some("alice@example.test"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.mbox");
        let mut writer = MboxWriter::create(&path).unwrap();
        for m in &messages {
            writer.write(&m.raw, m.from.as_deref(), m.date.unwrap()).unwrap();
        }
        writer.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), mbox);
    }
}
