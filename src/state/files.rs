//! Reading and writing the state files, strictly: any row that does not parse,
//! or any disagreement between the files, is reported with the file and line,
//! never repaired silently.

use std::path::Path;

use chrono::NaiveDate;

use crate::dataset::Dataset;
use crate::dataset::FileFormat;
use crate::error::{Error, Result};
use crate::generate::encounters::Encounter;
use crate::model::{self, BatchDate, Conditions, Sex};
use crate::output::write_atomic;
use crate::output::{Encoder, TextFile};
use crate::rows::{MASTER_ONLY, MasterRow, Patient};

/// The master's columns: the daily snapshot's, without `snapshot_date`,
/// then what only the master keeps.
fn master_header() -> &'static [&'static str] {
    static HEADER: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    HEADER.get_or_init(|| {
        let snapshot = crate::schema::header(Dataset::Patients);
        snapshot[..snapshot.len() - 1]
            .iter()
            .copied()
            .chain(MASTER_ONLY)
            .collect()
    })
}

pub const LEDGER_HEADER: [&str; 7] = [
    "date",
    "new_patients",
    "encounters",
    "patients_total",
    "encounter_counter",
    "census",
    "manifest_sha256",
];

/// One committed batch, in commit order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub date: BatchDate,
    /// The day's volumes (see the manifest's `volumes`): what a replay of
    /// the day needs even when its batch is gone.
    pub volumes: crate::pipeline::DayVolumes,
    /// Patients in the master after this batch (patient numbers are 1..=total).
    pub patients_total: u64,
    /// The last encounter number issued after this batch.
    pub encounter_counter: u64,
    /// Encounters carried to the next day after this batch.
    pub census: u64,
    pub manifest_sha256: String,
}

fn corrupt(path: &Path, line: Option<u64>, reason: impl Into<String>) -> Error {
    Error::CorruptState {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>> {
    let file = std::fs::File::open(path).map_err(Error::io("cannot read", path))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(file))
}

/// Reads records, checking the header; yields (line, record).
fn records(
    path: &Path,
    header: &[&str],
) -> Result<impl Iterator<Item = Result<(u64, csv::StringRecord)>>> {
    let mut iter = reader(path)?.into_records();
    let path_owned = path.to_path_buf();
    let to_err = move |e: csv::Error| {
        let line = e.position().map(|p| p.line());
        corrupt(&path_owned, line, format!("unreadable CSV: {e}"))
    };
    match iter.next() {
        None => {
            return Err(corrupt(
                path,
                Some(1),
                "empty file: the header row is missing",
            ));
        }
        Some(Err(e)) => return Err(to_err(e)),
        Some(Ok(h)) => {
            if h.iter().ne(header.iter().copied()) {
                return Err(corrupt(
                    path,
                    Some(1),
                    format!(
                        "header is [{}], expected [{}]",
                        h.iter().collect::<Vec<_>>().join(","),
                        header.join(",")
                    ),
                ));
            }
        }
    }
    let width = header.len();
    let path_owned = path.to_path_buf();
    Ok(iter.map(move |r| {
        let r = r.map_err(&to_err)?;
        let line = r.position().map_or(0, |p| p.line());
        if r.len() != width {
            return Err(corrupt(
                &path_owned,
                Some(line),
                format!("has {} fields, expected {width}", r.len()),
            ));
        }
        Ok((line, r))
    }))
}

fn date_field(path: &Path, line: u64, column: &str, s: &str) -> Result<NaiveDate> {
    model::parse_iso_date(s).ok_or_else(|| {
        corrupt(
            path,
            Some(line),
            format!("{column} {s:?} is not a YYYY-MM-DD date"),
        )
    })
}

fn number_field(path: &Path, line: u64, column: &str, s: &str) -> Result<u64> {
    s.parse::<u64>().map_err(|_| {
        corrupt(
            path,
            Some(line),
            format!("{column} {s:?} is not a whole number"),
        )
    })
}

/// Reads the patient master; row `n` must hold patient number `n`.
pub fn read_master(path: &Path) -> Result<Vec<Patient>> {
    let mut patients: Vec<Patient> = Vec::new();
    for item in records(path, master_header())? {
        let (line, r) = item?;
        let patient = parse_patient(path, line, &r)?;
        let patient = parse_master_only(path, line, &r, patient)?;
        let expected = patients.len() as u64 + 1;
        if patient.number != expected {
            return Err(corrupt(
                path,
                Some(line),
                format!(
                    "patient_id {} is out of sequence: expected {}",
                    &r[0],
                    model::patient_id(expected)
                ),
            ));
        }
        patients.push(patient);
    }
    Ok(patients)
}

/// One patient from the master's columns, which the snapshot starts with.
fn parse_patient(path: &Path, line: u64, r: &csv::StringRecord) -> Result<Patient> {
    let number = model::parse_patient_id(&r[0]).ok_or_else(|| {
        corrupt(
            path,
            Some(line),
            format!("patient_id {:?} is not P + 8 digits", &r[0]),
        )
    })?;
    let sex = Sex::parse(&r[4]).ok_or_else(|| {
        corrupt(
            path,
            Some(line),
            format!("sex {:?} is not female|male|other|unknown", &r[4]),
        )
    })?;
    for (column, value) in [("mrn", &r[1]), ("first_name", &r[2]), ("last_name", &r[3])] {
        if value.is_empty() {
            return Err(corrupt(path, Some(line), format!("{column} is empty")));
        }
    }
    if r[6].len() != 5 || !r[6].bytes().all(|b| b.is_ascii_digit()) {
        return Err(corrupt(
            path,
            Some(line),
            format!("postal_code {:?} is not 5 digits", &r[6]),
        ));
    }
    Ok(Patient {
        number,
        mrn: r[1].to_string(),
        first_name: r[2].to_string(),
        last_name: r[3].to_string(),
        sex,
        birth_date: date_field(path, line, "birth_date", &r[5])?,
        postal_code: r[6].to_string(),
        registered_date: date_field(path, line, "registered_date", &r[7])?,
        deceased_date: match &r[8] {
            "" => None,
            text => Some(date_field(path, line, "deceased_date", text)?),
        },
        propensity: 100,
        conditions: Conditions::default(),
        last_visits: Vec::new(),
        ed_return_at: None,
    })
}

/// The master's own columns, after the snapshot's.
fn parse_master_only(
    path: &Path,
    line: u64,
    r: &csv::StringRecord,
    patient: Patient,
) -> Result<Patient> {
    let at = master_header().len() - MASTER_ONLY.len();
    let propensity = number_field(path, line, "propensity", &r[at])?;
    let propensity = u16::try_from(propensity).map_err(|_| {
        corrupt(
            path,
            Some(line),
            format!("propensity {propensity} is too large"),
        )
    })?;
    let conditions = Conditions::parse_list(&r[at + 1]).ok_or_else(|| {
        corrupt(
            path,
            Some(line),
            format!("conditions {:?} names an unknown condition", &r[at + 1]),
        )
    })?;
    let mut last_visits = Vec::new();
    for visit in r[at + 2].split(';').filter(|v| !v.is_empty()) {
        let (scenario, date) = visit.split_once(':').ok_or_else(|| {
            corrupt(
                path,
                Some(line),
                format!("last_visits entry {visit:?} is not SCENARIO:YYYY-MM-DD"),
            )
        })?;
        last_visits.push((
            scenario.to_string(),
            date_field(path, line, "last_visits", date)?,
        ));
    }
    let ed_return_at = match &r[at + 3] {
        "" => None,
        text => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    corrupt(
                        path,
                        Some(line),
                        format!("ed_return_at {text:?} is not an RFC 3339 timestamp"),
                    )
                })?
                .timestamp(),
        ),
    };
    Ok(Patient {
        propensity,
        conditions,
        last_visits,
        ed_return_at,
        ..patient
    })
}

pub fn write_master(path: &Path, patients: &[Patient]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut file = TextFile::create(dir, &name)?;
    let mut encoder = Encoder::with_columns(FileFormat::Csv, master_header());
    encoder.header();
    file.write(&encoder.take())?;
    // The master is rewritten whole at every commit, with nothing else left
    // to run: blocks of it are encoded on two threads (reading each
    // patient's strings is most of the work) and written in order. The
    // threads take the next block as they come free, so the one that also
    // writes and hashes does fewer.
    let blocks: Vec<&[Patient]> = patients.chunks(MASTER_BLOCK).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let take = || {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        blocks.get(i).map(|block| (i, *block))
    };
    let encode = |encoder: &mut Encoder, block: &[Patient]| {
        for p in block {
            encoder.row(&MasterRow(p));
        }
        encoder.take()
    };
    std::thread::scope(|scope| {
        // On an early return the inlet is dropped, and the other thread's
        // next send fails and ends it.
        let (outlet, inlet) = std::sync::mpsc::sync_channel(2);
        scope.spawn(move || {
            let mut encoder = Encoder::with_columns(FileFormat::Csv, master_header());
            while let Some((i, block)) = take() {
                if outlet.send((i, encode(&mut encoder, block))).is_err() {
                    return;
                }
            }
        });
        let stopped = || {
            Error::io("cannot write", path)(std::io::Error::other(
                "the thread encoding the master stopped",
            ))
        };
        let mut ready = std::collections::BTreeMap::new();
        for expected in 0..blocks.len() {
            let chunk = loop {
                if let Some(chunk) = ready.remove(&expected) {
                    break chunk;
                }
                match inlet.try_recv() {
                    Ok((i, chunk)) => {
                        ready.insert(i, chunk);
                    }
                    Err(_) => match take() {
                        Some((i, block)) => {
                            ready.insert(i, encode(&mut encoder, block));
                        }
                        None => {
                            let (i, chunk) = inlet.recv().map_err(|_| stopped())?;
                            ready.insert(i, chunk);
                        }
                    },
                }
            };
            file.write(&chunk)?;
        }
        Ok::<(), Error>(())
    })?;
    file.finish().map(|_| ())
}

/// Patients per block of the master encoded at a time (about 0.5 MB).
const MASTER_BLOCK: usize = 4_096;

pub fn read_ledger(path: &Path) -> Result<Vec<LedgerEntry>> {
    let mut entries: Vec<LedgerEntry> = Vec::new();
    for item in records(path, &LEDGER_HEADER)? {
        let (line, r) = item?;
        let date: BatchDate = r[0].parse().map_err(|_| {
            corrupt(
                path,
                Some(line),
                format!("date {:?} is not a YYYY-MM-DD date", &r[0]),
            )
        })?;
        let volume = |column: &str, value: &str| {
            number_field(path, line, column, value).and_then(|n| {
                u32::try_from(n)
                    .map_err(|_| corrupt(path, Some(line), format!("{column} {n} is too large")))
            })
        };
        let entry = LedgerEntry {
            date,
            volumes: crate::pipeline::DayVolumes {
                new_patients: volume("new_patients", &r[1])?,
                encounters: volume("encounters", &r[2])?,
            },
            patients_total: number_field(path, line, "patients_total", &r[3])?,
            encounter_counter: number_field(path, line, "encounter_counter", &r[4])?,
            census: number_field(path, line, "census", &r[5])?,
            manifest_sha256: r[6].to_string(),
        };
        if entry.manifest_sha256.len() != 64
            || !entry.manifest_sha256.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(corrupt(
                path,
                Some(line),
                "manifest_sha256 is not a sha256 hex digest",
            ));
        }
        if entries.iter().any(|e| e.date == date) {
            return Err(corrupt(
                path,
                Some(line),
                format!("date {date} is recorded twice"),
            ));
        }
        if let Some(prev) = entries.last()
            && (entry.patients_total < prev.patients_total
                || entry.encounter_counter < prev.encounter_counter)
        {
            return Err(corrupt(path, Some(line), "counters go backwards"));
        }
        entries.push(entry);
    }
    Ok(entries)
}

pub fn write_ledger(path: &Path, entries: &[LedgerEntry]) -> Result<()> {
    let mut text = LEDGER_HEADER.join(",");
    text.push('\n');
    for e in entries {
        text.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            e.date,
            e.volumes.new_patients,
            e.volumes.encounters,
            e.patients_total,
            e.encounter_counter,
            e.census,
            e.manifest_sha256
        ));
    }
    write_atomic(path, text.as_bytes())
}

/// The counter file holds the last encounter number issued, on one line.
pub fn read_counter(path: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(path).map_err(Error::io("cannot read", path))?;
    let Some(value) = text.strip_suffix('\n') else {
        return Err(corrupt(
            path,
            Some(1),
            "truncated: the line has no terminating newline",
        ));
    };
    value
        .parse()
        .map_err(|_| corrupt(path, Some(1), format!("{value:?} is not a whole number")))
}

pub fn write_counter(path: &Path, value: u64) -> Result<()> {
    write_atomic(path, format!("{value}\n").as_bytes())
}

pub const CENSUS_HEADER: [&str; 12] = [
    "plan_date",
    "ordinal",
    "encounter_id",
    "patient_id",
    "returning",
    "scenario",
    "complaint",
    "admit_time",
    "discharge_time",
    "disposition",
    "severity",
    "source_encounter_id",
];

/// An encounter carried from one day to the next: under way, or finished
/// with results still to come, or admitted tomorrow. Its scenario is kept by
/// name, which the pipeline resolves against the config.
#[derive(Clone, Debug, PartialEq)]
pub struct Carried {
    pub scenario: String,
    pub encounter: Encounter,
}

pub fn read_census(path: &Path) -> Result<Vec<Carried>> {
    let mut carried = Vec::new();
    for item in records(path, &CENSUS_HEADER)? {
        let (line, r) = item?;
        let bad = |column: &str, value: &str| {
            corrupt(
                path,
                Some(line),
                format!("{column} {value:?} does not parse"),
            )
        };
        let time = |column: &str, value: &str| {
            crate::output::parse_timestamp(value)
                .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
                .map(|t| t.naive_utc())
                .ok_or_else(|| bad(column, value))
        };
        let encounter = Encounter {
            plan_date: r[0].parse().map_err(|_| bad("plan_date", &r[0]))?,
            ordinal: r[1].parse().map_err(|_| bad("ordinal", &r[1]))?,
            number: model::parse_encounter_id(&r[2]).ok_or_else(|| bad("encounter_id", &r[2]))?,
            patient: model::parse_patient_id(&r[3])
                .and_then(|n| usize::try_from(n).ok()?.checked_sub(1))
                .ok_or_else(|| bad("patient_id", &r[3]))?,
            returning: r[4].parse().map_err(|_| bad("returning", &r[4]))?,
            scenario: usize::MAX,
            complaint: r[6].parse().map_err(|_| bad("complaint", &r[6]))?,
            admit: time("admit_time", &r[7])?,
            discharge: time("discharge_time", &r[8])?,
            disposition: model::Disposition::parse(&r[9])
                .ok_or_else(|| bad("disposition", &r[9]))?,
            severity: r[10]
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite())
                .ok_or_else(|| bad("severity", &r[10]))?,
            source: match &r[11] {
                "" => None,
                id => Some(
                    model::parse_encounter_id(id).ok_or_else(|| bad("source_encounter_id", id))?,
                ),
            },
        };
        carried.push(Carried {
            scenario: r[5].to_string(),
            encounter,
        });
    }
    Ok(carried)
}

pub fn write_census(path: &Path, carried: &[Carried]) -> Result<()> {
    use crate::output::plain;
    let mut text = CENSUS_HEADER.join(",").into_bytes();
    text.push(b'\n');
    let mut ts = crate::output::Timestamps::default();
    // Written field by field, not through `format!`: a large day carries
    // tens of thousands of stays, and this is on the commit's path.
    for c in carried {
        let e = &c.encounter;
        plain::date(&mut text, e.plan_date.date());
        text.push(b',');
        plain::uint(&mut text, u64::from(e.ordinal));
        text.push(b',');
        plain::id(&mut text, "E", e.number, 10);
        text.push(b',');
        plain::id(&mut text, "P", e.patient as u64 + 1, 8);
        text.extend_from_slice(if e.returning { b",true," } else { b",false," });
        text.extend_from_slice(c.scenario.as_bytes());
        text.push(b',');
        plain::uint(&mut text, e.complaint as u64);
        text.push(b',');
        text.extend_from_slice(ts.format(e.admit_secs()));
        text.push(b',');
        text.extend_from_slice(ts.format(e.discharge_secs()));
        text.push(b',');
        text.extend_from_slice(e.disposition.as_str().as_bytes());
        text.push(b',');
        // Severity in Rust's shortest round-trip form: read back exactly.
        {
            use std::io::Write;
            // Writing into a Vec cannot fail.
            let _ = write!(text, "{:?}", e.severity);
        }
        text.push(b',');
        if let Some(source) = e.source {
            plain::id(&mut text, "E", source, 10);
        }
        text.push(b'\n');
    }
    write_atomic(path, &text)
}
