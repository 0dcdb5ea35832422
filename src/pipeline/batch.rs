//! One batch, in the contract's order: volumes, patients, encounters, then
//! vitals streamed encounter by encounter, and the manifest last. Rows go
//! straight to the staged files; only the day's encounters are held in memory.

use std::collections::BTreeSet;
use std::path::Path;

use rand::{Rng, RngExt};

use super::Overrides;
use crate::config::{Config, Volume};
use crate::crashpoint;
use crate::error::Result;
use crate::generate::encounters::{self, Encounter, Pools};
use crate::generate::patients::{self, Patient};
use crate::generate::vitals::{Series, VitalSet};
use crate::generate::{DaySeed, Stream, normal};
use crate::manifest::{FileEntry, Generator, IdRanges, MANIFEST_FILE, Manifest};
use crate::model::{self, BatchDate, Mode};
use crate::output::{CsvFile, Timestamps, Written, write_atomic};
use crate::schema::Dataset;
use crate::state::State;

/// How many patients register and how many encounters are admitted today.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayVolumes {
    pub new_patients: u32,
    pub encounters: u32,
}

/// Configured volumes, scaled on weekends and varied day to day; a per-run
/// override is taken exactly.
pub fn day_volumes<R: Rng + ?Sized>(
    rng: &mut R,
    volume: &Volume,
    date: BatchDate,
    overrides: &Overrides,
) -> DayVolumes {
    let factor = if date.is_weekend() {
        volume.weekend_factor
    } else {
        1.0
    };
    let mut vary = |base: u32| {
        let x = f64::from(base) * factor * (1.0 + volume.jitter * normal(rng));
        x.round().max(0.0) as u32
    };
    let new_patients = vary(volume.new_patients);
    let encounters = vary(volume.encounters);
    DayVolumes {
        new_patients: overrides.new_patients.unwrap_or(new_patients),
        encounters: overrides.encounters.unwrap_or(encounters),
    }
}

/// Generates `date`'s batch into `staging` and advances `state` (patients
/// added or moved, encounter counter); returns the manifest written.
/// `on_file` is called with each staged file's path as soon as it is complete
/// (synced), in contract order, the manifest last.
pub fn build(
    config: &Config,
    mode: Mode,
    date: BatchDate,
    overrides: &Overrides,
    state: &mut State,
    staging: &Path,
    on_file: &mut dyn FnMut(&Path),
) -> Result<Manifest> {
    let seed = DaySeed::new(config.seed, mode, date);
    let volumes = day_volumes(
        &mut seed.rng(Stream::Volumes),
        config.volume(mode),
        date,
        overrides,
    );

    // 1. Patients: today's registrations join the master.
    let first_new = state.patients.len();
    let registered = patients::register(
        &mut seed.rng(Stream::NewPatients),
        &config.population,
        date,
        first_new as u64 + 1,
        volumes.new_patients,
    );
    state.patients.extend(registered);

    // 2. Encounters, for patients registered before today (returning; a
    // backfilled date never sees patients from later dates) or today.
    let returning: Vec<usize> = state.patients[..first_new]
        .iter()
        .enumerate()
        .filter(|(_, p)| p.registered_date < date.date())
        .map(|(i, _)| i)
        .collect();
    let pools = Pools {
        patients: &state.patients,
        returning: &returning,
        new: first_new..state.patients.len(),
    };
    let plan = encounters::plan(
        &mut seed.rng(Stream::Encounters),
        config,
        date,
        &pools,
        volumes.encounters,
        state.encounter_counter + 1,
    )?;
    move_patients(
        &mut seed.rng(Stream::PostalChanges),
        config,
        &plan,
        &mut state.patients,
    );

    let snapshot: BTreeSet<usize> = (first_new..state.patients.len())
        .chain(plan.iter().map(|e| e.patient))
        .collect();

    let mut ts = Timestamps::default();
    // Each file is announced as soon as it is complete, in contract order.
    let mut announce = |written: Written| {
        on_file(&staging.join(&written.name));
        written
    };
    let patients_file = announce(timed(|| {
        write_patients(staging, date, &state.patients, &snapshot)
    })?);
    let encounters_file = announce(timed(|| {
        write_encounters(staging, config, &state.patients, &plan, &mut ts)
    })?);
    let vitals_file = announce(timed(|| {
        write_vitals(staging, config, &seed, &state.patients, &plan, &mut ts)
    })?);

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
    let manifest = Manifest {
        date: date.to_string(),
        mode: mode.to_string(),
        generator: Generator {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        seed: config.seed,
        config_sha256: config.fingerprint(),
        ids,
        files: vec![
            FileEntry::new(patients_file, Dataset::Patients),
            FileEntry::new(encounters_file, Dataset::Encounters),
            FileEntry::new(vitals_file, Dataset::Vitals),
        ],
    };
    write_atomic(&staging.join(MANIFEST_FILE), &manifest.to_bytes())?;
    on_file(&staging.join(MANIFEST_FILE));
    Ok(manifest)
}

/// Runs one file's writer and logs its throughput (the benchmark reads these).
fn timed(write: impl FnOnce() -> Result<Written>) -> Result<Written> {
    let started = std::time::Instant::now();
    let written = write()?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::debug!(
        file = %written.name,
        rows = written.rows,
        bytes = written.bytes,
        seconds,
        rows_per_second = (written.rows as f64 / seconds.max(1e-9)).round(),
        "file written"
    );
    Ok(written)
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

fn write_patients(
    dir: &Path,
    date: BatchDate,
    master: &[Patient],
    snapshot: &BTreeSet<usize>,
) -> Result<Written> {
    let d = Dataset::Patients;
    let mut out = CsvFile::create(dir, d.file_name(), d.header())?;
    let snapshot_date = date.to_string();
    for &i in snapshot {
        let p = &master[i];
        out.row([
            p.id().as_str(),
            &p.mrn,
            &p.first_name,
            &p.last_name,
            p.sex.as_str(),
            &p.birth_date.to_string(),
            &p.postal_code,
            &p.registered_date.to_string(),
            &snapshot_date,
        ])?;
    }
    out.finish()
}

fn write_encounters(
    dir: &Path,
    config: &Config,
    master: &[Patient],
    plan: &[Encounter],
    ts: &mut Timestamps,
) -> Result<Written> {
    let d = Dataset::Encounters;
    let mut out = CsvFile::create(dir, d.file_name(), d.header())?;
    for e in plan {
        let s = &config.scenarios[e.scenario];
        out.field(model::encounter_id(e.number).as_bytes())?;
        out.field(master[e.patient].id().as_bytes())?;
        out.field(s.encounter_type.as_str().as_bytes())?;
        out.field(s.name.as_bytes())?;
        out.field(s.department.as_bytes())?;
        out.field(s.chief_complaints[e.complaint].as_bytes())?;
        out.field(ts.format_naive(e.admit))?;
        out.field(ts.format_naive(e.discharge))?;
        out.field(e.disposition.as_str().as_bytes())?;
        out.end_row()?;
    }
    out.finish()
}

fn write_vitals(
    dir: &Path,
    config: &Config,
    seed: &DaySeed,
    master: &[Patient],
    plan: &[Encounter],
    ts: &mut Timestamps,
) -> Result<Written> {
    let d = Dataset::Vitals;
    let mut out = CsvFile::create(dir, d.file_name(), d.header())?;
    let mut id = Vec::with_capacity(24);
    let mut num = itoa::Buffer::new();
    for (i, e) in plan.iter().enumerate() {
        if i == plan.len() / 2 && crashpoint_armed() {
            out.flush()?;
            crashpoint::reached("vitals");
        }
        let encounter_id = model::encounter_id(e.number);
        let patient_id = master[e.patient].id();
        let scenario = &config.scenarios[e.scenario];
        let series = Series::new(
            seed.rng(Stream::Vitals(e.ordinal)),
            scenario,
            &config.missing,
            e,
        );
        for set in series {
            vital_id(&mut id, &encounter_id, set.seq);
            out.field(&id)?;
            out.field(encounter_id.as_bytes())?;
            out.field(patient_id.as_bytes())?;
            out.field(ts.format(set.measured_at))?;
            write_measurements(&mut out, &mut num, &set)?;
            out.end_row()?;
        }
    }
    out.finish()
}

fn crashpoint_armed() -> bool {
    std::env::var_os(crashpoint::ENV).is_some()
}

/// `E0000000123-V001`: the encounter's ID and the set's position, so vitals
/// never need a global counter.
fn vital_id(buf: &mut Vec<u8>, encounter_id: &str, seq: u32) {
    buf.clear();
    buf.extend_from_slice(encounter_id.as_bytes());
    buf.extend_from_slice(b"-V");
    if seq < 1000 {
        buf.extend_from_slice(&[
            b'0' + (seq / 100) as u8,
            b'0' + (seq / 10 % 10) as u8,
            b'0' + (seq % 10) as u8,
        ]);
    } else {
        buf.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    }
}

fn write_measurements(out: &mut CsvFile, num: &mut itoa::Buffer, set: &VitalSet) -> Result<()> {
    for value in [
        set.heart_rate,
        set.systolic_bp,
        set.diastolic_bp,
        set.respiratory_rate,
    ] {
        match value {
            Some(v) => out.field(num.format(v).as_bytes())?,
            None => out.field(b"")?,
        }
    }
    match set.temperature_dc {
        Some(tenths) => {
            let mut text = [0u8; 8];
            let whole = num.format(tenths / 10).as_bytes();
            let n = whole.len();
            text[..n].copy_from_slice(whole);
            text[n] = b'.';
            text[n + 1] = b'0' + (tenths % 10) as u8;
            out.field(&text[..n + 2])?;
        }
        None => out.field(b"")?,
    }
    match set.spo2 {
        Some(v) => out.field(num.format(v).as_bytes()),
        None => out.field(b""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vital_ids_are_padded_to_three_digits() {
        let mut buf = Vec::new();
        vital_id(&mut buf, "E0000000123", 7);
        assert_eq!(buf, b"E0000000123-V007");
        vital_id(&mut buf, "E0000000123", 1234);
        assert_eq!(buf, b"E0000000123-V1234");
    }

    #[test]
    fn overrides_are_exact_and_weekends_are_quieter() {
        let volume = Volume {
            new_patients: 1000,
            encounters: 4000,
            weekend_factor: 0.5,
            jitter: 0.05,
        };
        let seed = DaySeed::new(1, Mode::Raw, "2026-02-07".parse().unwrap());
        let saturday = day_volumes(
            &mut seed.rng(Stream::Volumes),
            &volume,
            "2026-02-07".parse().unwrap(),
            &Overrides::default(),
        );
        let monday = day_volumes(
            &mut seed.rng(Stream::Volumes),
            &volume,
            "2026-02-09".parse().unwrap(),
            &Overrides::default(),
        );
        assert!(
            saturday.encounters < 2_600 && monday.encounters > 3_400,
            "{saturday:?} {monday:?}"
        );
        let exact = Overrides {
            new_patients: Some(3),
            encounters: Some(0),
        };
        let v = day_volumes(
            &mut seed.rng(Stream::Volumes),
            &volume,
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
