//! Labs: the results of one encounter's orders, from the tests of the
//! [`crate::catalog`].
//!
//! A result is the patient's own baseline (which their chronic conditions
//! move: anaemia lowers haemoglobin, CKD raises creatinine and potassium,
//! diabetes glucose; CKD, heart failure and old age leave troponin chronically
//! raised), plus the scenario's deviation for that test, scaled by severity
//! and following the encounter's [`Course`] (troponin instead rises over the
//! first hours, as it does after myocardial injury), plus the shock before
//! an expected death (lactate and creatinine climbing, bicarbonate falling),
//! plus measurement noise. A few diabetics arrive in a hyperglycaemic crisis.
//! Results come back after a lognormal turnaround with a long tail; a
//! clinic's samples go out to the lab and take hours. A basic metabolic panel shares one draw
//! and keeps its internal arithmetic: chloride follows sodium, bicarbonate and
//! the anion gap (which widens with lactate), BUN follows creatinine.

use rand::RngExt;
use rand::rngs::ChaCha8Rng;
use rand_distr::LogNormal;

use super::course::Course;
use super::normal;
use crate::catalog::{CATALOG, Panel, panel, test};
use crate::config::{LabOrder, Scenario};
use crate::model::{Condition, EncounterType, Sex};
use crate::rows::LabRow;

/// Generates the results of an encounter's lab orders, in collection order,
/// for the samples collected before `until` (`i64::MAX`: all of them). A
/// sample's result draws only on the samples before it, so the results
/// before a cut are the same as without it.
pub fn results(
    mut rng: ChaCha8Rng,
    scenario: &Scenario,
    course: &Course,
    sex: Sex,
    (encounter, patient): (u64, u64),
    until: i64,
) -> Vec<LabRow> {
    let labs = &scenario.labs;
    // The patient's own baselines, drawn once for the encounter, in catalog
    // order (an array: this runs for every encounter).
    let mut baseline = [0.0; CATALOG.len()];
    for (slot, t) in baseline.iter_mut().zip(CATALOG) {
        let mean = match t.key {
            "hemoglobin" => match sex {
                Sex::Female => 13.6,
                Sex::Male => 15.3,
                Sex::Other | Sex::Unknown => 14.4,
            },
            _ => t.baseline.0,
        };
        *slot = mean + t.baseline.1 * normal(&mut rng);
    }
    chronic(&mut rng, course, &mut baseline);
    let bun_ratio = 14.0 + 2.0 * normal(&mut rng);
    let anion_gap = 10.0 + 1.0 * normal(&mut rng);
    // A hyperglycaemic crisis: a few diabetics who come in acutely.
    let crisis = course.conditions.has(Condition::Diabetes)
        && scenario.encounter_type != EncounterType::Outpatient
        && rng.random_bool(0.04);
    let crisis_glucose = if crisis {
        250.0 + 150.0 * rng.random::<f64>()
    } else {
        0.0
    };

    let mut draws: Vec<(i64, usize, &'static Panel)> = Vec::new();
    for (order_index, order) in labs.orders.iter().enumerate() {
        let Some(panel) = panel(&order.panel) else {
            continue;
        };
        if !rng.random_bool(order.probability) {
            continue;
        }
        for at in collection_times(&mut rng, scenario.encounter_type, order, course) {
            draws.push((at, order_index, panel));
        }
    }
    draws.sort_by_key(|(at, order, _)| (*at, *order));

    let deviation = |key: &str, escalated: bool| -> f64 {
        labs.deviation.get(key).copied().unwrap_or(0.0)
            + if escalated {
                labs.escalated_deviation.get(key).copied().unwrap_or(0.0)
            } else {
                0.0
            }
    };
    // Not every patient sent on has what the escalated deviation describes
    // (admitted chest pain is not always a myocardial infarction).
    let escalated = course.escalated && rng.random_bool(labs.escalated_share);

    let mut out = Vec::new();
    for (at, _, panel) in draws.into_iter().take_while(|(at, _, _)| *at < until) {
        let turnaround = turnaround_minutes(&mut rng, panel, scenario.encounter_type) * 60;
        let factor = course.factor(at);
        let shock = course.shock(at);
        // The true value of a test at this moment, before measurement noise.
        let truth = |key: &str| -> f64 {
            let shape = if key == "troponin_t" {
                troponin_shape(course, at)
            } else {
                factor
            };
            let own = CATALOG
                .iter()
                .position(|t| t.key == key)
                .map_or(0.0, |i| baseline[i]);
            let crisis = if key == "glucose" {
                crisis_glucose * factor
            } else {
                0.0
            };
            own + course.severity * deviation(key, escalated) * shape
                + crisis
                + SHOCK
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or(0.0, |(_, d)| d * shock)
        };
        let lactate = truth("lactate");
        for key in panel.tests {
            let Some(t) = test(key) else { continue };
            let noise = t.baseline.2 * normal(&mut rng);
            let raw = match *key {
                "bun" => {
                    (truth("creatinine") * (bun_ratio + deviation("bun_ratio", escalated) * factor))
                        + 1.0 * normal(&mut rng)
                }
                "chloride" => {
                    let gap = anion_gap + 0.8 * (lactate - 1.1).max(0.0);
                    truth("sodium") - truth("co2") - gap + 0.8 * normal(&mut rng)
                }
                "troponin_t" | "lactate" | "creatinine" => (truth(key) + noise).max(t.plausible.0),
                _ => truth(key) + noise,
            };
            let value = t.round(raw.clamp(t.plausible.0, t.plausible.1));
            let reference = t.reference_for(sex);
            out.push(LabRow {
                encounter,
                patient,
                seq: out.len() as u32 + 1,
                test: t,
                value,
                reference,
                flag: t.flag(value, reference),
                collected_at: at,
                resulted_at: at + turnaround,
            });
        }
    }
    out
}

/// What full shock before death adds to a test's true value.
const SHOCK: [(&str, f64); 5] = [
    ("lactate", 6.0),
    ("creatinine", 1.6),
    ("co2", -9.0),
    ("potassium", 0.9),
    ("platelets", -80.0),
];

/// The patient's chronic conditions and age, on their baselines (in
/// catalog order): approximate shifts for a typical patient with each.
fn chronic(rng: &mut ChaCha8Rng, course: &Course, baseline: &mut [f64; CATALOG.len()]) {
    let mut shift = |key: &str, by: f64| {
        if let Some(i) = CATALOG.iter().position(|t| t.key == key) {
            baseline[i] += by;
        }
    };
    let has = |c| course.conditions.has(c);
    if has(Condition::Anaemia) {
        let by = -2.2 - 0.8 * normal(rng).abs();
        shift("hemoglobin", by);
    }
    if has(Condition::Ckd) {
        let by = 0.6 + 0.8 * normal(rng).abs();
        shift("creatinine", by);
        let by = 0.4 + 0.4 * normal(rng).abs();
        shift("potassium", by);
        shift("hemoglobin", -1.0);
        shift("co2", -2.0);
        let by = 4.0 + 3.0 * normal(rng).abs();
        shift("troponin_t", by);
    }
    if has(Condition::Diabetes) {
        let by = 50.0 + 40.0 * normal(rng).abs();
        shift("glucose", by);
    }
    if has(Condition::HeartFailure) {
        shift("sodium", -2.0);
        let by = 4.0 + 3.0 * normal(rng).abs();
        shift("troponin_t", by);
    }
    if course.age >= 75 {
        // High-sensitivity troponin rises with age alone.
        shift("troponin_t", 3.0);
    }
}

/// Minutes from collection to result: lognormal around the lab's usual
/// time (the panel's range's geometric middle), with a long tail (about 5%
/// of emergency and ward results take over 3 hours); a clinic's samples go
/// out to the lab and come back hours later.
fn turnaround_minutes(rng: &mut ChaCha8Rng, panel: &Panel, kind: EncounterType) -> i64 {
    let (low, high) = panel.turnaround;
    let (median, sigma) = match kind {
        EncounterType::Outpatient => (300.0, 0.45),
        EncounterType::Emergency | EncounterType::Inpatient => (((low * high) as f64).sqrt(), 0.75),
    };
    LogNormal::new(f64::ln(median), sigma)
        .map(|d| rng.sample(d))
        .unwrap_or(median)
        .round()
        .clamp(low as f64 / 2.0, 24.0 * 60.0) as i64
}

/// Troponin after myocardial injury: a quarter of its peak on arrival,
/// peaking around six hours, then falling slowly.
fn troponin_shape(course: &Course, at: i64) -> f64 {
    let hours = course.hours_since_admit(at);
    if hours < 6.0 {
        0.25 + 0.125 * hours
    } else {
        0.5f64.powf((hours - 6.0) / 36.0)
    }
}

/// When an order's samples are drawn: on arrival, then every `every_hours`
/// (daily orders as the ward's early-morning round) while the patient is
/// there and within `for_hours` of arrival.
fn collection_times(
    rng: &mut ChaCha8Rng,
    kind: EncounterType,
    order: &LabOrder,
    course: &Course,
) -> Vec<i64> {
    let (admit, discharge) = (course.admit(), course.discharge());
    let stay_minutes = (discharge - admit) / 60;
    let first = match kind {
        // Drawn during the visit.
        EncounterType::Outpatient => admit + rng.random_range(0..=stay_minutes.max(1) - 1) * 60,
        // Drawn soon after arrival.
        EncounterType::Emergency | EncounterType::Inpatient => {
            admit + rng.random_range(5..=45i64).min(stay_minutes) * 60
        }
    };
    let mut times = vec![first];
    let Some(every) = order.every_hours.filter(|h| *h > 0) else {
        return times;
    };
    let until = order
        .for_hours
        .map_or(discharge, |h| discharge.min(admit + i64::from(h) * 3600));
    let mut last = first;
    loop {
        let next = if every == 24 {
            // The next local morning, between 04:30 and 06:00.
            course
                .clock
                .days_later_at(last, 1, rng.random_range(270..=360u32))
        } else {
            last + i64::from(every) * 3600 + rng.random_range(-10..=10i64) * 60
        };
        if next > until {
            break;
        }
        times.push(next);
        last = next;
    }
    times
}
