//! `datagen validate`: checks a batch directory as a downstream consumer
//! would, without trusting the generator: the manifest's sizes, checksums,
//! row counts and schema versions, every row against its schema, and the
//! links between files (keys resolve, every event is dated on the batch's
//! day, inside its encounter when the batch has it). With `--feed`, a mode's
//! batches are checked as one feed: every row's encounter arrived in the same
//! or an earlier batch, nothing happens after a known discharge, encounters
//! finish once and only move from `in_progress` to `finished`, IDs never
//! repeat, stays never overlap, nobody comes back after dying, and the
//! emergency-to-inpatient links resolve.
//!
//! Everything it knows comes from the published contract (the schemas,
//! including the lab catalog in `labs.schema.json`), never from the
//! generator's code. Memory stays proportional to patients and encounters,
//! not vitals rows.
//!
//! A batch with a defects profile lists `_defects.jsonl`: it is checked by
//! [`truth`], which reports every problem with its kind and compares them
//! with the labels.

mod parquet;
mod truth;

pub use truth::{TruthReport, read_labels};

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::Path;

use crate::catalog::abnormal_flag;
use crate::dataset::{Dataset, FileFormat};
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::output::{file_digest, parse_timestamp};
use crate::schema::contract;

/// The defects' ground truth, listed in a batch with a defects profile.
const DEFECTS: &str = "_defects.jsonl";

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
            // A problem with the folder itself.
            None if self.file.is_empty() => f.write_str(&self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What a valid batch holds.
#[derive(Clone, Debug)]
pub struct Summary {
    pub manifest: Manifest,
    /// For a batch with defects: what was found, against its labels.
    pub truth: Option<TruthReport>,
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

/// The day a batch covers, `[start, end)` in epoch seconds.
#[derive(Clone, Copy)]
struct Day {
    start: i64,
    end: i64,
}

/// An encounter as far as the rows so far tell.
#[derive(Clone)]
struct Known {
    patient_id: String,
    encounter_type: String,
    admit: i64,
    /// Set once finished.
    discharge: Option<i64>,
    disposition: Option<String>,
    source: Option<String>,
    /// Last `-V` and `-N` sequence numbers seen: they only go up (lab
    /// results arrive in any order of collection, so `-L` is checked as a set).
    last_seq: [u32; 3],
    labs_seen: std::collections::BTreeSet<u32>,
}

/// What a batch's checks know: its own patients and encounters, and with
/// `--feed`, everything the earlier batches said.
struct Context<'f> {
    day: Day,
    date: String,
    /// This batch's patients: their sex (it picks a lab's reference range).
    patients: HashMap<String, String>,
    /// This batch's encounters.csv rows.
    encounters: HashMap<String, Known>,
    /// Child sequence numbers seen in this batch, per encounter.
    seqs: HashMap<String, [u32; 3]>,
    feed: Option<&'f mut Feed>,
}

/// What a feed's earlier batches said.
#[derive(Default)]
pub struct Feed {
    encounters: HashMap<String, Known>,
    /// With defects: the vitals, labs and notes IDs sent so far (a row sent
    /// again is a correction, one never sent is late).
    children: std::collections::HashSet<String>,
    /// Per patient: the attributes that never change, and the death date.
    patients: HashMap<String, (Vec<String>, Option<String>)>,
}

impl Context<'_> {
    /// The encounter a row belongs to, where the rows so far tell: this
    /// batch's encounters.csv, or with `--feed` an earlier batch's (it must
    /// be there).
    fn known(&mut self, encounter_id: &str) -> Result<Option<&mut Known>, String> {
        if let Some(feed) = self.feed.as_deref_mut() {
            return feed
                .encounters
                .get_mut(encounter_id)
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "encounter_id {encounter_id} has not appeared in this or an earlier batch"
                    )
                });
        }
        Ok(self.encounters.get_mut(encounter_id))
    }
}

/// Checks a child row (vitals, labs, notes): its patient is in the batch,
/// its ID belongs to its encounter and counts up, its time `at` is on the
/// batch's day; where the encounter is known, the patient matches and `at`
/// (or the lab's collection) is inside the stay.
fn check_child(
    cx: &mut Context<'_>,
    kind: usize,
    id: &str,
    encounter_id: &str,
    patient_id: &str,
    (column, at): (&str, i64),
    inside: Option<(&str, i64)>,
) -> Result<(), String> {
    if !cx.patients.contains_key(patient_id) {
        return Err(format!("patient_id {patient_id} is not in patients.csv"));
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
    let local = cx.seqs.entry(encounter_id.to_string()).or_default();
    if seq <= local[kind] {
        return Err(format!(
            "{id} repeats or goes back in its encounter's sequence"
        ));
    }
    local[kind] = seq;
    if at < cx.day.start || at >= cx.day.end {
        return Err(format!("{column} is not on the batch date {}", cx.date));
    }
    let Some(e) = cx.known(encounter_id)? else {
        return Ok(());
    };
    if patient_id != e.patient_id {
        return Err(format!(
            "patient_id {patient_id} is not encounter {encounter_id}'s patient {}",
            e.patient_id
        ));
    }
    let repeated = if kind == 1 {
        !e.labs_seen.insert(seq)
    } else {
        seq <= std::mem::replace(&mut e.last_seq[kind], seq)
    };
    if repeated {
        return Err(format!("{id} repeats an ID of an earlier batch"));
    }
    let (column, at) = inside.unwrap_or((column, at));
    if at < e.admit {
        return Err(format!(
            "{column} is before encounter {encounter_id}'s admission"
        ));
    }
    if let Some(discharge) = e.discharge
        && at > discharge
    {
        return Err(format!(
            "{column} is after encounter {encounter_id}'s discharge"
        ));
    }
    Ok(())
}

fn timestamp(r: &csv::StringRecord, i: usize, column: &str) -> Result<i64, String> {
    parse_timestamp(&r[i]).ok_or_else(|| format!("{column} is not RFC 3339 UTC"))
}

/// Validates the batch in `dir`; on failure returns up to 20 problems, first
/// found first.
pub fn validate_batch(dir: &Path) -> Result<Summary, Vec<Problem>> {
    validate_in(dir, None)
}

/// Validates every batch under a mode's folder (`data/<mode>`), in date
/// order, as one feed; returns the batches' summaries, or up to 20 problems
/// (the file named with its batch).
pub fn validate_feed(mode_dir: &Path) -> Result<Vec<Summary>, Vec<Problem>> {
    let mut dates: Vec<String> = match std::fs::read_dir(mode_dir) {
        Ok(entries) => entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .filter(|name| name.parse::<crate::model::BatchDate>().is_ok())
            .collect(),
        Err(e) => {
            return Err(vec![Problem {
                file: String::new(),
                line: None,
                message: format!("cannot be read: {e}"),
            }]);
        }
    };
    if dates.is_empty() {
        return Err(vec![Problem {
            file: String::new(),
            line: None,
            message:
                "holds no batches (YYYY-MM-DD folders): give a mode's folder, such as data/raw"
                    .into(),
        }]);
    }
    dates.sort();
    let mut feed = Feed::default();
    let mut summaries = Vec::new();
    let mut previous: Option<crate::model::BatchDate> = None;
    for date in &dates {
        let within = |problems: Vec<Problem>| {
            problems
                .into_iter()
                .map(|p| Problem {
                    file: format!("{date}/{}", p.file),
                    ..p
                })
                .collect::<Vec<_>>()
        };
        let parsed: crate::model::BatchDate = date.parse().map_err(|_| Vec::new())?;
        if let Some(previous) = previous
            && previous.succ() != Some(parsed)
        {
            return Err(vec![Problem {
                file: date.clone(),
                line: None,
                message: format!("follows {previous}: the days in between are missing"),
            }]);
        }
        previous = Some(parsed);
        summaries.push(validate_in(&mode_dir.join(date), Some(&mut feed)).map_err(within)?);
    }
    feed.finish().map_err(|message| {
        vec![Problem {
            file: "encounters.csv across the batches".into(),
            line: None,
            message,
        }]
    })?;
    Ok(summaries)
}

impl Feed {
    /// The rules that span the whole feed, once every batch is read.
    fn finish(&self) -> Result<(), String> {
        let mut stays: HashMap<&str, Vec<(i64, i64, &str)>> = HashMap::new();
        for (id, e) in &self.encounters {
            stays.entry(e.patient_id.as_str()).or_default().push((
                e.admit,
                e.discharge.unwrap_or(i64::MAX),
                id,
            ));
            if let Some(source) = &e.source {
                let visit = self
                    .encounters
                    .get(source)
                    .ok_or_else(|| format!("{id}'s source_encounter_id {source} never appeared"))?;
                if visit.patient_id != e.patient_id
                    || visit.encounter_type != "emergency"
                    || visit
                        .disposition
                        .as_deref()
                        .is_some_and(|d| d != "admitted")
                    || visit.discharge.is_some_and(|d| d != e.admit)
                {
                    return Err(format!(
                        "{id} names {source} as its emergency visit, but that is not the same patient's emergency visit ending `admitted` when {id} is admitted"
                    ));
                }
            }
        }
        for (patient, spans) in &mut stays {
            spans.sort();
            for pair in spans.windows(2) {
                let ((_, end, a), (start, _, b)) = (pair[0], pair[1]);
                if start < end {
                    return Err(format!(
                        "patient {patient}'s encounters {a} and {b} overlap"
                    ));
                }
            }
            let died = self
                .encounters
                .iter()
                .filter(|(_, e)| e.patient_id == *patient)
                .filter(|(_, e)| e.disposition.as_deref() == Some("expired"))
                .filter_map(|(_, e)| e.discharge)
                .min();
            if let Some(died) = died
                && let Some((_, _, after)) = spans.iter().find(|(start, _, _)| *start > died)
            {
                return Err(format!("patient {patient} died, and {after} came after"));
            }
        }
        Ok(())
    }
}

fn validate_in(dir: &Path, feed: Option<&mut Feed>) -> Result<Summary, Vec<Problem>> {
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
        if !listed.contains(d.file_name()) && !listed.contains(d.parquet_file_name().as_str()) {
            c.report(
                MANIFEST_FILE,
                None,
                format!(
                    "does not list {} or {}",
                    d.file_name(),
                    d.parquet_file_name()
                ),
            );
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == crate::remote::SUCCESS_FILE {
                check_success(dir, &mut c);
            } else if name != MANIFEST_FILE && !listed.contains(name.as_str()) {
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
        // A drifted file announces its new version; with defects it is
        // checked as such (see `truth`).
        let drifted = entry.columns.is_some() && manifest.file(DEFECTS).is_some();
        if let Some(d) = Dataset::of_file(&entry.name)
            && d != Dataset::Defects
            && !drifted
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

    let start = manifest
        .date
        .date()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp();
    let mut cx = Context {
        day: Day {
            start,
            end: start + 86_400,
        },
        date: manifest.date.to_string(),
        patients: HashMap::new(),
        encounters: HashMap::new(),
        seqs: HashMap::new(),
        feed,
    };
    if manifest.file(DEFECTS).is_some() {
        let labels = match read_labels(&dir.join(DEFECTS)) {
            Ok(labels) => labels,
            Err(e) => {
                c.report(DEFECTS, None, e);
                return Err(c.problems);
            }
        };
        let report = truth::check_batch(dir, &manifest, labels, &mut cx);
        return Ok(Summary {
            manifest,
            truth: Some(report),
        });
    }
    for d in Dataset::ALL {
        let text = manifest.file(d.file_name()).is_some();
        if let Some(entry) = manifest.file(&d.parquet_file_name()) {
            check_parquet(&mut c, dir, d, entry, text, &mut cx);
        }
        let Some(entry) = manifest.file(d.file_name()) else {
            continue;
        };
        let rows = if d.format() == FileFormat::Csv {
            check_rows(&mut c, dir, d, &mut cx)
        } else {
            check_json_lines(&mut c, dir, d, &mut cx)
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
        Ok(Summary {
            manifest,
            truth: None,
        })
    } else {
        Err(c.problems)
    }
}

/// Checks a dataset's Parquet file: its column types, its row count, and
/// each row: against the text file's when the batch has both (checked on
/// their own), else by the text file's rules.
fn check_parquet(
    c: &mut Checker,
    dir: &Path,
    d: Dataset,
    entry: &crate::manifest::FileEntry,
    compare: bool,
    cx: &mut Context<'_>,
) {
    let name = d.parquet_file_name();
    let mut text = if compare {
        match text_rows(dir, d) {
            Ok(rows) => Some(rows),
            Err(e) => {
                c.report(d.file_name(), None, e);
                return;
            }
        }
    } else {
        None
    };
    let contract = contract(d);
    let read = parquet::for_each_row(&dir.join(&name), d, |row, values| {
        let checked = match text.as_mut() {
            Some(text) => match text.next() {
                Some(expected) if expected == values => Ok(()),
                Some(expected) => {
                    let column = contract
                        .columns
                        .iter()
                        .zip(expected.iter().zip(&values))
                        .find(|(_, (a, b))| a != b)
                        .map_or("?", |(c, _)| c.name.as_str());
                    Err(format!(
                        "row {row} differs from {}'s in column {column}",
                        d.file_name()
                    ))
                }
                None => Err(format!("row {row} is not in {}", d.file_name())),
            },
            None if d.format() == FileFormat::Csv => {
                let record: csv::StringRecord =
                    values.iter().map(|v| v.as_deref().unwrap_or("")).collect();
                contract
                    .check_row(&record)
                    .and_then(|()| check_links(d, &record, cx))
            }
            None => {
                let object: serde_json::Map<String, serde_json::Value> = contract
                    .columns
                    .iter()
                    .zip(&values)
                    .map(|(c, v)| {
                        let value = match (v, c.kind) {
                            (None, _) => serde_json::Value::Null,
                            (Some(v), crate::schema::Kind::Boolean) => {
                                serde_json::Value::Bool(v == "true")
                            }
                            (Some(v), _) => serde_json::Value::String(v.clone()),
                        };
                        (c.name.clone(), value)
                    })
                    .collect();
                check_object(d, &serde_json::Value::Object(object), cx)
            }
        };
        if let Err(e) = checked {
            c.report(&name, Some(row), e);
        }
        !c.full()
    });
    match read {
        Ok(rows) if rows != entry.rows && !c.full() => c.report(
            &name,
            None,
            format!("has {rows} rows, the manifest says {}", entry.rows),
        ),
        Ok(_) => {}
        Err(e) => c.report(&name, None, e),
    }
}

/// A text file's rows as text values in column order (`None`: empty or null).
fn text_rows(
    dir: &Path,
    d: Dataset,
) -> Result<Box<dyn Iterator<Item = Vec<Option<String>>>>, String> {
    let path = dir.join(d.file_name());
    if d.format() == FileFormat::Csv {
        let reader = csv::Reader::from_path(&path).map_err(|e| format!("cannot be read: {e}"))?;
        return Ok(Box::new(reader.into_records().map(|r| {
            r.map(|r| {
                r.iter()
                    .map(|v| (!v.is_empty()).then(|| v.to_string()))
                    .collect()
            })
            .unwrap_or_default()
        })));
    }
    use std::io::BufRead;
    let file = File::open(&path).map_err(|e| format!("cannot be read: {e}"))?;
    let columns: Vec<String> = contract(d).columns.iter().map(|c| c.name.clone()).collect();
    Ok(Box::new(std::io::BufReader::new(file).lines().map(
        move |line| {
            let value: serde_json::Value = line
                .ok()
                .and_then(|l| serde_json::from_str(&l).ok())
                .unwrap_or_default();
            columns
                .iter()
                .map(|c| match value.get(c) {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                })
                .collect()
        },
    )))
}

/// Checks every row of one file; returns its row count if it could be read.
/// A batch copied from a bucket carries `_SUCCESS`, the commit marker
/// (README, "Object storage"): it must name this manifest.
fn check_success(dir: &Path, c: &mut Checker) {
    use sha2::{Digest, Sha256};
    let marker = std::fs::read(dir.join(crate::remote::SUCCESS_FILE)).unwrap_or_default();
    let manifest = std::fs::read(dir.join(MANIFEST_FILE)).unwrap_or_default();
    let expected = format!("{}\n", hex::encode(Sha256::digest(&manifest)));
    if marker != expected.as_bytes() {
        c.report(
            crate::remote::SUCCESS_FILE,
            None,
            format!(
                "does not commit this manifest: it should hold the manifest's sha256 ({})",
                expected.trim_end()
            ),
        );
    }
}

fn check_rows(c: &mut Checker, dir: &Path, d: Dataset, cx: &mut Context<'_>) -> Option<u64> {
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
        } else if let Err(e) = check_links(d, &record, cx) {
            c.report(file, Some(line), e);
        }
        if c.full() {
            return None;
        }
    }
    Some(rows)
}

/// Checks a JSON Lines file (notes) object by object; returns its line count.
fn check_json_lines(c: &mut Checker, dir: &Path, d: Dataset, cx: &mut Context<'_>) -> Option<u64> {
    use std::io::BufRead;
    let file = d.file_name();
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
            .and_then(|value| check_object(d, &value, cx));
        if let Err(e) = checked {
            c.report(file, Some(line_no), e);
        }
        if c.full() {
            return None;
        }
    }
    Some(rows)
}

/// Checks one JSON Lines object (a note): its schema, its key order, and
/// its place in its encounter.
fn check_object(d: Dataset, value: &serde_json::Value, cx: &mut Context<'_>) -> Result<(), String> {
    contract(d).check_value(value)?;
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
    let authored =
        parse_timestamp(&text("authored_at")).ok_or("authored_at is not RFC 3339 UTC")?;
    check_child(
        cx,
        2,
        &text("note_id"),
        &text("encounter_id"),
        &text("patient_id"),
        ("authored_at", authored),
        None,
    )
}

/// The rules that span columns or files. Runs only on schema-valid rows.
fn check_links(d: Dataset, r: &csv::StringRecord, cx: &mut Context<'_>) -> Result<(), String> {
    match d {
        Dataset::Patients => {
            if r[9] != *cx.date {
                return Err(format!(
                    "snapshot_date {} is not the batch date {}",
                    &r[9], cx.date
                ));
            }
            if r[7] > r[9] {
                return Err(format!(
                    "registered_date {} is after the snapshot date",
                    &r[7]
                ));
            }
            if !r[8].is_empty() && r[8] > r[9] {
                return Err(format!(
                    "deceased_date {} is after the snapshot date",
                    &r[8]
                ));
            }
            if cx
                .patients
                .insert(r[0].to_string(), r[4].to_string())
                .is_some()
            {
                return Err(format!("patient_id {} appears twice", &r[0]));
            }
            if let Some(feed) = cx.feed.as_deref_mut() {
                let fixed: Vec<String> = [1, 2, 3, 4, 5, 7]
                    .iter()
                    .map(|&i| r[i].to_string())
                    .collect();
                let deceased = (!r[8].is_empty()).then(|| r[8].to_string());
                match feed.patients.get_mut(&r[0]) {
                    Some((known, died)) => {
                        if *known != fixed {
                            return Err(format!(
                                "patient {} changed attributes that never change",
                                &r[0]
                            ));
                        }
                        if died.is_some() && *died != deceased {
                            return Err(format!("patient {}'s deceased_date changed", &r[0]));
                        }
                        *died = deceased;
                    }
                    None => {
                        feed.patients.insert(r[0].to_string(), (fixed, deceased));
                    }
                }
            }
        }
        Dataset::Encounters => {
            if !cx.patients.contains_key(&r[1]) {
                return Err(format!("patient_id {} is not in patients.csv", &r[1]));
            }
            let admit = timestamp(r, 6, "admit_time")?;
            let updated = timestamp(r, 10, "updated_at")?;
            if admit >= cx.day.end {
                return Err(format!(
                    "admit_time {} is after the batch date {}",
                    &r[6], cx.date
                ));
            }
            let finished = &r[9] == "finished";
            let discharge = if finished {
                let discharge = timestamp(r, 7, "discharge_time")?;
                if discharge <= admit {
                    return Err(format!(
                        "discharge_time {} is not after admit_time {}",
                        &r[7], &r[6]
                    ));
                }
                if discharge < cx.day.start || discharge >= cx.day.end {
                    return Err(format!(
                        "a finished row is sent on the day the encounter ends, but discharge_time {} is not on {}",
                        &r[7], cx.date
                    ));
                }
                Some(discharge)
            } else {
                None
            };
            if updated != discharge.unwrap_or(admit) {
                return Err(format!(
                    "updated_at {} is not the {}",
                    &r[10],
                    if finished {
                        "discharge_time"
                    } else {
                        "admit_time"
                    }
                ));
            }
            let known = Known {
                patient_id: r[1].to_string(),
                encounter_type: r[2].to_string(),
                admit,
                discharge,
                disposition: finished.then(|| r[8].to_string()),
                source: (!r[11].is_empty()).then(|| r[11].to_string()),
                last_seq: [0; 3],
                labs_seen: Default::default(),
            };
            if let Some(feed) = cx.feed.as_deref_mut() {
                match feed.encounters.get_mut(&r[0]) {
                    None => {
                        feed.encounters.insert(r[0].to_string(), known.clone());
                    }
                    Some(earlier) => {
                        if earlier.discharge.is_some() {
                            return Err(format!("encounter {} was already finished", &r[0]));
                        }
                        if !finished {
                            return Err(format!("encounter {} is sent in_progress twice", &r[0]));
                        }
                        if earlier.patient_id != known.patient_id
                            || earlier.admit != known.admit
                            || earlier.encounter_type != known.encounter_type
                        {
                            return Err(format!(
                                "encounter {} changed its patient, type or admit_time",
                                &r[0]
                            ));
                        }
                        earlier.discharge = known.discharge;
                        earlier.disposition = known.disposition.clone();
                    }
                }
            }
            if cx.encounters.insert(r[0].to_string(), known).is_some() {
                return Err(format!("encounter_id {} appears twice", &r[0]));
            }
        }
        Dataset::Vitals => {
            let at = timestamp(r, 3, "measured_at")?;
            check_child(cx, 0, &r[0], &r[1], &r[2], ("measured_at", at), None)?;
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
            let collected = timestamp(r, 10, "collected_at")?;
            let resulted = timestamp(r, 11, "resulted_at")?;
            check_child(
                cx,
                1,
                &r[0],
                &r[1],
                &r[2],
                ("resulted_at", resulted),
                Some(("collected_at", collected)),
            )?;
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
            let sex = cx.patients.get(&r[2]).map_or("unknown", String::as_str);
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
        // Checked object by object in `check_json_lines`; the defects'
        // ground truth is not a dataset of the feed.
        Dataset::Notes | Dataset::Defects => {}
    }
    Ok(())
}
