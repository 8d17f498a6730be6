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
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl StoreError {
    /// The disk (or its quota, or the process's file-size limit) is full.
    pub fn is_no_space(&self) -> bool {
        matches!(self, Self::Engine(EngineError::NoSpace(_)))
    }
}
