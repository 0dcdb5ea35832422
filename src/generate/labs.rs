//! Labs: the results of one encounter's orders, from the tests of the
//! [`crate::catalog`].
//!
//! A result is the patient's own baseline plus the scenario's deviation for
//! that test, scaled by severity and following the encounter's [`Course`]
//! (troponin instead rises over the first hours, as it does after myocardial
//! injury), plus measurement noise. A basic metabolic panel shares one draw
//! and keeps its internal arithmetic: chloride follows sodium, bicarbonate and
//! the anion gap (which widens with lactate), BUN follows creatinine.

use rand::RngExt;
use rand::rngs::ChaCha8Rng;

use super::course::Course;
use super::normal;
use crate::catalog::{CATALOG, Panel, panel, test};
use crate::config::{LabOrder, Scenario};
use crate::model::{EncounterType, Sex};
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
    let bun_ratio = 14.0 + 2.0 * normal(&mut rng);
    let anion_gap = 10.0 + 1.0 * normal(&mut rng);

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
    let escalated = course.escalated;

    let mut out = Vec::new();
    for (at, _, panel) in draws.into_iter().take_while(|(at, _, _)| *at < until) {
        let turnaround = rng.random_range(panel.turnaround.0..=panel.turnaround.1) * 60;
        let factor = course.factor(at);
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
            own + course.severity * deviation(key, escalated) * shape
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
