//! Labs: the adult lab catalog (LOINC codes, UCUM units, reference ranges,
//! critical limits) and the results of one encounter's orders.
//!
//! A result is the patient's own baseline plus the scenario's deviation for
//! that test, scaled by severity and following the encounter's [`Course`]
//! (troponin instead rises over the first hours, as it does after myocardial
//! injury), plus measurement noise. A basic metabolic panel shares one draw
//! and keeps its internal arithmetic: chloride follows sodium, bicarbonate and
//! the anion gap (which widens with lactate), BUN follows creatinine.

use std::collections::BTreeMap;

use rand::RngExt;
use rand::rngs::ChaCha8Rng;

use super::course::Course;
use super::normal;
use crate::config::{LabOrder, Scenario};
use crate::model::{EncounterType, Sex};

/// A test of the catalog, identified by a short key used in the config.
#[derive(Clone, Copy, Debug)]
pub struct LabTest {
    pub key: &'static str,
    pub loinc: &'static str,
    pub name: &'static str,
    pub unit: &'static str,
    /// Reference range for female and male patients (the union for others).
    pub reference: [(f64, f64); 2],
    /// Never generated outside this range.
    pub plausible: (f64, f64),
    /// Values below / above these are flagged LL / HH.
    pub critical: (Option<f64>, Option<f64>),
    /// Healthy adult baseline: mean, between-patient sd, measurement sd.
    pub baseline: (f64, f64, f64),
    pub decimals: usize,
}

impl LabTest {
    pub fn reference_for(&self, sex: Sex) -> (f64, f64) {
        let [female, male] = self.reference;
        match sex {
            Sex::Female => female,
            Sex::Male => male,
            Sex::Other | Sex::Unknown => (female.0.min(male.0), female.1.max(male.1)),
        }
    }

    /// The flag a (rounded) value gets against its reference range, by the
    /// contract's rule.
    pub fn flag(&self, value: f64, reference: (f64, f64)) -> &'static str {
        crate::schema::abnormal_flag(value, reference, self.critical)
    }

    pub fn round(&self, value: f64) -> f64 {
        let scale = 10f64.powi(self.decimals as i32);
        (value * scale).round() / scale
    }
}

const fn same(low: f64, high: f64) -> [(f64, f64); 2] {
    [(low, high), (low, high)]
}

/// Adult reference facts (`../shared/reference/clinical-reference.md`).
pub const CATALOG: &[LabTest] = &[
    LabTest {
        key: "sodium",
        loinc: "2951-2",
        name: "Sodium",
        unit: "mmol/L",
        reference: same(135.0, 145.0),
        plausible: (115.0, 165.0),
        critical: (Some(120.0), Some(160.0)),
        baseline: (140.0, 1.8, 1.0),
        decimals: 0,
    },
    LabTest {
        key: "potassium",
        loinc: "2823-3",
        name: "Potassium",
        unit: "mmol/L",
        reference: same(3.5, 5.0),
        plausible: (2.0, 7.5),
        critical: (Some(2.8), Some(6.2)),
        baseline: (4.2, 0.3, 0.15),
        decimals: 1,
    },
    LabTest {
        key: "chloride",
        loinc: "2075-0",
        name: "Chloride",
        unit: "mmol/L",
        reference: same(98.0, 106.0),
        plausible: (80.0, 125.0),
        critical: (None, None),
        baseline: (0.0, 0.0, 0.0),
        decimals: 0,
    },
    LabTest {
        key: "co2",
        loinc: "2028-9",
        name: "CO2, total",
        unit: "mmol/L",
        reference: same(22.0, 29.0),
        plausible: (5.0, 45.0),
        critical: (Some(10.0), Some(40.0)),
        baseline: (25.5, 1.4, 0.8),
        decimals: 0,
    },
    LabTest {
        key: "bun",
        loinc: "3094-0",
        name: "BUN",
        unit: "mg/dL",
        reference: same(7.0, 20.0),
        plausible: (2.0, 150.0),
        critical: (None, Some(100.0)),
        baseline: (0.0, 0.0, 0.0),
        decimals: 0,
    },
    LabTest {
        key: "creatinine",
        loinc: "2160-0",
        name: "Creatinine",
        unit: "mg/dL",
        reference: same(0.6, 1.2),
        plausible: (0.3, 12.0),
        critical: (None, Some(10.0)),
        baseline: (0.9, 0.13, 0.04),
        decimals: 2,
    },
    LabTest {
        key: "glucose",
        loinc: "2345-7",
        name: "Glucose",
        unit: "mg/dL",
        reference: same(70.0, 99.0),
        plausible: (30.0, 600.0),
        critical: (Some(50.0), Some(400.0)),
        baseline: (92.0, 8.0, 5.0),
        decimals: 0,
    },
    LabTest {
        key: "wbc",
        loinc: "6690-2",
        name: "WBC",
        unit: "10*3/uL",
        reference: same(4.0, 11.0),
        plausible: (0.5, 40.0),
        critical: (Some(1.0), Some(30.0)),
        baseline: (7.0, 1.5, 0.4),
        decimals: 1,
    },
    LabTest {
        key: "hemoglobin",
        loinc: "718-7",
        name: "Hemoglobin",
        unit: "g/dL",
        reference: [(12.0, 15.5), (13.5, 17.5)],
        plausible: (5.0, 20.0),
        critical: (Some(7.0), Some(20.0)),
        baseline: (0.0, 0.9, 0.2),
        decimals: 1,
    },
    LabTest {
        key: "platelets",
        loinc: "777-3",
        name: "Platelets",
        unit: "10*3/uL",
        reference: same(150.0, 400.0),
        plausible: (10.0, 1000.0),
        critical: (Some(20.0), Some(1000.0)),
        baseline: (250.0, 45.0, 10.0),
        decimals: 0,
    },
    LabTest {
        key: "lactate",
        loinc: "2524-7",
        name: "Lactate",
        unit: "mmol/L",
        reference: same(0.5, 2.2),
        plausible: (0.5, 15.0),
        critical: (None, Some(4.0)),
        baseline: (1.1, 0.25, 0.12),
        decimals: 1,
    },
    LabTest {
        key: "troponin_t",
        loinc: "67151-1",
        name: "Troponin T, high-sensitivity",
        unit: "ng/L",
        reference: same(0.0, 14.0),
        plausible: (3.0, 5000.0),
        critical: (None, None),
        baseline: (6.0, 2.5, 1.0),
        decimals: 0,
    },
];

pub fn test(key: &str) -> Option<&'static LabTest> {
    CATALOG.iter().find(|t| t.key == key)
}

pub fn by_loinc(loinc: &str) -> Option<&'static LabTest> {
    CATALOG.iter().find(|t| t.loinc == loinc)
}

/// Orderable panels: the tests drawn together, and the lab's turnaround.
pub struct Panel {
    pub key: &'static str,
    pub tests: &'static [&'static str],
    /// Minutes from collection to result.
    pub turnaround: (i64, i64),
}

pub const PANELS: &[Panel] = &[
    Panel {
        key: "bmp",
        tests: &[
            "sodium",
            "potassium",
            "chloride",
            "co2",
            "bun",
            "creatinine",
            "glucose",
        ],
        turnaround: (40, 90),
    },
    Panel {
        key: "cbc",
        tests: &["wbc", "hemoglobin", "platelets"],
        turnaround: (25, 60),
    },
    Panel {
        key: "lactate",
        tests: &["lactate"],
        turnaround: (10, 30),
    },
    Panel {
        key: "troponin",
        tests: &["troponin_t"],
        turnaround: (40, 75),
    },
];

pub fn panel(key: &str) -> Option<&'static Panel> {
    PANELS.iter().find(|p| p.key == key)
}

/// One result row.
#[derive(Clone, Debug)]
pub struct LabResult {
    pub seq: u32,
    pub test: &'static LabTest,
    pub value: f64,
    pub reference: (f64, f64),
    pub flag: &'static str,
    pub collected_at: i64,
    pub resulted_at: i64,
}

/// Generates the results of an encounter's lab orders, in collection order.
pub fn results(
    mut rng: ChaCha8Rng,
    scenario: &Scenario,
    course: &Course,
    sex: Sex,
) -> Vec<LabResult> {
    let labs = &scenario.labs;
    // The patient's own baselines, drawn once for the encounter.
    let mut baseline: BTreeMap<&str, f64> = BTreeMap::new();
    for t in CATALOG {
        let mean = match t.key {
            "hemoglobin" => match sex {
                Sex::Female => 13.6,
                Sex::Male => 15.3,
                Sex::Other | Sex::Unknown => 14.4,
            },
            _ => t.baseline.0,
        };
        baseline.insert(t.key, mean + t.baseline.1 * normal(&mut rng));
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
    for (at, _, panel) in draws {
        let turnaround = rng.random_range(panel.turnaround.0..=panel.turnaround.1) * 60;
        let factor = course.factor(at);
        // The true value of a test at this moment, before measurement noise.
        let truth = |key: &str| -> f64 {
            let shape = if key == "troponin_t" {
                troponin_shape(course, at)
            } else {
                factor
            };
            baseline[key] + course.severity * deviation(key, escalated) * shape
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
            out.push(LabResult {
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
            // Next morning between 04:30 and 06:00.
            let day_start = (last.div_euclid(86_400) + 1) * 86_400;
            day_start + rng.random_range(270..=360i64) * 60
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_ranges_and_critical_limits() {
        let k = test("potassium").unwrap();
        let range = k.reference_for(Sex::Male);
        assert_eq!(k.flag(4.2, range), "N");
        assert_eq!(k.flag(3.4, range), "L");
        assert_eq!(k.flag(2.7, range), "LL");
        assert_eq!(k.flag(5.3, range), "H");
        assert_eq!(k.flag(6.5, range), "HH");
        let hb = test("hemoglobin").unwrap();
        assert_eq!(hb.reference_for(Sex::Female), (12.0, 15.5));
        assert_eq!(hb.reference_for(Sex::Unknown), (12.0, 17.5));
    }

    #[test]
    fn every_panel_test_is_in_the_catalog_once() {
        for p in PANELS {
            for key in p.tests {
                assert_eq!(CATALOG.iter().filter(|t| t.key == *key).count(), 1, "{key}");
            }
        }
        let loincs: std::collections::HashSet<_> = CATALOG.iter().map(|t| t.loinc).collect();
        assert_eq!(loincs.len(), CATALOG.len());
    }
}
