//! Would a clinician believe the data? Aggregate checks on a raw batch of a
//! few thousand encounters: physiological bounds, couplings, scenario
//! signatures, lengths of stay and charting frequency.

use std::collections::HashMap;

use crate::helpers::{Sandbox, read_csv, timestamp};

struct Batch {
    encounters: Vec<HashMap<String, String>>,
    vitals: Vec<HashMap<String, String>>,
}

fn raw_batch() -> Batch {
    let sb = Sandbox::new();
    sb.generate(
        "raw",
        "2026-03-02",
        &["--new-patients", "3000", "--encounters", "1"],
    );
    sb.generate(
        "raw",
        "2026-03-03",
        &["--new-patients", "1200", "--encounters", "4000"],
    );
    let dir = sb.batch("raw", "2026-03-03");
    Batch {
        encounters: read_csv(&dir.join("encounters.csv")).rows,
        vitals: read_csv(&dir.join("vitals.csv")).rows,
    }
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
    let scenario: HashMap<&str, &str> = b
        .encounters
        .iter()
        .map(|e| (e["encounter_id"].as_str(), e["scenario"].as_str()))
        .collect();

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
            assert!((20.0..=90.0).contains(&(s - d)), "pulse pressure {s}/{d}");
        }
    }
    // Missing shares near the configured MIMIC-IV-ED rates (scaled down for
    // clinics and the ICU, so below them but not absent).
    let n = b.vitals.len() as f64;
    let temp_missing = missing["temperature_c"] as f64 / n;
    assert!(
        (0.08..0.37).contains(&temp_missing),
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
        .encounters
        .iter()
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
            b.encounters
                .iter()
                .filter(|e| e["encounter_type"] == kind)
                .map(|e| {
                    (timestamp(&e["discharge_time"]) - timestamp(&e["admit_time"])) as f64 / 3600.0
                })
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
        .encounters
        .iter()
        .filter(|e| e["encounter_type"] == "inpatient")
        .filter(|e| timestamp(&e["discharge_time"]) - timestamp(&e["admit_time"]) <= 86_400)
        .count();
    let inpatients = b
        .encounters
        .iter()
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
        .encounters
        .iter()
        .filter(|e| e["scenario"] == "sepsis_icu")
        .collect();
    let icu_hours: f64 = icu
        .iter()
        .map(|e| (timestamp(&e["discharge_time"]) - timestamp(&e["admit_time"])) as f64 / 3600.0)
        .sum();
    let (icu_sets, _) = sets("sepsis_icu");
    let per_hour = icu_sets as f64 / icu_hours;
    assert!(
        (0.8..1.2).contains(&per_hour),
        "ICU charting {per_hour} sets per hour"
    );
}
