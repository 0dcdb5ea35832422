//! The one error type of the library. Every variant carries what a person
//! needs to act on it: the input, the key, the file and line.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::{BatchDate, Mode, ParseError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A date or mode that does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),

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

    #[error("corrupt state file {}{}: {reason}. Nothing was written. {}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default(), way_out(mode_of(path)))]
    CorruptState {
        path: PathBuf,
        line: Option<u64>,
        reason: String,
    },

    /// The committed batches and the state that issued their IDs disagree:
    /// generating now could reuse IDs, so nothing runs until it is mended.
    #[error("the {mode} state and its committed batches disagree: {problem}. Nothing was written. {}", way_out(Some(*mode)))]
    StateMismatch { mode: Mode, problem: String },

    /// `state rebuild` could not replay the committed batches: the state is
    /// left as it was, and rebuilding again would fail the same way.
    #[error(
        "the {mode} state cannot be rebuilt from its committed batches: {problem}. Nothing was written. Rebuild with the datagen version and config that made them, or start the mode over by moving both its data and state folders away"
    )]
    NotRebuilt { mode: Mode, problem: String },

    /// A date that is not the next one of its mode.
    #[error("{}", date_order(*mode, *asked, *last, *next))]
    DateOrder {
        mode: Mode,
        asked: BatchDate,
        last: BatchDate,
        next: Option<BatchDate>,
    },

    /// A catch-up longer than the caller may ask for.
    #[error(
        "catching up to {asked} means generating {days} {mode} batches first, from {next}; at most {limit} may be caught up in one request (server.max_catch_up_days). Catch up in steps, or generate the range with the CLI (datagen generate --from {next} --to {asked})"
    )]
    CatchUpTooFar {
        mode: Mode,
        asked: BatchDate,
        next: BatchDate,
        days: u64,
        limit: u32,
    },

    /// A committed date asked for again with volumes other than its own.
    #[error(
        "the {mode} batch for {date} is already committed with {committed}; this run asked for {asked}. Nothing was changed: a committed batch is never regenerated (ask without volumes to get it as it is)"
    )]
    VolumeConflict {
        mode: Mode,
        date: BatchDate,
        committed: String,
        asked: String,
    },

    /// A run asking for another defects profile than its mode's state has.
    #[error(
        "the {mode} state was started with the defects profile {recorded}; this run asks for {asked}. Nothing was written: late rows and corrections span batches, so a profile belongs to its state (ask for {recorded}, or start a new state folder, with a new data folder, for {asked})"
    )]
    DefectsConflict {
        mode: Mode,
        recorded: String,
        asked: String,
    },

    /// A defects profile asked for with Parquet files.
    #[error(
        "defects spoil the text files, and a Parquet column keeps its type: the defects profile {profile} needs --format csv (this run asks for {format}). Nothing was written"
    )]
    DefectsNeedText { profile: String, format: String },

    #[error("the {mode} state in {} is locked by another datagen process; gave up after {}s", dir.display(), waited.as_secs())]
    Locked {
        mode: Mode,
        dir: PathBuf,
        waited: Duration,
    },

    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The object store holding the batches or the state failed or could
    /// not be reached; nothing was committed that a reader could see.
    #[error("{what} {url}: {source}")]
    Storage {
        what: String,
        url: String,
        #[source]
        source: object_store::Error,
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

/// The safe ways out of a state that cannot be trusted. Restoring an older
/// backup of the state alone is not one of them: it would reissue IDs.
fn way_out(mode: Option<Mode>) -> String {
    let mode = mode.map_or("<mode>".to_string(), |m| m.to_string());
    format!(
        "To recover, run `datagen state rebuild --mode {mode}`: it rebuilds the state from the committed batches, verifying every file and never reusing an ID. To start the mode over instead, move both its data and state folders away"
    )
}

fn date_order(mode: Mode, asked: BatchDate, last: BatchDate, next: Option<BatchDate>) -> String {
    let Some(next) = next else {
        return format!(
            "the {mode} batches end at {last}, the last supported date; {asked} cannot follow it"
        );
    };
    if asked < last {
        format!(
            "{asked} comes before the last {mode} batch, {last}, and was never generated: a mode's batches run forward one day at a time (stays carry over from each day to the next), so the next {mode} batch is {next}"
        )
    } else {
        format!(
            "the next {mode} batch is {next}, not {asked}: a mode's batches run forward one day at a time (stays carry over from each day to the next). Generate {next} first, or ask to catch up (--catch-up, or ?catch_up=true) to generate {next} to {asked} in order"
        )
    }
}

/// The mode whose state folder holds `path` (`<state_dir>/<mode>/...`).
fn mode_of(path: &std::path::Path) -> Option<Mode> {
    path.ancestors()
        .filter_map(|p| p.file_name()?.to_str()?.parse().ok())
        .next()
}

impl Error {
    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }

    /// The message with these directories left out of every path in it, for
    /// answers that must not reveal where the server keeps its files:
    /// `/srv/state/raw/ledger.csv` becomes `raw/ledger.csv`.
    pub fn relative_to(&self, roots: &[&std::path::Path]) -> String {
        roots.iter().fold(self.to_string(), |text, root| {
            text.replace(&format!("{}/", root.display()), "")
        })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
