//! `datagen state rebuild`: a mode's state (patient master, encounter
//! counter, ledger) rebuilt from its committed batches, the way back from a
//! state that was lost, damaged, or restored from a backup older than the
//! data.
//!
//! - Every batch is verified against its manifest first: each file's size
//!   and sha256. A damaged batch stops the rebuild before anything is written.
//! - Commit order is recovered from the IDs each batch took from the mode's
//!   counters, which only grow (dates may have been generated in any order).
//! - The master holds each registered patient as the last snapshot in that
//!   order shows them (postal codes change over time).
//! - Whatever can still be read of the old state only raises the counters and
//!   fills in patients whose registering batch is gone: a patient or
//!   encounter number that was ever issued is never issued again.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{LedgerEntry, State, StateStore, committed_dates, files};
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::generate::patients::Patient;
use crate::layout::Layout;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::model::{self, BatchDate, Mode};
use crate::output::file_digest;

/// What a rebuild found and wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuilt {
    /// Committed batches the state was rebuilt from.
    pub batches: usize,
    /// Patients in the new master.
    pub patients: u64,
    /// Of those, taken from the old master because no batch holds their
    /// registration any more.
    pub salvaged_patients: u64,
    pub encounter_counter: u64,
}

/// One committed batch, verified, with the ID ranges it took.
struct Batch {
    date: BatchDate,
    patients: Option<(u64, u64)>,
    encounters: Option<(u64, u64)>,
    manifest_sha256: String,
}

/// Rebuilds `mode`'s state from the committed batches under the mode's data
/// folder, under the mode's lock (waiting up to `timeout`).
pub fn rebuild(layout: &Layout, mode: Mode, timeout: Duration) -> Result<Rebuilt> {
    let store = StateStore::open(layout, mode, timeout)?;
    let old = store.salvage();
    let batches = committed_dates(layout, mode)?
        .into_iter()
        .map(|date| verified(layout, mode, date))
        .collect::<Result<Vec<_>>>()?;
    let batches = commit_order(mode, batches)?;

    let mut master: BTreeMap<u64, Patient> = BTreeMap::new();
    let old_master = old.patients.unwrap_or_default();
    let mut ledger = Vec::with_capacity(batches.len());
    let (mut patients_total, mut encounter_counter) = (0u64, 0u64);
    let mut salvaged_patients = 0;
    for batch in &batches {
        let path = layout
            .batch_dir(mode, batch.date)
            .join(Dataset::Patients.file_name());
        let snapshot = files::read_snapshot(&path).map_err(|e| unreadable(&path, e))?;
        let registered = |n: u64| {
            batch
                .patients
                .is_some_and(|(first, last)| (first..=last).contains(&n))
        };
        for seen in snapshot {
            if registered(seen.number) {
                if master.insert(seen.number, seen.clone()).is_some() {
                    return Err(mismatch(mode, &path, &seen, "is registered twice"));
                }
                continue;
            }
            // A returning patient: registered by an earlier batch, or by one
            // that is gone and only the old master remembers.
            let known = match master.get_mut(&seen.number) {
                Some(known) => known,
                None => {
                    let salvaged = old_master
                        .get(seen.number as usize - 1)
                        .filter(|p| p.number == seen.number)
                        .ok_or_else(|| {
                            mismatch(
                                mode,
                                &path,
                                &seen,
                                "was registered by no committed batch, and the old master does not have them",
                            )
                        })?;
                    salvaged_patients += 1;
                    master
                        .entry(seen.number)
                        .or_insert_with(|| salvaged.clone())
                }
            };
            if (
                &known.mrn,
                &known.first_name,
                &known.last_name,
                known.sex,
                known.birth_date,
            ) != (
                &seen.mrn,
                &seen.first_name,
                &seen.last_name,
                seen.sex,
                seen.birth_date,
            ) {
                return Err(mismatch(
                    mode,
                    &path,
                    &seen,
                    "differs from their registration",
                ));
            }
            known.postal_code = seen.postal_code;
        }
        if let Some((_, last)) = batch.patients {
            patients_total = patients_total.max(last);
        }
        if let Some((_, last)) = batch.encounters {
            encounter_counter = encounter_counter.max(last);
        }
        ledger.push(LedgerEntry {
            date: batch.date,
            patients_total,
            encounter_counter,
            manifest_sha256: batch.manifest_sha256.clone(),
        });
    }

    // Numbers the old state issued stay issued, even if their batch is gone.
    let old_last = old.ledger.as_ref().and_then(|l| l.last());
    let total = [
        patients_total,
        old_master.len() as u64,
        old_last.map_or(0, |e| e.patients_total),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    let counter = [
        encounter_counter,
        old.encounter_counter.unwrap_or(0),
        old_last.map_or(0, |e| e.encounter_counter),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    let mut patients = Vec::with_capacity(total as usize);
    for number in 1..=total {
        let patient = match master.remove(&number) {
            Some(p) => p,
            None => {
                let p = old_master
                    .get(number as usize - 1)
                    .filter(|p| p.number == number)
                    .cloned()
                    .ok_or_else(|| Error::StateMismatch {
                        mode,
                        problem: format!(
                            "patient {} was issued, but no committed batch under {} registers them and the old master cannot supply them; restore the batch that registered them, then rebuild again",
                            model::patient_id(number),
                            layout.mode_dir(mode).display()
                        ),
                    })?;
                salvaged_patients += 1;
                p
            }
        };
        patients.push(patient);
    }
    let rebuilt = Rebuilt {
        batches: ledger.len(),
        patients: total,
        salvaged_patients,
        encounter_counter: counter,
    };
    store.replace(&State {
        patients,
        encounter_counter: counter,
        ledger,
    })?;
    tracing::info!(
        %mode,
        batches = rebuilt.batches,
        patients = rebuilt.patients,
        salvaged = rebuilt.salvaged_patients,
        encounter_counter = rebuilt.encounter_counter,
        "state rebuilt from the committed batches"
    );
    Ok(rebuilt)
}

/// Reads a committed batch's manifest and checks every file it lists
/// against it, returning the ID ranges the batch took.
fn verified(layout: &Layout, mode: Mode, date: BatchDate) -> Result<Batch> {
    let dir = layout.batch_dir(mode, date);
    let refuse = |file: &str, reason: String| Error::Invalid {
        file: dir.join(file).display().to_string(),
        line: None,
        reason: format!(
            "{reason}; the state is not rebuilt from a damaged batch (nothing was written): restore the batch from a backup, or move it away, and rebuild again"
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
    for d in Dataset::ALL {
        if manifest.file(d.file_name()).is_none() {
            return Err(refuse(
                MANIFEST_FILE,
                format!("does not list {}", d.file_name()),
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
    let range = |ids: &Option<[String; 2]>, parse: fn(&str) -> Option<u64>| match ids {
        None => Ok(None),
        Some([first, last]) => match (parse(first), parse(last)) {
            (Some(f), Some(l)) if f <= l => Ok(Some((f, l))),
            _ => Err(refuse(
                MANIFEST_FILE,
                format!("has an unreadable ID range {first}..{last}"),
            )),
        },
    };
    Ok(Batch {
        date,
        patients: range(&manifest.ids.new_patients, model::parse_patient_id)?,
        encounters: range(&manifest.ids.encounters, model::parse_encounter_id)?,
        manifest_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
    })
}

/// The batches in the order they were committed. Each counter only grows,
/// so the batches that took patient numbers are ordered by them, and those
/// that took encounter numbers by those; the two orders are merged, a batch
/// in both taking its place in both. Where nothing orders two batches (one
/// took only patient numbers, the other only encounter numbers, or neither
/// took any), date order decides: the state after them is the same.
fn commit_order(mode: Mode, batches: Vec<Batch>) -> Result<Vec<Batch>> {
    let mut by_patients: Vec<usize> = (0..batches.len())
        .filter(|&i| batches[i].patients.is_some())
        .collect();
    by_patients.sort_by_key(|&i| batches[i].patients);
    let mut by_encounters: Vec<usize> = (0..batches.len())
        .filter(|&i| batches[i].encounters.is_some())
        .collect();
    by_encounters.sort_by_key(|&i| batches[i].encounters);
    type Range = fn(&Batch) -> Option<(u64, u64)>;
    let chains: [(&Vec<usize>, &str, Range); 2] = [
        (&by_patients, "patient", |b| b.patients),
        (&by_encounters, "encounter", |b| b.encounters),
    ];
    for (chain, what, range) in chains {
        for pair in chain.windows(2) {
            if let (Some((_, end)), Some((start, _))) =
                (range(&batches[pair[0]]), range(&batches[pair[1]]))
                && start <= end
            {
                return Err(Error::StateMismatch {
                    mode,
                    problem: format!(
                        "the batches of {} and {} took overlapping {what} numbers",
                        batches[pair[0]].date, batches[pair[1]].date
                    ),
                });
            }
        }
    }
    let mut order = Vec::with_capacity(batches.len());
    let (mut p, mut e) = (0, 0);
    while p < by_patients.len() || e < by_encounters.len() {
        // A batch is next when it heads every chain it is in.
        let ready = |i: usize| {
            (batches[i].patients.is_none() || by_patients.get(p) == Some(&i))
                && (batches[i].encounters.is_none() || by_encounters.get(e) == Some(&i))
        };
        let next = [by_patients.get(p), by_encounters.get(e)]
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| ready(i))
            .min_by_key(|&i| batches[i].date)
            .ok_or_else(|| Error::StateMismatch {
                mode,
                problem:
                    "the ID ranges of the committed batches cross: no commit order explains them"
                        .into(),
            })?;
        if by_patients.get(p) == Some(&next) {
            p += 1;
        }
        if by_encounters.get(e) == Some(&next) {
            e += 1;
        }
        order.push(next);
    }
    // Batches that took no IDs change nothing: placed by date.
    let mut idle: Vec<usize> = (0..batches.len())
        .filter(|&i| batches[i].patients.is_none() && batches[i].encounters.is_none())
        .collect();
    idle.sort_by_key(|&i| batches[i].date);
    let mut merged = Vec::with_capacity(batches.len());
    let mut idle = idle.into_iter().peekable();
    for i in order {
        while let Some(&j) = idle.peek()
            && batches[j].date < batches[i].date
        {
            merged.push(j);
            idle.next();
        }
        merged.push(i);
    }
    merged.extend(idle);
    let mut slots: Vec<Option<Batch>> = batches.into_iter().map(Some).collect();
    Ok(merged.into_iter().filter_map(|i| slots[i].take()).collect())
}

/// A snapshot row that contradicts the rest of the data.
fn mismatch(mode: Mode, path: &Path, seen: &Patient, what: &str) -> Error {
    Error::StateMismatch {
        mode,
        problem: format!("{}: patient {} {what}", path.display(), seen.id()),
    }
}

/// A batch file that matched its sha256 but does not parse: the batch was
/// not written by datagen as it is now.
fn unreadable(path: &Path, e: Error) -> Error {
    match e {
        Error::CorruptState { line, reason, .. } => Error::Invalid {
            file: path.display().to_string(),
            line,
            reason: format!("{reason}; the state cannot be rebuilt from this batch"),
        },
        other => other,
    }
}
