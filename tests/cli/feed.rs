//! The batches as a daily feed, as an incremental ETL meets them: a 30-day
//! raw backfill holds each day's events in that day's batch, encounters
//! arrive open and are finished later, patients live possible lives, the
//! ward census settles where Little's law puts it, and the README's DuckDB
//! upsert rebuilds the final encounter table.

use chrono::NaiveDate;
use std::collections::{HashMap, HashSet};

use crate::common::python_with;
use crate::helpers::{Sandbox, read_csv, timestamp};

const FIRST: &str = "2026-03-01";
const LAST: &str = "2026-03-30";

type Row = HashMap<String, String>;

/// Every batch of the backfill, in date order.
struct Feed {
    sb: Sandbox,
    days: Vec<Day>,
}

struct Day {
    date: NaiveDate,
    encounters: Vec<Row>,
    patients: Vec<Row>,
    /// Every vitals, labs and notes row: its encounter_id, the time that
    /// dates it (a lab's result), and the time that must fall inside the
    /// stay (a lab's collection).
    events: Vec<(String, i64, i64)>,
}

/// A 30-day raw backfill on the default volumes, generated once.
fn feed() -> &'static Feed {
    static FEED: std::sync::OnceLock<Feed> = std::sync::OnceLock::new();
    FEED.get_or_init(|| {
        let sb = Sandbox::shared("feed");
        sb.ok(&["generate", "--mode", "raw", "--from", FIRST, "--to", LAST]);
        let mut days = Vec::new();
        let mut date: NaiveDate = FIRST.parse().unwrap();
        while date <= LAST.parse().unwrap() {
            let dir = sb.batch("raw", &date.to_string());
            let mut events = Vec::new();
            for r in read_csv(&dir.join("vitals.csv")).rows {
                let at = timestamp(&r["measured_at"]);
                events.push((r["encounter_id"].clone(), at, at));
            }
            for r in read_csv(&dir.join("labs.csv")).rows {
                events.push((
                    r["encounter_id"].clone(),
                    timestamp(&r["resulted_at"]),
                    timestamp(&r["collected_at"]),
                ));
            }
            for line in std::fs::read_to_string(dir.join("notes.jsonl"))
                .unwrap()
                .lines()
            {
                let note: serde_json::Value = serde_json::from_str(line).unwrap();
                let at = timestamp(note["authored_at"].as_str().unwrap());
                events.push((note["encounter_id"].as_str().unwrap().to_string(), at, at));
            }
            days.push(Day {
                date,
                encounters: read_csv(&dir.join("encounters.csv")).rows,
                patients: read_csv(&dir.join("patients.csv")).rows,
                events,
            });
            date = date.succ_opt().unwrap();
        }
        Feed { sb, days }
    })
}

fn day_bounds(date: NaiveDate) -> (i64, i64) {
    let start = date.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    (start, start + 86_400)
}

impl Feed {
    /// Each encounter's last row: the upsert feed applied.
    fn last_rows(&self) -> HashMap<String, Row> {
        let mut last = HashMap::new();
        for day in &self.days {
            for e in &day.encounters {
                last.insert(e["encounter_id"].clone(), e.clone());
            }
        }
        last
    }
}

fn span(e: &Row) -> (i64, i64) {
    let end = match e["discharge_time"].as_str() {
        "" => i64::MAX,
        t => timestamp(t),
    };
    (timestamp(&e["admit_time"]), end)
}

#[test]
fn the_validator_accepts_the_backfill_as_one_feed() {
    let f = feed();
    let out = f.sb.ok(&["validate", "--feed", "data/raw"]);
    assert!(out.starts_with("valid feed data/raw: 30 batches"), "{out}");
}

/// Nothing in a batch happened after its date; every row's encounter was
/// sent no later than the row, and nothing happens after its discharge.
#[test]
fn each_batch_holds_only_what_happened_on_its_date() {
    let f = feed();
    let mut sent: HashMap<String, (i64, i64)> = HashMap::new();
    let (mut after, mut before_admit, mut after_discharge, mut unsent) = (0, 0, 0, 0);
    let mut rows = 0;
    for day in &f.days {
        let (start, end) = day_bounds(day.date);
        for e in &day.encounters {
            let (admit, discharge) = span(e);
            let updated = timestamp(&e["updated_at"]);
            after += usize::from(admit >= end || updated >= end);
            after += usize::from(discharge != i64::MAX && discharge >= end);
            sent.insert(e["encounter_id"].clone(), (admit, discharge));
        }
        for (encounter, at, inside) in &day.events {
            rows += 1;
            after += usize::from(*at >= end);
            match sent.get(encounter) {
                None => unsent += 1,
                Some(&(admit, discharge)) => {
                    before_admit += usize::from(*inside < admit);
                    after_discharge += usize::from(*inside > discharge);
                }
            }
            // Events are on the batch's day (a lab resulted after midnight
            // belongs to the next day's batch).
            assert!(*at >= start, "{encounter}: an event before {}", day.date);
        }
    }
    assert!(rows > 300_000, "{rows} event rows");
    assert_eq!(
        (after, before_admit, after_discharge, unsent),
        (0, 0, 0, 0),
        "rows dated after their batch, before admission, after discharge, of unsent encounters"
    );
}

/// Patients live possible lives: nobody is seen after dying, and nobody
/// has two encounters at once (an emergency visit ends the minute the
/// stay it continues as begins).
#[test]
fn patients_live_possible_lives() {
    let f = feed();
    let last = f.last_rows();
    let mut by_patient: HashMap<&str, Vec<&Row>> = HashMap::new();
    for e in last.values() {
        by_patient
            .entry(e["patient_id"].as_str())
            .or_default()
            .push(e);
    }
    let (mut overlaps, mut after_death, mut deaths) = (0, 0, 0);
    for encounters in by_patient.values_mut() {
        encounters.sort_by_key(|e| span(e));
        for pair in encounters.windows(2) {
            overlaps += usize::from(span(pair[1]).0 < span(pair[0]).1);
        }
        if let Some(death) = encounters
            .iter()
            .filter(|e| e["disposition"] == "expired")
            .map(|e| span(e).1)
            .min()
        {
            deaths += 1;
            after_death += encounters.iter().filter(|e| span(e).0 > death).count();
        }
    }
    assert!(deaths > 20, "{deaths} deaths in 30 days");
    assert_eq!(
        (overlaps, after_death),
        (0, 0),
        "overlapping stays, encounters after death"
    );

    // The snapshot records a death from the day it happens.
    let died: HashMap<&str, String> = last
        .values()
        .filter(|e| e["disposition"] == "expired")
        .map(|e| {
            (
                e["patient_id"].as_str(),
                e["discharge_time"][..10].to_string(),
            )
        })
        .collect();
    for day in &f.days {
        for p in &day.patients {
            if let Some(date) = died.get(p["patient_id"].as_str())
                && date.as_str() <= p["snapshot_date"].as_str()
            {
                assert_eq!(&p["deceased_date"], date, "{}", p["patient_id"]);
            }
        }
    }
}

/// The inpatient census settles where Little's law puts it: admissions per
/// day times the mean length of stay, within 15%, from the first week on
/// (the warm start opens day 1 on a running hospital).
#[test]
fn the_ward_census_follows_littles_law() {
    let f = feed();
    let last = f.last_rows();
    let inpatients: Vec<(i64, i64)> = last
        .values()
        .filter(|e| e["encounter_type"] == "inpatient")
        .map(span)
        .collect();
    let (first, _) = day_bounds(FIRST.parse().unwrap());
    let (_, end) = day_bounds(LAST.parse().unwrap());
    let admitted: Vec<&(i64, i64)> = inpatients
        .iter()
        .filter(|(a, _)| (first..end).contains(a))
        .collect();
    let per_day = admitted.len() as f64 / 30.0;
    // Stays admitted in the first half have (nearly all) ended by the last day.
    let early: Vec<f64> = admitted
        .iter()
        .filter(|(a, _)| *a < first + 15 * 86_400)
        .map(|(a, d)| ((*d).min(end) - a) as f64 / 86_400.0)
        .collect();
    let mean_los = early.iter().sum::<f64>() / early.len() as f64;
    let expected = per_day * mean_los;
    let census: Vec<usize> = f
        .days
        .iter()
        .map(|day| {
            let (_, midnight) = day_bounds(day.date);
            inpatients
                .iter()
                .filter(|(a, d)| *a < midnight && *d >= midnight)
                .count()
        })
        .collect();
    let settled = &census[7..];
    let mean = settled.iter().sum::<usize>() as f64 / settled.len() as f64;
    eprintln!(
        "census at midnight, days 8-30: mean {mean:.0} (min {}, max {}); Little's law: {per_day:.1} admissions/day x {mean_los:.2} days = {expected:.0}; day 1: {}",
        settled.iter().min().unwrap(),
        settled.iter().max().unwrap(),
        census[0]
    );
    assert!(
        (mean / expected - 1.0).abs() < 0.15,
        "mean census {mean:.0} vs Little's law {expected:.0}"
    );
    assert!(
        census[0] as f64 > 0.6 * expected,
        "day 1 starts on an empty ward: {} in house",
        census[0]
    );
}

/// The README's DuckDB example, run as written over the first week: the
/// upsert gives each encounter's latest row, the same table this test
/// builds by applying the rows in order.
#[test]
fn the_readme_duckdb_upsert_rebuilds_the_final_encounter_table() {
    let Some(python) = python_with_duckdb() else {
        return;
    };
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let sql = readme
        .split("<!-- duckdb-upsert -->")
        .nth(1)
        .and_then(|s| s.split("```sql").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("README.md has a ```sql block after <!-- duckdb-upsert -->");
    let f = feed();
    let script = concat!(
        "import duckdb, sys\n",
        "con = duckdb.connect()\n",
        "con.execute(sys.argv[1])\n",
        "con.execute(\"COPY (SELECT encounter_id, status, ",
        "strftime(discharge_time AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS discharge_time, ",
        "strftime(updated_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS updated_at ",
        "FROM encounters ORDER BY encounter_id) TO 'upserted.csv' (HEADER)\")\n",
    );
    let out = std::process::Command::new(&python)
        .current_dir(f.sb.path())
        .args(["-c", script, sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let upserted = read_csv(&f.sb.path().join("upserted.csv")).rows;
    std::fs::remove_file(f.sb.path().join("upserted.csv")).unwrap();

    // The same week, applied row by row in batch order.
    let mut expected: HashMap<String, Row> = HashMap::new();
    for day in f.days.iter().take(7) {
        for e in &day.encounters {
            expected.insert(e["encounter_id"].clone(), e.clone());
        }
    }
    assert_eq!(upserted.len(), expected.len());
    let finished = upserted
        .iter()
        .filter(|r| r["status"] == "finished")
        .count();
    assert!(
        finished > 0 && finished < upserted.len(),
        "{finished} finished"
    );
    let mut ids = HashSet::new();
    for r in &upserted {
        assert!(ids.insert(&r["encounter_id"]));
        let e = &expected[&r["encounter_id"]];
        for column in ["status", "discharge_time", "updated_at"] {
            assert_eq!(r[column], e[column], "{} {column}", r["encounter_id"]);
        }
    }
}

/// The Python with the duckdb package (see [`python_with`]).
pub(crate) fn python_with_duckdb() -> Option<String> {
    python_with("duckdb", "the README DuckDB test")
}
