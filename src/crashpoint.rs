//! Named points in a batch run where the crash-recovery tests stop the
//! process. With `DATAGEN_CRASHPOINT=<name>` set, reaching that point prints
//! `datagen: crashpoint <name>` to stderr and sleeps until the process is
//! killed (the tests send SIGKILL). Unset, a check is one cached lookup.
//!
//! Points, in run order: `vitals` (vitals.csv half written), `staged` and
//! `journaled` (the batch synced and the new state, census included, in
//! `.txn/`: one moment, since the two are written side by side), `committed`
//! (COMMIT marker written), `published` (batch renamed into place, state not
//! yet), `applied`. With a bucket ([`crate::pipeline`]'s `bucket.rs`), after
//! the local commit: `pending` (the head claims the commit, nothing
//! uploaded), `uploading` (the first file up), `uploaded` (every data file
//! up, no manifest), `manifested` (no `_SUCCESS`), `succeeded` (the head not
//! yet advanced).
//!
//! `DATAGEN_CRASHPOINT=fail:<name>` makes the points that can fail
//! ([`failure`]: `vitals`) fail instead, as a full disk would, so the tests
//! can see what a client gets when a batch fails after its stream started.

use std::io::Write;
use std::sync::OnceLock;

pub const ENV: &str = "DATAGEN_CRASHPOINT";

fn target() -> Option<&'static str> {
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    TARGET.get_or_init(|| std::env::var(ENV).ok()).as_deref()
}

/// Whether any crash point is set (callers skip preparation otherwise).
pub fn armed() -> bool {
    target().is_some()
}

pub fn reached(name: &str) {
    if target() == Some(name) {
        let mut err = std::io::stderr();
        let _ = writeln!(err, "datagen: crashpoint {name}");
        let _ = err.flush();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// An injected write failure at `name`, if `DATAGEN_CRASHPOINT=fail:<name>`.
pub fn failure(name: &str) -> std::io::Result<()> {
    match target().and_then(|t| t.strip_prefix("fail:")) {
        Some(point) if point == name => Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!("no space left on device (injected at crash point {name})"),
        )),
        _ => Ok(()),
    }
}
