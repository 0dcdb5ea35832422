//! The one error type of the library. Every variant carries what a person
//! needs to act on it: the input, the key, the file and line.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::{BatchDate, Mode};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid date {input:?}: {reason}")]
    InvalidDate { input: String, reason: String },

    #[error("unknown mode {0:?}: expected raw or sample")]
    UnknownMode(String),

    #[error("cannot read config file {}: {reason}", path.display())]
    ConfigFile { path: PathBuf, reason: String },

    #[error("invalid config ({origin}): {reason}")]
    Config { origin: String, reason: String },

    #[error("invalid request: {0}")]
    InvalidInput(String),

    /// A request for encounters on a date on which nobody can be seen.
    #[error(
        "cannot plan {count} encounters on {date}: there are no patients to see (no new patients that day, and nobody registered earlier who is alive on it); ask for new patients too"
    )]
    NoPatients { date: BatchDate, count: u32 },

    #[error("corrupt state file {}{}: {reason}; refusing to continue (restore it from a backup or move the mode's state folder away to start over)", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    CorruptState {
        path: PathBuf,
        line: Option<u64>,
        reason: String,
    },

    #[error("the {mode} state in {} is locked by another datagen process; gave up after {}s", dir.display(), waited.as_secs())]
    Locked {
        mode: Mode,
        dir: PathBuf,
        waited: Duration,
    },

    #[error("batch {date} ({mode}) is recorded as committed in {} but {} is missing or incomplete", ledger.display(), dir.display())]
    MissingBatch {
        mode: Mode,
        date: BatchDate,
        ledger: PathBuf,
        dir: PathBuf,
    },

    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The service could not start or stopped on an I/O error.
    #[error("{what}: {source}")]
    Server {
        what: String,
        #[source]
        source: io::Error,
    },

    #[error("{file}{}: {reason}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        file: String,
        line: Option<u64>,
        reason: String,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
