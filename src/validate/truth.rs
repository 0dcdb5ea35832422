//! Validation of a batch that carries defects on purpose (it lists
//! `_defects.jsonl`): every problem is reported with the kind of defect it
//! is, and the problems found are compared with the labels. Nothing here
//! reads the labels to find a problem: each kind is recognised from the
//! contract alone (a value outside the schema's bounds that a unit
//! conversion brings back inside is a unit error; a timestamp in another
//! format; a row whose columns repeat an earlier row's under a new ID...),
//! and only then matched with the ground truth, which is what proves the
//! labels true.
//!
//! Late and corrected rows are clean rows dated before the batch's day: one
//! batch cannot tell them apart, so they are left to `--feed`, which knows
//! whether the row's ID was sent before (a correction) or not (late).
//!
//! Unlike the strict check, this one reads each file whole and keeps a hash
//! of every row (duplicates are found by content), and a feed keeps every
//! vitals, labs and notes ID: memory grows with rows here.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

use super::{Context, check_links, check_object};
use crate::dataset::{Dataset, FileFormat};
use crate::defects::{Kind, Label};
use crate::manifest::{FileEntry, Manifest};
use crate::output::parse_timestamp;
use crate::schema::{Column, Contract, Kind as ColumnKind, contract};

/// One problem found, and whether a label names it.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub file: String,
    pub line: u64,
    /// The defect kind; `None` for a problem that is no kind of defect
    /// (never labelled, so it always disagrees).
    pub kind: Option<Kind>,
    pub message: String,
    pub labelled: bool,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = self.kind.map_or("unclassified", Kind::as_str);
        let label = if self.labelled {
            "labelled"
        } else {
            "UNLABELLED"
        };
        write!(
            f,
            "{} line {}: {kind} ({label}): {}",
            self.file, self.line, self.message
        )
    }
}

/// What a defective batch (or feed) holds, against its labels.
#[derive(Clone, Debug, Default)]
pub struct TruthReport {
    /// Every problem found, in file and line order.
    pub found: Vec<Found>,
    /// The labels this check can see.
    pub visible: usize,
    /// Visible labels no problem was found for.
    pub missed: Vec<Label>,
    /// Labels only a feed shows (late and corrected rows), when checking
    /// one batch.
    pub invisible: usize,
}

impl TruthReport {
    pub fn labelled(&self) -> usize {
        self.found.iter().filter(|f| f.labelled).count()
    }

    /// Every problem found is labelled, and every visible label was found.
    pub fn agrees(&self) -> bool {
        self.missed.is_empty() && self.found.iter().all(|f| f.labelled)
    }

    pub fn merge(&mut self, other: TruthReport, batch: &str) {
        self.found.extend(other.found.into_iter().map(|f| Found {
            file: format!("{batch}/{}", f.file),
            ..f
        }));
        self.visible += other.visible;
        self.missed.extend(other.missed.into_iter().map(|l| Label {
            file: format!("{batch}/{}", l.file),
            ..l
        }));
        self.invisible += other.invisible;
    }
}

/// Reads a batch's `_defects.jsonl`.
pub fn read_labels(path: &Path) -> Result<Vec<Label>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    std::io::BufReader::new(file)
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let line = line.map_err(|e| format!("line {}: {e}", i + 1))?;
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", i + 1))
        })
        .collect()
}

/// Checks the batch's files in `dir` and compares what is found with its
/// labels. `cx` knows the batch's day, and the feed so far with `--feed`.
pub(super) fn check_batch(
    dir: &Path,
    manifest: &Manifest,
    labels: Vec<Label>,
    cx: &mut Context<'_>,
) -> TruthReport {
    let feed = cx.feed.is_some();
    let mut found = Vec::new();
    let mut rows = Vec::new();
    for d in Dataset::ALL {
        let Some(entry) = manifest.file(d.file_name()) else {
            continue;
        };
        let mut file = FileCheck {
            dataset: d,
            contract: contract(d),
            entry,
            found: &mut found,
            exact: HashSet::new(),
            content: HashSet::new(),
        };
        let counted = file.run(&dir.join(d.file_name()), cx);
        rows.push((d, entry.rows, counted));
    }
    for (d, expected, counted) in rows {
        if let Some(counted) = counted
            && counted != expected
        {
            found.push(Found {
                file: d.file_name().into(),
                line: 1,
                kind: None,
                message: format!("has {counted} rows, the manifest says {expected}"),
                labelled: false,
            });
        }
    }
    let mut report = TruthReport::default();
    let mut visible: HashMap<(String, u64, Kind), Label> = HashMap::new();
    for label in labels {
        if label.kind.needs_feed() && !feed {
            report.invisible += 1;
        } else {
            visible.insert((label.file.clone(), label.line, label.kind), label);
        }
    }
    report.visible = visible.len();
    for f in &mut found {
        if let Some(kind) = f.kind {
            f.labelled = visible.remove(&(f.file.clone(), f.line, kind)).is_some();
        }
    }
    let mut missed: Vec<Label> = visible.into_values().collect();
    missed.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    report.missed = missed;
    report.found = found;
    report
}

/// One file being checked.
struct FileCheck<'a> {
    dataset: Dataset,
    contract: &'static Contract,
    entry: &'a FileEntry,
    found: &'a mut Vec<Found>,
    /// Hashes of the lines so far: a line seen before is an exact duplicate.
    exact: HashSet<u64>,
    /// Hashes of the rows' values after their ID: a row that repeats them
    /// under another ID is the same event sent again.
    content: HashSet<u64>,
}

fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    // Fixed keys: the same file hashes the same in every run.
    std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default().hash_one(value)
}

impl FileCheck<'_> {
    fn report(&mut self, line: u64, kind: Option<Kind>, message: impl Into<String>) {
        self.found.push(Found {
            file: self.dataset.file_name().to_string(),
            line,
            kind,
            message: message.into(),
            labelled: false,
        });
    }

    /// Checks every line; returns the data rows counted, if the file could
    /// be read through.
    fn run(&mut self, path: &Path, cx: &mut Context<'_>) -> Option<u64> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.report(1, None, format!("cannot be read: {e}"));
                return None;
            }
        };
        let csv = self.dataset.format() == FileFormat::Csv;
        let mut text: &[u8] = &bytes;
        let bom = text.starts_with("\u{feff}".as_bytes());
        if bom {
            text = &text[3..];
        }
        let mut lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let crlf = lines.iter().any(|l| l.ends_with(b"\r"));
        if bom || crlf {
            self.report(
                1,
                Some(Kind::BomCrlf),
                match (bom, crlf) {
                    (true, true) => "starts with a UTF-8 BOM and ends its lines with CRLF",
                    (true, false) => "starts with a UTF-8 BOM",
                    _ => "ends its lines with CRLF",
                },
            );
        }
        let mut map: Vec<Option<usize>> = (0..self.contract.columns.len()).map(Some).collect();
        let mut first_row = 0;
        if csv {
            let Some(header) = lines.first() else {
                self.report(1, None, "is empty: the header row is missing");
                return None;
            };
            let header: Vec<String> = cells(header.strip_suffix(b"\r").unwrap_or(header))
                .into_iter()
                .map(|c| c.unwrap_or_default())
                .collect();
            match self.columns(&header) {
                Ok(Some(drifted)) => {
                    map = drifted;
                    self.report(
                        1,
                        Some(Kind::SchemaDrift),
                        format!(
                            "header is [{}], announced as schema version {}",
                            header.join(","),
                            self.entry.schema_version
                        ),
                    );
                }
                Ok(None) => {}
                Err(e) => {
                    self.report(1, None, e);
                    return None;
                }
            }
            first_row = 1;
        }
        let mut rows = 0;
        for (index, raw) in lines.iter().enumerate().skip(first_row) {
            rows += 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let line = index as u64 + 1;
            if !self.exact.insert(hash_of(raw)) {
                self.report(
                    line,
                    Some(Kind::DuplicateExact),
                    "repeats an earlier line exactly",
                );
                continue;
            }
            let parsed = if csv {
                let row = cells(raw);
                Ok(map
                    .iter()
                    .map(|i| i.and_then(|i| row.get(i).cloned().flatten()))
                    .collect::<Vec<_>>())
            } else {
                serde_json::from_slice::<Value>(raw)
                    .map_err(|e| format!("is not a JSON object: {e}"))
                    .map(|value| self.json_cells(&value))
            };
            let values = match parsed {
                Ok(v) => v,
                Err(e) => {
                    self.report(line, None, e);
                    continue;
                }
            };
            let raw_text = String::from_utf8_lossy(raw);
            if let Some((kind, message)) = self.classify(&values, &raw_text, csv) {
                self.report(line, Some(kind), message);
                self.register(&values, cx);
                continue;
            }
            if !self.content.insert(hash_of(&values[1..])) {
                self.report(
                    line,
                    Some(Kind::DuplicateNewId),
                    format!(
                        "{} repeats an earlier row's values under a new ID",
                        values[0].as_deref().unwrap_or("")
                    ),
                );
                continue;
            }
            match self.resent(&values, cx) {
                Resent::No => {}
                Resent::Invisible => continue,
                Resent::Yes(kind, message) => {
                    self.report(line, Some(kind), message);
                    continue;
                }
            }
            if let Some((kind, message)) = self.orphan(&values, cx) {
                self.report(line, Some(kind), message);
                continue;
            }
            let strict = if csv {
                let record: csv::StringRecord =
                    values.iter().map(|v| v.as_deref().unwrap_or("")).collect();
                self.contract
                    .check_row(&record)
                    .and_then(|()| check_links(self.dataset, &record, cx))
            } else {
                serde_json::from_slice::<Value>(raw)
                    .map_err(|e| e.to_string())
                    .and_then(|value| check_object(self.dataset, &value, cx))
            };
            if let Err(e) = strict {
                self.report(line, None, e);
            }
            if let (Some(feed), Some(id)) = (cx.feed.as_deref_mut(), &values[0])
                && self.dataset >= Dataset::Vitals
            {
                feed.children.insert(id.clone());
            }
        }
        Some(rows)
    }

    /// How the header maps to the schema's columns: `None` when it is the
    /// schema's, a mapping when it drifted and the manifest announces it
    /// (a new schema version, and the columns), an error otherwise.
    fn columns(&self, header: &[String]) -> Result<Option<Vec<Option<usize>>>, String> {
        let schema: Vec<&str> = self.contract.header.clone();
        if header == schema {
            return Ok(None);
        }
        let announced = self.entry.columns.as_deref() == Some(header)
            && self.entry.schema_version != self.contract.version;
        if !announced {
            return Err(format!(
                "header is [{}], the schema requires [{}]",
                header.join(","),
                schema.join(",")
            ));
        }
        Ok(Some(
            schema
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    header.iter().position(|h| h == name).or_else(|| {
                        // A renamed column keeps its place.
                        (header.len() == schema.len() && !schema.contains(&header[i].as_str()))
                            .then_some(i)
                    })
                })
                .collect(),
        ))
    }

    /// A JSON object's values in schema order (`None`: null or absent).
    fn json_cells(&self, value: &Value) -> Vec<Option<String>> {
        self.contract
            .columns
            .iter()
            .map(|c| match value.get(&c.name) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            })
            .collect()
    }

    /// The defect kind a row shows, from the contract alone.
    fn classify(&self, values: &[Option<String>], raw: &str, csv: bool) -> Option<(Kind, String)> {
        let columns = &self.contract.columns;
        let named = |c: &Column, what: &str| format!("column {}: {what}", c.name);
        for (c, v) in columns.iter().zip(values).skip(1) {
            let Some(v) = v else { continue };
            if c.kind == ColumnKind::String && (v.starts_with(' ') || v.ends_with(' ')) {
                return Some((Kind::Whitespace, named(c, "leading or trailing spaces")));
            }
            if !c.allowed.is_empty()
                && !c.allowed.contains(v)
                && c.allowed.iter().any(|a| a.eq_ignore_ascii_case(v))
            {
                return Some((
                    Kind::EnumCase,
                    named(c, &format!("{v:?} in the wrong case")),
                ));
            }
            if matches!(c.kind, ColumnKind::Integer | ColumnKind::Number) {
                let comma = v.contains(',') && v.replace(',', ".").parse::<f64>().is_ok();
                let quoted = csv && raw.contains(&format!("\"{v}\""));
                if comma || quoted {
                    return Some((
                        Kind::NumberFormat,
                        named(c, &format!("number written {v:?}")),
                    ));
                }
            }
            if c.timestamp && parse_timestamp(v).is_none() && other_timestamp(v).is_some() {
                return Some((
                    Kind::TimestampFormat,
                    named(c, &format!("{v:?} is a timestamp in another format")),
                ));
            }
        }
        for (c, v) in columns.iter().zip(values) {
            if !c.nullable && v.as_deref().is_none_or(str::is_empty) {
                return Some((Kind::MissingRequired, named(c, "a required value is empty")));
            }
        }
        self.out_of_range(values)
    }

    /// A row of today naming a patient the batch does not have. (A late or
    /// corrected row's patient may be in an earlier batch only.)
    fn orphan(&self, values: &[Option<String>], cx: &Context<'_>) -> Option<(Kind, String)> {
        let patient = self.value(values, "patient_id")?;
        (self.dataset != Dataset::Patients && !cx.patients.contains_key(patient)).then(|| {
            (
                Kind::OrphanReference,
                format!("patient_id {patient} is in no patients.csv row"),
            )
        })
    }

    fn value<'v>(&self, values: &'v [Option<String>], name: &str) -> Option<&'v str> {
        let i = self.contract.columns.iter().position(|c| c.name == name)?;
        values.get(i)?.as_deref()
    }

    /// A measured value outside its bounds: a unit error when a usual unit
    /// mistake explains it, else impossible.
    fn out_of_range(&self, values: &[Option<String>]) -> Option<(Kind, String)> {
        let columns = &self.contract.columns;
        if self.dataset == Dataset::Labs {
            let v: f64 = self.value(values, "value")?.parse().ok()?;
            let loinc = self.value(values, "loinc_code")?;
            let test = self
                .contract
                .lab_catalog
                .iter()
                .find(|t| t.loinc_code == loinc)?;
            let (low, high) = test.plausible;
            if (low..=high).contains(&v) {
                return None;
            }
            // mmol/L for mg/dL (glucose), g/L for g/dL, umol/L for mg/dL
            // (creatinine).
            let converted = match test.test_name.as_str() {
                "Glucose" => Some(v * 18.016),
                "Hemoglobin" => Some(v / 10.0),
                "Creatinine" => Some(v / 88.4),
                _ => None,
            };
            return Some(match converted {
                Some(c) if (low..=high).contains(&c) => (
                    Kind::UnitError,
                    format!("{} {v} {} fits another unit", test.test_name, test.unit),
                ),
                _ => (
                    Kind::OutOfRange,
                    format!("{} {v} is outside {low}..{high}", test.test_name),
                ),
            });
        }
        for (c, v) in columns.iter().zip(values) {
            let (Some(v), Some(low), Some(high)) = (v, c.minimum, c.maximum) else {
                continue;
            };
            let Ok(v) = v.parse::<f64>() else { continue };
            if (low..=high).contains(&v) {
                continue;
            }
            let celsius = (v - 32.0) * 5.0 / 9.0;
            return Some(
                if c.name == "temperature_c" && (low..=high).contains(&celsius) {
                    (
                        Kind::UnitError,
                        format!("column {}: {v} is Fahrenheit", c.name),
                    )
                } else {
                    (
                        Kind::OutOfRange,
                        format!("column {}: {v} is outside {low}..{high}", c.name),
                    )
                },
            );
        }
        None
    }

    /// What the rows after a defective one rely on: its patient (and sex)
    /// and its encounter, from the row put right as far as it can be.
    fn register(&self, values: &[Option<String>], cx: &mut Context<'_>) {
        let fixed = normalize(self.contract, values);
        let record: csv::StringRecord = fixed.iter().map(|v| v.as_deref().unwrap_or("")).collect();
        match self.dataset {
            Dataset::Patients => {
                if let (Some(id), Some(sex)) = (&fixed[0], &fixed[4]) {
                    cx.patients.entry(id.clone()).or_insert_with(|| sex.clone());
                }
            }
            Dataset::Encounters => {
                let _ = check_links(Dataset::Encounters, &record, cx);
            }
            _ => {}
        }
    }

    /// A clean row dated before the batch's day: sent again (a correction)
    /// or late. Only a feed can tell which.
    fn resent(&self, values: &[Option<String>], cx: &Context<'_>) -> Resent {
        let column = match self.dataset {
            Dataset::Vitals => "measured_at",
            Dataset::Labs => "resulted_at",
            Dataset::Notes => "authored_at",
            _ => return Resent::No,
        };
        let Some(at) = self.value(values, column).and_then(parse_timestamp) else {
            return Resent::No;
        };
        if at >= cx.day.start {
            return Resent::No;
        }
        let Some(feed) = cx.feed.as_deref() else {
            return Resent::Invisible;
        };
        let id = values[0].as_deref().unwrap_or("");
        if feed.children.contains(id) {
            Resent::Yes(
                Kind::Correction,
                format!("{id} was sent in an earlier batch and comes again, changed"),
            )
        } else {
            Resent::Yes(
                Kind::LateArrival,
                format!("{id} belongs to an earlier day ({column} is before the batch date)"),
            )
        }
    }
}

enum Resent {
    No,
    /// Only a feed can tell.
    Invisible,
    Yes(Kind, String),
}

/// A CSV line's cells (`None` for an empty one).
fn cells(line: &[u8]) -> Vec<Option<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => record
            .iter()
            .map(|c| (!c.is_empty()).then(|| c.to_string()))
            .collect(),
        _ => vec![None],
    }
}

/// A timestamp in a format other than the contract's: space-separated, US
/// month-first, or with an offset other than Z.
fn other_timestamp(v: &str) -> Option<i64> {
    use chrono::NaiveDateTime;
    for format in ["%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, format) {
            return Some(t.and_utc().timestamp());
        }
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.timestamp())
}

/// A row put right as far as a consumer can: spaces trimmed, enumerations
/// in the schema's case, timestamps in RFC 3339 UTC, decimal points.
fn normalize(contract: &Contract, values: &[Option<String>]) -> Vec<Option<String>> {
    contract
        .columns
        .iter()
        .zip(values)
        .map(|(c, v)| {
            let v = v.as_deref()?.trim_matches(' ');
            if let Some(a) = c.allowed.iter().find(|a| a.eq_ignore_ascii_case(v)) {
                return Some(a.clone());
            }
            if c.timestamp
                && parse_timestamp(v).is_none()
                && let Some(at) = other_timestamp(v)
            {
                return chrono::DateTime::from_timestamp(at, 0)
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            }
            if matches!(c.kind, ColumnKind::Integer | ColumnKind::Number) {
                return Some(v.replace(',', "."));
            }
            Some(v.to_string())
        })
        .collect()
}
