//! The cross-process writer lock of one mode's state: an exclusive advisory
//! `flock` on the mode's state directory itself, so taking it leaves no file
//! behind and a crashed holder releases it with its last descriptor.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::model::Mode;

/// Held while a writer works on a mode's state; released on drop.
#[derive(Debug)]
pub struct StateLock {
    _dir: File,
}

impl StateLock {
    /// Waits up to `timeout` for the lock.
    pub fn acquire(dir: &Path, mode: Mode, timeout: Duration) -> Result<StateLock> {
        let handle = File::open(dir).map_err(Error::io("cannot open state directory", dir))?;
        let started = Instant::now();
        let mut told = false;
        loop {
            match handle.try_lock() {
                Ok(()) => {
                    return Ok(StateLock { _dir: handle });
                }
                Err(TryLockError::WouldBlock) => {
                    if started.elapsed() >= timeout {
                        return Err(Error::Locked {
                            mode,
                            dir: dir.to_path_buf(),
                            waited: started.elapsed(),
                        });
                    }
                    if !told {
                        tracing::info!(dir = %dir.display(), "state is locked by another datagen process; waiting");
                        told = true;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(Error::io("cannot lock state directory", dir)(e));
                }
            }
        }
    }
}
