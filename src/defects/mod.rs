//! Labelled mess on purpose: the defect profiles (`none`, `light`, `heavy`,
//! or a custom table of rates), what each kind does to a row or a file, and
//! the ground truth every defect is recorded in (`_defects.jsonl`).
//!
//! Defects are applied where rows are encoded ([`crate::output::Encoder`]):
//! the clean row is written first, then [`FileDefects::apply`] decides from
//! a keyed hash of the row's ID (never from a shared random stream) whether
//! and how to spoil it. Clean rows therefore stay byte for byte what the
//! `none` profile writes, and the decisions are the same for any number of
//! threads. Rows held back (late arrivals) and corrections re-sent later
//! wait in the mode's state ([`Pending`]) and are appended to the file of
//! the batch they are due in.

mod edit;
mod line;

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::ChaCha8Rng;
use rand::{Rng, RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dataset::{Dataset, FileFormat};
use crate::generate::{DaySeed, Stream, mix64};
use crate::model::BatchDate;
use crate::output::Chunk;
use crate::rows::{Encode, Fields, Row};

use line::split_csv;

/// A kind of defect. Each has its own rate per dataset.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumString,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Kind {
    MissingRequired,
    OutOfRange,
    UnitError,
    DuplicateExact,
    DuplicateNewId,
    OrphanReference,
    LateArrival,
    Correction,
    TimestampFormat,
    NumberFormat,
    EnumCase,
    Whitespace,
    BomCrlf,
    SchemaDrift,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::MissingRequired,
        Kind::OutOfRange,
        Kind::UnitError,
        Kind::DuplicateExact,
        Kind::DuplicateNewId,
        Kind::OrphanReference,
        Kind::LateArrival,
        Kind::Correction,
        Kind::TimestampFormat,
        Kind::NumberFormat,
        Kind::EnumCase,
        Kind::Whitespace,
        Kind::BomCrlf,
        Kind::SchemaDrift,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// A kind that spoils a whole file (its rate is per file and batch),
    /// not a row.
    pub fn is_file_level(self) -> bool {
        matches!(self, Kind::BomCrlf | Kind::SchemaDrift)
    }

    /// A kind that one batch cannot show: the row is clean, and only an
    /// earlier batch says it is late or re-sent (`validate --feed` sees it).
    pub fn needs_feed(self) -> bool {
        matches!(self, Kind::LateArrival | Kind::Correction)
    }

    /// The datasets the kind can spoil.
    pub fn datasets(self) -> &'static [Dataset] {
        use Dataset::*;
        match self {
            Kind::MissingRequired | Kind::DuplicateExact => {
                &[Patients, Encounters, Vitals, Labs, Notes]
            }
            Kind::OutOfRange | Kind::UnitError | Kind::NumberFormat | Kind::Correction => {
                &[Vitals, Labs]
            }
            Kind::DuplicateNewId | Kind::OrphanReference | Kind::LateArrival => {
                &[Vitals, Labs, Notes]
            }
            Kind::TimestampFormat => &[Encounters, Vitals, Labs, Notes],
            Kind::EnumCase | Kind::Whitespace => &[Patients, Encounters, Labs, Notes],
            // Text files only: a JSON Lines reader has no header to drift
            // and no BOM convention.
            Kind::BomCrlf | Kind::SchemaDrift => &[Patients, Encounters, Vitals, Labs],
        }
    }

    pub fn applies_to(self, dataset: Dataset) -> bool {
        self.datasets().contains(&dataset)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much mess a mode's batches carry.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Profile {
    /// Clean output, byte-identical to a run without defects.
    #[default]
    None,
    /// About 0.5% of rows touched.
    Light,
    /// About 5% of rows touched.
    Heavy,
    /// The config's own table, `defects.rates`.
    Custom,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A custom table: kind -> dataset -> rate.
pub type CustomRates = BTreeMap<Kind, BTreeMap<Dataset, f64>>;

/// The rate of every kind on every dataset: for a row kind, the chance that
/// a row is spoiled that way (where the row has what the kind needs, e.g. a
/// temperature for a unit error); for a file kind, the chance per file and
/// batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Rates {
    pub profile: Profile,
    table: BTreeMap<(Kind, Dataset), f64>,
}

/// The presets: the rate of each row kind, and of each file kind.
const LIGHT: (f64, f64, f64) = (0.0005, 0.04, 0.03);
const HEAVY: (f64, f64, f64) = (0.005, 0.2, 0.15);

impl Rates {
    pub fn of(profile: Profile, custom: &CustomRates) -> Rates {
        let preset = |(row, bom, drift): (f64, f64, f64)| {
            let mut table = BTreeMap::new();
            for kind in Kind::ALL {
                let rate = match kind {
                    Kind::BomCrlf => bom,
                    Kind::SchemaDrift => drift,
                    _ => row,
                };
                for &d in kind.datasets() {
                    table.insert((kind, d), rate);
                }
            }
            table
        };
        let table = match profile {
            Profile::None => BTreeMap::new(),
            Profile::Light => preset(LIGHT),
            Profile::Heavy => preset(HEAVY),
            Profile::Custom => custom
                .iter()
                .flat_map(|(kind, per)| per.iter().map(move |(d, rate)| ((*kind, *d), *rate)))
                .filter(|(_, rate)| *rate > 0.0)
                .collect(),
        };
        Rates { profile, table }
    }

    pub fn get(&self, kind: Kind, dataset: Dataset) -> f64 {
        self.table.get(&(kind, dataset)).copied().unwrap_or(0.0)
    }

    pub fn is_clean(&self) -> bool {
        self.table.is_empty()
    }

    /// What a state records of the profile, so a later run can refuse
    /// another: the profile's name, and for a custom table its digest.
    pub fn record(&self) -> String {
        if self.is_clean() {
            return Profile::None.as_str().to_string();
        }
        match self.profile {
            Profile::Custom => {
                let text: String = self
                    .table
                    .iter()
                    .map(|((k, d), r)| format!("{k}/{}={r};", d.name()))
                    .collect();
                format!("custom:{}", &hex::encode(Sha256::digest(text))[..16])
            }
            p => p.as_str().to_string(),
        }
    }

    /// Checks a custom table: known kinds on datasets they apply to, rates
    /// in 0..=1, and at most 1 in all per dataset (a row gets one kind).
    pub fn check_custom(custom: &CustomRates) -> Result<(), String> {
        let mut per_dataset: BTreeMap<Dataset, f64> = BTreeMap::new();
        for (kind, per) in custom {
            for (dataset, rate) in per {
                let key = format!("defects.rates.{kind}.{}", dataset.name());
                if !kind.applies_to(*dataset) {
                    return Err(format!(
                        "{key}: {kind} does not apply to {}; it applies to {}",
                        dataset.name(),
                        kind.datasets()
                            .iter()
                            .map(|d| d.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if !(0.0..=1.0).contains(rate) {
                    return Err(format!("{key}: must be between 0 and 1, got {rate}"));
                }
                if !kind.is_file_level() {
                    *per_dataset.entry(*dataset).or_default() += rate;
                }
            }
        }
        match per_dataset.iter().find(|(_, sum)| **sum > 1.0) {
            Some((d, sum)) => Err(format!(
                "defects.rates: the row kinds of {} add up to {sum}, more than 1",
                d.name()
            )),
            None => Ok(()),
        }
    }
}

/// One line of `_defects.jsonl`: a defect and where it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// The batch file, e.g. `vitals.csv`.
    pub file: String,
    /// The 1-based physical line (a file-level defect: 1).
    pub line: u64,
    /// The row's ID as written (null for a file-level defect).
    pub key: Option<String>,
    /// The column spoiled, by its schema name (null when the whole row is).
    pub column: Option<String>,
    pub kind: Kind,
    /// The clean value the defect replaced (null when there was none).
    pub clean: Option<String>,
    /// For late and corrected rows, the batch the row first belonged to.
    pub original_batch: Option<BatchDate>,
}

impl Encode for Label {
    fn encode<F: Fields>(&self, f: &mut F) {
        let text = |f: &mut F, v: &Option<String>| match v {
            Some(v) => f.text(v),
            None => f.null(),
        };
        f.text(&self.file);
        f.uint(Some(self.line));
        text(f, &self.key);
        text(f, &self.column);
        f.code(self.kind.as_str());
        text(f, &self.clean);
        match self.original_batch {
            Some(date) => f.date(date.date()),
            None => f.null(),
        }
    }
}

impl Row for Label {
    const DATASET: Dataset = Dataset::Defects;
}

/// A label as a chunk holds it: its line counted within the chunk (the
/// file's writer adds the lines before).
#[derive(Clone, Debug)]
pub struct ChunkLabel {
    pub line: u64,
    pub label: Label,
}

/// A row waiting in the mode's state for a later batch: held back (late),
/// or a corrected version of a row already sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    /// The batch the row is delivered in.
    pub due: BatchDate,
    pub dataset: Dataset,
    pub kind: Kind,
    pub original_batch: BatchDate,
    pub key: String,
    pub column: Option<String>,
    pub clean: Option<String>,
    /// The row as the clean file writes it, without its line end.
    pub line: String,
}

/// What a mode's state records of its defects (`defects.json`): the
/// profile it was started with, and the rows pending.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    pub profile: String,
    pub pending: Vec<Pending>,
}

/// A change of a file's columns on one date, announced in the manifest by a
/// new schema version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drift {
    /// The column at `column` goes by another name.
    Renamed { column: usize, name: &'static str },
    /// A column the schema does not know is added at the end.
    Added {
        name: &'static str,
        value: &'static str,
    },
    /// Two columns trade places (header and values).
    Reordered { column: usize, with: usize },
}

/// The columns drift may rename, and into what; the pairs it may swap.
fn drift_choices(dataset: Dataset) -> (&'static str, &'static str, [&'static str; 2]) {
    match dataset {
        Dataset::Patients => ("postal_code", "zip_code", ["first_name", "last_name"]),
        Dataset::Encounters => (
            "chief_complaint",
            "reason_for_visit",
            ["department", "chief_complaint"],
        ),
        Dataset::Vitals => ("heart_rate", "pulse", ["systolic_bp", "diastolic_bp"]),
        _ => ("value", "result_value", ["reference_low", "reference_high"]),
    }
}

/// The index of a schema column.
fn column_index(dataset: Dataset, name: &str) -> usize {
    crate::schema::header(dataset)
        .iter()
        .position(|c| *c == name)
        .unwrap_or(0)
}

/// What one dataset's file gets on one date.
#[derive(Debug)]
pub struct FileDefects {
    dataset: Dataset,
    date: BatchDate,
    base: u64,
    /// The row kinds and the upper end of each one's share of the unit
    /// interval, in order.
    cuts: Vec<(Kind, f64)>,
    /// A BOM at the start and CRLF line ends.
    pub bom_crlf: bool,
    pub drift: Option<Drift>,
}

/// Every file's defects on one date.
#[derive(Debug, Default)]
pub struct DayDefects {
    files: BTreeMap<Dataset, Arc<FileDefects>>,
}

impl DayDefects {
    /// No defects at all.
    pub const NONE: DayDefects = DayDefects {
        files: BTreeMap::new(),
    };

    /// The defects of `date`: which files are touched and how rows are
    /// picked, all from the day's own `Defects` stream.
    pub fn new(rates: &Rates, seed: &DaySeed, date: BatchDate) -> DayDefects {
        if rates.is_clean() {
            return DayDefects::default();
        }
        let mut rng = seed.rng(Stream::Defects);
        let mut files = BTreeMap::new();
        for dataset in Dataset::ALL {
            // Drawn for every dataset whatever the rates, so one rate's
            // change does not move another file's draws.
            let base = rng.next_u64();
            let (bom_draw, drift_draw, variant) = (
                rng.random::<f64>(),
                rng.random::<f64>(),
                rng.random_range(0..3u32),
            );
            let bom_crlf = bom_draw < rates.get(Kind::BomCrlf, dataset);
            let drift = (drift_draw < rates.get(Kind::SchemaDrift, dataset)).then(|| {
                let (renamed, name, pair) = drift_choices(dataset);
                match variant {
                    0 => Drift::Renamed {
                        column: column_index(dataset, renamed),
                        name,
                    },
                    1 => Drift::Added {
                        name: "source_system",
                        value: "hl7v2",
                    },
                    _ => Drift::Reordered {
                        column: column_index(dataset, pair[0]),
                        with: column_index(dataset, pair[1]),
                    },
                }
            });
            let mut cuts = Vec::new();
            let mut upto = 0.0;
            for kind in Kind::ALL.into_iter().filter(|k| !k.is_file_level()) {
                let rate = rates.get(kind, dataset);
                if rate > 0.0 {
                    upto += rate;
                    cuts.push((kind, upto));
                }
            }
            files.insert(
                dataset,
                Arc::new(FileDefects {
                    dataset,
                    date,
                    base,
                    cuts,
                    bom_crlf,
                    drift,
                }),
            );
        }
        DayDefects { files }
    }

    pub fn file(&self, dataset: Dataset) -> Option<Arc<FileDefects>> {
        self.files.get(&dataset).cloned()
    }
}

impl FileDefects {
    fn csv(&self) -> bool {
        self.dataset.format() == FileFormat::Csv
    }

    /// The header line's columns as this date writes them.
    pub fn columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = crate::schema::header(self.dataset)
            .iter()
            .map(|c| c.to_string())
            .collect();
        match self.drift {
            Some(Drift::Renamed { column, name }) => columns[column] = name.to_string(),
            Some(Drift::Added { name, .. }) => columns.push(name.to_string()),
            Some(Drift::Reordered { column, with }) => columns.swap(column, with),
            None => {}
        }
        columns
    }

    /// The schema version the manifest announces for a drifted file: a new
    /// major version for a renamed or moved column, a minor one for an added
    /// column.
    pub fn schema_version(&self, version: &str) -> String {
        let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        match self.drift {
            Some(Drift::Added { .. }) => format!("{major}.{}.0", minor + 1),
            Some(_) => format!("{}.0.0", major + 1),
            None => version.to_string(),
        }
    }

    /// The label of the file-level defects, at line 1.
    pub fn file_labels(&self) -> Vec<Label> {
        let mut labels = Vec::new();
        let file = self.dataset.file_name().to_string();
        if self.bom_crlf {
            labels.push(Label {
                file: file.clone(),
                line: 1,
                key: None,
                column: None,
                kind: Kind::BomCrlf,
                clean: None,
                original_batch: None,
            });
        }
        if let Some(drift) = self.drift {
            let header = crate::schema::header(self.dataset);
            let (column, clean) = match drift {
                Drift::Renamed { column, .. } => (header[column], Some(header[column])),
                Drift::Added { name, .. } => (name, None),
                Drift::Reordered { column, .. } => (header[column], Some(header[column])),
            };
            labels.push(Label {
                file,
                line: 1,
                key: None,
                column: Some(column.to_string()),
                kind: Kind::SchemaDrift,
                clean: clean.map(str::to_string),
                original_batch: None,
            });
        }
        labels
    }

    /// The bytes a file starts with (a BOM, or nothing).
    pub fn preamble(&self) -> &'static [u8] {
        if self.bom_crlf && self.csv() {
            "\u{feff}".as_bytes()
        } else {
            b""
        }
    }

    /// Spoils the row encoded at `chunk.bytes[start..]` (one line, counted
    /// in `chunk.rows`), if its key draws a defect, then puts every line
    /// from `start` in the file's drifted layout and line ends.
    pub fn apply(&self, chunk: &mut Chunk, start: usize) {
        if !self.cuts.is_empty() {
            let line = &chunk.bytes[start..chunk.bytes.len().saturating_sub(1)];
            let key = line::key(self.dataset.format(), line);
            let h = mix64(self.base, fnv1a(key));
            let u = (h >> 11) as f64 / (1u64 << 53) as f64;
            if let Some(&(kind, _)) = self.cuts.iter().find(|(_, cut)| u < *cut) {
                let mut rng = ChaCha8Rng::seed_from_u64(h);
                edit::spoil(self, kind, &mut rng, chunk, start);
            }
        }
        self.layout(chunk, start);
    }

    /// Appends rows that were pending for this date, each with its label.
    pub fn deliver(&self, chunk: &mut Chunk, pending: &[Pending]) {
        for p in pending {
            let start = chunk.bytes.len();
            chunk.bytes.extend_from_slice(p.line.as_bytes());
            chunk.bytes.push(b'\n');
            chunk.rows += 1;
            chunk.labels.push(ChunkLabel {
                line: chunk.rows,
                label: Label {
                    file: self.dataset.file_name().to_string(),
                    line: 0,
                    key: Some(p.key.clone()),
                    column: p.column.clone(),
                    kind: p.kind,
                    clean: p.clean.clone(),
                    original_batch: Some(p.original_batch),
                },
            });
            self.layout(chunk, start);
        }
    }

    /// Drift and CRLF for the lines from `start` (CSV only).
    fn layout(&self, chunk: &mut Chunk, start: usize) {
        if !self.csv() || (self.drift.is_none() && !self.bom_crlf) {
            return;
        }
        if chunk.bytes.len() <= start {
            return;
        }
        // One line (nearly always): its end rewritten in place.
        let lines = memchr::memchr_iter(b'\n', &chunk.bytes[start..]).count();
        if lines == 1 && !matches!(self.drift, Some(Drift::Reordered { .. })) {
            chunk.bytes.pop();
            if let Some(Drift::Added { value, .. }) = self.drift {
                chunk.bytes.push(b',');
                chunk.bytes.extend_from_slice(value.as_bytes());
            }
            if self.bom_crlf {
                chunk.bytes.push(b'\r');
            }
            chunk.bytes.push(b'\n');
            return;
        }
        let tail = chunk.bytes.split_off(start);
        for line in tail.split_inclusive(|b| *b == b'\n') {
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            match self.drift {
                Some(Drift::Added { value, .. }) => {
                    chunk.bytes.extend_from_slice(body);
                    chunk.bytes.push(b',');
                    chunk.bytes.extend_from_slice(value.as_bytes());
                }
                Some(Drift::Reordered { column, with }) => {
                    let mut cells = split_csv(body);
                    if cells.len() > column.max(with) {
                        cells.swap(column, with);
                    }
                    line::join_csv(&cells, &mut chunk.bytes);
                }
                _ => chunk.bytes.extend_from_slice(body),
            }
            if self.bom_crlf {
                chunk.bytes.push(b'\r');
            }
            chunk.bytes.push(b'\n');
        }
    }

    /// The header line as this date writes it, with its line end.
    pub fn header(&self, out: &mut Vec<u8>) {
        let columns: Vec<line::Cell> = self.columns().into_iter().map(line::Cell::plain).collect();
        line::join_csv(&columns, out);
        if self.bom_crlf {
            out.push(b'\r');
        }
        out.push(b'\n');
    }
}

/// FNV-1a: a row ID's bytes as one number, the same on every platform.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_apply_each_kind_where_it_makes_sense() {
        let heavy = Rates::of(Profile::Heavy, &CustomRates::new());
        for kind in Kind::ALL {
            for d in Dataset::ALL {
                assert_eq!(heavy.get(kind, d) > 0.0, kind.applies_to(d), "{kind} {d:?}");
            }
        }
        assert!(Rates::of(Profile::None, &CustomRates::new()).is_clean());
        // About 5% of vitals rows in heavy, 0.5% in light.
        let share = |r: &Rates| -> f64 {
            Kind::ALL
                .iter()
                .filter(|k| !k.is_file_level())
                .map(|k| r.get(*k, Dataset::Vitals))
                .sum()
        };
        assert!((share(&heavy) - 0.05).abs() < 0.01);
        let light = Rates::of(Profile::Light, &CustomRates::new());
        assert!((share(&light) - 0.005).abs() < 0.001);
    }

    #[test]
    fn a_custom_table_is_checked() {
        let mut custom = CustomRates::new();
        custom.insert(Kind::UnitError, [(Dataset::Patients, 0.1)].into());
        assert!(
            Rates::check_custom(&custom)
                .unwrap_err()
                .contains("does not apply")
        );
        custom.clear();
        custom.insert(Kind::OutOfRange, [(Dataset::Vitals, 1.5)].into());
        assert!(
            Rates::check_custom(&custom)
                .unwrap_err()
                .contains("between 0 and 1")
        );
        custom.clear();
        custom.insert(Kind::OutOfRange, [(Dataset::Vitals, 0.6)].into());
        custom.insert(Kind::UnitError, [(Dataset::Vitals, 0.6)].into());
        assert!(
            Rates::check_custom(&custom)
                .unwrap_err()
                .contains("more than 1")
        );
        custom.remove(&Kind::UnitError);
        assert!(Rates::check_custom(&custom).is_ok());
        let rates = Rates::of(Profile::Custom, &custom);
        assert_eq!(rates.get(Kind::OutOfRange, Dataset::Vitals), 0.6);
        assert!(rates.record().starts_with("custom:"));
    }
}
