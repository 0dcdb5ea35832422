//! Does the feed look like a hospital's over weeks, not just per encounter?
//! The audit of issue #11, as black-box checks on the files of a 14-day raw
//! backfill at the default config (2026-03-01 to 03-14): who comes back and
//! how often, weekly rhythm, the facility's local clock (including both
//! daylight-saving days), physiology by age and illness, charting by
//! setting, labs, and how patients who die get there.

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
    vitals: Vec<Row>,
    labs: Vec<Row>,
    notes: Vec<serde_json::Value>,
    /// Each patient's birth date and sex.
    born: HashMap<String, NaiveDate>,
    sex: HashMap<String, String>,
}

fn fortnight() -> &'static Feed {
    static FEED: std::sync::OnceLock<Feed> = std::sync::OnceLock::new();
    FEED.get_or_init(|| backfill(FIRST, LAST))
}

fn backfill(first: &str, last: &str) -> Feed {
    let sb = Sandbox::new();
    sb.ok(&["generate", "--mode", "raw", "--from", first, "--to", last]);
    let mut by_id: HashMap<String, Row> = HashMap::new();
    let (mut vitals, mut labs, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    let (mut born, mut sex) = (HashMap::new(), HashMap::new());
    let mut day: NaiveDate = first.parse().unwrap();
    while day <= last.parse().unwrap() {
        let dir = sb.batch("raw", &day.to_string());
        for e in read_csv(&dir.join("encounters.csv")).rows {
            by_id.insert(e["encounter_id"].clone(), e);
        }
        vitals.extend(read_csv(&dir.join("vitals.csv")).rows);
        labs.extend(read_csv(&dir.join("labs.csv")).rows);
        for p in read_csv(&dir.join("patients.csv")).rows {
            born.insert(p["patient_id"].clone(), p["birth_date"].parse().unwrap());
            sex.insert(p["patient_id"].clone(), p["sex"].clone());
        }
        notes.extend(read_jsonl(&dir.join("notes.jsonl")));
        day = day.succ_opt().unwrap();
    }
    let mut encounters: Vec<Row> = by_id.into_values().collect();
    encounters.sort_by(|a, b| a["encounter_id"].cmp(&b["encounter_id"]));
    Feed {
        encounters,
        vitals,
        labs,
        notes,
        born,
        sex,
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

    // Planned discharges from the ward happen in the day, mostly early
    // afternoon; deaths and transfers keep whatever hour they fall on.
    let discharged: Vec<_> = feed
        .encounters
        .iter()
        .filter(|e| {
            e["encounter_type"] == "inpatient"
                && e["status"] == "finished"
                && matches!(
                    e["disposition"].as_str(),
                    "home" | "home_with_services" | "skilled_nursing_facility"
                )
        })
        .map(|e| local(&e["discharge_time"]))
        .collect();
    assert!(
        discharged.len() > 50,
        "{what}: {} discharges",
        discharged.len()
    );
    for t in &discharged {
        assert!(
            (9..=20).contains(&t.hour()),
            "{what}: discharged at {t} local"
        );
    }
    let early_afternoon = share(&discharged, |t| (11..16).contains(&t.hour()));
    assert!(
        early_afternoon >= 0.6,
        "{what}: {early_afternoon:.3} of discharges between 11:00 and 16:00"
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

impl Feed {
    fn by_id(&self) -> HashMap<&str, &Row> {
        self.encounters
            .iter()
            .map(|e| (e["encounter_id"].as_str(), e))
            .collect()
    }

    /// The patient's age when the encounter began.
    fn age(&self, e: &Row) -> u32 {
        let admitted = utc(&e["admit_time"]).date_naive();
        admitted.years_since(self.born[&e["patient_id"]]).unwrap()
    }

    /// Each encounter's vital-sign sets, in time order.
    fn vitals_of(&self) -> HashMap<&str, Vec<&Row>> {
        let mut sets: HashMap<&str, Vec<&Row>> = HashMap::new();
        for v in &self.vitals {
            sets.entry(v["encounter_id"].as_str()).or_default().push(v);
        }
        for list in sets.values_mut() {
            list.sort_by(|a, b| a["measured_at"].cmp(&b["measured_at"]));
        }
        sets
    }
}

fn num(row: &Row, column: &str) -> Option<f64> {
    row[column].parse().ok()
}

fn share<T>(items: &[T], keep: impl Fn(&T) -> bool) -> f64 {
    items.iter().filter(|x| keep(x)).count() as f64 / items.len() as f64
}

/// NEWS2 of a complete set (no consciousness or oxygen flag in the files).
fn news2(v: &Row) -> Option<u32> {
    let (rr, spo2, sbp, hr, t) = (
        num(v, "respiratory_rate")?,
        num(v, "spo2")?,
        num(v, "systolic_bp")?,
        num(v, "heart_rate")?,
        num(v, "temperature_c")?,
    );
    let band = |x: f64, bands: &[(f64, u32)], above: u32| {
        bands
            .iter()
            .find(|(upto, _)| x <= *upto)
            .map_or(above, |(_, points)| *points)
    };
    Some(
        band(rr, &[(8.0, 3), (11.0, 1), (20.0, 0), (24.0, 2)], 3)
            + band(spo2, &[(91.0, 3), (93.0, 2), (95.0, 1)], 0)
            + band(sbp, &[(90.0, 3), (100.0, 2), (110.0, 1), (219.0, 0)], 3)
            + band(
                hr,
                &[(40.0, 3), (50.0, 1), (90.0, 0), (110.0, 1), (130.0, 2)],
                3,
            )
            + band(t, &[(35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1)], 2),
    )
}

#[test]
fn physiology_follows_age_and_illness() {
    let feed = fortnight();
    let encounters = feed.by_id();
    let sets = feed.vitals_of();
    // Routine systolic pressure rises with age (NHANES).
    let (mut young, mut old) = (Vec::new(), Vec::new());
    for v in &feed.vitals {
        let e = encounters[v["encounter_id"].as_str()];
        if e["scenario"] != "routine_checkup" {
            continue;
        }
        let Some(sbp) = num(v, "systolic_bp") else {
            continue;
        };
        match feed.age(e) {
            18..=34 => young.push(sbp),
            65.. => old.push(sbp),
            _ => {}
        }
    }
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let rise = mean(&old) - mean(&young);
    assert!(
        rise >= 10.0,
        "routine SBP rises {rise:.1} mmHg from 18-34 to 65+"
    );

    // Sepsis: mostly the old (HCUP 52.7% aged 65+), and some cold.
    let septic: Vec<&Row> = admitted_in_feed(feed)
        .filter(|e| e["scenario"] == "sepsis_icu")
        .collect();
    let elderly = share(&septic, |e| feed.age(e) >= 65);
    assert!((0.45..=0.60).contains(&elderly), "septic 65+: {elderly:.3}");
    let first_sets: Vec<&Row> = septic
        .iter()
        .filter_map(|e| sets.get(e["encounter_id"].as_str())?.first().copied())
        .collect();
    let cold = share(&first_sets, |v| {
        num(v, "temperature_c").is_some_and(|t| t < 36.0)
    });
    assert!(
        (0.05..=0.15).contains(&cold),
        "septic first sets below 36 C: {cold:.3}"
    );

    // Fever in the emergency department.
    let emergency: Vec<&Row> = feed
        .vitals
        .iter()
        .filter(|v| encounters[v["encounter_id"].as_str()]["encounter_type"] == "emergency")
        .collect();
    let febrile = share(&emergency, |v| {
        num(v, "temperature_c").is_some_and(|t| t >= 38.0)
    });
    assert!(
        (0.02..=0.08).contains(&febrile),
        "ED sets at 38 C or more: {febrile:.3}"
    );

    // No pile-up at any bound: the commonest value of each sign, and of the
    // pulse pressure, is never its lowest or highest.
    let columns = [
        "heart_rate",
        "systolic_bp",
        "diastolic_bp",
        "respiratory_rate",
        "spo2",
    ];
    for column in columns.iter().copied().chain(["pulse_pressure"]) {
        let mut counts: HashMap<i64, u32> = HashMap::new();
        for v in &feed.vitals {
            let value = if column == "pulse_pressure" {
                num(v, "systolic_bp")
                    .zip(num(v, "diastolic_bp"))
                    .map(|(s, d)| s - d)
            } else {
                num(v, column)
            };
            if let Some(x) = value {
                *counts.entry(x as i64).or_default() += 1;
            }
        }
        let total: u32 = counts.values().sum();
        let (low, high) = (counts.keys().min().unwrap(), counts.keys().max().unwrap());
        for bound in [low, high] {
            let at = f64::from(counts[bound]) / f64::from(total);
            // SpO2 saturates at 100 by nature, not by a clip.
            if !(column == "spo2" && *bound == 100) {
                assert!(
                    at < 0.005,
                    "{column}: {at:.4} of values at its bound {bound}"
                );
            }
        }
    }
}

#[test]
fn charting_follows_the_setting() {
    let feed = fortnight();
    let encounters = feed.by_id();
    let sets = feed.vitals_of();
    let scenario = |v: &Row| encounters[v["encounter_id"].as_str()]["scenario"].as_str();
    // On the ward (pneumonia, heart failure), most sets score below 5.
    let ward: Vec<u32> = feed
        .vitals
        .iter()
        .filter(|v| {
            matches!(
                scenario(v),
                "pneumonia_admission" | "heart_failure_exacerbation"
            )
        })
        .filter_map(news2)
        .collect();
    let urgent = share(&ward, |score| *score >= 5);
    assert!(ward.len() > 2_000, "{} complete ward sets", ward.len());
    assert!(urgent < 0.20, "ward sets with NEWS2 >= 5: {urgent:.3}");
    // The triage set takes a temperature (MIMIC-IV-ED: missing in 5.5%).
    let triage: Vec<&Row> = admitted_in_feed(feed)
        .filter(|e| e["encounter_type"] == "emergency")
        .filter_map(|e| sets.get(e["encounter_id"].as_str())?.first().copied())
        .collect();
    let missing = share(&triage, |v| v["temperature_c"].is_empty());
    assert!(
        (0.03..=0.08).contains(&missing),
        "triage sets without temperature: {missing:.3}"
    );
    // The ICU charts hourly, temperature about 4-hourly.
    let icu: Vec<&Row> = feed
        .vitals
        .iter()
        .filter(|v| scenario(v) == "sepsis_icu")
        .collect();
    let with_temperature = share(&icu, |v| !v["temperature_c"].is_empty());
    assert!(
        (0.20..=0.35).contains(&with_temperature),
        "ICU sets with a temperature: {with_temperature:.3}"
    );
}

#[test]
fn labs_look_like_a_hospitals() {
    let feed = fortnight();
    let encounters = feed.by_id();
    let of = |l: &Row| encounters[l["encounter_id"].as_str()];
    // Anaemia alone is in a quarter of adult ED patients.
    let mut cbc: HashMap<&str, bool> = HashMap::new();
    for l in &feed.labs {
        if of(l)["encounter_type"] == "emergency"
            && ["6690-2", "718-7", "777-3"].contains(&l["loinc_code"].as_str())
        {
            *cbc.entry(&l["encounter_id"]).or_default() |= l["abnormal_flag"] != "N";
        }
    }
    let abnormal = cbc.values().filter(|a| **a).count() as f64 / cbc.len() as f64;
    assert!(
        (0.30..=0.45).contains(&abnormal),
        "ED CBCs with an abnormal value: {abnormal:.3}"
    );
    // Critical sodium, potassium or glucose somewhere (DKA, CKD).
    let critical = feed
        .labs
        .iter()
        .filter(|l| ["2951-2", "2823-3", "2345-7"].contains(&l["loinc_code"].as_str()))
        .filter(|l| matches!(l["abnormal_flag"].as_str(), "LL" | "HH"))
        .count();
    assert!(critical > 0, "no critical sodium, potassium or glucose");
    // Turnaround: a lognormal tail in the hospital, hours for a clinic.
    let minutes = |l: &Row| (utc(&l["resulted_at"]) - utc(&l["collected_at"])).num_minutes();
    let hospital: Vec<i64> = feed
        .labs
        .iter()
        .filter(|l| of(l)["encounter_type"] != "outpatient")
        .map(minutes)
        .collect();
    let slow = share(&hospital, |m| *m > 180);
    assert!(
        (0.02..=0.10).contains(&slow),
        "hospital results after 3 h: {slow:.3}"
    );
    let mut clinic: Vec<i64> = feed
        .labs
        .iter()
        .filter(|l| of(l)["encounter_type"] == "outpatient")
        .map(minutes)
        .collect();
    clinic.sort_unstable();
    assert!(
        clinic[clinic.len() / 2] >= 120,
        "clinic results in {} min",
        clinic[clinic.len() / 2]
    );

    // Chest pain: peak troponin tells admitted from discharged well, not
    // perfectly; older patients sent home often have a chronic elevation.
    let mut peak: HashMap<&str, f64> = HashMap::new();
    for l in feed.labs.iter().filter(|l| l["loinc_code"] == "67151-1") {
        let value = num(l, "value").unwrap();
        let p = peak.entry(&l["encounter_id"]).or_insert(value);
        *p = p.max(value);
    }
    let chest: Vec<(&Row, f64)> = admitted_in_feed(feed)
        .filter(|e| e["scenario"] == "ed_chest_pain" && e["status"] == "finished")
        .filter_map(|e| Some((e, *peak.get(e["encounter_id"].as_str())?)))
        .collect();
    let sent_on = |e: &Row| matches!(e["disposition"].as_str(), "admitted" | "transferred");
    let scores: Vec<(f64, bool)> = chest.iter().map(|(e, p)| (*p, sent_on(e))).collect();
    let auc = auroc(&scores);
    assert!(
        (0.75..=0.90).contains(&auc),
        "AUROC of peak troponin for admission: {auc:.3}"
    );
    let older_home: Vec<f64> = chest
        .iter()
        .filter(|(e, _)| !sent_on(e) && feed.age(e) >= 65)
        .map(|(_, p)| *p)
        .collect();
    let chronic = share(&older_home, |p| *p > 14.0);
    assert!(
        (0.10..=0.20).contains(&chronic),
        "older discharged with troponin above 14: {chronic:.3}"
    );
}

/// The area under the ROC curve of a score for a yes/no outcome: the chance
/// that a random yes scores above a random no (ties count half).
fn auroc(scores: &[(f64, bool)]) -> f64 {
    let yes: Vec<f64> = scores.iter().filter(|(_, y)| *y).map(|(s, _)| *s).collect();
    let no: Vec<f64> = scores
        .iter()
        .filter(|(_, y)| !*y)
        .map(|(s, _)| *s)
        .collect();
    let mut wins = 0.0;
    for a in &yes {
        for b in &no {
            wins += if a > b {
                1.0
            } else if a == b {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (yes.len() * no.len()) as f64
}

#[test]
fn a_patient_who_dies_goes_into_shock_first() {
    let feed = fortnight();
    let sets = feed.vitals_of();
    let dying: Vec<&Row> = feed
        .encounters
        .iter()
        .filter(|e| e["disposition"] == "expired" && e["status"] == "finished")
        .collect();
    let (mut fell, mut hypotensive, mut febrile, mut seen) = (0, 0, 0, 0);
    for e in &dying {
        let Some(list) = sets.get(e["encounter_id"].as_str()) else {
            continue;
        };
        let pressures: Vec<f64> = list.iter().filter_map(|v| num(v, "systolic_bp")).collect();
        if pressures.len() < 3 {
            continue;
        }
        seen += 1;
        let (first, last) = (pressures[0], pressures[pressures.len() - 1]);
        fell += usize::from(last < first - 15.0);
        hypotensive += usize::from(last < 90.0);
        let last_t = list.iter().rev().find_map(|v| num(v, "temperature_c"));
        febrile += usize::from(last_t.is_some_and(|t| t >= 39.5));
    }
    assert!(seen >= 20, "{seen} deaths with vitals");
    assert!(
        fell * 10 >= seen * 6,
        "pressure fell before death in {fell} of {seen}"
    );
    assert!(
        hypotensive * 2 >= seen,
        "hypotensive at the end: {hypotensive} of {seen}"
    );
    assert_eq!(febrile, 0, "still at 39.5 C or more at the end");
    // Lactate climbs.
    let mut last_lactate: HashMap<&str, (&str, f64)> = HashMap::new();
    for l in feed.labs.iter().filter(|l| l["loinc_code"] == "2524-7") {
        let entry = last_lactate
            .entry(&l["encounter_id"])
            .or_insert((&l["collected_at"], 0.0));
        if l["collected_at"].as_str() >= entry.0 {
            *entry = (&l["collected_at"], num(l, "value").unwrap());
        }
    }
    let lactates: Vec<f64> = dying
        .iter()
        .filter_map(|e| {
            last_lactate
                .get(e["encounter_id"].as_str())
                .map(|(_, v)| *v)
        })
        .collect();
    assert!(
        lactates.len() >= 5,
        "{} deaths with a lactate",
        lactates.len()
    );
    let high = share(&lactates, |v| *v >= 4.0);
    assert!(
        high >= 0.6,
        "last lactate of 4 or more in {high:.2} of deaths"
    );
}

#[test]
fn notes_read_like_notes_and_do_not_give_the_outcome_away() {
    let feed = fortnight();
    let encounters = feed.by_id();
    let text = |n: &serde_json::Value| n["text"].as_str().unwrap().to_string();
    let of_type = |kind: &str| -> Vec<&serde_json::Value> {
        feed.notes
            .iter()
            .filter(|n| n["note_type"] == kind)
            .collect()
    };
    // Admission notes and discharge summaries are documents, with sections.
    for (kind, sections) in [
        (
            "admission_note",
            &[
                "HPI:",
                "Past medical history:",
                "Medications:",
                "Social history:",
                "Review of systems:",
                "Examination:",
                "Assessment and plan:",
                "Problem list:",
            ][..],
        ),
        (
            "discharge_summary",
            &["Secondary diagnoses:", "Hospital course:"][..],
        ),
    ] {
        let notes = of_type(kind);
        assert!(notes.len() > 200, "{} {kind}s", notes.len());
        let mean = notes.iter().map(|n| text(n).len()).sum::<usize>() / notes.len();
        assert!(mean >= 1_500, "{kind}: {mean} characters on average");
        for n in &notes {
            let body = text(n);
            for section in sections {
                assert!(body.contains(section), "{kind} without {section}: {body}");
            }
        }
    }
    // A patient's medications are theirs: the discharge summary lists the
    // ones the admission note did.
    let admitted: HashMap<&str, String> = of_type("admission_note")
        .into_iter()
        .map(|n| (n["encounter_id"].as_str().unwrap(), text(n)))
        .collect();
    let mut compared = 0;
    for n in of_type("discharge_summary") {
        let Some(admission) = admitted.get(n["encounter_id"].as_str().unwrap()) else {
            continue;
        };
        let meds = |body: &str| -> Vec<String> {
            body.split("Medications: ")
                .nth(1)
                .and_then(|rest| rest.split(".\n").next())
                .map(|list| list.split("; ").map(String::from).collect())
                .unwrap_or_default()
        };
        let home = meds(admission);
        let leaving = text(n);
        if home.is_empty() || home[0].starts_with("no regular") || leaving.starts_with("Death") {
            continue;
        }
        for med in &home {
            assert!(
                leaving.contains(med.as_str()),
                "{med} not continued: {leaving}"
            );
        }
        compared += 1;
    }
    assert!(compared > 100, "{compared} admissions compared");

    // Triage: every ESI level, chest pain mostly level 2.
    let mut levels: HashMap<char, u32> = HashMap::new();
    let mut chest: HashMap<char, u32> = HashMap::new();
    for n in of_type("triage") {
        let body = text(n);
        let Some(at) = body.find("ESI ") else {
            continue;
        };
        let level = body[at + 4..]
            .trim_start_matches("level ")
            .chars()
            .next()
            .unwrap();
        *levels.entry(level).or_default() += 1;
        if encounters[n["encounter_id"].as_str().unwrap()]["scenario"] == "ed_chest_pain" {
            *chest.entry(level).or_default() += 1;
        }
    }
    for level in ['1', '2', '3', '4', '5'] {
        assert!(
            levels.get(&level).is_some_and(|n| *n > 0),
            "no ESI {level}: {levels:?}"
        );
    }
    let chest_total: u32 = chest.values().sum();
    assert!(
        chest.get(&'2').copied().unwrap_or(0) * 10 >= chest_total * 6,
        "chest pain ESI: {chest:?}"
    );

    // Progress-note wording is the physician's impression, not the outcome:
    // "worse" does not tell who will die (AUROC at most 0.9).
    let mut worse: HashMap<&str, bool> = HashMap::new();
    for n in of_type("progress") {
        let body = text(n).to_lowercase();
        *worse
            .entry(n["encounter_id"].as_str().unwrap())
            .or_default() |= body.contains("worse") || body.contains("deteriorat");
    }
    let scores: Vec<(f64, bool)> = worse
        .iter()
        .map(|(id, w)| {
            (
                f64::from(u8::from(*w)),
                encounters[id]["disposition"] == "expired",
            )
        })
        .collect();
    assert!(scores.iter().filter(|(_, died)| *died).count() >= 20);
    let auc = auroc(&scores);
    assert!(auc <= 0.9, "AUROC of worse wording for death: {auc:.3}");
}

#[test]
fn copied_forward_notes_are_labelled_and_the_labels_are_true() {
    let feed = fortnight();
    let sets = feed.vitals_of();
    let progress: Vec<&serde_json::Value> = feed
        .notes
        .iter()
        .filter(|n| n["note_type"] == "progress")
        .collect();
    let copied = progress.iter().filter(|n| n["grounded"] == false).count();
    let share = copied as f64 / progress.len() as f64;
    assert!((0.02..=0.05).contains(&share), "copied forward: {share:.3}");
    assert!(
        feed.notes
            .iter()
            .filter(|n| n["note_type"] != "progress")
            .all(|n| n["grounded"] == true),
        "only progress notes copy forward"
    );
    // The heart rate a note states is the latest charted at its time, or,
    // copied forward, the latest a day before.
    let mut checked = 0;
    for n in progress {
        let text = n["text"].as_str().unwrap();
        let Some(stated) = text
            .split("Vitals: HR ")
            .nth(1)
            .and_then(|rest| rest.split([',', '.']).next())
        else {
            continue;
        };
        let at = utc(n["authored_at"].as_str().unwrap());
        let as_of = if n["grounded"] == true {
            at
        } else {
            at - chrono::Duration::days(1)
        };
        // A stay the feed began with charted its first sets before it.
        let Some(latest) = sets
            .get(n["encounter_id"].as_str().unwrap())
            .and_then(|list| list.iter().rev().find(|v| utc(&v["measured_at"]) <= as_of))
        else {
            continue;
        };
        assert_eq!(latest["heart_rate"], stated, "{text}");
        checked += 1;
    }
    assert!(checked > 1_000, "{checked} progress notes checked");
}

/// The minutes from each complete ward set to the next set of the same stay,
/// by the NEWS2 of the set.
#[test]
fn oxygen_brings_ward_news2_down_and_charting_follows_it() {
    let feed = fortnight();
    let encounters = feed.by_id();
    let sets = feed.vitals_of();
    let (mut urgent, mut stable, mut first_low, mut later_low) = (vec![], vec![], vec![], vec![]);
    for (id, list) in &sets {
        if !matches!(
            encounters[id]["scenario"].as_str(),
            "pneumonia_admission" | "heart_failure_exacerbation"
        ) {
            continue;
        }
        for (i, pair) in list.windows(2).enumerate() {
            let gap = (utc(&pair[1]["measured_at"]) - utc(&pair[0]["measured_at"])).num_minutes();
            match news2(pair[0]) {
                Some(5..) => urgent.push(gap as f64),
                Some(0) => stable.push(gap as f64),
                _ => {}
            }
            if let Some(spo2) = num(pair[1], "spo2") {
                later_low.push(spo2 < 92.0);
            }
            if i == 0
                && let Some(spo2) = num(pair[0], "spo2")
            {
                first_low.push(spo2 < 92.0);
            }
        }
    }
    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    assert!(
        urgent.len() > 20 && stable.len() > 100,
        "{} urgent, {} stable",
        urgent.len(),
        stable.len()
    );
    let (urgent, stable) = (median(urgent), median(stable));
    assert!(
        urgent <= 90.0,
        "median minutes after a NEWS2 >= 5 set: {urgent}"
    );
    assert!(
        stable >= 600.0,
        "median minutes after a NEWS2 0 set: {stable}"
    );
    // Oxygen: the saturation that brought the patient in is rare once on the ward.
    let (first, later) = (share(&first_low, |x| *x), share(&later_low, |x| *x));
    assert!(
        later < first / 2.0,
        "SpO2 below 92%: {first:.3} of first sets, {later:.3} of later ones"
    );
}

/// No single column known at presentation (age, the first value of each
/// vital sign and each lab test) tells who will die or be admitted with an
/// AUROC above 0.9, either way up.
#[test]
fn no_single_column_gives_the_outcome_away() {
    let feed = fortnight();
    let sets = feed.vitals_of();
    let mut first_labs: HashMap<&str, HashMap<&str, (String, f64)>> = HashMap::new();
    for r in &feed.labs {
        let Some(value) = num(r, "value") else {
            continue;
        };
        let slot = first_labs
            .entry(r["encounter_id"].as_str())
            .or_default()
            .entry(r["test_name"].as_str())
            .or_insert((r["collected_at"].clone(), value));
        if r["collected_at"] < slot.0 {
            *slot = (r["collected_at"].clone(), value);
        }
    }
    let features = |e: &Row| -> Vec<(String, f64)> {
        let id = e["encounter_id"].as_str();
        let mut out = vec![("age".to_string(), f64::from(feed.age(e)))];
        if let Some(list) = sets.get(id) {
            for column in [
                "heart_rate",
                "systolic_bp",
                "diastolic_bp",
                "respiratory_rate",
                "temperature_c",
                "spo2",
            ] {
                if let Some(value) = list.iter().find_map(|v| num(v, column)) {
                    out.push((format!("first {column}"), value));
                }
            }
        }
        for (test, (_, value)) in first_labs.get(id).into_iter().flatten() {
            out.push((format!("first {test}"), *value));
        }
        out
    };
    let finished: Vec<&Row> = admitted_in_feed(feed)
        .filter(|e| e["status"] == "finished")
        .collect();
    type Outcome = fn(&Row) -> bool;
    let outcomes: [(&str, &str, Outcome); 2] = [
        ("inpatient", "death", |e| e["disposition"] == "expired"),
        ("emergency", "admission", |e| e["disposition"] == "admitted"),
    ];
    for (kind, outcome, happened) in outcomes {
        let group: Vec<&Row> = finished
            .iter()
            .copied()
            .filter(|e| e["encounter_type"] == kind)
            .collect();
        let mut by_column: HashMap<String, Vec<(f64, bool)>> = HashMap::new();
        for e in &group {
            for (column, value) in features(e) {
                by_column
                    .entry(column)
                    .or_default()
                    .push((value, happened(e)));
            }
        }
        let mut checked = 0;
        for (column, scores) in &by_column {
            let yes = scores.iter().filter(|(_, y)| *y).count();
            if yes < 10 || scores.len() - yes < 10 {
                continue;
            }
            let auc = auroc(scores);
            let auc = auc.max(1.0 - auc);
            assert!(auc <= 0.9, "{column} predicts {outcome}: AUROC {auc:.3}");
            checked += 1;
        }
        assert!(checked >= 8, "{checked} columns checked for {outcome}");
    }
}

/// Sentences of a note for the repetition check: each line and each
/// sentence in it, with list numbers and leading section labels
/// ("Assessment and plan:", "- Cardiovascular:") taken off; only those of
/// three words or more (a bare "Improving." is a header-like fragment).
fn sentences(text: &str) -> std::collections::HashSet<String> {
    fn strip_label(mut s: &str) -> &str {
        loop {
            s = s.trim_start_matches("- ").trim_start();
            let (label, rest) = match s.split_once(": ") {
                Some(split) => split,
                // A line that is only a heading ("Assessment and plan:").
                None => match s.strip_suffix(':') {
                    Some(label) => (label, ""),
                    None => return s,
                },
            };
            let is_label = label.len() <= 40
                && label.chars().next().is_some_and(char::is_uppercase)
                && label
                    .chars()
                    .all(|c| c.is_alphabetic() || " /&-".contains(c));
            if !is_label {
                return s;
            }
            s = rest;
        }
    }
    let mut out = std::collections::HashSet::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches(|c: char| c.is_ascii_digit());
        let line = line.strip_prefix(". ").unwrap_or(line);
        let mut start = 0;
        let bytes = line.as_bytes();
        for i in 0..=bytes.len() {
            let end = i == bytes.len()
                || (matches!(bytes[i], b' ')
                    && i > 0
                    && matches!(bytes[i - 1], b'.' | b'!' | b'?'));
            if end {
                let sentence = strip_label(line[start..i].trim());
                let words = sentence
                    .split(|c: char| !c.is_ascii_alphabetic())
                    .filter(|w| !w.is_empty())
                    .count();
                if words >= 3 {
                    out.insert(sentence.to_string());
                }
                start = i;
            }
        }
    }
    out
}

#[test]
fn notes_have_a_clinicians_vocabulary_and_do_not_repeat_themselves() {
    let feed = fortnight();
    let mut words = std::collections::HashSet::new();
    let mut by_type: HashMap<&str, Vec<&str>> = HashMap::new();
    for n in &feed.notes {
        let text = n["text"].as_str().unwrap();
        for word in text
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| !w.is_empty())
        {
            words.insert(word.to_lowercase());
        }
        by_type
            .entry(n["note_type"].as_str().unwrap())
            .or_default()
            .push(text);
    }
    assert!(words.len() >= 3_000, "{} distinct words", words.len());
    assert_eq!(by_type.len(), 7, "note types: {:?}", by_type.keys());
    for (kind, texts) in &by_type {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for text in texts {
            for s in sentences(text) {
                *seen.entry(s).or_default() += 1;
            }
        }
        let (top, count) = seen.iter().max_by_key(|(_, n)| **n).unwrap();
        let share = *count as f64 / texts.len() as f64;
        assert!(
            share <= 0.02,
            "{kind}: \"{top}\" is in {share:.3} of {} notes",
            texts.len()
        );
    }
    // The abbreviations clinicians use.
    for abbreviation in ["pt", "c/o", "SOB", "NAD", "r/o", "s/p"] {
        assert!(
            feed.notes.iter().any(|n| n["text"]
                .as_str()
                .unwrap()
                .split([' ', ',', ';', '.', '('])
                .any(|w| w == abbreviation || w == format!("{abbreviation}:"))),
            "no note uses {abbreviation}"
        );
    }
}

#[test]
fn ward_stays_have_a_nursing_note_at_the_end_of_each_shift() {
    let feed = fortnight();
    let encounters = feed.by_id();
    let sets = feed.vitals_of();
    let mut per_stay: HashMap<&str, usize> = HashMap::new();
    let mut checked = 0;
    for n in feed
        .notes
        .iter()
        .filter(|n| n["note_type"] == "nursing_note")
    {
        let id = n["encounter_id"].as_str().unwrap();
        assert_eq!(encounters[id]["encounter_type"], "inpatient");
        assert_eq!(n["author_role"], "registered_nurse");
        let at = utc(n["authored_at"].as_str().unwrap());
        let local = at.with_timezone(&New_York);
        let minute = local.hour() * 60 + local.minute();
        assert!(
            (6 * 60 - 75..7 * 60).contains(&minute) || (18 * 60 - 75..19 * 60).contains(&minute),
            "nursing note at {local}"
        );
        *per_stay.entry(id).or_default() += 1;
        // It states the latest vital signs charted by its time.
        let text = n["text"].as_str().unwrap();
        if let Some(stated) = text
            .split("Vital signs: HR ")
            .nth(1)
            .and_then(|rest| rest.split([',', '.']).next())
            && let Some(latest) = sets
                .get(id)
                .and_then(|list| list.iter().rev().find(|v| utc(&v["measured_at"]) <= at))
        {
            assert_eq!(latest["heart_rate"], stated, "{text}");
            checked += 1;
        }
    }
    assert!(checked > 1_000, "{checked} nursing notes checked");
    // About two a day: a finished stay admitted in the feed has one per
    // twelve hours on the unit, give or take the first and last shift.
    for e in admitted_in_feed(feed)
        .filter(|e| e["encounter_type"] == "inpatient" && e["status"] == "finished")
    {
        let hours = (utc(&e["discharge_time"]) - utc(&e["admit_time"])).num_hours();
        let notes = per_stay
            .get(e["encounter_id"].as_str())
            .copied()
            .unwrap_or(0) as i64;
        assert!(
            (hours / 12 - 2..=hours / 12 + 2).contains(&notes),
            "{notes} nursing notes in {hours} hours"
        );
    }
}

/// A patient's history as the admission note tells it fits their age and
/// sex: no retired 30-year-olds or 70-year-old students, limits on
/// resuscitation only for older patients, no prostate for women and no
/// caesarean for men.
#[test]
fn a_patients_history_fits_their_age_and_sex() {
    let feed = fortnight();
    let encounters = feed.by_id();
    let mut checked = 0;
    for n in feed
        .notes
        .iter()
        .filter(|n| n["note_type"] == "admission_note")
    {
        let text = n["text"].as_str().unwrap();
        let e = encounters[n["encounter_id"].as_str().unwrap()];
        let age = feed.age(e);
        let sex = feed.sex[&e["patient_id"]].as_str();
        let occupation = text
            .split("Social history: ")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .unwrap();
        assert!(
            !(occupation.starts_with("retired") && age < 60),
            "{age}: {occupation}"
        );
        assert!(
            !(occupation.contains("student") && age > 40),
            "{age}: {occupation}"
        );
        let code = text.split("Code status: ").nth(1).unwrap();
        assert!(!(code.starts_with("DNR") && age < 60), "{age}: {code}");
        // The patient's own past (a father's prostate cancer is family history).
        let own_past = text
            .split("Past medical history: ")
            .nth(1)
            .and_then(|rest| rest.split("Social history:").next())
            .unwrap();
        let lower = own_past.to_lowercase();
        if sex == "female" {
            assert!(!lower.contains("prostat"), "{text}");
        }
        if sex == "male" {
            for word in ["cesarean", "hysterectomy", "ovarian cancer in remission"] {
                assert!(!lower.contains(word), "{word}: {text}");
            }
        }
        checked += 1;
    }
    assert!(checked > 500, "{checked} admission notes");
}

/// A stay's attending signs its admission note, progress notes and summary,
/// always with the same name and credentials.
#[test]
fn a_stays_attending_signs_each_of_its_notes_alike() {
    let feed = fortnight();
    let mut signers: HashMap<&str, std::collections::HashSet<String>> = HashMap::new();
    for n in feed
        .notes
        .iter()
        .filter(|n| n["author_role"] == "hospitalist")
    {
        let text = n["text"].as_str().unwrap();
        let signature = text.rsplit("\n\n").next().unwrap();
        // "Signed by Maria Okafor, MD, FACP at 2026-03-05 14:05. ..."
        let who = signature
            .split([' ', ':'])
            .skip_while(|w| {
                !w.chars().next().is_some_and(char::is_uppercase)
                    || [
                        "Signed",
                        "Electronically",
                        "Authenticated",
                        "Note",
                        "Documented",
                    ]
                    .contains(w)
            })
            .take_while(|w| *w != "at" && *w != "on")
            .collect::<Vec<_>>()
            .join(" ");
        signers
            .entry(n["encounter_id"].as_str().unwrap())
            .or_default()
            .insert(who);
    }
    let stays = signers.values().filter(|s| !s.is_empty()).count();
    assert!(stays > 500, "{stays} stays");
    for (id, who) in &signers {
        assert_eq!(who.len(), 1, "{id} signed by {who:?}");
    }
}
