//! One batch, in the contract's order: volumes, patients, encounters, then
//! vitals streamed encounter by encounter, and the manifest last. Rows go
//! straight to the staged files; only the day's encounters are held in memory.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::{Rng, RngExt};

use super::Overrides;
use crate::config::{Config, Volume};
use crate::crashpoint;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::generate::course::Course;
use crate::generate::encounters::{self, Encounter, Pools};
use crate::generate::labs;
use crate::generate::notes::{self, Chart};
use crate::generate::patients::{self, Patient};
use crate::generate::vitals::{Series, VitalSet};
use crate::generate::{DaySeed, Stream, normal};
use crate::manifest::{FileEntry, Generator, IdRanges, MANIFEST_FILE, Manifest};
use crate::model::{self, BatchDate, Mode};
use crate::output::{CsvFile, JsonLinesFile, Timestamps, Written, write_atomic};
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

    // 2. Encounters, for patients registered before today and still alive
    // (returning; a backfilled date never sees patients from later dates) or
    // today.
    let returning: Vec<usize> = state.patients[..first_new]
        .iter()
        .enumerate()
        .filter(|(_, p)| p.can_return_on(date.date()))
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
    // Vitals, labs and notes are written in one pass, encounter by encounter,
    // so each encounter's story is generated once and held only while its rows
    // are written.
    let [vitals_file, labs_file, notes_file] = write_clinical(
        staging,
        config,
        &seed,
        date,
        &state.patients,
        &plan,
        &mut ts,
    )?
    .map(&mut announce);

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
            FileEntry::new(labs_file, Dataset::Labs),
            FileEntry::new(notes_file, Dataset::Notes),
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
    log_written(&written, started.elapsed().as_secs_f64());
    Ok(written)
}

fn log_written(written: &Written, seconds: f64) {
    tracing::debug!(
        file = %written.name,
        rows = written.rows,
        bytes = written.bytes,
        seconds,
        rows_per_second = (written.rows as f64 / seconds.max(1e-9)).round(),
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

fn write_patients(
    dir: &Path,
    date: BatchDate,
    master: &[Patient],
    snapshot: &BTreeSet<usize>,
) -> Result<Written> {
    let d = Dataset::Patients;
    let mut out = CsvFile::create(dir, d.file_name(), crate::schema::header(d))?;
    let snapshot_date = date.to_string();
    for &i in snapshot {
        let record = master[i].record();
        out.row(
            record
                .iter()
                .map(|field| field.as_ref())
                .chain([snapshot_date.as_str()]),
        )?;
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
    let mut out = CsvFile::create(dir, d.file_name(), crate::schema::header(d))?;
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

/// Writes vitals.csv, labs.csv and notes.jsonl together, one encounter at a
/// time, logging each file's own share of the time.
fn write_clinical(
    dir: &Path,
    config: &Config,
    seed: &DaySeed,
    date: BatchDate,
    master: &[Patient],
    plan: &[Encounter],
    ts: &mut Timestamps,
) -> Result<[Written; 3]> {
    let mut vitals_out = CsvFile::create(
        dir,
        Dataset::Vitals.file_name(),
        crate::schema::header(Dataset::Vitals),
    )?;
    let mut labs_out = CsvFile::create(
        dir,
        Dataset::Labs.file_name(),
        crate::schema::header(Dataset::Labs),
    )?;
    let mut notes_out = JsonLinesFile::create(dir, Dataset::Notes.file_name())?;
    let mut spent = [Duration::ZERO; 3];
    let mut id = Vec::with_capacity(24);
    let mut num = itoa::Buffer::new();
    let mut text = String::new();
    let mut sets: Vec<VitalSet> = Vec::new();
    for (i, e) in plan.iter().enumerate() {
        if i == plan.len() / 2 && crashpoint::armed() {
            vitals_out.flush()?;
            crashpoint::reached("vitals");
            crashpoint::failure("vitals").map_err(Error::io(
                "cannot write",
                dir.join(Dataset::Vitals.file_name()),
            ))?;
        }
        let encounter_id = model::encounter_id(e.number);
        let patient = &master[e.patient];
        let patient_id = patient.id();
        let scenario = &config.scenarios[e.scenario];
        let course = Course::new(e, scenario);

        let started = Instant::now();
        sets.clear();
        sets.extend(Series::new(
            seed.rng(Stream::Vitals(e.ordinal)),
            scenario,
            &config.missing,
            course,
        ));
        for set in &sets {
            child_id(&mut id, &encounter_id, b"-V", set.seq, 3);
            vitals_out.field(&id)?;
            vitals_out.field(encounter_id.as_bytes())?;
            vitals_out.field(patient_id.as_bytes())?;
            vitals_out.field(ts.format(set.measured_at))?;
            write_measurements(&mut vitals_out, &mut num, set)?;
            vitals_out.end_row()?;
        }
        let after_vitals = Instant::now();
        spent[0] += after_vitals - started;

        let results = labs::results(
            seed.rng(Stream::Labs(e.ordinal)),
            scenario,
            &course,
            patient.sex,
        );
        for r in &results {
            child_id(&mut id, &encounter_id, b"-L", r.seq, 3);
            labs_out.field(&id)?;
            labs_out.field(encounter_id.as_bytes())?;
            labs_out.field(patient_id.as_bytes())?;
            labs_out.field(r.test.loinc.as_bytes())?;
            labs_out.field(r.test.name.as_bytes())?;
            text.clear();
            let _ = write!(text, "{:.*}", r.test.decimals, r.value);
            labs_out.field(text.as_bytes())?;
            labs_out.field(r.test.unit.as_bytes())?;
            text.clear();
            let _ = write!(text, "{}", r.reference.0);
            labs_out.field(text.as_bytes())?;
            text.clear();
            let _ = write!(text, "{}", r.reference.1);
            labs_out.field(text.as_bytes())?;
            labs_out.field(r.flag.as_bytes())?;
            labs_out.field(ts.format(r.collected_at))?;
            labs_out.field(ts.format(r.resulted_at))?;
            labs_out.end_row()?;
        }
        let after_labs = Instant::now();
        spent[1] += after_labs - after_vitals;

        let chart = Chart {
            scenario,
            complaint: &scenario.chief_complaints[e.complaint],
            age: patient.age_on(date.date()),
            sex: patient.sex,
            disposition: e.disposition,
            course: &course,
            vitals: &sets,
            labs: &results,
        };
        for note in notes::compose(seed.rng(Stream::Notes(e.ordinal)), &chart) {
            child_id(&mut id, &encounter_id, b"-N", note.seq, 2);
            notes_out.line(&NoteRow {
                note_id: std::str::from_utf8(&id).unwrap_or_default(),
                encounter_id: &encounter_id,
                patient_id: &patient_id,
                note_type: note.note_type.as_str(),
                authored_at: std::str::from_utf8(ts.format(note.authored_at)).unwrap_or_default(),
                author_role: note.author_role.as_str(),
                text: &note.text,
            })?;
        }
        spent[2] += after_labs.elapsed();
    }
    // Each file's share includes its own flush and fsync.
    let started = Instant::now();
    let vitals = vitals_out.finish()?;
    spent[0] += started.elapsed();
    let started = Instant::now();
    let labs = labs_out.finish()?;
    spent[1] += started.elapsed();
    let started = Instant::now();
    let notes = notes_out.finish()?;
    spent[2] += started.elapsed();
    let finished = [vitals, labs, notes];
    for (written, seconds) in finished.iter().zip(spent) {
        log_written(written, seconds.as_secs_f64());
    }
    Ok(finished)
}

/// One line of notes.jsonl, keys in schema order.
#[derive(serde::Serialize)]
struct NoteRow<'a> {
    note_id: &'a str,
    encounter_id: &'a str,
    patient_id: &'a str,
    note_type: &'a str,
    authored_at: &'a str,
    author_role: &'a str,
    text: &'a str,
}

/// `E0000000123-V001`: the encounter's ID, a kind (`-V` vitals, `-L` labs,
/// `-N` notes) and the row's position, zero-padded to `width` digits, so
/// these rows never need a global counter.
fn child_id(buf: &mut Vec<u8>, encounter_id: &str, kind: &[u8], seq: u32, width: usize) {
    buf.clear();
    buf.extend_from_slice(encounter_id.as_bytes());
    buf.extend_from_slice(kind);
    let digits = itoa::Buffer::new().format(seq).len();
    buf.resize(buf.len() + width.saturating_sub(digits), b'0');
    buf.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
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
    fn child_ids_are_zero_padded() {
        let mut buf = Vec::new();
        child_id(&mut buf, "E0000000123", b"-V", 7, 3);
        assert_eq!(buf, b"E0000000123-V007");
        child_id(&mut buf, "E0000000123", b"-V", 1234, 3);
        assert_eq!(buf, b"E0000000123-V1234");
        child_id(&mut buf, "E0000000123", b"-N", 3, 2);
        assert_eq!(buf, b"E0000000123-N03");
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
