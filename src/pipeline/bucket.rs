//! The commit protocol when batches and state live in a bucket
//! ([`crate::remote`]), shared by any number of replicas without a shared
//! disk or lock.
//!
//! Each replica keeps a cache of the bucket in its own data and state
//! directories and runs the local engine on it; the bucket decides who
//! commits. A date is committed in this order:
//! 1. the replica brings its cache to the head's generation and generates
//!    the date locally (the local commit protocol, under its own lock);
//! 2. it uploads the new state as a generation of its own
//!    (`generations/<id>/`, `id` from the ledger, so racers making the same
//!    state upload the same bytes);
//! 3. it swaps the head from the generation it started from to one naming
//!    the commit as pending (`If-Match` on the head's ETag, or
//!    `If-None-Match: *` for a mode's first commit). Losing means another
//!    writer moved first: the replica drops its local batch (its cache is
//!    brought back in line) and starts over, so it never publishes a batch
//!    made from a stale state and never reuses an ID;
//! 4. the batch's files go up, then `_manifest.json`, then `_SUCCESS`, the
//!    two last only if absent (`If-None-Match: *`): a date is committed
//!    once `_SUCCESS` exists, and never by two writers;
//! 5. the head is swapped to the new generation, pending cleared.
//!
//! Anyone who finds a pending commit finishes it before anything else:
//! generation is a pure function of the base state, the date and the run's
//! options, so it regenerates the dates from the base and publishes the same
//! bytes. A writer killed mid-upload thus leaves no `_SUCCESS`, and the next
//! request completes the batch exactly.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::{Engine, Outcome, Overrides};
use crate::crashpoint;
use crate::error::{Error, Result};
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::model::{BatchDate, Mode};
use crate::output::write_new;
use crate::remote::{Created, Head, Pending, ReadHead, Remote, SUCCESS_FILE, Swap};
use crate::state::{ALL_STATE_FILES, DEFECTS_FILE, StateStore, check_agreement, committed_dates};

/// Generates and commits `date` through the bucket (see the module doc).
pub(super) fn generate(
    engine: &Engine,
    remote: &Remote,
    mode: Mode,
    date: BatchDate,
    overrides: &Overrides,
    on_file: &mut (dyn FnMut(&Path) + Send),
) -> Result<Outcome> {
    let started = Instant::now();
    let store = open_cache(engine, remote, mode, engine.lock_timeout())?;
    loop {
        let read = remote.head(mode)?;
        if let Some(pending) = &read.head.pending {
            finish(engine, remote, &store, mode, &read, pending)?;
            continue;
        }
        sync(
            engine,
            remote,
            &store,
            mode,
            read.head.generation.as_deref(),
        )?;
        let ledger = store.ledger()?;
        let mut outcome =
            engine.run(&store, &ledger, mode, date, overrides, &mut |_| {}, started)?;
        for done in outcome.caught_up.iter_mut() {
            done.url = Some(remote.batch_url(mode, done.manifest.date));
        }
        outcome.url = Some(remote.batch_url(mode, date));
        if !outcome.created {
            // The files are fetched only by a caller that sends them
            // ([`Engine::materialize`]).
            return Ok(outcome);
        }
        let generation = store.generation()?.ok_or_else(|| Error::StateMismatch {
            mode,
            problem: "a batch was committed locally, but the state has no ledger".into(),
        })?;
        remote.put_generation(mode, &generation, store.dir(), &ALL_STATE_FILES)?;
        let config = engine.config();
        let pending = Pending {
            dates: outcome
                .caught_up
                .iter()
                .map(|o| o.manifest.date)
                .chain([date])
                .collect(),
            base: read.head.generation.clone(),
            generation,
            new_patients: overrides.new_patients,
            encounters: overrides.encounters,
            defects: overrides.defects.unwrap_or(config.defects.profile),
            format: overrides.format.unwrap_or(config.output.format),
        };
        let claim = Head {
            generation: read.head.generation.clone(),
            pending: Some(pending.clone()),
        };
        match remote.swap_head(mode, &read, &claim)? {
            Swap::Lost => {
                tracing::info!(%mode, %date, "another writer moved the state first; starting over from its state");
                continue;
            }
            Swap::Won(version) => {
                crashpoint::reached("pending");
                let dir = engine.layout().batch_dir(mode, date);
                for file in &outcome.manifest.files {
                    on_file(&dir.join(&file.name));
                }
                on_file(&dir.join(MANIFEST_FILE));
                let claimed = ReadHead {
                    head: claim,
                    version: Some(version),
                };
                publish(engine, remote, mode, &claimed, &pending)?;
                return Ok(outcome);
            }
        }
    }
}

/// Finishes a pending commit, regenerating its dates from its base unless
/// the cache already holds them.
fn finish(
    engine: &Engine,
    remote: &Remote,
    store: &StateStore,
    mode: Mode,
    read: &ReadHead,
    pending: &Pending,
) -> Result<()> {
    if store.generation()?.as_deref() != Some(pending.generation.as_str()) {
        tracing::info!(%mode, dates = ?pending.dates, "finishing a commit another writer began");
        sync(engine, remote, store, mode, pending.base.as_deref())?;
        let ledger = store.ledger()?;
        let last = *pending.dates.last().ok_or_else(|| Error::StateMismatch {
            mode,
            problem: "the head names a pending commit of no date".into(),
        })?;
        let overrides = Overrides {
            new_patients: pending.new_patients,
            encounters: pending.encounters,
            catch_up: Some(pending.dates.len().saturating_sub(1) as u32),
            defects: Some(pending.defects),
            format: Some(pending.format),
        };
        engine.run(
            store,
            &ledger,
            mode,
            last,
            &overrides,
            &mut |_| {},
            Instant::now(),
        )?;
        let made = store.generation()?;
        if made.as_deref() != Some(pending.generation.as_str()) {
            return Err(Error::StateMismatch {
                mode,
                problem: format!(
                    "another writer began committing {}, and regenerating it here gives the state {} instead of {}: every replica on one bucket must run the same config (seed, volumes, population, scenarios, defects)",
                    pending
                        .dates
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    made.unwrap_or_default(),
                    pending.generation
                ),
            });
        }
    }
    publish(engine, remote, mode, read, pending)
}

/// Steps 4 and 5: uploads the pending dates from the cache and advances
/// the head. Safe to repeat, and to run beside another replica doing the
/// same: every write is either the same bytes or conditional.
fn publish(
    engine: &Engine,
    remote: &Remote,
    mode: Mode,
    read: &ReadHead,
    pending: &Pending,
) -> Result<()> {
    for &date in &pending.dates {
        let dir = engine.layout().batch_dir(mode, date);
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(Error::io("cannot read", &path))?;
        let manifest = Manifest::parse(&bytes, &path)?;
        for (i, file) in manifest.files.iter().enumerate() {
            remote.put_batch_file(mode, date, &dir.join(&file.name))?;
            if i == 0 {
                crashpoint::reached("uploading");
            }
        }
        crashpoint::reached("uploaded");
        let sha = hex::encode(Sha256::digest(&bytes));
        create_once(remote, mode, date, MANIFEST_FILE, bytes)?;
        crashpoint::reached("manifested");
        create_once(
            remote,
            mode,
            date,
            SUCCESS_FILE,
            format!("{sha}\n").into_bytes(),
        )?;
    }
    crashpoint::reached("succeeded");
    let done = Head {
        generation: Some(pending.generation.clone()),
        pending: None,
    };
    if let Swap::Lost = remote.swap_head(mode, read, &done)? {
        // Another replica finished the same commit first.
        tracing::debug!(%mode, "the head was advanced by another replica");
    }
    // Keep the base and the one before it for readers still fetching them.
    let base_count = pending
        .base
        .as_deref()
        .and_then(|id| id.split('-').next()?.parse::<u64>().ok())
        .unwrap_or(0);
    if base_count > 1 {
        // Committed already: a failure here only leaves old files behind.
        if let Err(e) = remote.prune_generations(mode, base_count - 1) {
            tracing::warn!(%mode, error = %e, "could not remove old state generations");
        }
    }
    tracing::info!(%mode, dates = ?pending.dates, generation = %pending.generation, "batch committed to the object store");
    Ok(())
}

/// Writes a batch object if it is absent; if it is there, it must be the
/// same bytes (another replica publishing the same commit).
fn create_once(
    remote: &Remote,
    mode: Mode,
    date: BatchDate,
    file: &str,
    bytes: Vec<u8>,
) -> Result<()> {
    match remote.create_batch_file(mode, date, file, bytes.clone())? {
        Created::New => Ok(()),
        Created::Existing(found) if found[..] == bytes[..] => Ok(()),
        Created::Existing(_) => Err(Error::StateMismatch {
            mode,
            problem: format!(
                "{}{file} already holds other bytes than the batch this state commits; nothing was overwritten",
                remote.batch_url(mode, date)
            ),
        }),
    }
}

/// Brings the cache to `generation`: its state files, and exactly the
/// batches its ledger records, each with the recorded manifest (files are
/// fetched when first read, see [`fetch`]).
pub(super) fn sync(
    engine: &Engine,
    remote: &Remote,
    store: &StateStore,
    mode: Mode,
    generation: Option<&str>,
) -> Result<()> {
    let local = store.generation()?;
    if local.as_deref() != generation {
        let dir = store.sync_dir()?;
        if let Some(id) = generation {
            remote.get_generation(mode, id, &dir, &ALL_STATE_FILES, &[DEFECTS_FILE])?;
        }
        store.install()?;
        tracing::info!(%mode, from = ?local, to = ?generation, "state taken from the object store");
    }
    let layout = engine.layout();
    let ledger = store.ledger()?;
    let recorded: BTreeSet<BatchDate> = ledger.iter().map(|e| e.date).collect();
    for date in committed_dates(layout, mode)? {
        if !recorded.contains(&date) {
            let dir = layout.batch_dir(mode, date);
            std::fs::remove_dir_all(&dir).map_err(Error::io("cannot remove", &dir))?;
        }
    }
    for entry in &ledger {
        let dir = layout.batch_dir(mode, entry.date);
        let cached = std::fs::read(dir.join(MANIFEST_FILE))
            .is_ok_and(|b| hex::encode(Sha256::digest(&b)) == entry.manifest_sha256);
        if cached {
            continue;
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(Error::io("cannot remove", &dir))?;
        }
        let missing = |what: &str| Error::StateMismatch {
            mode,
            problem: format!(
                "the state in the bucket records {}, but {}{what}",
                entry.date,
                remote.batch_url(mode, entry.date)
            ),
        };
        if remote
            .get_batch_file(mode, entry.date, SUCCESS_FILE)?
            .is_none()
        {
            return Err(missing(&format!("{SUCCESS_FILE} is missing")));
        }
        let bytes = remote
            .get_batch_file(mode, entry.date, MANIFEST_FILE)?
            .ok_or_else(|| missing(&format!("{MANIFEST_FILE} is missing")))?;
        if hex::encode(Sha256::digest(&bytes)) != entry.manifest_sha256 {
            return Err(missing(&format!("{MANIFEST_FILE} is not the one recorded")));
        }
        let staging = layout.staging_dir(mode, entry.date);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(Error::io("cannot remove", &staging))?;
        }
        std::fs::create_dir_all(&staging).map_err(Error::io("cannot create", &staging))?;
        write_new(&staging.join(MANIFEST_FILE), &bytes)?;
        std::fs::rename(&staging, &dir).map_err(Error::io("cannot move batch into place", &dir))?;
    }
    store.tidy_staging();
    check_agreement(layout, mode, &ledger)
}

/// Downloads a committed batch's files missing from the cache (only `name`
/// if given), each checked against its manifest's sha256.
pub(super) fn fetch(
    engine: &Engine,
    remote: &Remote,
    mode: Mode,
    date: BatchDate,
    name: Option<&str>,
) -> Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static DOWNLOADS: AtomicU64 = AtomicU64::new(0);
    let dir = engine.layout().batch_dir(mode, date);
    let manifest = Manifest::read(&dir)?;
    for file in &manifest.files {
        if name.is_some_and(|n| n != file.name) || dir.join(&file.name).exists() {
            continue;
        }
        // Concurrent readers each write their own part, then rename over.
        let part = dir.join(format!(
            ".{}.{}-{}.part",
            file.name,
            std::process::id(),
            DOWNLOADS.fetch_add(1, Ordering::Relaxed)
        ));
        let object = format!("{}{}", remote.batch_url(mode, date), file.name);
        let sha = remote
            .download_batch_file(mode, date, &file.name, &part)?
            .ok_or_else(|| Error::StateMismatch {
                mode,
                problem: format!("{object} is missing from a committed batch"),
            })?;
        if sha != file.sha256 {
            let _ = std::fs::remove_file(&part);
            return Err(Error::StateMismatch {
                mode,
                problem: format!("{object} does not have the sha256 its manifest records"),
            });
        }
        let target = dir.join(&file.name);
        std::fs::rename(&part, &target).map_err(Error::io("cannot move into place", &target))?;
    }
    Ok(())
}

/// Brings the cache to the bucket's current generation, for readers.
pub(super) fn refresh(
    engine: &Engine,
    remote: &Remote,
    mode: Mode,
    timeout: std::time::Duration,
) -> Result<()> {
    let store = open_cache(engine, remote, mode, timeout)?;
    let read = remote.head(mode)?;
    sync(
        engine,
        remote,
        &store,
        mode,
        read.head.generation.as_deref(),
    )
}

/// Marks a folder as a bucket's cache, naming the bucket.
const CACHE_MARKER: &str = ".datagen-cache";

/// Opens the mode's local state as the bucket's cache. Syncing replaces
/// whatever the cache holds, so a folder is only used as one if it is
/// empty or already this bucket's cache: pointing a bucket at the folders
/// of a local feed must not delete that feed.
fn open_cache(
    engine: &Engine,
    remote: &Remote,
    mode: Mode,
    timeout: std::time::Duration,
) -> Result<StateStore> {
    let store = StateStore::open(engine.layout(), mode, timeout)?;
    let layout = engine.layout();
    let owner = format!("{}\n", remote.describe());
    for (dir, holds) in [
        (
            layout.state_dir(mode),
            store.generation()?.is_some().then_some("a state"),
        ),
        (
            layout.mode_dir(mode),
            (!committed_dates(layout, mode)?.is_empty()).then_some("batches"),
        ),
    ] {
        let marker = dir.join(CACHE_MARKER);
        match std::fs::read_to_string(&marker) {
            Ok(found) if found == owner => {}
            Ok(found) => {
                return Err(Error::StateMismatch {
                    mode,
                    problem: format!(
                        "{} is the cache of {}, not of {}: give this bucket its own --data-dir and --state-dir",
                        dir.display(),
                        found.trim_end(),
                        owner.trim_end()
                    ),
                });
            }
            Err(_) if holds.is_some() => {
                return Err(Error::StateMismatch {
                    mode,
                    problem: format!(
                        "{} holds {} of its own, and with a bucket it would be only a cache that the bucket's content replaces: give the bucket empty folders (--data-dir, --state-dir), or move this feed away first",
                        dir.display(),
                        holds.unwrap_or_default()
                    ),
                });
            }
            Err(_) => write_new(&marker, owner.as_bytes())?,
        }
    }
    Ok(store)
}
