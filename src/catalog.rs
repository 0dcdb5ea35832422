//! The adult lab catalog: every test's LOINC code, UCUM unit, reference
//! ranges, critical limits and plausible range, the orderable panels, and the
//! flag rule. Pure data with no dependencies beyond the model, so the config
//! (which checks the panels and tests it names) and the generator both read
//! it; `labs.schema.json` publishes the same catalog, and a test keeps the two
//! equal.

use crate::model::Sex;

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
        abnormal_flag(value, reference, self.critical)
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
        baseline: (7.0, 1.9, 0.4),
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
        baseline: (0.0, 1.2, 0.2),
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
        baseline: (250.0, 55.0, 10.0),
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

/// The contract's flag rule: `LL`/`HH` beyond a critical limit, else `L`/`H`
/// outside the reference range, else `N`. The generator flags with it, and
/// `validate` checks flags with it, on the limits the schema publishes.
pub fn abnormal_flag(
    value: f64,
    (low, high): (f64, f64),
    (critical_low, critical_high): (Option<f64>, Option<f64>),
) -> &'static str {
    match (critical_low, critical_high) {
        (Some(ll), _) if value < ll => "LL",
        (_, Some(hh)) if value > hh => "HH",
        _ if value < low => "L",
        _ if value > high => "H",
        _ => "N",
    }
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
