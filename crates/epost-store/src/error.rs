//! Errors, per operation, each saying what failed and what to do.

use std::io;

/// What the engine reported.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no space left on the device ({0})")]
    NoSpace(io::Error),
    #[error("I/O error: {0}")]
    Io(io::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the storage engine needs the store reopened after an earlier I/O failure")]
    NeedsReopen,
    #[error("storage engine: {0}")]
    Other(String),
}

impl EngineError {
    /// Classifies an I/O error: a full disk (or file-size limit, or quota)
    /// is reported as such, so callers can say "no space".
    pub fn from_io(e: io::Error) -> Self {
        // ENOSPC, EFBIG, EDQUOT on Linux.
        match e.raw_os_error() {
            Some(28 | 27 | 122) => Self::NoSpace(e),
            _ if e.kind() == io::ErrorKind::StorageFull
                || e.kind() == io::ErrorKind::FileTooLarge =>
            {
                Self::NoSpace(e)
            }
            _ => Self::Io(e),
        }
    }

    /// A copy for each waiter of a failed batch (`io::Error` is not `Clone`).
    pub fn duplicate(&self) -> Self {
        match self {
            Self::NoSpace(io) => Self::NoSpace(io::Error::new(io.kind(), io.to_string())),
            Self::Io(io) => Self::Io(io::Error::new(io.kind(), io.to_string())),
            Self::Corrupt(s) => Self::Corrupt(s.clone()),
            Self::NeedsReopen => Self::NeedsReopen,
            Self::Other(s) => Self::Other(s.clone()),
        }
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{path} is already in use by another epost process (only one node may run on a data directory)"
    )]
    Locked { path: String },
    #[error("cannot create {path}: {source}")]
    Create { path: String, source: io::Error },
    #[error("no space left to open the store in {path}: {source}")]
    NoSpace { path: String, source: io::Error },
    #[error("cannot open the store in {path}: {source}")]
    Engine { path: String, source: EngineError },
    #[error("keyspace {0:?} is declared twice")]
    DuplicateKeyspace(&'static str),
    #[error("the {0:?} backend is not compiled in (build with `--features sled`)")]
    BackendMissing(crate::Backend),
}

/// Why a read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key of {len} bytes exceeds the {max}-byte limit")]
    KeyTooLarge { len: usize, max: usize },
    #[error("value of {len} bytes exceeds the {max}-byte limit")]
    ValueTooLarge { len: usize, max: usize },
    #[error("the store is closed")]
    Closed,
    #[error("keyspace {0:?} was not declared when the store was opened")]
    UnknownKeyspace(&'static str),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl StoreError {
    /// A copy, for each of several callers waiting on one failed commit.
    pub fn duplicate(&self) -> Self {
        match self {
            Self::KeyTooLarge { len, max } => Self::KeyTooLarge { len: *len, max: *max },
            Self::ValueTooLarge { len, max } => Self::ValueTooLarge { len: *len, max: *max },
            Self::Closed => Self::Closed,
            Self::UnknownKeyspace(name) => Self::UnknownKeyspace(name),
            Self::Engine(e) => Self::Engine(e.duplicate()),
        }
    }

    /// The disk (or its quota, or the process's file-size limit) is full.
    pub fn is_no_space(&self) -> bool {
        matches!(self, Self::Engine(EngineError::NoSpace(_)))
    }
}
