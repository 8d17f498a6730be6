//! The queue on disk: one message file and one state file per queued
//! message, each written whole (temporary file, fsync, rename, fsync of
//! the directory), so a crash leaves either the old file or the new one.
//!
//! ```text
//! <dir>/messages/<id>      the signed message, as it is sent
//! <dir>/states/<id>.json   its envelope and schedule: the commit point
//! <dir>/tmp/               files being written (emptied at open)
//! <dir>/corrupt/           what open could not trust, kept for a human
//! ```
//!
//! Blocking I/O: callers run it off the async workers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use epost_types::hash::sha256;
use tracing::warn;

use super::record::{QueueId, Record};

/// One spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

/// What open found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The messages that are queued, by id order (oldest first).
    pub records: Vec<Record>,
    /// Message files without a state (an enqueue that never answered):
    /// removed.
    pub orphans: usize,
    /// States that did not parse or whose message was missing or
    /// damaged: moved to `corrupt/`.
    pub corrupt: usize,
}

/// Why the spool cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("the outbound queue cannot {what} {path}")]
pub struct SpoolError {
    pub what: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn at<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> SpoolError + 'p {
    move |source| SpoolError { what, path: path.to_path_buf(), source }
}

/// The hex SHA-256 a state keeps of its message.
pub fn digest(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&sha256(bytes))
}

impl Spool {
    /// Makes the directories if they are missing.
    pub fn create(root: &Path) -> Result<Self, SpoolError> {
        let spool = Self { root: root.to_path_buf() };
        for dir in [spool.messages(), spool.states(), spool.tmp(), spool.corrupt()] {
            fs::create_dir_all(&dir).map_err(at("create", &dir))?;
        }
        Ok(spool)
    }

    fn messages(&self) -> PathBuf {
        self.root.join("messages")
    }
    fn states(&self) -> PathBuf {
        self.root.join("states")
    }
    fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    fn corrupt(&self) -> PathBuf {
        self.root.join("corrupt")
    }

    fn message_path(&self, id: &QueueId) -> PathBuf {
        self.messages().join(&id.0)
    }

    fn state_path(&self, id: &QueueId) -> PathBuf {
        self.states().join(format!("{}.json", id.0))
    }

    /// Writes `bytes` to `dir/name` whole and durably.
    fn write_atomic(&self, dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SpoolError> {
        let tmp = self.tmp().join(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(at("create", &tmp))?;
        file.write_all(bytes).map_err(at("write", &tmp))?;
        file.sync_all().map_err(at("sync", &tmp))?;
        drop(file);
        let target = dir.join(name);
        fs::rename(&tmp, &target).map_err(at("rename into place", &target))?;
        sync_dir(dir)
    }

    /// Stores a message's bytes (before its state: not yet queued).
    pub fn write_message(&self, id: &QueueId, bytes: &[u8]) -> Result<(), SpoolError> {
        self.write_atomic(&self.messages(), &id.0, bytes)
    }

    /// Stores a state, durably: the first one is an enqueue's commit.
    pub fn write_state(&self, record: &Record) -> Result<(), SpoolError> {
        self.write_atomic(&self.states(), &format!("{}.json", record.id.0), &record.to_json())
    }

    /// Reads a message's bytes and checks them against its state.
    pub fn read_message(&self, record: &Record) -> Result<Vec<u8>, SpoolError> {
        let path = self.message_path(&record.id);
        let bytes = fs::read(&path).map_err(at("read", &path))?;
        if bytes.len() as u64 != record.size || digest(&bytes) != record.sha256 {
            return Err(SpoolError {
                what: "trust",
                path,
                source: io::Error::new(io::ErrorKind::InvalidData, "size or digest mismatch"),
            });
        }
        Ok(bytes)
    }

    /// Takes a message out: its state first (the message is no longer
    /// queued), then its bytes.
    pub fn remove(&self, id: &QueueId) -> Result<(), SpoolError> {
        let state = self.state_path(id);
        match fs::remove_file(&state) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(at("remove", &state)(e)),
        }
        sync_dir(&self.states())?;
        let message = self.message_path(id);
        match fs::remove_file(&message) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(at("remove", &message)(e)),
        }
    }

    /// Removes a message file that has no state (an enqueue that failed
    /// after writing it).
    pub fn remove_message(&self, id: &QueueId) {
        let _ = fs::remove_file(self.message_path(id));
    }

    /// Reads the spool: the queued messages; orphans removed, what cannot
    /// be trusted moved to `corrupt/` with a warning.
    pub fn load(&self) -> Result<Loaded, SpoolError> {
        // What was being written when the node stopped never counted.
        let tmp = self.tmp();
        for entry in fs::read_dir(&tmp).map_err(at("list", &tmp))? {
            let entry = entry.map_err(at("list", &tmp))?;
            let _ = fs::remove_file(entry.path());
        }
        let mut loaded = Loaded::default();
        let mut with_state = std::collections::HashSet::new();
        let states = self.states();
        let mut names = list(&states)?;
        names.sort();
        for name in names {
            let path = states.join(&name);
            let stem = name.strip_suffix(".json").unwrap_or(&name).to_owned();
            with_state.insert(stem.clone());
            let record = fs::read(&path).ok().and_then(|bytes| Record::from_json(&bytes));
            let good = record.filter(|r| r.id.0 == stem).and_then(|r| {
                self.read_message(&r)
                    .map(|_| r)
                    .map_err(|e| warn!(error = %e, "queued message"))
                    .ok()
            });
            match good {
                Some(record) => loaded.records.push(record),
                None => {
                    warn!(state = %path.display(), "queue state unreadable or its message missing or damaged; moved to corrupt/");
                    self.quarantine(&path, &name);
                    if QueueId::is_valid(&stem) {
                        let message = self.messages().join(&stem);
                        if message.exists() {
                            self.quarantine(&message, &stem);
                        }
                    }
                    loaded.corrupt += 1;
                }
            }
        }
        let messages = self.messages();
        for name in list(&messages)? {
            if !with_state.contains(&name) {
                // Its enqueue never reached its commit point (no 250).
                let _ = fs::remove_file(messages.join(&name));
                loaded.orphans += 1;
            }
        }
        sync_dir(&messages)?;
        Ok(loaded)
    }

    fn quarantine(&self, path: &Path, name: &str) {
        let mut target = self.corrupt().join(name);
        let mut n = 1;
        while target.exists() {
            target = self.corrupt().join(format!("{name}.{n}"));
            n += 1;
        }
        if let Err(e) = fs::rename(path, &target) {
            warn!(error = %e, path = %path.display(), "cannot move to corrupt/; removed");
            let _ = fs::remove_file(path);
        }
    }

    /// How many files `corrupt/` holds.
    pub fn corrupt_files(&self) -> usize {
        list(&self.corrupt()).map(|l| l.len()).unwrap_or(0)
    }
}

fn list(dir: &Path) -> Result<Vec<String>, SpoolError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(at("list", dir))? {
        let entry = entry.map_err(at("list", dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(at("sync", dir))
}
