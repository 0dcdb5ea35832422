//! Vitals: one autocorrelated time series per encounter, charted inside the
//! encounter's admit..discharge window.
//!
//! Each signal is the patient's own baseline (blood pressure rises with age
//! and hypertension; COPD lowers saturation; anaemia raises the pulse), plus
//! the scenario's admission deviation scaled by severity and fading with the
//! trend half-life, plus AR(1) noise. A share of septic patients, more of
//! them old, are cold rather than febrile. A patient who dies goes into shock
//! first: pressure falls, pulse and breathing rise, the fever gives way.
//! Heart rate also follows fever. Ward and ICU patients who desaturate get
//! oxygen. Values approach the plausible clinical range's limits smoothly
//! (pulse pressure too), and the charting interval follows the NEWS2 score
//! where the scenario says so. The triage set is nearly complete; an ICU
//! charts temperature every few hours, not hourly.

use rand::RngExt;
use rand::rngs::ChaCha8Rng;

use super::course::Course;
use super::normal;
use crate::config::{MissingRates, Scenario, Signal};
use crate::model::EncounterType;
use crate::rows::VitalRow;

/// Plausible clinical ranges (reference: plausible abnormal range), well
/// inside the schemas' never-outside bounds, with the width of the soft zone
/// near each limit (see [`soft_limit`]).
pub mod bounds {
    pub const HEART_RATE: (f64, f64, f64) = (35.0, 180.0, 15.0);
    pub const SYSTOLIC: (f64, f64, f64) = (60.0, 220.0, 15.0);
    pub const DIASTOLIC: (f64, f64, f64) = (30.0, 130.0, 8.0);
    pub const RESPIRATORY_RATE: (f64, f64, f64) = (6.0, 40.0, 4.0);
    pub const TEMPERATURE: (f64, f64, f64) = (34.0, 41.0, 0.8);
    /// SpO2 saturates hard at 100; its floor is soft.
    pub const SPO2: (f64, f64, f64) = (75.0, 100.0, 5.0);
    /// Systolic minus diastolic.
    pub const PULSE_PRESSURE: (f64, f64, f64) = (20.0, 120.0, 12.0);
}

/// Keeps `x` inside `(lo, hi)` without piling values up at the limits: within
/// `margin` of a limit the value approaches it asymptotically (continuous,
/// monotone, slope 1 where the soft zone starts), as sick patients' readings
/// spread out below a ceiling rather than sitting on it.
pub fn soft_limit(x: f64, (lo, hi, margin): (f64, f64, f64)) -> f64 {
    if x > hi - margin {
        hi - margin * (-(x - (hi - margin)) / margin).exp()
    } else if x < lo + margin {
        lo + margin * ((x - (lo + margin)) / margin).exp()
    } else {
        x
    }
}

/// What full shock adds to each signal (HR, SBP, DBP, RR, T, SpO2): the
/// hours before an expected death.
const SHOCK: [f64; 6] = [22.0, -48.0, -24.0, 9.0, -0.6, -9.0];

/// The saturation oxygen therapy aims for on the ward.
const OXYGEN_TARGET: f64 = 95.0;

/// Heart-rate rise per degree Celsius of fever above 37.0.
const FEVER_HR_PER_DEGREE: f64 = 9.0;
/// Noise correlation time: readings an hour apart stay close, a day apart not.
const NOISE_MEMORY_HOURS: f64 = 3.0;

const HR: usize = 0;
const SBP: usize = 1;
const DBP: usize = 2;
const RR: usize = 3;
const TEMP: usize = 4;
const SPO2: usize = 5;

/// The vital-sign sets of one encounter, generated lazily so a writer can
/// stream them.
pub struct Series<'a> {
    rng: ChaCha8Rng,
    /// The encounter's and the patient's numbers, for the rows' IDs.
    ids: (u64, u64),
    scenario: &'a Scenario,
    missing: [f64; 5],
    /// Temperature's missing rate on the first set of an emergency visit.
    triage_temperature_missing: f64,
    /// When a temperature was last charted.
    last_temperature_at: Option<i64>,
    baseline: [f64; 6],
    deviation: [f64; 6],
    noise: [f64; 6],
    ar: [f64; 6],
    course: Course,
    next_at: Option<i64>,
    last_at: i64,
    seq: u32,
}

impl<'a> Series<'a> {
    /// `rng` must be the encounter's own stream; `ids` are the encounter's
    /// and the patient's numbers.
    pub fn new(
        mut rng: ChaCha8Rng,
        scenario: &'a Scenario,
        missing: &MissingRates,
        course: Course,
        ids: (u64, u64),
    ) -> Series<'a> {
        use crate::model::Condition;
        let p = &scenario.vitals;
        let signals: [&Signal; 6] = [
            &p.heart_rate,
            &p.systolic_bp,
            &p.diastolic_bp,
            &p.respiratory_rate,
            &p.temperature_c,
            &p.spo2,
        ];
        let mut baseline = signals.map(|s| s.baseline + s.spread * normal(&mut rng));
        // The patient's own: systolic pressure rises with age (NHANES: from
        // about 115 before 40 to 135 past 60), more so with hypertension, even
        // treated; diastolic levels off, so the pulse pressure widens.
        let years = f64::from(course.age) - 45.0;
        let has = |c| course.conditions.has(c);
        baseline[SBP] += 0.35 * years
            + if has(Condition::Hypertension) {
                8.0
            } else {
                0.0
            };
        baseline[DBP] += (0.12 * years).clamp(-3.0, 2.0)
            + if has(Condition::Hypertension) {
                4.0
            } else {
                0.0
            };
        if has(Condition::Copd) {
            baseline[SPO2] -= 2.5;
            baseline[RR] += 2.0;
        }
        if has(Condition::Anaemia) {
            baseline[HR] += 5.0;
        }
        let mut deviation = signals.map(|s| s.deviation * course.severity);
        // Cold sepsis: in a share of patients (half again as many past 75)
        // the temperature falls instead of rising.
        let cold = p.hypothermia_share * if course.age >= 75 { 1.5 } else { 1.0 };
        if rng.random_bool(cold.min(1.0)) {
            deviation[TEMP] = -0.7 * deviation[TEMP].abs();
        }
        let noise = signals.map(|s| s.noise);
        let ar = noise.map(|sd| sd * normal(&mut rng));
        let scale = p.missing_scale;
        let triage_temperature_missing = if scenario.encounter_type == EncounterType::Emergency {
            missing.triage_temperature_c
        } else {
            missing.temperature_c * scale
        };
        let missing = [
            missing.heart_rate,
            missing.blood_pressure,
            missing.respiratory_rate,
            missing.temperature_c,
            missing.spo2,
        ]
        .map(|r| (r * scale).min(1.0));
        let (admit, discharge) = (course.admit(), course.discharge());
        // The first set is taken on arrival, within ten minutes.
        let first_delay = rng.random_range(0..=((discharge - admit) / 60).min(10)) * 60;
        Series {
            rng,
            ids,
            scenario,
            missing,
            triage_temperature_missing,
            last_temperature_at: None,
            baseline,
            deviation,
            noise,
            ar,
            course,
            next_at: Some(admit + first_delay),
            last_at: admit,
            seq: 0,
        }
    }

    /// The true physiological state at `at` (before anything is left out).
    fn measure(&mut self, at: i64) -> [f64; 6] {
        let dt_hours = (at - self.last_at) as f64 / 3600.0;
        let phi = (-dt_hours / NOISE_MEMORY_HOURS).exp();
        let innovation = (1.0 - phi * phi).sqrt();
        for i in 0..6 {
            self.ar[i] = phi * self.ar[i] + innovation * self.noise[i] * normal(&mut self.rng);
        }
        let trend = self.course.factor(at);
        let shock = self.course.shock(at);
        let mut v = [0.0; 6];
        for (i, x) in v.iter_mut().enumerate() {
            let mut deviation = self.deviation[i] * trend;
            if i == TEMP {
                // The fever gives way as the circulation fails.
                deviation *= 1.0 - 0.8 * shock;
            }
            *x = self.baseline[i] + deviation + self.ar[i] + SHOCK[i] * shock;
        }
        v[TEMP] = soft_limit(v[TEMP], bounds::TEMPERATURE);
        v[HR] += FEVER_HR_PER_DEGREE * (v[TEMP] - 37.0).max(0.0);
        v[HR] = soft_limit(v[HR], bounds::HEART_RATE);
        v[SBP] = soft_limit(v[SBP], bounds::SYSTOLIC);
        let pulse_pressure = soft_limit(v[SBP] - v[DBP], bounds::PULSE_PRESSURE);
        v[DBP] = soft_limit(v[SBP] - pulse_pressure, bounds::DIASTOLIC);
        v[RR] = soft_limit(v[RR], bounds::RESPIRATORY_RATE);
        // Oxygen on the ward and in the ICU: after the first set, a patient
        // below 95% is given oxygen, which brings most of the way back up
        // (not in the last hours of a fatal shock).
        if self.scenario.encounter_type == EncounterType::Inpatient
            && self.seq > 0
            && shock < 0.5
            && v[SPO2] < OXYGEN_TARGET
        {
            v[SPO2] = OXYGEN_TARGET + 0.3 * (v[SPO2] - OXYGEN_TARGET);
        }
        let (spo2_floor, spo2_ceiling, spo2_margin) = bounds::SPO2;
        v[SPO2] = soft_limit(v[SPO2], (spo2_floor, f64::INFINITY, spo2_margin)).min(spo2_ceiling);
        v
    }

    fn next_interval_minutes(&mut self, v: &[f64; 6]) -> Option<i64> {
        let p = &self.scenario.vitals;
        if p.interval_minutes == 0 {
            return None;
        }
        let score = news2(v);
        let interval = match (score, p.urgent_interval_minutes, p.stable_interval_minutes) {
            (5.., Some(urgent), _) => urgent,
            (0, _, Some(stable)) => stable,
            _ => p.interval_minutes,
        };
        let jitter = i64::from(p.jitter_minutes);
        Some(i64::from(interval) + self.rng.random_range(-jitter..=jitter))
    }
}

impl Iterator for Series<'_> {
    type Item = VitalRow;

    fn next(&mut self) -> Option<VitalRow> {
        let at = self.next_at?;
        let v = self.measure(at);
        self.last_at = at;
        self.seq += 1;
        self.next_at = self
            .next_interval_minutes(&v)
            .map(|minutes| at + minutes * 60)
            .filter(|next| *next <= self.course.discharge());

        let mut missing = self.missing;
        if self.seq == 1 {
            missing[3] = self.triage_temperature_missing;
        }
        let mut taken = [true; 5];
        for (slot, rate) in taken.iter_mut().zip(missing) {
            *slot = !self.rng.random_bool(rate);
        }
        // Where temperature is charted every few hours (an ICU), it is left
        // out of the sets in between.
        if let (Some(every), Some(last)) = (
            self.scenario.vitals.temperature_interval_minutes,
            self.last_temperature_at,
        ) && at - last < (i64::from(every) - 30) * 60
        {
            taken[3] = false;
        }
        if !taken.contains(&true) {
            taken[0] = true; // a charted set has at least one measurement
        }
        let [hr_taken, bp_taken, rr_taken, temp_taken, spo2_taken] = taken;
        if temp_taken {
            self.last_temperature_at = Some(at);
        }
        let int = |x: f64| x.round() as u16;
        Some(VitalRow {
            encounter: self.ids.0,
            patient: self.ids.1,
            seq: self.seq,
            measured_at: at,
            heart_rate: hr_taken.then(|| int(v[HR])),
            systolic_bp: bp_taken.then(|| int(v[SBP])),
            diastolic_bp: bp_taken.then(|| int(v[DBP]).min(int(v[SBP]) - 1)),
            respiratory_rate: rr_taken.then(|| int(v[RR])),
            temperature_dc: temp_taken.then(|| int(v[TEMP] * 10.0)),
            spo2: spo2_taken.then(|| int(v[SPO2])),
        })
    }
}

/// NEWS2 score from the five vital signs it uses (without consciousness and
/// supplemental oxygen, which datagen does not model).
pub fn news2(v: &[f64; 6]) -> u32 {
    let rr = v[RR].round();
    let spo2 = v[SPO2].round();
    let sbp = v[SBP].round();
    let hr = v[HR].round();
    let temp = (v[TEMP] * 10.0).round() / 10.0;
    let rr_score = match rr {
        x if x <= 8.0 => 3,
        x if x <= 11.0 => 1,
        x if x <= 20.0 => 0,
        x if x <= 24.0 => 2,
        _ => 3,
    };
    let spo2_score = match spo2 {
        x if x <= 91.0 => 3,
        x if x <= 93.0 => 2,
        x if x <= 95.0 => 1,
        _ => 0,
    };
    let sbp_score = match sbp {
        x if x <= 90.0 => 3,
        x if x <= 100.0 => 2,
        x if x <= 110.0 => 1,
        x if x <= 219.0 => 0,
        _ => 3,
    };
    let hr_score = match hr {
        x if x <= 40.0 => 3,
        x if x <= 50.0 => 1,
        x if x <= 90.0 => 0,
        x if x <= 110.0 => 1,
        x if x <= 130.0 => 2,
        _ => 3,
    };
    let temp_score = match temp {
        x if x <= 35.0 => 3,
        x if x <= 36.0 => 1,
        x if x <= 38.0 => 0,
        x if x <= 39.0 => 1,
        _ => 2,
    };
    rr_score + spo2_score + sbp_score + hr_score + temp_score
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limits_stay_inside_and_keep_order() {
        let limits = bounds::HEART_RATE;
        let mut last = f64::MIN;
        for i in 0..4000 {
            let x = -100.0 + i as f64 * 0.2;
            let y = soft_limit(x, limits);
            assert!(y >= limits.0 && y <= limits.1, "{x} -> {y}");
            assert!(y >= last, "monotone at {x}");
            last = y;
        }
        assert_eq!(soft_limit(100.0, limits), 100.0);
    }

    #[test]
    fn news2_scores_normal_and_septic_sets() {
        assert_eq!(news2(&[75.0, 125.0, 80.0, 16.0, 36.8, 98.0]), 0);
        // HR 125 (2), SBP 88 (3), RR 26 (3), T 39.2 (2), SpO2 91 (3)
        assert_eq!(news2(&[125.0, 88.0, 50.0, 26.0, 39.2, 91.0]), 13);
    }
}
