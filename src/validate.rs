//! `datagen validate`: checks a batch directory as a downstream consumer
//! would, without trusting the generator: the manifest's sizes, checksums,
//! row counts and schema versions, every row against its schema, and the
//! links between files (keys resolve, timestamps fall inside their encounter).
//! Everything it knows comes from the published contract (the schemas,
//! including the lab catalog in `labs.schema.json`), never from the
//! generator's code. Memory stays proportional to patients and encounters,
//! not vitals rows.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::Path;

use crate::catalog::abnormal_flag;
use crate::dataset::{Dataset, FileFormat};
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::output::{file_digest, parse_timestamp};
use crate::schema::contract;

/// Problems reported before giving up on a batch.
const MAX_PROBLEMS: usize = 20;

/// One thing wrong with a batch: the file, the line if any, and the rule broken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: Option<u64>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What a valid batch holds.
#[derive(Clone, Debug)]
pub struct Summary {
    pub manifest: Manifest,
}

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn report(&mut self, file: &str, line: Option<u64>, message: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                file: file.to_string(),
                line,
                message: message.into(),
            });
        }
    }

    fn full(&self) -> bool {
        self.problems.len() >= MAX_PROBLEMS
    }
}

struct EncounterWindow {
    patient_id: String,
    admit: i64,
    discharge: i64,
    /// Last `-V`, `-L`, `-N` sequence number seen: child IDs must count up from 1.
    last_seq: [u32; 3],
}

/// A row's encounter must exist with the same patient, and the row's ID must
/// be the encounter's ID plus the next number of its kind.
fn child_of<'a>(
    encounters: &'a mut HashMap<String, EncounterWindow>,
    id: &str,
    encounter_id: &str,
    patient_id: &str,
    kind: usize,
) -> Result<&'a mut EncounterWindow, String> {
    let e = encounters
        .get_mut(encounter_id)
        .ok_or_else(|| format!("encounter_id {encounter_id} is not in encounters.csv"))?;
    if patient_id != e.patient_id {
        return Err(format!(
            "patient_id {patient_id} is not encounter {encounter_id}'s patient {}",
            e.patient_id
        ));
    }
    let marker = ["-V", "-L", "-N"][kind];
    let (prefix, seq) = id
        .split_once(marker)
        .ok_or_else(|| format!("{id} has no {marker} part"))?;
    let seq: u32 = seq
        .parse()
        .map_err(|_| format!("{id}: the sequence is not a number"))?;
    if prefix != encounter_id {
        return Err(format!("{id} does not belong to encounter {encounter_id}"));
    }
    if seq != e.last_seq[kind] + 1 {
        return Err(format!("{id} is out of sequence (duplicate or gap)"));
    }
    e.last_seq[kind] = seq;
    Ok(e)
}

fn within(
    e: &EncounterWindow,
    column: &str,
    stamp: &str,
    encounter_id: &str,
) -> Result<i64, String> {
    let at = parse_timestamp(stamp).ok_or_else(|| format!("{column} is not RFC 3339 UTC"))?;
    if at < e.admit || at > e.discharge {
        return Err(format!(
            "{column} {stamp} is outside encounter {encounter_id}'s admit..discharge window"
        ));
    }
    Ok(at)
}

/// Validates the batch in `dir`; on failure returns up to 20 problems, first
/// found first.
pub fn validate_batch(dir: &Path) -> Result<Summary, Vec<Problem>> {
    let mut c = Checker {
        problems: Vec::new(),
    };
    let manifest = match Manifest::read(dir) {
        Ok(m) => m,
        Err(e) => {
            c.report(MANIFEST_FILE, None, e.to_string());
            return Err(c.problems);
        }
    };

    // The manifest must list exactly the contract's files, and nothing else
    // may sit in the batch.
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    for d in Dataset::ALL {
        if !listed.contains(d.file_name()) {
            c.report(
                MANIFEST_FILE,
                None,
                format!("does not list {}", d.file_name()),
            );
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != MANIFEST_FILE && !listed.contains(name.as_str()) {
                c.report(&name, None, "is not listed in the manifest");
            }
        }
    }
    for entry in &manifest.files {
        let path = dir.join(&entry.name);
        match file_digest(&path) {
            Ok((bytes, sha)) => {
                if bytes != entry.bytes {
                    c.report(
                        &entry.name,
                        None,
                        format!("is {bytes} bytes, the manifest says {}", entry.bytes),
                    );
                }
                if sha != entry.sha256 {
                    c.report(
                        &entry.name,
                        None,
                        format!("sha256 is {sha}, the manifest says {}", entry.sha256),
                    );
                }
            }
            Err(e) => c.report(&entry.name, None, format!("cannot be read: {e}")),
        }
        if let Some(d) = Dataset::ALL
            .into_iter()
            .find(|d| d.file_name() == entry.name)
            && (entry.schema != d.schema_file()
                || entry.schema_version != crate::schema::version(d))
        {
            {
                c.report(
                    MANIFEST_FILE,
                    None,
                    format!(
                        "{} is declared as {} {}, this validator knows {} {}",
                        entry.name,
                        entry.schema,
                        entry.schema_version,
                        d.schema_file(),
                        crate::schema::version(d)
                    ),
                );
            }
        }
    }
    if !c.problems.is_empty() {
        return Err(c.problems);
    }

    let mut patients = HashMap::new();
    let mut encounters: HashMap<String, EncounterWindow> = HashMap::new();
    for d in Dataset::ALL {
        let Some(entry) = manifest.file(d.file_name()) else {
            continue;
        };
        let rows = if d.format() == FileFormat::Csv {
            check_rows(
                &mut c,
                dir,
                d,
                &manifest.date.to_string(),
                &mut patients,
                &mut encounters,
            )
        } else {
            check_json_lines(&mut c, dir, d, &mut encounters)
        };
        if let Some(rows) = rows
            && rows != entry.rows
        {
            c.report(
                d.file_name(),
                None,
                format!("has {rows} rows, the manifest says {}", entry.rows),
            );
        }
        if c.full() {
            break;
        }
    }
    if c.problems.is_empty() {
        Ok(Summary { manifest })
    } else {
        Err(c.problems)
    }
}

/// Checks every row of one file; returns its row count if it could be read.
fn check_rows(
    c: &mut Checker,
    dir: &Path,
    d: Dataset,
    batch_date: &str,
    patients: &mut Patients,
    encounters: &mut HashMap<String, EncounterWindow>,
) -> Option<u64> {
    let file = d.file_name();
    let contract = contract(d);
    let mut reader = match csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(dir.join(file))
    {
        Ok(r) => r,
        Err(e) => {
            c.report(file, None, format!("cannot be read: {e}"));
            return None;
        }
    };
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => {
            if let Err(e) = contract.check_header(&record) {
                c.report(file, Some(1), e);
                return None;
            }
        }
        Ok(false) => {
            c.report(file, None, "is empty: the header row is missing");
            return None;
        }
        Err(e) => {
            c.report(file, Some(1), e.to_string());
            return None;
        }
    }
    let mut rows = 0u64;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                c.report(file, e.position().map(|p| p.line()), e.to_string());
                return None;
            }
        }
        rows += 1;
        let line = record.position().map_or(rows + 1, |p| p.line());
        if let Err(e) = contract.check_row(&record) {
            c.report(file, Some(line), e);
        } else if let Err(e) = check_links(d, &record, batch_date, patients, encounters) {
            c.report(file, Some(line), e);
        }
        if c.full() {
            return None;
        }
    }
    Some(rows)
}

/// Checks a JSON Lines file (notes) object by object; returns its line count.
fn check_json_lines(
    c: &mut Checker,
    dir: &Path,
    d: Dataset,
    encounters: &mut HashMap<String, EncounterWindow>,
) -> Option<u64> {
    use std::io::BufRead;
    let file = d.file_name();
    let contract = contract(d);
    let reader = match File::open(dir.join(file)) {
        Ok(f) => std::io::BufReader::new(f),
        Err(e) => {
            c.report(file, None, format!("cannot be read: {e}"));
            return None;
        }
    };
    let mut rows = 0u64;
    for (index, line) in reader.lines().enumerate() {
        let line_no = index as u64 + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                c.report(file, Some(line_no), format!("is not UTF-8 text: {e}"));
                return None;
            }
        };
        rows += 1;
        let checked = serde_json::from_str::<serde_json::Value>(&line)
            .map_err(|e| format!("is not a JSON object: {e}"))
            .and_then(|value| {
                contract.check_value(&value)?;
                let keys: Vec<&str> = value
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                if keys != crate::schema::header(d) {
                    return Err(format!(
                        "keys are [{}], the schema orders them [{}]",
                        keys.join(","),
                        crate::schema::header(d).join(",")
                    ));
                }
                let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
                let encounter_id = text("encounter_id");
                let e = child_of(
                    encounters,
                    &text("note_id"),
                    &encounter_id,
                    &text("patient_id"),
                    2,
                )?;
                within(e, "authored_at", &text("authored_at"), &encounter_id).map(|_| ())
            });
        if let Err(e) = checked {
            c.report(file, Some(line_no), e);
        }
        if c.full() {
            return None;
        }
    }
    Some(rows)
}

/// The batch's patients, by `patient_id`: their `sex`, which picks a lab
/// row's reference range.
type Patients = HashMap<String, String>;

/// The rules that span columns or files. Runs only on schema-valid rows.
fn check_links(
    d: Dataset,
    r: &csv::StringRecord,
    batch_date: &str,
    patients: &mut Patients,
    encounters: &mut HashMap<String, EncounterWindow>,
) -> Result<(), String> {
    match d {
        Dataset::Patients => {
            if &r[8] != batch_date {
                return Err(format!(
                    "snapshot_date {} is not the batch date {batch_date}",
                    &r[8]
                ));
            }
            if r[7] > r[8] {
                return Err(format!(
                    "registered_date {} is after the snapshot date",
                    &r[7]
                ));
            }
            if patients
                .insert(r[0].to_string(), r[4].to_string())
                .is_some()
            {
                return Err(format!("patient_id {} appears twice", &r[0]));
            }
        }
        Dataset::Encounters => {
            if !patients.contains_key(&r[1]) {
                return Err(format!("patient_id {} is not in patients.csv", &r[1]));
            }
            let admit = parse_timestamp(&r[6]).ok_or("admit_time is not RFC 3339 UTC")?;
            let discharge = parse_timestamp(&r[7]).ok_or("discharge_time is not RFC 3339 UTC")?;
            if !r[6].starts_with(batch_date) {
                return Err(format!(
                    "admit_time {} is not on the batch date {batch_date}",
                    &r[6]
                ));
            }
            if discharge <= admit {
                return Err(format!(
                    "discharge_time {} is not after admit_time {}",
                    &r[7], &r[6]
                ));
            }
            let window = EncounterWindow {
                patient_id: r[1].to_string(),
                admit,
                discharge,
                last_seq: [0; 3],
            };
            if encounters.insert(r[0].to_string(), window).is_some() {
                return Err(format!("encounter_id {} appears twice", &r[0]));
            }
        }
        Dataset::Vitals => {
            let e = child_of(encounters, &r[0], &r[1], &r[2], 0)?;
            within(e, "measured_at", &r[3], &r[1])?;
            if let (Ok(sys), Ok(dia)) = (r[5].parse::<u32>(), r[6].parse::<u32>())
                && dia >= sys
            {
                return Err(format!("diastolic_bp {dia} is not below systolic_bp {sys}"));
            }
            if r[5].is_empty() != r[6].is_empty() {
                return Err("systolic_bp and diastolic_bp must be taken together".into());
            }
        }
        Dataset::Labs => {
            let e = child_of(encounters, &r[0], &r[1], &r[2], 1)?;
            let collected = within(e, "collected_at", &r[10], &r[1])?;
            let resulted = parse_timestamp(&r[11]).ok_or("resulted_at is not RFC 3339 UTC")?;
            if resulted <= collected {
                return Err(format!(
                    "resulted_at {} is not after collected_at {}",
                    &r[11], &r[10]
                ));
            }
            // The schema's own clauses have checked the name, unit and
            // plausible range of the row's LOINC code.
            let test = contract(Dataset::Labs)
                .lab_catalog
                .iter()
                .find(|t| t.loinc_code == r[3])
                .ok_or_else(|| format!("loinc_code {} is not in the catalog", &r[3]))?;
            let number = |column: usize| {
                r[column]
                    .parse::<f64>()
                    .map_err(|_| format!("{} is not a number", &r[column]))
            };
            let (value, low, high) = (number(5)?, number(7)?, number(8)?);
            let decimals = r[5]
                .split_once('.')
                .map_or(0, |(_, fraction)| fraction.len());
            if decimals != test.decimals {
                return Err(format!(
                    "{} {} has {decimals} decimals; the catalog reports it with {}",
                    test.test_name, &r[5], test.decimals
                ));
            }
            let sex = patients.get(&r[2]).map_or("unknown", String::as_str);
            let expected = test.reference.for_sex(sex);
            if (low, high) != expected {
                return Err(format!(
                    "reference range {low}..{high} is not the catalog's {}..{} for a {sex} patient",
                    expected.0, expected.1
                ));
            }
            let flag = abnormal_flag(value, (low, high), (test.critical_low, test.critical_high));
            if r[9] != *flag {
                return Err(format!(
                    "abnormal_flag {} disagrees with value {value} and range {low}..{high} (expected {flag})",
                    &r[9]
                ));
            }
        }
        // Checked object by object in `check_json_lines`.
        Dataset::Notes => {}
    }
    Ok(())
}
