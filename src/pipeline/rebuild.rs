//! `datagen state rebuild`: a mode's state (patient master, encounter
//! counter, census, ledger) rebuilt by replaying its committed batches, the
//! way back from a state that was lost, damaged, or restored from a backup
//! older than the data.
//!
//! Each day's batch is a pure function of the config, the seed, its day's
//! volumes (which its manifest records) and the state before it, so
//! generating the days again from an empty state, in order, gives the state
//! every committed batch was made from, and the same IDs: none is ever issued
//! twice. Every regenerated batch must have exactly the committed manifest;
//! the committed files are checked against their manifests first (sizes and
//! sha256). A day whose batch directory is gone, but which the old ledger or
//! the days around it place in the sequence, is generated again into place,
//! byte for byte.

use std::collections::BTreeSet;

use super::{Engine, Overrides, batch};
use crate::dataset::{Dataset, OutputFormat};
use crate::error::{Error, Result};
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::model::{BatchDate, Mode};
use crate::output::file_digest;
use crate::state::{LEDGER_FILE, LedgerEntry, State, StateStore, committed_dates, read_ledger};

/// What a rebuild found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuilt {
    /// Days replayed.
    pub batches: usize,
    /// Of those, batches that were missing and were generated again.
    pub restored: usize,
    pub patients: u64,
    pub encounter_counter: u64,
    /// Encounters carried to the day after the last one.
    pub census: usize,
}

/// Replays `mode`'s days from the first to the last committed one, under
/// `store`'s lock, and installs the state that results.
pub fn replay(engine: &Engine, store: &StateStore, mode: Mode) -> Result<Rebuilt> {
    let layout = engine.layout();
    let config = engine.config();
    let mut dates: BTreeSet<BatchDate> = committed_dates(layout, mode)?;
    // Days the old ledger knows, if it can still be read, mark batches
    // that went missing, and say which volumes to make them with again.
    let ledger_path = layout.state_dir(mode).join(LEDGER_FILE);
    let old = read_ledger(&ledger_path).unwrap_or_default();
    dates.extend(old.iter().map(|e| e.date));
    let (Some(&first), Some(&last)) = (dates.first(), dates.last()) else {
        store.replace(&State::default())?;
        return Ok(Rebuilt {
            batches: 0,
            restored: 0,
            patients: 0,
            encounter_counter: 0,
            census: 0,
        });
    };
    // Check every committed file before anything is generated.
    let mut committed = Vec::new();
    for date in &dates {
        let dir = layout.batch_dir(mode, *date);
        committed.push(if dir.exists() {
            Some(verified(&dir, mode, *date, config)?)
        } else {
            None
        });
    }

    // The batches' own defects profile, as their manifests record it.
    let recorded = committed
        .iter()
        .flatten()
        .find_map(|(m, _)| m.defects.clone());
    let rates = super::recorded_rates(config, recorded.as_deref(), mode)?;
    let mut state = State::default();
    // Missing days no ledger gives volumes for, generated with the config's.
    let mut guessed = Vec::new();
    // Missing days generated again, left staged until every later day has
    // been reproduced: a rebuild that fails writes nothing.
    let mut missing: Vec<BatchDate> = Vec::new();
    let discard = |missing: &[BatchDate]| missing.iter().for_each(|d| store.abort(*d));
    let mut day = first;
    // A missing day is written as the day before it was (or, first, as the
    // first committed day): no ledger records a batch's files.
    let format_of = |m: &Manifest| OutputFormat::of_files(m.files.iter().map(|f| f.name.as_str()));
    let mut last_format = committed
        .iter()
        .flatten()
        .next()
        .map_or(config.output.format, |(m, _)| format_of(m));
    let mut known = committed.into_iter();
    let mut replayed = 0;
    loop {
        // Days between known ones are replayed too: batches run one day at a time.
        let manifest = if dates.contains(&day) {
            known.next().flatten()
        } else {
            None
        };
        let volumes = manifest
            .as_ref()
            .map(|(m, _)| m.volumes)
            .or_else(|| old.iter().find(|e| e.date == day).map(|e| e.volumes));
        if volumes.is_none() {
            guessed.push(day.to_string());
        }
        let overrides = volumes.map_or_else(Overrides::default, |v| Overrides {
            new_patients: Some(v.new_patients),
            encounters: Some(v.encounters),
            ..Overrides::default()
        });
        let format = manifest.as_ref().map_or(last_format, |(m, _)| format_of(m));
        last_format = format;
        let staging = store.begin(day)?;
        let built = batch::build(
            config,
            mode,
            day,
            &overrides,
            &rates,
            format,
            config.generation.effective_threads(),
            &mut state,
            &staging,
            &mut |_| {},
        )
        .and_then(|(built, syncs)| syncs.wait().map(|()| built));
        let built = match built {
            Ok(built) => built,
            Err(e) => {
                store.abort(day);
                discard(&missing);
                return Err(e);
            }
        };
        let target = layout.batch_dir(mode, day);
        match &manifest {
            Some((_, bytes)) if *bytes == built.to_bytes() => {
                remove(&staging)?;
            }
            Some(_) => {
                store.abort(day);
                discard(&missing);
                let why = if guessed.is_empty() {
                    "were they made with another config or datagen version, or in another order?"
                        .to_string()
                } else {
                    format!(
                        "the missing batch of {} was generated again with the config's volumes, since no ledger records its own: restore it from a backup",
                        guessed.join(", ")
                    )
                };
                return Err(Error::NotRebuilt {
                    mode,
                    problem: format!(
                        "{} cannot be reproduced: generating {day} again from the batches before it gives another manifest ({why})",
                        target.join(MANIFEST_FILE).display()
                    ),
                });
            }
            None => missing.push(day),
        }
        state.ledger.push(LedgerEntry {
            date: day,
            volumes: built.volumes,
            patients_total: state.patients.len() as u64,
            encounter_counter: state.encounter_counter,
            census: state.census.len() as u64,
            manifest_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(built.to_bytes())),
        });
        replayed += 1;
        if day >= last {
            break;
        }
        match day.succ() {
            Some(next) => day = next,
            None => break,
        }
    }
    for day in &missing {
        let (staging, target) = (layout.staging_dir(mode, *day), layout.batch_dir(mode, *day));
        std::fs::rename(&staging, &target)
            .map_err(Error::io("cannot move batch into place", &target))?;
        tracing::warn!(%mode, %day, "state rebuild: generated a missing batch again");
    }
    if !missing.is_empty() {
        crate::output::sync_dir(&layout.mode_dir(mode))?;
    }
    store.tidy_staging();
    let rebuilt = Rebuilt {
        batches: replayed,
        restored: missing.len(),
        patients: state.patients.len() as u64,
        encounter_counter: state.encounter_counter,
        census: state.census.len(),
    };
    store.replace(&state)?;
    tracing::info!(
        %mode,
        batches = rebuilt.batches,
        restored = rebuilt.restored,
        patients = rebuilt.patients,
        encounter_counter = rebuilt.encounter_counter,
        census = rebuilt.census,
        "state rebuilt by replaying the committed batches"
    );
    Ok(rebuilt)
}

fn remove(dir: &std::path::Path) -> Result<()> {
    std::fs::remove_dir_all(dir).map_err(Error::io("cannot remove", dir))
}

/// A committed batch's manifest (and its bytes), with every file it lists
/// checked against it, and made with this config.
fn verified(
    dir: &std::path::Path,
    mode: Mode,
    date: BatchDate,
    config: &crate::config::Config,
) -> Result<(Manifest, Vec<u8>)> {
    let refuse = |file: &str, reason: String| Error::Invalid {
        file: dir.join(file).display().to_string(),
        line: None,
        reason: format!(
            "{reason}; the state is not rebuilt from a damaged batch (nothing was written): restore the batch from a backup, or move it away (it is then generated again), and rebuild again"
        ),
    };
    let bytes = std::fs::read(dir.join(MANIFEST_FILE))
        .map_err(|e| refuse(MANIFEST_FILE, format!("cannot be read ({e})")))?;
    let manifest = Manifest::parse(&bytes, &dir.join(MANIFEST_FILE))?;
    if manifest.date != date || manifest.mode != mode {
        return Err(refuse(
            MANIFEST_FILE,
            format!(
                "describes {} {}, not {mode} {date}",
                manifest.mode, manifest.date
            ),
        ));
    }
    if manifest.seed != config.seed || manifest.config_sha256 != config.fingerprint() {
        return Err(refuse(
            MANIFEST_FILE,
            format!(
                "was made with seed {} and config {}, not this config's seed {} and {}: rebuild with the config the batches were made with",
                manifest.seed,
                manifest.config_sha256,
                config.seed,
                config.fingerprint()
            ),
        ));
    }
    for d in Dataset::ALL {
        if manifest.file(d.file_name()).is_none() && manifest.file(&d.parquet_file_name()).is_none()
        {
            return Err(refuse(
                MANIFEST_FILE,
                format!(
                    "does not list {} or {}",
                    d.file_name(),
                    d.parquet_file_name()
                ),
            ));
        }
    }
    for entry in &manifest.files {
        let (size, sha) = file_digest(&dir.join(&entry.name))
            .map_err(|e| refuse(&entry.name, format!("cannot be read ({e})")))?;
        if (size, sha.as_str()) != (entry.bytes, entry.sha256.as_str()) {
            return Err(refuse(
                &entry.name,
                format!(
                    "is {size} bytes with sha256 {sha}; the manifest says {} bytes with sha256 {}",
                    entry.bytes, entry.sha256
                ),
            ));
        }
    }
    Ok((manifest, bytes))
}
