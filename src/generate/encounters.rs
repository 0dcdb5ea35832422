//! Encounters: the day's plan of who comes in, for which scenario, when, for
//! how long and how they leave.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use chrono::{Duration, NaiveDateTime, NaiveTime};
use rand::distr::weighted::WeightedIndex;
use rand::{Rng, RngExt};
use rand_distr::LogNormal;

use super::patients::Patient;
use crate::config::{Config, DurationModel, Scenario};
use crate::error::Error;
use crate::model::{BatchDate, Disposition, EncounterType, Sex};

/// One planned encounter. `patient` and `scenario` index into the day's patient
/// table and the config's scenarios.
#[derive(Clone, Debug)]
pub struct Encounter {
    /// Position in the day's plan: it names the encounter's vitals stream.
    pub ordinal: u32,
    /// The number behind `encounter_id`, assigned in admit-time order.
    pub number: u64,
    pub patient: usize,
    pub returning: bool,
    pub scenario: usize,
    pub complaint: usize,
    pub admit: NaiveDateTime,
    pub discharge: NaiveDateTime,
    pub disposition: Disposition,
    /// How ill this patient is relative to the scenario's typical case; it
    /// scales the admission deviation of every vital sign.
    pub severity: f64,
}

/// Who can be seen today: indexes into the patient table.
pub struct Pools<'a> {
    pub patients: &'a [Patient],
    /// Patients registered before the run date.
    pub returning: &'a [usize],
    /// Patients registered on the run date.
    pub new: Range<usize>,
}

/// Plans `count` encounters admitted on `date`, sorted by admit time and
/// numbered from `first_number`.
pub fn plan<R: Rng + ?Sized>(
    rng: &mut R,
    config: &Config,
    date: BatchDate,
    pools: &Pools<'_>,
    count: u32,
    first_number: u64,
) -> Result<Vec<Encounter>, Error> {
    if count > 0 && pools.returning.is_empty() && pools.new.is_empty() {
        return Err(Error::NoPatients { date, count });
    }
    let weighted = |weights: &[f64]| WeightedIndex::new(weights.iter().copied()).ok();
    let mut planner = Planner {
        rng,
        config,
        date,
        pools,
        seen_returning: HashSet::new(),
        next_new: pools.new.start,
        scenarios: HashMap::new(),
        hours: [weighted(&EMERGENCY_HOURS), weighted(&INPATIENT_HOURS)],
        dispositions: config
            .scenarios
            .iter()
            .map(|s| WeightedIndex::new(s.dispositions.values().copied()).ok())
            .collect(),
    };
    let mut encounters = Vec::with_capacity(count as usize);
    for ordinal in 0..count {
        encounters.push(planner.encounter(ordinal)?);
    }
    encounters.sort_by_key(|e| (e.admit, e.ordinal));
    for (i, e) in encounters.iter_mut().enumerate() {
        e.number = first_number + i as u64;
    }
    Ok(encounters)
}

struct Planner<'a, 'p, R: ?Sized> {
    rng: &'a mut R,
    config: &'a Config,
    date: BatchDate,
    pools: &'a Pools<'p>,
    seen_returning: HashSet<usize>,
    next_new: usize,
    // The weighted choices, built once per day rather than per encounter
    // (sampling a cached distribution draws exactly as a new one would).
    /// Scenario weights by the patient's (age, sex, returning).
    scenarios: HashMap<(u32, Sex, bool), Option<WeightedIndex<f64>>>,
    /// Arrival hours: emergency, inpatient.
    hours: [Option<WeightedIndex<f64>>; 2],
    /// Dispositions, per scenario.
    dispositions: Vec<Option<WeightedIndex<f64>>>,
}

impl<R: Rng + ?Sized> Planner<'_, '_, R> {
    fn encounter(&mut self, ordinal: u32) -> Result<Encounter, Error> {
        // A patient whose age or sex fits no scenario (possible only with a
        // custom config) is passed over for another.
        for _ in 0..16 {
            let (patient, returning) = self.pick_patient();
            if let Some(scenario) = self.pick_scenario(patient, returning) {
                return Ok(self.shape(ordinal, patient, returning, scenario));
            }
        }
        Err(Error::InvalidInput(format!(
            "no scenario in the config is eligible for the patients available on {}",
            self.date
        )))
    }

    fn pick_patient(&mut self) -> (usize, bool) {
        let pools = self.pools;
        let returning = match (pools.returning.is_empty(), pools.new.is_empty()) {
            (false, true) => true,
            (true, _) => false,
            (false, false) => self.rng.random_bool(self.config.population.returning_share),
        };
        if returning {
            // Prefer patients not yet seen today; a few repeat visits are real.
            let mut candidate =
                pools.returning[self.rng.random_range(0..pools.returning.len() as u64) as usize];
            for _ in 0..4 {
                if self.seen_returning.insert(candidate) {
                    break;
                }
                candidate = pools.returning
                    [self.rng.random_range(0..pools.returning.len() as u64) as usize];
            }
            (candidate, true)
        } else if self.next_new < pools.new.end {
            // Each new patient comes in once before anyone comes twice.
            self.next_new += 1;
            (self.next_new - 1, false)
        } else {
            let span = (pools.new.end - pools.new.start) as u64;
            (
                pools.new.start + self.rng.random_range(0..span) as usize,
                false,
            )
        }
    }

    fn pick_scenario(&mut self, patient: usize, returning: bool) -> Option<usize> {
        let p = &self.pools.patients[patient];
        let age = p.age_on(self.date.date());
        let (sex, weekend, config) = (p.sex, self.date.is_weekend(), self.config);
        let index = self
            .scenarios
            .entry((age, sex, returning))
            .or_insert_with(|| {
                let weights = |ignore_weekend: bool| {
                    config.scenarios.iter().map(move |s| {
                        if !s.eligible.admits(age, sex) {
                            return 0.0;
                        }
                        let mut w = s.weight;
                        if weekend && !ignore_weekend {
                            w *= s.weekend_factor;
                        }
                        if returning {
                            w *= s.returning_affinity;
                        }
                        w
                    })
                };
                // Off-weekend weights when no scenario is open at weekends.
                WeightedIndex::new(weights(false))
                    .or_else(|_| WeightedIndex::new(weights(true)))
                    .ok()
            });
        index.as_ref().map(|index| self.rng.sample(index))
    }

    fn shape(
        &mut self,
        ordinal: u32,
        patient: usize,
        returning: bool,
        scenario: usize,
    ) -> Encounter {
        let s: &Scenario = &self.config.scenarios[scenario];
        let hours = match s.encounter_type {
            EncounterType::Inpatient => self.hours[1].as_ref(),
            _ => self.hours[0].as_ref(),
        };
        let admit = admit_time(self.rng, self.date, s.encounter_type, hours);
        let minutes = duration_minutes(self.rng, &s.duration);
        let disposition = self.dispositions[scenario]
            .as_ref()
            .map(|index| self.rng.sample(index))
            .and_then(|k| s.dispositions.keys().nth(k).copied())
            .unwrap_or(Disposition::Home);
        // Sicker patients are the ones admitted, transferred or who die.
        let escalation = match disposition {
            Disposition::Admitted | Disposition::Transferred => 1.3,
            Disposition::Expired => 1.5,
            _ => 1.0,
        };
        let severity = (escalation * (0.25 * super::normal(self.rng)).exp()).clamp(0.5, 2.0);
        Encounter {
            ordinal,
            number: 0,
            patient,
            returning,
            scenario,
            complaint: self.rng.random_range(0..s.chief_complaints.len() as u64) as usize,
            admit,
            discharge: admit + Duration::minutes(i64::from(minutes)),
            disposition,
            severity,
        }
    }
}

/// Relative arrival intensity by hour of day (UTC): emergency departments are
/// busiest from late morning to evening, inpatient admissions (mostly via the
/// ED) peak in the afternoon.
const EMERGENCY_HOURS: [f64; 24] = [
    2.0, 1.6, 1.3, 1.1, 1.0, 1.1, 1.6, 2.6, 3.8, 4.6, 5.0, 5.0, 4.9, 4.8, 4.7, 4.6, 4.6, 4.6, 4.5,
    4.2, 3.8, 3.3, 2.8, 2.3,
];
const INPATIENT_HOURS: [f64; 24] = [
    1.5, 1.2, 1.0, 0.8, 0.7, 0.8, 1.0, 1.5, 2.5, 3.5, 4.0, 4.5, 5.0, 5.2, 5.4, 5.5, 5.5, 5.3, 5.0,
    4.5, 4.0, 3.2, 2.5, 2.0,
];

fn admit_time<R: Rng + ?Sized>(
    rng: &mut R,
    date: BatchDate,
    kind: EncounterType,
    hours: Option<&WeightedIndex<f64>>,
) -> NaiveDateTime {
    let minute_of_day = match kind {
        // Booked 15-minute slots, weekday clinics 08:00-17:00 and weekend
        // clinics 09:00-13:00, with patients checking in up to 10 minutes late.
        EncounterType::Outpatient => {
            let (open, slots) = if date.is_weekend() {
                (9 * 60, 16)
            } else {
                (8 * 60, 36)
            };
            open + 15 * rng.random_range(0..slots as u32) + rng.random_range(0..=10u32)
        }
        EncounterType::Emergency | EncounterType::Inpatient => {
            let hour = hours.map_or(12, |index| rng.sample(index)) as u32;
            hour * 60 + rng.random_range(0..60u32)
        }
    };
    let time = NaiveTime::from_num_seconds_from_midnight_opt(minute_of_day.min(1439) * 60, 0)
        .unwrap_or(NaiveTime::MIN);
    date.date().and_time(time)
}

/// Right-skewed length of stay in whole minutes.
fn duration_minutes<R: Rng + ?Sized>(rng: &mut R, model: &DurationModel) -> u32 {
    let minutes = LogNormal::new(model.median_minutes.ln(), model.sigma)
        .map(|d| rng.sample(d))
        .unwrap_or(model.median_minutes);
    (minutes.round() as u32).clamp(model.min_minutes, model.max_minutes)
}
