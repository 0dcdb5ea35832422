//! Would a clinician believe the data? Aggregate checks on a cohort of a
//! few thousand encounters followed through a feed of daily batches:
//! physiological bounds, couplings, scenario signatures, lengths of stay,
//! charting frequency, and emergency visits that continue as admissions.

use std::collections::{HashMap, HashSet};

use crate::helpers::{Sandbox, read_csv, read_jsonl, timestamp};

/// One day's admissions followed to their end across the feed.
struct Batch {
    /// Each encounter's final row (the upsert feed applied).
    encounters: Vec<HashMap<String, String>>,
    vitals: Vec<HashMap<String, String>>,
    labs: Vec<HashMap<String, String>>,
    notes: Vec<serde_json::Value>,
}

/// The cohort admitted on 2026-03-03, generated once for all realism tests.
fn raw_batch() -> &'static Batch {
    static BATCH: std::sync::OnceLock<Batch> = std::sync::OnceLock::new();
    BATCH.get_or_init(generate_raw_batch)
}

const COHORT_DAY: &str = "2026-03-03";

/// 3,000 patients registered on the first day, 4,000 encounters on the
/// second, then three quiet weeks in which their stays run to the end.
fn generate_raw_batch() -> Batch {
    let sb = Sandbox::new();
    sb.generate(
        "raw",
        "2026-03-02",
        &["--new-patients", "3000", "--encounters", "1"],
    );
    sb.generate(
        "raw",
        COHORT_DAY,
        &["--new-patients", "1200", "--encounters", "4000"],
    );
    sb.ok(&[
        "generate",
        "--mode",
        "raw",
        "--from",
        "2026-03-04",
        "--to",
        "2026-03-24",
        "--new-patients",
        "0",
        "--encounters",
        "0",
    ]);
    // The cohort: the encounters first sent on the cohort day, and the
    // stays its emergency visits continued as (some begin after midnight).
    let mut last: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut cohort: HashSet<String> = HashSet::new();
    let (mut vitals, mut labs, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    let mut day = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    while day <= chrono::NaiveDate::from_ymd_opt(2026, 3, 24).unwrap() {
        let dir = sb.batch("raw", &day.to_string());
        for e in read_csv(&dir.join("encounters.csv")).rows {
            let id = e["encounter_id"].clone();
            if !last.contains_key(&id)
                && (day.to_string() == COHORT_DAY || cohort.contains(&e["source_encounter_id"]))
            {
                cohort.insert(id.clone());
            }
            last.insert(id, e);
        }
        vitals.extend(read_csv(&dir.join("vitals.csv")).rows);
        labs.extend(read_csv(&dir.join("labs.csv")).rows);
        notes.extend(read_jsonl(&dir.join("notes.jsonl")));
        day = day.succ_opt().unwrap();
    }
    let mut encounters: Vec<_> = last
        .into_values()
        .filter(|e| cohort.contains(&e["encounter_id"]))
        .collect();
    encounters.sort_by(|a, b| a["encounter_id"].cmp(&b["encounter_id"]));
    vitals.retain(|v| cohort.contains(&v["encounter_id"]));
    labs.retain(|r| cohort.contains(&r["encounter_id"]));
    notes.retain(|n| cohort.contains(n["encounter_id"].as_str().unwrap()));
    let open = encounters
        .iter()
        .filter(|e| e["status"] != "finished")
        .count();
    assert!(
        open * 100 < encounters.len(),
        "{open} cohort stays still open"
    );
    Batch {
        encounters,
        vitals,
        labs,
        notes,
    }
}

impl Batch {
    /// An encounter column by encounter_id.
    fn by_encounter(&self, column: &str) -> HashMap<&str, &str> {
        self.encounters
            .iter()
            .map(|e| (e["encounter_id"].as_str(), e[column].as_str()))
            .collect()
    }

    /// Finished encounters: only they have a length of stay.
    fn finished(&self) -> impl Iterator<Item = &HashMap<String, String>> {
        self.encounters.iter().filter(|e| e["status"] == "finished")
    }
}

/// Hours from admission to discharge of a finished encounter.
fn hours(e: &HashMap<String, String>) -> f64 {
    (timestamp(&e["discharge_time"]) - timestamp(&e["admit_time"])) as f64 / 3600.0
}

fn num(row: &HashMap<String, String>, column: &str) -> Option<f64> {
    row[column].parse().ok()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

#[test]
fn vitals_and_stays_look_like_real_care() {
    let b = raw_batch();
    let scenario = b.by_encounter("scenario");

    // Never outside the plausible clinical range; couplings hold.
    let bounds = [
        ("heart_rate", 35.0, 180.0),
        ("systolic_bp", 60.0, 220.0),
        ("diastolic_bp", 30.0, 130.0),
        ("respiratory_rate", 6.0, 40.0),
        ("temperature_c", 34.0, 41.0),
        ("spo2", 75.0, 100.0),
    ];
    let mut missing: HashMap<&str, usize> = HashMap::new();
    for v in &b.vitals {
        for (column, lo, hi) in bounds {
            match num(v, column) {
                Some(x) => assert!((lo..=hi).contains(&x), "{column} {x} in {}", v["vital_id"]),
                None => *missing.entry(column).or_default() += 1,
            }
        }
        if let (Some(s), Some(d)) = (num(v, "systolic_bp"), num(v, "diastolic_bp")) {
            assert!((20.0..=120.0).contains(&(s - d)), "pulse pressure {s}/{d}");
        }
    }
    // Missing shares near the configured MIMIC-IV-ED rates (scaled down for
    // clinics, so below them but not absent; the ICU's hourly sets take a
    // temperature only every four hours, so above them for temperature).
    let n = b.vitals.len() as f64;
    let temp_missing = missing["temperature_c"] as f64 / n;
    assert!(
        (0.08..0.50).contains(&temp_missing),
        "temperature missing {temp_missing}"
    );
    assert!(missing.get("heart_rate").copied().unwrap_or(0) > 0);

    // Scenario signatures: septic patients are tachycardic, febrile and
    // hypotensive on arrival compared with routine visits.
    let first_sets: Vec<&HashMap<String, String>> = b
        .vitals
        .iter()
        .filter(|v| v["vital_id"].ends_with("-V001"))
        .collect();
    let mean_of = |name: &str, column: &str| {
        let xs: Vec<f64> = first_sets
            .iter()
            .filter(|v| scenario[v["encounter_id"].as_str()] == name)
            .filter_map(|v| num(v, column))
            .collect();
        assert!(xs.len() >= 3, "too few {name} encounters to compare");
        xs.iter().sum::<f64>() / xs.len() as f64
    };
    assert!(mean_of("sepsis_icu", "heart_rate") > mean_of("routine_checkup", "heart_rate") + 20.0);
    assert!(mean_of("sepsis_icu", "temperature_c") > 38.0);
    assert!(
        mean_of("sepsis_icu", "systolic_bp") < mean_of("routine_checkup", "systolic_bp") - 15.0
    );
    assert!(mean_of("hypertension_followup", "systolic_bp") > 140.0);
    assert!(mean_of("copd_followup", "spo2") < mean_of("routine_checkup", "spo2"));

    // Septic patients who survive improve: last heart rate below the first.
    let mut by_encounter: HashMap<&str, Vec<f64>> = HashMap::new();
    for v in &b.vitals {
        if scenario[v["encounter_id"].as_str()] == "sepsis_icu"
            && let Some(hr) = num(v, "heart_rate")
        {
            by_encounter
                .entry(v["encounter_id"].as_str())
                .or_default()
                .push(hr);
        }
    }
    let survivors: Vec<&str> = b
        .finished()
        .filter(|e| e["scenario"] == "sepsis_icu" && e["disposition"] != "expired")
        .map(|e| e["encounter_id"].as_str())
        .collect();
    let improved = survivors
        .iter()
        .filter(|id| {
            let hr = &by_encounter[*id];
            hr[hr.len() - 3..].iter().sum::<f64>() < hr[..3].iter().sum::<f64>()
        })
        .count();
    assert!(
        improved * 10 >= survivors.len() * 8,
        "{improved} of {} septic survivors improved",
        survivors.len()
    );

    // Lengths of stay by setting, in hours.
    let stay = |kind: &str| {
        median(
            b.finished()
                .filter(|e| e["encounter_type"] == kind)
                .map(hours)
                .collect(),
        )
    };
    let (outpatient, emergency, inpatient) =
        (stay("outpatient"), stay("emergency"), stay("inpatient"));
    assert!(outpatient < 1.0, "outpatient median {outpatient} h");
    assert!((2.0..6.0).contains(&emergency), "ED median {emergency} h");
    assert!(
        (60.0..100.0).contains(&inpatient),
        "inpatient median {inpatient} h"
    );
    let one_day = b
        .finished()
        .filter(|e| e["encounter_type"] == "inpatient")
        .filter(|e| hours(e) <= 24.0)
        .count();
    let inpatients = b
        .finished()
        .filter(|e| e["encounter_type"] == "inpatient")
        .count();
    assert!(
        one_day * 5 < inpatients,
        "{one_day} of {inpatients} inpatient stays last a day or less"
    );

    // Charting frequency follows the setting.
    let sets = |name: &str| {
        let ids: Vec<&str> = b
            .encounters
            .iter()
            .filter(|e| e["scenario"] == name)
            .map(|e| e["encounter_id"].as_str())
            .collect();
        let count = b
            .vitals
            .iter()
            .filter(|v| ids.contains(&v["encounter_id"].as_str()))
            .count();
        (count, ids.len())
    };
    let (routine_sets, routine) = sets("routine_checkup");
    assert_eq!(routine_sets, routine, "one set per routine visit");
    let icu: Vec<&HashMap<String, String>> = b
        .finished()
        .filter(|e| e["scenario"] == "sepsis_icu")
        .collect();
    let icu_hours: f64 = icu.iter().map(|e| hours(e)).sum();
    let icu_ids: HashSet<&str> = icu.iter().map(|e| e["encounter_id"].as_str()).collect();
    let icu_sets = b
        .vitals
        .iter()
        .filter(|v| icu_ids.contains(v["encounter_id"].as_str()))
        .count();
    let per_hour = icu_sets as f64 / icu_hours;
    assert!(
        (0.8..1.2).contains(&per_hour),
        "ICU charting {per_hour} sets per hour"
    );
}

fn mean(xs: &[f64]) -> f64 {
    assert!(!xs.is_empty());
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[test]
fn labs_are_plausible_flagged_right_and_follow_the_story() {
    let b = raw_batch();
    let scenario = b.by_encounter("scenario");
    let disposition = b.by_encounter("disposition");
    // Plausible adult ranges from the clinical reference, by LOINC.
    let plausible: HashMap<&str, (f64, f64)> = HashMap::from([
        ("6690-2", (0.5, 40.0)),
        ("718-7", (5.0, 20.0)),
        ("777-3", (10.0, 1000.0)),
        ("2951-2", (115.0, 165.0)),
        ("2823-3", (2.0, 7.5)),
        ("2075-0", (80.0, 125.0)),
        ("2028-9", (5.0, 45.0)),
        ("3094-0", (2.0, 150.0)),
        ("2160-0", (0.3, 12.0)),
        ("2345-7", (30.0, 600.0)),
        ("2524-7", (0.5, 15.0)),
        ("67151-1", (3.0, 5000.0)),
    ]);
    assert!(b.labs.len() > 1000);
    for r in &b.labs {
        let v: f64 = r["value"].parse().unwrap();
        let (lo, hi) = plausible[r["loinc_code"].as_str()];
        assert!((lo..=hi).contains(&v), "{} {v}", r["test_name"]);
        let (low, high): (f64, f64) = (
            r["reference_low"].parse().unwrap(),
            r["reference_high"].parse().unwrap(),
        );
        let ok = match r["abnormal_flag"].as_str() {
            "N" => (low..=high).contains(&v),
            "L" | "LL" => v < low,
            "H" | "HH" => v > high,
            other => panic!("flag {other}"),
        };
        assert!(
            ok,
            "{} {v} flagged {} against {low}..{high}",
            r["test_name"], r["abnormal_flag"]
        );
        assert!(timestamp(&r["resulted_at"]) > timestamp(&r["collected_at"]));
    }

    // A metabolic panel is one draw with consistent arithmetic.
    let mut panels: HashMap<(&str, &str), HashMap<&str, f64>> = HashMap::new();
    for r in &b.labs {
        panels
            .entry((r["encounter_id"].as_str(), r["collected_at"].as_str()))
            .or_default()
            .insert(r["test_name"].as_str(), r["value"].parse().unwrap());
    }
    let mut bmps = 0;
    for p in panels.values() {
        if let (Some(na), Some(cl), Some(co2), Some(bun), Some(cr)) = (
            p.get("Sodium"),
            p.get("Chloride"),
            p.get("CO2, total"),
            p.get("BUN"),
            p.get("Creatinine"),
        ) {
            let gap = na - cl - co2;
            assert!((3.0..=25.0).contains(&gap), "anion gap {gap}");
            let ratio = bun / cr;
            assert!((5.0..=40.0).contains(&ratio), "BUN:creatinine {ratio}");
            bmps += 1;
        }
    }
    assert!(bmps > 100);

    // Scenario signatures in aggregate.
    let values = |name: &str, test: &str, filter: &dyn Fn(&str) -> bool| -> Vec<f64> {
        b.labs
            .iter()
            .filter(|r| scenario[r["encounter_id"].as_str()] == name && r["test_name"] == test)
            .filter(|r| filter(r["encounter_id"].as_str()))
            .map(|r| r["value"].parse().unwrap())
            .collect()
    };
    let any = |_: &str| true;
    let sepsis_lactate = mean(&values("sepsis_icu", "Lactate", &any));
    assert!(sepsis_lactate > 2.2, "septic lactate {sepsis_lactate}");
    assert!(sepsis_lactate > mean(&values("pneumonia_admission", "Lactate", &any)));
    assert!(mean(&values("sepsis_icu", "WBC", &any)) > 11.0);
    assert!(
        mean(&values("diabetes_followup", "Glucose", &any))
            > mean(&values("routine_checkup", "Glucose", &any)) + 30.0
    );
    let escalated = |id: &str| matches!(disposition[id], "admitted" | "transferred");
    let home = |id: &str| disposition[id] == "home";
    assert!(
        mean(&values(
            "ed_chest_pain",
            "Troponin T, high-sensitivity",
            &escalated
        )) > 40.0
    );
    assert!(
        mean(&values(
            "ed_chest_pain",
            "Troponin T, high-sensitivity",
            &home
        )) < 14.0
    );

    // Labs agree with the vitals of the same encounter: whoever arrives with a
    // high lactate also arrives tachycardic (one severity drives both).
    let first_hr: HashMap<&str, f64> = b
        .vitals
        .iter()
        .filter(|v| v["vital_id"].ends_with("-V001"))
        .filter_map(|v| num(v, "heart_rate").map(|hr| (v["encounter_id"].as_str(), hr)))
        .collect();
    let mut pairs: Vec<(f64, f64)> = Vec::new();
    let mut seen = HashSet::new();
    for r in b.labs.iter().filter(|r| r["test_name"] == "Lactate") {
        let id = r["encounter_id"].as_str();
        if seen.insert(id)
            && let Some(hr) = first_hr.get(id)
        {
            pairs.push((r["value"].parse().unwrap(), *hr));
        }
    }
    let n = pairs.len() as f64;
    let (mx, my) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let cov: f64 = pairs.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let (sx, sy): (f64, f64) = (
        pairs
            .iter()
            .map(|(x, _)| (x - mx).powi(2))
            .sum::<f64>()
            .sqrt(),
        pairs
            .iter()
            .map(|(_, y)| (y - my).powi(2))
            .sum::<f64>()
            .sqrt(),
    );
    let r = cov / (sx * sy);
    assert!(
        pairs.len() > 30 && r > 0.3,
        "first lactate vs first heart rate: r = {r:.2} over {} encounters",
        pairs.len()
    );

    // Septic survivors' lactate falls as their vitals improve.
    let mut lactate: HashMap<&str, Vec<f64>> = HashMap::new();
    for r in b.labs.iter().filter(|r| {
        r["test_name"] == "Lactate" && scenario[r["encounter_id"].as_str()] == "sepsis_icu"
    }) {
        lactate
            .entry(r["encounter_id"].as_str())
            .or_default()
            .push(r["value"].parse().unwrap());
    }
    let survivors: Vec<&Vec<f64>> = lactate
        .iter()
        .filter(|(id, series)| disposition[**id] != "expired" && series.len() >= 3)
        .map(|(_, s)| s)
        .collect();
    let falling = survivors.iter().filter(|s| s[s.len() - 1] < s[0]).count();
    assert!(
        falling * 10 >= survivors.len() * 8,
        "{falling} of {} septic survivors' lactate fell",
        survivors.len()
    );
}

#[test]
fn notes_state_only_values_found_in_the_structured_files() {
    let b = raw_batch();
    let mut vitals: HashMap<&str, Vec<&HashMap<String, String>>> = HashMap::new();
    for v in &b.vitals {
        vitals
            .entry(v["encounter_id"].as_str())
            .or_default()
            .push(v);
    }
    let mut labs: HashMap<&str, Vec<&HashMap<String, String>>> = HashMap::new();
    for r in &b.labs {
        labs.entry(r["encounter_id"].as_str()).or_default().push(r);
    }
    let tests = [
        "Sodium",
        "Potassium",
        "Chloride",
        "CO2, total",
        "BUN",
        "Creatinine",
        "Glucose",
        "WBC",
        "Hemoglobin",
        "Platelets",
        "Lactate",
        "Troponin T, high-sensitivity",
    ];
    let (mut vital_mentions, mut lab_mentions) = (0, 0);
    for note in &b.notes {
        let id = note["encounter_id"].as_str().unwrap();
        let text = note["text"].as_str().unwrap();
        let sets = vitals.get(id).cloned().unwrap_or_default();
        let has = |column: &str, value: &str| sets.iter().any(|v| v[column] == value);
        for part in text.split([',', '.', ';', ':']).map(str::trim) {
            let words: Vec<&str> = part.split_whitespace().collect();
            match words.as_slice() {
                ["HR", v, ..] => {
                    assert!(
                        has("heart_rate", v),
                        "{id}: HR {v} not in vitals.csv: {text}"
                    );
                    vital_mentions += 1;
                }
                ["RR", v, ..] => assert!(has("respiratory_rate", v), "{id}: RR {v}: {text}"),
                ["BP", bp, ..] => {
                    let (s, d) = bp.split_once('/').unwrap();
                    assert!(
                        sets.iter()
                            .any(|v| v["systolic_bp"] == s && v["diastolic_bp"] == d),
                        "{id}: BP {bp}: {text}"
                    );
                }
                ["SpO2", v, ..] => assert!(
                    has("spo2", v.trim_end_matches('%')),
                    "{id}: SpO2 {v}: {text}"
                ),
                _ => {}
            }
        }
        // "T 38.9 C"
        for (i, _) in text.match_indices("T ") {
            let rest = &text[i + 2..];
            if let Some(value) = rest.strip_suffix(" C").or_else(|| rest.split(" C").next())
                && value.len() <= 4
                && value.contains('.')
                && (i == 0 || text[..i].ends_with(", ") || text[..i].ends_with(' '))
            {
                assert!(has("temperature_c", value), "{id}: T {value}: {text}");
            }
        }
        for test in tests {
            for (i, _) in text.match_indices(&format!("{test} ")) {
                let value = text[i + test.len() + 1..]
                    .split_whitespace()
                    .next()
                    .unwrap();
                if value.parse::<f64>().is_err() {
                    continue;
                }
                let rows = labs.get(id).cloned().unwrap_or_default();
                assert!(
                    rows.iter()
                        .any(|r| r["test_name"] == test && r["value"] == value),
                    "{id}: {test} {value} not in labs.csv: {text}"
                );
                lab_mentions += 1;
            }
        }
    }
    assert!(
        vital_mentions > 1000 && lab_mentions > 500,
        "{vital_mentions} vital and {lab_mentions} lab mentions"
    );

    // Every encounter is documented; every admission ends with a discharge summary.
    let noted: HashSet<&str> = b
        .notes
        .iter()
        .map(|n| n["encounter_id"].as_str().unwrap())
        .collect();
    for e in &b.encounters {
        assert!(
            noted.contains(e["encounter_id"].as_str()),
            "{} has no note",
            e["encounter_id"]
        );
    }
    for e in b.finished().filter(|e| e["encounter_type"] == "inpatient") {
        assert!(
            b.notes
                .iter()
                .any(|n| n["encounter_id"] == e["encounter_id"].as_str()
                    && n["note_type"] == "discharge_summary")
        );
    }
    let texts: HashSet<&str> = b
        .notes
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.len() * 10 > b.notes.len() * 9,
        "notes are varied, not copies"
    );
}

/// An emergency visit ending `admitted` continues as an inpatient stay: a
/// new encounter for the same patient, admitted the minute the visit ends,
/// to an admission that fits the complaint (the default config's
/// `admits_to`).
#[test]
fn emergency_admissions_continue_as_fitting_inpatient_stays() {
    let b = raw_batch();
    let fits: HashMap<&str, &[&str]> = HashMap::from([
        ("ed_chest_pain", &["heart_failure_exacerbation"][..]),
        ("ed_asthma_exacerbation", &["pneumonia_admission"][..]),
        ("ed_minor_injury", &["postoperative_recovery"][..]),
        (
            "ed_febrile_illness",
            &["pneumonia_admission", "sepsis_icu"][..],
        ),
    ]);
    let by_id: HashMap<&str, &HashMap<String, String>> = b
        .encounters
        .iter()
        .map(|e| (e["encounter_id"].as_str(), e))
        .collect();
    let mut stays: HashMap<&str, Vec<&HashMap<String, String>>> = HashMap::new();
    for e in b
        .encounters
        .iter()
        .filter(|e| !e["source_encounter_id"].is_empty())
    {
        stays
            .entry(e["source_encounter_id"].as_str())
            .or_default()
            .push(e);
    }
    let admitted: Vec<&HashMap<String, String>> = b
        .encounters
        .iter()
        .filter(|e| e["encounter_type"] == "emergency" && e["disposition"] == "admitted")
        .collect();
    assert!(admitted.len() > 30, "{} ED admissions", admitted.len());
    for visit in &admitted {
        let id = visit["encounter_id"].as_str();
        let continued = stays.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            continued.len(),
            1,
            "{id} continues as {} stays",
            continued.len()
        );
        let stay = continued[0];
        assert_eq!(stay["patient_id"], visit["patient_id"], "{id}");
        assert_eq!(stay["encounter_type"], "inpatient", "{id}");
        assert_eq!(stay["admit_time"], visit["discharge_time"], "{id}");
        assert!(stay["encounter_id"] > visit["encounter_id"], "{id}");
        assert!(
            fits[visit["scenario"].as_str()].contains(&stay["scenario"].as_str()),
            "{id}"
        );
    }
    // And every link names an emergency visit that ended `admitted`.
    for (source, continued) in &stays {
        let visit = by_id[source];
        assert_eq!(visit["disposition"], "admitted", "{source}");
        assert_eq!(continued.len(), 1);
    }
}
