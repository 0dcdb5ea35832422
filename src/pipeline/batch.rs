//! One batch, in the contract's order: volumes, patients, encounters, then
//! vitals, labs and notes encounter by encounter ([`super::clinical`]), and
//! the manifest last. Generators return typed rows ([`crate::rows`]) and the
//! writers encode them; only the day's encounters are held in memory.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::Path;

use rand::{Rng, RngExt};

use super::Overrides;
use super::clinical::{self, Facts};
use crate::config::{Config, Volume};
use crate::dataset::{Dataset, OutputFormat};
use crate::defects::{DayDefects, Ledger, Rates};
use crate::error::{Error, Result};
use crate::generate::encounters::{self, Encounter, Pools};
use crate::generate::patients::{self, Patient};
use crate::generate::{DaySeed, Stream, normal};
use crate::manifest::{FileEntry, Generator, IdRanges, MANIFEST_FILE, Manifest};
use crate::model::{self, BatchDate, Disposition, EncounterType, Mode};
use crate::output::{Chunk, Syncs, Truth, Unsynced, Written, write_rows};
use crate::rows::{EncounterRow, PatientRow};
use crate::state::{Carried, State};

/// How many patients register and how many encounters are planned today
/// (before the inpatient stays emergency visits continue as). The manifest
/// records them, so a day can be generated again exactly.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct DayVolumes {
    pub new_patients: u32,
    pub encounters: u32,
}

/// Configured volumes, varied day to day: registrations scaled by the
/// volume's weekend factor, encounters by `encounter_factor` (the
/// scenarios' own factors for the day, see [`Config::encounter_factor`]); a
/// per-run override is taken exactly.
pub fn day_volumes<R: Rng + ?Sized>(
    rng: &mut R,
    volume: &Volume,
    encounter_factor: f64,
    date: BatchDate,
    overrides: &Overrides,
) -> DayVolumes {
    let registration_factor = if date.is_weekend() {
        volume.weekend_factor
    } else {
        1.0
    };
    let mut vary = |base: u32, factor: f64| {
        let x = f64::from(base) * factor * (1.0 + volume.jitter * normal(rng));
        x.round().max(0.0) as u32
    };
    let new_patients = vary(volume.new_patients, registration_factor);
    let encounters = vary(volume.encounters, encounter_factor);
    DayVolumes {
        new_patients: overrides.new_patients.unwrap_or(new_patients),
        encounters: overrides.encounters.unwrap_or(encounters),
    }
}

/// The day a batch covers: `[start, end)` in epoch seconds, UTC.
#[derive(Clone, Copy, Debug)]
pub struct Day {
    pub start: i64,
    pub end: i64,
}

impl Day {
    pub fn of(date: BatchDate) -> Day {
        let start = date
            .date()
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp();
        Day {
            start,
            end: start + 86_400,
        }
    }

    pub fn contains(self, at: i64) -> bool {
        (self.start..self.end).contains(&at)
    }
}

/// Generates `date`'s batch into `staging` and advances `state` (patients
/// added, moved or deceased, the encounter counter, the census of
/// encounters carried to the next day, the rows the defects hold back for
/// later batches); returns the manifest written and
/// the data files' syncs, still under way, for the commit to wait on.
/// `on_file` is called with each staged file's path as soon as it is
/// written, in contract order, the manifest last.
///
/// The batch holds what happened on `date`: the encounters admitted or
/// finished that day (an upsert feed), the vitals measured, labs resulted
/// and notes authored that day for every encounter concerned, whatever day
/// it was admitted, and the patients all of these refer to.
#[allow(clippy::too_many_arguments)]
pub fn build(
    config: &Config,
    mode: Mode,
    date: BatchDate,
    overrides: &Overrides,
    rates: &Rates,
    format: OutputFormat,
    threads: usize,
    state: &mut State,
    staging: &Path,
    on_file: &mut (dyn FnMut(&Path) + Send),
) -> Result<(Manifest, Syncs)> {
    let seed = DaySeed::new(config.seed, mode, date);
    let day = Day::of(date);
    let defects = DayDefects::new(rates, &seed, date);
    let mut ledger = state.defects.take().unwrap_or_else(|| Ledger {
        profile: rates.record(),
        pending: Vec::new(),
    });
    let (due, mut pending): (Vec<_>, Vec<_>) = std::mem::take(&mut ledger.pending)
        .into_iter()
        .partition(|p| p.due <= date);
    let first_batch = state.ledger.is_empty();
    let mut carried = resolve_census(config, &state.census)?;
    let volumes = day_volumes(
        &mut seed.rng(Stream::Volumes),
        config.volume(mode),
        config.encounter_factor(date),
        date,
        overrides,
    );
    // The hospital is already running on a mode's first day: it has its
    // patients, and some of them are in its beds.
    let opening = first_batch && state.patients.is_empty() && carried.is_empty();
    let population = config.volume(mode).population;

    // 1. Patients: today's registrations join the master. On a mode's first
    // day they are drawn while the population is (each has its own stream).
    let first_new = if opening {
        population as usize
    } else {
        state.patients.len()
    };
    let register = || {
        patients::register(
            &mut seed.rng(Stream::NewPatients),
            &config.population,
            date,
            first_new as u64 + 1,
            volumes.new_patients,
        )
    };
    let registered = if opening {
        std::thread::scope(|scope| {
            let registering = scope.spawn(register);
            state.patients = patients::population(
                &mut seed.rng(Stream::Population),
                &config.population,
                date,
                population,
            );
            let stays = encounters::warm_start(
                config,
                config.seed,
                mode,
                date,
                &state.patients,
                state.encounter_counter + 1,
            );
            if let Some(last) = stays.iter().map(|e| e.number).max() {
                state.encounter_counter = last;
            }
            carried = stays;
            registering
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    } else {
        register()
    };
    state.patients.extend(registered);

    // The pass starts on the census's stays while the day is planned: it
    // reads only what registration fixed of each patient, and the plan
    // changes none of that.
    let facts: Vec<Facts> = state.patients.iter().map(Facts::of).collect();
    let mut inputs = clinical::Inputs::new(
        config,
        mode,
        day,
        &facts,
        carried
            .iter()
            .map(|e| e.plan_date)
            .chain(std::iter::once(date)),
    );
    inputs.defects = &defects;
    inputs.format = format;
    // Rows due today from earlier batches go after the day's own.
    let tails = clinical::DATASETS.map(|dataset| {
        let mut chunk = Chunk::default();
        let rows: Vec<_> = due
            .iter()
            .filter(|p| p.dataset == dataset)
            .cloned()
            .collect();
        if let Some(file) = defects.file(dataset) {
            file.deliver(&mut chunk, &rows);
        }
        chunk
    });
    let planned = std::sync::OnceLock::new();
    let shared = clinical::Shared::new(threads);
    // Each file is announced as soon as it is written, in contract order.
    // The disk is handed each file's bytes while it is written (see
    // `output::HashingFile`); the syncs start once all are written (syncing
    // one file while writing the next slows the writes down on ext4), and
    // the commit waits for them.
    let mut files: Vec<Unsynced> = Vec::with_capacity(Dataset::ALL.len() + 1);
    // Each file's defects, in file order: their labels and the rows held.
    let truth = std::sync::Mutex::new(Truth::default());
    let mut announce = |mut file: Unsynced| {
        on_file(&staging.join(&file.written().name));
        log_written(file.written());
        let mut t = file.take_truth();
        if let Ok(mut all) = truth.lock() {
            all.labels.append(&mut t.labels);
            all.held.append(&mut t.held);
        }
        files.push(file);
    };
    // Vitals, labs and notes are written in one pass, encounter by encounter;
    // chunks of encounters are rendered on `threads` threads and written in
    // number order: the census's first, the day's own once planned. This
    // thread then writes the patients and encounters files while the pass
    // goes on.
    let (clinical, last_events, ids) = std::thread::scope(|scope| {
        let mut pass = clinical::Pass::start(scope, &shared, staging, &inputs, threads, tails)?;
        pass.submit(&carried);

        let (plan, ids) = plan_day(config, &seed, date, volumes, state, first_new, &carried)?;
        let plan: &Vec<Encounter> = planned.get_or_init(|| plan);
        pass.submit(plan);
        // The workers start on the plan while this thread applies it to the
        // master: the pass reads none of what it changes.
        apply_plan(config, &seed, date, plan, &mut state.patients);

        // 3. Everything under way today, by encounter number: the census first.
        let active = || carried.iter().chain(plan);
        for e in active() {
            if e.disposition == Disposition::Expired && day.contains(e.discharge_secs()) {
                state.patients[e.patient].deceased_date = Some(date.date());
            }
        }
        let snapshot: BTreeSet<usize> = (first_new..state.patients.len())
            .chain(active().filter(|e| inputs.touches(e)).map(|e| e.patient))
            .collect();
        let snapshot_date = date.date();
        let master = &state.patients;
        let (clinical, last_events) = pass.finish(&mut || {
            for file in write_rows(
                staging,
                snapshot.iter().map(|&i| PatientRow {
                    patient: &master[i],
                    snapshot_date,
                }),
                defects.file(Dataset::Patients),
                format,
            )? {
                announce(file);
            }
            for file in write_rows(
                staging,
                active().filter_map(|e| encounter_row(config, master, e, day, first_batch)),
                defects.file(Dataset::Encounters),
                format,
            )? {
                announce(file);
            }
            Ok(())
        })?;
        Ok::<_, Error>((clinical, last_events, ids))
    })?;
    for file in clinical {
        announce(file);
    }
    // The ground truth, and the rows held for later.
    if !rates.is_clean() {
        let Truth { labels, held } = truth
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for file in write_rows(staging, labels, None, OutputFormat::Csv)? {
            announce(file);
        }
        pending.extend(held);
        ledger.pending = pending;
        state.defects = Some(ledger);
    }
    let mut syncs = Syncs::default();
    let written: Vec<Written> = files.into_iter().map(|f| syncs.start(f)).collect();

    // 4. The census: whatever still has something to happen after today.
    state.census = carried
        .into_iter()
        .chain(planned.into_inner().unwrap_or_default())
        .zip(last_events)
        .filter(|(_, last)| *last >= day.end)
        .map(|(encounter, _)| Carried {
            scenario: config.scenarios[encounter.scenario].name.clone(),
            encounter,
        })
        .collect();

    let manifest = Manifest {
        date,
        mode,
        generator: Generator {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        seed: config.seed,
        config_sha256: config.fingerprint(),
        volumes,
        ids,
        files: written
            .into_iter()
            .filter_map(|file| {
                let dataset = Dataset::of_file(&file.name)?;
                let mut entry = FileEntry::new(file, dataset);
                if let Some(drifted) = defects.file(dataset).filter(|f| f.drift.is_some()) {
                    entry.schema_version = drifted.schema_version(&entry.schema_version);
                    entry.columns = Some(drifted.columns());
                }
                Some(entry)
            })
            .collect(),
        defects: (!rates.is_clean()).then(|| rates.record()),
    };
    // Synced with the data files: the commit waits for all of them (and
    // the staging folder's entries) before its marker.
    let path = staging.join(MANIFEST_FILE);
    let mut file = std::fs::File::create(&path).map_err(Error::io("cannot create", &path))?;
    file.write_all(&manifest.to_bytes())
        .map_err(Error::io("cannot write", &path))?;
    on_file(&path);
    syncs.sync(path, file);
    Ok((manifest, syncs))
}

/// Step 2, encounters: the day's plan, for patients registered before
/// today, alive, and not in the middle of another encounter (returning; a
/// date never sees patients of a later one), or today; with the returns it
/// took off the master and the counter advanced. [`apply_plan`] does the
/// rest of what it leaves on the master.
fn plan_day(
    config: &Config,
    seed: &DaySeed,
    date: BatchDate,
    volumes: DayVolumes,
    state: &mut State,
    first_new: usize,
    carried: &[Encounter],
) -> Result<(Vec<Encounter>, IdRanges)> {
    let day = Day::of(date);
    let occupied: HashSet<usize> = carried.iter().map(|e| e.patient).collect();
    let returning: Vec<usize> = state.patients[..first_new]
        .iter()
        .enumerate()
        .filter(|(i, p)| patients::can_return_on(p, date.date()) && !occupied.contains(i))
        .map(|(i, _)| i)
        .collect();
    let returns = returns_due(&mut state.patients, day, &occupied);
    let pools = Pools {
        patients: &state.patients,
        returning: &returning,
        new: first_new..state.patients.len(),
        returns: &returns,
    };
    let plan = encounters::plan(
        &mut seed.rng(Stream::Encounters),
        config,
        date,
        &pools,
        volumes.encounters,
        state.encounter_counter + 1,
    )?;
    let ids = IdRanges {
        new_patients: (volumes.new_patients > 0).then(|| {
            [
                model::patient_id(first_new as u64 + 1),
                model::patient_id(state.patients.len() as u64),
            ]
        }),
        encounters: plan.first().zip(plan.last()).map(|(first, last)| {
            [
                model::encounter_id(first.number),
                model::encounter_id(last.number),
            ]
        }),
    };
    if let Some(last) = plan.last() {
        state.encounter_counter = last.number;
    }
    Ok((plan, ids))
}

/// What the day's plan leaves on its patients besides the returns taken:
/// moves, and visits remembered.
fn apply_plan(
    config: &Config,
    seed: &DaySeed,
    date: BatchDate,
    plan: &[Encounter],
    master: &mut [Patient],
) {
    move_patients(&mut seed.rng(Stream::PostalChanges), config, plan, master);
    remember_visits(&mut seed.rng(Stream::Returns), config, date, plan, master);
}

/// The census as encounters of this config, by scenario name.
fn resolve_census(config: &Config, census: &[Carried]) -> Result<Vec<Encounter>> {
    census
        .iter()
        .map(|c| {
            let scenario = config
                .scenarios
                .iter()
                .position(|s| s.name == c.scenario)
                .ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "encounter {} under way names scenario {:?}, which the config no longer has; restore that scenario to go on",
                        model::encounter_id(c.encounter.number),
                        c.scenario
                    ))
                })?;
            Ok(Encounter {
                scenario,
                ..c.encounter.clone()
            })
        })
        .collect()
}

fn log_written(written: &Written) {
    tracing::debug!(
        file = %written.name,
        rows = written.rows,
        bytes = written.bytes,
        "file written"
    );
}

/// A small share of returning patients seen today have moved.
fn move_patients<R: Rng + ?Sized>(
    rng: &mut R,
    config: &Config,
    plan: &[Encounter],
    master: &mut [Patient],
) {
    let rate = config.population.postal_code_change_rate;
    let mut seen = BTreeSet::new();
    for e in plan.iter().filter(|e| e.returning) {
        if seen.insert(e.patient) && rng.random_bool(rate) {
            let p = &mut master[e.patient];
            p.postal_code = patients::moved_postal_code(rng, &p.postal_code);
        }
    }
}

/// The emergency returns due on `day` (patients neither dead nor in a stay
/// then), in patient order; every return due by the day's end is taken off
/// the master, kept or not.
fn returns_due(master: &mut [Patient], day: Day, occupied: &HashSet<usize>) -> Vec<(usize, i64)> {
    let mut due = Vec::new();
    for (i, p) in master.iter_mut().enumerate() {
        let Some(at) = p.ed_return_at else { continue };
        if at >= day.end {
            continue;
        }
        p.ed_return_at = None;
        if at >= day.start && p.deceased_date.is_none() && !occupied.contains(&i) {
            due.push((i, at));
        }
    }
    due
}

/// What the day's plan leaves on its patients: the day of each visit to a
/// scenario with a minimum gap, and a return to the emergency department
/// for some patients it sent home, more likely the more they seek care
/// (NHAMCS: about 3.6% of ED visits return within 72 hours).
fn remember_visits<R: Rng + ?Sized>(
    rng: &mut R,
    config: &Config,
    date: BatchDate,
    plan: &[Encounter],
    master: &mut [Patient],
) {
    let rate = config.population.ed_return_rate;
    for e in plan {
        let s = &config.scenarios[e.scenario];
        let p = &mut master[e.patient];
        if s.min_gap_days > 0 {
            p.last_visits.retain(|(name, _)| *name != s.name);
            p.last_visits.push((s.name.clone(), date.date()));
        }
        let sent_home = matches!(
            e.disposition,
            Disposition::Home | Disposition::LeftAgainstMedicalAdvice
        );
        if s.encounter_type == EncounterType::Emergency && sent_home {
            let chance = (rate * (f64::from(p.propensity) / 100.0).sqrt()).min(1.0);
            if rng.random_bool(chance) {
                // Between 4 and 72 hours after leaving.
                let after = rng.random_range(4 * 60..=72 * 60i64) * 60;
                p.ed_return_at = Some(e.discharge_secs() + after);
            }
        }
    }
}

/// The row `e` gets in the day's upsert feed, if any: on the day it is
/// admitted (open, or finished if it also ends that day), and on the day it
/// ends. On a mode's first day, the stays already under way appear too.
fn encounter_row<'a>(
    config: &'a Config,
    patients: &[Patient],
    e: &Encounter,
    day: Day,
    first_batch: bool,
) -> Option<EncounterRow<'a>> {
    let (admit, discharge) = (e.admit_secs(), e.discharge_secs());
    let admitted =
        day.contains(admit) || (first_batch && admit < day.start && discharge >= day.start);
    let finished = discharge < day.end;
    if !(admitted || (day.contains(discharge) && admit < day.start)) {
        return None;
    }
    let s = &config.scenarios[e.scenario];
    Some(EncounterRow {
        number: e.number,
        patient: patients[e.patient].number,
        encounter_type: s.encounter_type,
        scenario: &s.name,
        department: &s.department,
        chief_complaint: &s.chief_complaints[e.complaint],
        admit,
        end: finished.then_some((discharge, e.disposition)),
        source: e.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_exact_and_weekends_are_quieter() {
        let volume = Volume {
            population: 0,
            new_patients: 1000,
            encounters: 4000,
            weekend_factor: 0.5,
            jitter: 0.05,
        };
        let seed = DaySeed::new(1, Mode::Raw, "2026-02-07".parse().unwrap());
        let saturday = day_volumes(
            &mut seed.rng(Stream::Volumes),
            &volume,
            0.5,
            "2026-02-07".parse().unwrap(),
            &Overrides::default(),
        );
        let monday = day_volumes(
            &mut seed.rng(Stream::Volumes),
            &volume,
            1.0,
            "2026-02-09".parse().unwrap(),
            &Overrides::default(),
        );
        assert!(
            saturday.encounters < 2_600 && monday.encounters > 3_400,
            "{saturday:?} {monday:?}"
        );
        assert!(
            saturday.new_patients < 650 && monday.new_patients > 850,
            "{saturday:?} {monday:?}"
        );
        let exact = Overrides {
            new_patients: Some(3),
            encounters: Some(0),
            ..Overrides::default()
        };
        let v = day_volumes(
            &mut seed.rng(Stream::Volumes),
            &volume,
            0.5,
            "2026-02-07".parse().unwrap(),
            &exact,
        );
        assert_eq!(
            v,
            DayVolumes {
                new_patients: 3,
                encounters: 0
            }
        );
    }
}
