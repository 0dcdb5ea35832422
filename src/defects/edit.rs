//! What each row kind does to a row: the spoiled value, the column, and the
//! clean value it replaced.

use rand::RngExt;
use rand::rngs::ChaCha8Rng;

use super::line::{self, Line};
use super::{ChunkLabel, FileDefects, Kind, Label, Pending};
use crate::dataset::Dataset;
use crate::output::Chunk;

/// Spoils the last line of `chunk` (from `start`) with `kind`. A row the
/// kind cannot apply to (no temperature to chart in Fahrenheit) stays clean.
pub(super) fn spoil(
    f: &FileDefects,
    kind: Kind,
    rng: &mut ChaCha8Rng,
    chunk: &mut Chunk,
    start: usize,
) {
    let d = f.dataset;
    let Some(body) = chunk.bytes.get(start..chunk.bytes.len().saturating_sub(1)) else {
        return;
    };
    let original = body.to_vec();
    let Some(mut row) = Line::parse(d, &original) else {
        return;
    };
    let key = String::from_utf8_lossy(line::key(d.format(), &original)).into_owned();
    let id_column = crate::schema::header(d)[0];
    let label = |chunk: &mut Chunk, key: String, column: Option<&str>, clean: Option<String>| {
        chunk.labels.push(ChunkLabel {
            line: chunk.rows,
            label: Label {
                file: d.file_name().to_string(),
                line: 0,
                key: Some(key),
                column: column.map(str::to_string),
                kind,
                clean,
                original_batch: None,
            },
        });
    };
    // A row for a batch 1 to 3 days later.
    let hold = |rng: &mut ChaCha8Rng, key, change: Option<(&str, String)>, line: Vec<u8>| {
        let due = f.date.days_after(rng.random_range(1..=3u64))?;
        let (column, clean) = change.map_or((None, None), |(c, v)| (Some(c.to_string()), Some(v)));
        Some(Pending {
            due,
            dataset: d,
            kind,
            original_batch: f.date,
            key,
            column,
            clean,
            line: String::from_utf8(line).ok()?,
        })
    };
    match kind {
        Kind::DuplicateExact => {
            chunk.bytes.extend_from_slice(&original);
            chunk.bytes.push(b'\n');
            chunk.rows += 1;
            label(chunk, key, None, None);
        }
        Kind::DuplicateNewId => {
            let Some(new) = new_id(&key) else { return };
            row.set(d, id_column, Some(new.clone()), false);
            row.render(&mut chunk.bytes);
            chunk.bytes.push(b'\n');
            chunk.rows += 1;
            label(chunk, new, Some(id_column), Some(key));
        }
        Kind::LateArrival => {
            let Some(held) = hold(rng, key, None, original) else {
                return;
            };
            chunk.bytes.truncate(start);
            chunk.rows -= 1;
            chunk.held.push(held);
        }
        Kind::Correction => {
            let Some(change) = correct(d, &mut row, rng) else {
                return;
            };
            let mut text = Vec::new();
            row.render(&mut text);
            chunk.held.extend(hold(rng, key, Some(change), text));
        }
        _ => {
            let Some(edit) = value(d, kind, &row, rng) else {
                return;
            };
            row.set(d, edit.column, edit.value, edit.quoted);
            chunk.bytes.truncate(start);
            row.render(&mut chunk.bytes);
            chunk.bytes.push(b'\n');
            label(chunk, key, Some(edit.column), edit.clean);
        }
    }
}

/// A new value for one column.
struct Edit {
    column: &'static str,
    clean: Option<String>,
    value: Option<String>,
    quoted: bool,
}

/// Picks one of `columns` that holds a value.
fn present(
    d: Dataset,
    row: &Line,
    columns: &[&'static str],
    rng: &mut ChaCha8Rng,
) -> Option<(&'static str, String)> {
    let held: Vec<(&'static str, String)> = columns
        .iter()
        .filter_map(|c| row.get(d, c).map(|v| (*c, v)))
        .collect();
    if held.is_empty() {
        return None;
    }
    let (column, value) = &held[rng.random_range(0..held.len())];
    Some((column, value.clone()))
}

const VITALS: [&str; 5] = [
    "heart_rate",
    "systolic_bp",
    "respiratory_rate",
    "temperature_c",
    "spo2",
];

fn value(d: Dataset, kind: Kind, row: &Line, rng: &mut ChaCha8Rng) -> Option<Edit> {
    let edit = |column, clean: String, value: Option<String>, quoted| Edit {
        column,
        clean: Some(clean),
        value,
        quoted,
    };
    match kind {
        Kind::MissingRequired => {
            let columns: &[&str] = match d {
                Dataset::Patients => &["first_name", "last_name", "birth_date", "postal_code"],
                Dataset::Encounters => &["scenario", "department", "chief_complaint"],
                Dataset::Vitals => &["measured_at"],
                Dataset::Labs => &["value", "unit"],
                _ => &["note_type", "text"],
            };
            let (column, clean) = present(d, row, columns, rng)?;
            Some(edit(column, clean, None, false))
        }
        Kind::OutOfRange => {
            if d == Dataset::Labs {
                let clean = row.get(d, "value")?;
                let spoiled = match clean.parse::<f64>() {
                    Ok(v) if v > 0.0 => format!("-{clean}"),
                    _ => "-1".to_string(),
                };
                return Some(edit("value", clean, Some(spoiled), false));
            }
            // Any of the set's measurements, taken or not.
            let column = VITALS[rng.random_range(0..VITALS.len())];
            let impossible: &[&str] = match column {
                "heart_rate" => &["0", "400"],
                "systolic_bp" => &["0", "400"],
                "respiratory_rate" => &["0", "150"],
                "temperature_c" => &["0.0", "55.0"],
                _ => &["130", "0"],
            };
            let spoiled = impossible[rng.random_range(0..impossible.len())];
            Some(Edit {
                column,
                clean: row.get(d, column),
                value: Some(spoiled.to_string()),
                quoted: false,
            })
        }
        Kind::UnitError => {
            if d == Dataset::Vitals {
                let clean = row.get(d, "temperature_c")?;
                let c: f64 = clean.parse().ok()?;
                let f = format!("{:.1}", c * 9.0 / 5.0 + 32.0);
                return Some(edit("temperature_c", clean, Some(f), false));
            }
            let clean = row.get(d, "value")?;
            let v: f64 = clean.parse().ok()?;
            let spoiled = match row.get(d, "loinc_code")?.as_str() {
                // Glucose in mmol/L under mg/dL (the highest values would
                // pass for mg/dL, so only those that cannot).
                "2345-7" if v < 540.0 => format!("{:.1}", v / 18.016),
                // Hemoglobin in g/L under g/dL.
                "718-7" => format!("{:.0}", v * 10.0),
                // Creatinine in umol/L under mg/dL.
                "2160-0" => format!("{:.0}", v * 88.4),
                _ => return None,
            };
            Some(edit("value", clean, Some(spoiled), false))
        }
        Kind::NumberFormat => {
            let columns: &[&str] = if d == Dataset::Labs {
                &["value"]
            } else {
                &VITALS
            };
            let (column, clean) = present(d, row, columns, rng)?;
            Some(match clean.split_once('.') {
                Some((whole, fraction)) => edit(
                    column,
                    clean.clone(),
                    Some(format!("{whole},{fraction}")),
                    false,
                ),
                None => edit(column, clean.clone(), Some(clean), true),
            })
        }
        Kind::TimestampFormat => {
            let columns: &[&str] = match d {
                Dataset::Encounters => &["admit_time", "discharge_time", "updated_at"],
                Dataset::Vitals => &["measured_at"],
                Dataset::Labs => &["collected_at", "resulted_at"],
                _ => &["authored_at"],
            };
            let (column, clean) = present(d, row, columns, rng)?;
            let at = chrono::DateTime::parse_from_rfc3339(&clean).ok()?.to_utc();
            let spoiled = match rng.random_range(0..3u32) {
                0 => at.format("%Y-%m-%d %H:%M:%S").to_string(),
                1 if at.timestamp() % 60 == 0 => at.format("%m/%d/%Y %H:%M").to_string(),
                _ => {
                    let plus_one = chrono::FixedOffset::east_opt(3600)?;
                    at.with_timezone(&plus_one).to_rfc3339()
                }
            };
            Some(edit(column, clean, Some(spoiled), false))
        }
        Kind::EnumCase => {
            let columns: &[&str] = match d {
                Dataset::Patients => &["sex"],
                Dataset::Encounters => &["encounter_type", "status", "disposition"],
                Dataset::Labs => &["abnormal_flag"],
                _ => &["note_type", "author_role"],
            };
            let (column, clean) = present(d, row, columns, rng)?;
            let mut capital = clean.clone();
            if let Some(first) = capital.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            let mut choices = [clean.to_uppercase(), capital, clean.to_lowercase()];
            if rng.random_bool(0.5) {
                choices.swap(0, 1);
            }
            let spoiled = choices.into_iter().find(|c| *c != clean)?;
            Some(edit(column, clean, Some(spoiled), false))
        }
        Kind::Whitespace => {
            let columns: &[&str] = match d {
                Dataset::Patients => &["first_name", "last_name"],
                Dataset::Encounters => &["department", "chief_complaint"],
                Dataset::Labs => &["test_name"],
                _ => &["text"],
            };
            let (column, clean) = present(d, row, columns, rng)?;
            let spoiled = if rng.random_bool(0.5) {
                format!(" {clean}")
            } else {
                format!("{clean} ")
            };
            Some(edit(column, clean, Some(spoiled), false))
        }
        Kind::OrphanReference => {
            let clean = row.get(d, "patient_id")?;
            // Patient numbers never reach 90,000,000.
            let orphan = format!("P9{:07}", rng.random_range(0..10_000_000u32));
            Some(edit("patient_id", clean, Some(orphan), false))
        }
        _ => None,
    }
}

/// The same event under a new ID: the sequence moved past any a stay
/// reaches, in the schema's ID pattern.
fn new_id(key: &str) -> Option<String> {
    let (encounter, child) = key.rsplit_once('-')?;
    let (letter, digits) = child.split_at_checked(1)?;
    let seq: u32 = digits.parse().ok()?;
    let offset = if letter == "N" { 5_000 } else { 50_000 };
    Some(format!("{encounter}-{letter}{}", seq + offset))
}

/// A corrected version of a vitals or lab row: one value changed a little
/// (the lab's flag follows it); returns the column and its clean value.
fn correct(d: Dataset, row: &mut Line, rng: &mut ChaCha8Rng) -> Option<(&'static str, String)> {
    if d == Dataset::Vitals {
        let (column, clean) = present(d, row, &["heart_rate", "respiratory_rate", "spo2"], rng)?;
        let v: i64 = clean.parse().ok()?;
        let (low, high) = match column {
            "heart_rate" => (30, 220),
            "respiratory_rate" => (6, 60),
            _ => (60, 100),
        };
        let step = rng.random_range(1..=6i64) * if rng.random_bool(0.5) { 1 } else { -1 };
        let fixed = (v + step).clamp(low, high);
        let fixed = if fixed == v { v - step.signum() } else { fixed };
        row.set(d, column, Some(fixed.to_string()), false);
        return Some((column, clean));
    }
    let clean = row.get(d, "value")?;
    let v: f64 = clean.parse().ok()?;
    let loinc = row.get(d, "loinc_code")?;
    let test = crate::catalog::CATALOG.iter().find(|t| t.loinc == loinc)?;
    let reference = (
        row.get(d, "reference_low")?.parse().ok()?,
        row.get(d, "reference_high")?.parse().ok()?,
    );
    let unit = 10f64.powi(-(test.decimals as i32));
    let change = (v.abs() * rng.random_range(0.03..0.12)).max(unit);
    let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    let mut fixed = test.round(v + sign * change);
    if !(test.plausible.0..=test.plausible.1).contains(&fixed) || fixed == v {
        fixed = test.round(v - sign * change);
    }
    if !(test.plausible.0..=test.plausible.1).contains(&fixed) || fixed == v {
        return None;
    }
    row.set(
        d,
        "value",
        Some(format!("{fixed:.*}", test.decimals)),
        false,
    );
    row.set(
        d,
        "abnormal_flag",
        Some(test.flag(fixed, reference).to_string()),
        false,
    );
    Some(("value", clean))
}
