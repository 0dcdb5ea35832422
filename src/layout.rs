//! Where everything lives on disk. Paths are only ever built here, from
//! parsed values ([`Mode`], [`BatchDate`]), never from raw request strings.
//!
//! ```text
//! <data_dir>/<mode>/<YYYY-MM-DD>/        committed batches (complete, or absent)
//! <data_dir>/.staging/<mode>/<date>/     a batch being written; never read
//! <state_dir>/<mode>/                    the mode's persistent state (locked while written)
//! <state_dir>/<mode>/.txn/               the commit journal of the batch in flight
//! ```
//! Staging lives on the same file system as its destination, so each step of
//! a commit is a rename. With a bucket (`paths.data_url`), both roots are this
//! machine's cache of it, each mode folder marked by a `.datagen-cache` file
//! naming the bucket (see `pipeline/bucket.rs`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::{BatchDate, Mode};

#[derive(Clone, Debug)]
pub struct Layout {
    pub data_dir: PathBuf,
    pub state_dir: PathBuf,
}

impl Layout {
    pub fn new(data_dir: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Layout {
        Layout {
            data_dir: data_dir.into(),
            state_dir: state_dir.into(),
        }
    }

    pub fn mode_dir(&self, mode: Mode) -> PathBuf {
        self.data_dir.join(mode.as_str())
    }

    pub fn batch_dir(&self, mode: Mode, date: BatchDate) -> PathBuf {
        self.mode_dir(mode).join(date.to_string())
    }

    pub fn staging_root(&self, mode: Mode) -> PathBuf {
        self.data_dir.join(".staging").join(mode.as_str())
    }

    pub fn staging_dir(&self, mode: Mode, date: BatchDate) -> PathBuf {
        self.staging_root(mode).join(date.to_string())
    }

    pub fn state_dir(&self, mode: Mode) -> PathBuf {
        self.state_dir.join(mode.as_str())
    }

    /// Makes sure `<data_dir>/<mode>` and `<state_dir>/<mode>` exist. The roots
    /// themselves are created only if their parent exists: a mistyped path
    /// fails instead of silently growing a new tree somewhere.
    pub fn prepare(&self, mode: Mode) -> Result<()> {
        for root in [&self.data_dir, &self.state_dir] {
            ensure_root(root)?;
        }
        for dir in [self.mode_dir(mode), self.state_dir(mode)] {
            if !dir.is_dir() {
                std::fs::create_dir(&dir).map_err(Error::io("cannot create directory", &dir))?;
            }
        }
        Ok(())
    }
}

fn ensure_root(root: &Path) -> Result<()> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::io("not a directory:", root)(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "expected a directory",
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(root).map_err(Error::io("cannot create directory", root))
        }
        Err(e) => Err(Error::io("cannot access", root)(e)),
    }
}
