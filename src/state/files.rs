//! Reading and writing the state files, strictly: any row that does not parse,
//! or any disagreement between the files, is reported with the file and line,
//! never repaired silently.

use std::path::Path;

use chrono::NaiveDate;

use crate::dataset::Dataset;
use crate::dataset::FileFormat;
use crate::error::{Error, Result};
use crate::model::{self, BatchDate, Sex};
use crate::output::write_atomic;
use crate::output::{CHUNK_BYTES, Encoder, TextFile};
use crate::rows::{MasterRow, Patient};

/// The master's columns: the daily snapshot's, without `snapshot_date`.
fn master_header() -> &'static [&'static str] {
    let header = crate::schema::header(Dataset::Patients);
    &header[..header.len() - 1]
}

pub const LEDGER_HEADER: [&str; 4] = [
    "date",
    "patients_total",
    "encounter_counter",
    "manifest_sha256",
];

/// One committed batch, in commit order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub date: BatchDate,
    /// Patients in the master after this batch (patient numbers are 1..=total).
    pub patients_total: u64,
    /// The last encounter number issued after this batch.
    pub encounter_counter: u64,
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

/// Reads a batch's `patients.csv` (the master's columns plus
/// `snapshot_date`), strictly, for rebuilding the master from it.
pub fn read_snapshot(path: &Path) -> Result<Vec<Patient>> {
    records(path, crate::schema::header(Dataset::Patients))?
        .map(|item| item.and_then(|(line, r)| parse_patient(path, line, &r)))
        .collect()
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
    for p in patients {
        encoder.row(&MasterRow(p));
        if encoder.len() >= CHUNK_BYTES {
            file.write(&encoder.take())?;
        }
    }
    file.write(&encoder.take())?;
    file.finish().map(|_| ())
}

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
        let entry = LedgerEntry {
            date,
            patients_total: number_field(path, line, "patients_total", &r[1])?,
            encounter_counter: number_field(path, line, "encounter_counter", &r[2])?,
            manifest_sha256: r[3].to_string(),
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
            "{},{},{},{}\n",
            e.date, e.patients_total, e.encounter_counter, e.manifest_sha256
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
