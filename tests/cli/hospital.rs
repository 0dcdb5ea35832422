//! Does the feed look like a hospital's over weeks, not just per encounter?
//! The audit of issue #11, as black-box checks on the files of a 14-day raw
//! backfill at the default config (2026-03-01 to 03-14): who comes back and
//! how often, weekly rhythm, and the facility's local clock, including both
//! daylight-saving days.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use chrono_tz::America::New_York;

use crate::helpers::{Sandbox, read_csv, read_jsonl};

const FIRST: &str = "2026-03-01";
const LAST: &str = "2026-03-14";

type Row = HashMap<String, String>;

/// Each encounter's last row across the feed (the upsert applied), and the
/// labs and notes of every batch.
struct Feed {
    encounters: Vec<Row>,
    labs: Vec<Row>,
    notes: Vec<serde_json::Value>,
}

fn fortnight() -> &'static Feed {
    static FEED: std::sync::OnceLock<Feed> = std::sync::OnceLock::new();
    FEED.get_or_init(|| backfill(FIRST, LAST))
}

fn backfill(first: &str, last: &str) -> Feed {
    let sb = Sandbox::new();
    sb.ok(&["generate", "--mode", "raw", "--from", first, "--to", last]);
    let mut by_id: HashMap<String, Row> = HashMap::new();
    let (mut labs, mut notes) = (Vec::new(), Vec::new());
    let mut day: NaiveDate = first.parse().unwrap();
    while day <= last.parse().unwrap() {
        let dir = sb.batch("raw", &day.to_string());
        for e in read_csv(&dir.join("encounters.csv")).rows {
            by_id.insert(e["encounter_id"].clone(), e);
        }
        labs.extend(read_csv(&dir.join("labs.csv")).rows);
        notes.extend(read_jsonl(&dir.join("notes.jsonl")));
        day = day.succ_opt().unwrap();
    }
    let mut encounters: Vec<Row> = by_id.into_values().collect();
    encounters.sort_by(|a, b| a["encounter_id"].cmp(&b["encounter_id"]));
    Feed {
        encounters,
        labs,
        notes,
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Encounters admitted inside the feed's days (not the stays it began with).
fn admitted_in_feed(feed: &Feed) -> impl Iterator<Item = &Row> {
    let first: NaiveDate = FIRST.parse().unwrap();
    feed.encounters
        .iter()
        .filter(move |e| utc(&e["admit_time"]).date_naive() >= first)
}

#[test]
fn emergency_volume_is_flat_through_the_week_while_clinics_close() {
    let feed = fortnight();
    // Admissions per (day, encounter type).
    let mut per_day: HashMap<(NaiveDate, String), f64> = HashMap::new();
    for e in admitted_in_feed(feed) {
        let day = utc(&e["admit_time"]).date_naive();
        *per_day
            .entry((day, e["encounter_type"].clone()))
            .or_default() += 1.0;
    }
    let ratio = |kind: &str| {
        let (mut weekend, mut weekday) = (Vec::new(), Vec::new());
        for ((day, k), n) in &per_day {
            if k == kind {
                match chrono::Datelike::weekday(day) {
                    chrono::Weekday::Sat | chrono::Weekday::Sun => weekend.push(*n),
                    _ => weekday.push(*n),
                }
            }
        }
        let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
        mean(&weekend) / mean(&weekday)
    };
    let emergency = ratio("emergency");
    assert!(
        (0.85..=1.10).contains(&emergency),
        "weekend/weekday emergency {emergency:.2}"
    );
    let outpatient = ratio("outpatient");
    assert!(
        outpatient < 0.3,
        "weekend/weekday outpatient {outpatient:.2}"
    );
}

#[test]
fn patients_come_back_the_way_a_clinic_panel_does() {
    let feed = fortnight();
    let mut visits: HashMap<&str, u32> = HashMap::new();
    let mut physicals: HashMap<&str, u32> = HashMap::new();
    for e in admitted_in_feed(feed) {
        *visits.entry(&e["patient_id"]).or_default() += 1;
        if e["scenario"] == "routine_checkup" {
            *physicals.entry(&e["patient_id"]).or_default() += 1;
        }
    }
    let repeat = visits.values().filter(|n| **n >= 2).count() as f64 / visits.len() as f64;
    assert!(
        repeat < 0.20,
        "{repeat:.3} of {} patients seen twice or more in 14 days",
        visits.len()
    );
    assert!(physicals.len() > 1_000, "{} physicals", physicals.len());
    assert!(
        physicals.values().all(|n| *n == 1),
        "an annual physical twice in 14 days"
    );

    // Emergency visits that sent the patient home, and how many came back
    // to the emergency department within 72 hours.
    let mut emergency: Vec<&Row> = admitted_in_feed(feed)
        .filter(|e| e["encounter_type"] == "emergency")
        .collect();
    emergency.sort_by(|a, b| a["admit_time"].cmp(&b["admit_time"]));
    let mut by_patient: HashMap<&str, Vec<&Row>> = HashMap::new();
    for e in &emergency {
        by_patient.entry(&e["patient_id"]).or_default().push(e);
    }
    let (mut sent_home, mut returned) = (0, 0);
    for visits in by_patient.values() {
        for (i, e) in visits.iter().enumerate() {
            if e["disposition"] != "home" || e["discharge_time"].is_empty() {
                continue;
            }
            sent_home += 1;
            let left = utc(&e["discharge_time"]);
            if visits[i + 1..].iter().any(|later| {
                let back = utc(&later["admit_time"]) - left;
                back >= chrono::Duration::zero() && back <= chrono::Duration::hours(72)
            }) {
                returned += 1;
            }
        }
    }
    let share = f64::from(returned) / f64::from(sent_home);
    assert!(sent_home > 2_000, "{sent_home} emergency visits sent home");
    assert!(
        (0.02..=0.08).contains(&share),
        "{share:.3} of {sent_home} back within 72 h"
    );
}

/// Clinic visits in local clinic hours; ward bloods before local dawn;
/// rounds in the local late morning: on ordinary days and on both days the
/// clocks change.
fn assert_local_routines(feed: &Feed, what: &str) {
    let local = |s: &str| utc(s).with_timezone(&New_York);
    let clinic: Vec<_> = admitted_in_feed(feed)
        .filter(|e| e["encounter_type"] == "outpatient")
        .map(|e| local(&e["admit_time"]))
        .collect();
    let in_hours = clinic
        .iter()
        .filter(|t| (8..18).contains(&t.hour()))
        .count() as f64
        / clinic.len() as f64;
    assert!(
        in_hours >= 0.95,
        "{what}: {in_hours:.3} of {} clinic visits between 08:00 and 18:00 local",
        clinic.len()
    );

    // The inpatients' morning bloods: every basic metabolic panel drawn
    // between 03:00 and 07:00 local is one of them, and nearly every draw
    // of a ward's day after admission is in that window.
    let inpatient: HashMap<&str, &Row> = feed
        .encounters
        .iter()
        .filter(|e| e["encounter_type"] == "inpatient")
        .map(|e| (e["encounter_id"].as_str(), e))
        .collect();
    let (mut later_draws, mut at_dawn) = (0, 0);
    for lab in &feed.labs {
        let Some(e) = inpatient.get(lab["encounter_id"].as_str()) else {
            continue;
        };
        if lab["loinc_code"] != "2951-2" {
            continue; // sodium: one per basic metabolic panel
        }
        let drawn = local(&lab["collected_at"]);
        if drawn.date_naive() > local(&e["admit_time"]).date_naive() + chrono::Duration::days(1) {
            later_draws += 1;
            let minute = drawn.hour() * 60 + drawn.minute();
            if (4 * 60 + 30..=6 * 60).contains(&minute) {
                at_dawn += 1;
            }
        }
    }
    assert!(later_draws > 50, "{what}: {later_draws} later ward draws");
    assert_eq!(
        at_dawn, later_draws,
        "{what}: daily bloods drawn outside 04:30-06:00 local"
    );

    let rounds: Vec<_> = feed
        .notes
        .iter()
        .filter(|n| n["note_type"] == "progress")
        .map(|n| local(n["authored_at"].as_str().unwrap()))
        .collect();
    assert!(rounds.len() > 50, "{what}: {} progress notes", rounds.len());
    for t in &rounds {
        assert!(
            (10..=12).contains(&t.hour()),
            "{what}: progress note at {t} local"
        );
    }
}

#[test]
fn care_follows_the_facility_clock() {
    assert_local_routines(fortnight(), "March");
}

#[test]
fn both_daylight_saving_days_keep_local_routines_and_utc_days() {
    for (first, last) in [("2026-03-07", "2026-03-09"), ("2026-10-31", "2026-11-02")] {
        let feed = backfill(first, last);
        assert_local_routines(&feed, first);
        // A batch is a UTC day: every encounter first sent on a day was
        // admitted that UTC day (or is a stay the feed began with).
        let start: NaiveDate = first.parse().unwrap();
        let end: NaiveDate = last.parse().unwrap();
        for e in &feed.encounters {
            let admitted = utc(&e["admit_time"]).date_naive();
            assert!(
                admitted <= end,
                "{} admitted after the feed",
                e["encounter_id"]
            );
            if admitted >= start {
                assert!(utc(&e["updated_at"]).date_naive() <= end);
            }
        }
    }
}
