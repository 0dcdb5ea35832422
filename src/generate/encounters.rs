//! Encounters: the day's plan of who comes in, for which scenario, when, for
//! how long and how they leave; the inpatient stays an emergency visit
//! continues as; and the stays already running when a mode starts.
//!
//! A patient's life stays possible: nobody is planned while another of their
//! encounters is under way (the day's own, or a stay carried over in the
//! census, whose patients the caller leaves out of the pools), and nobody
//! after an encounter that ends in death.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::ops::Range;

use chrono::{Duration, NaiveDateTime, NaiveTime};
use rand::distr::weighted::WeightedIndex;
use rand::{Rng, RngExt};
use rand_distr::LogNormal;

use super::patients::Patient;
use crate::config::{Config, DurationModel, Scenario};
use crate::error::Error;
use crate::model::{BatchDate, Disposition, EncounterType, Mode, Sex};

/// One planned encounter. `patient` and `scenario` index into the patient
/// master and the config's scenarios. Its rows are a pure function of it:
/// they come from the random streams of its planning day and ordinal, so a
/// stay resumed on a later day gives the same rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Encounter {
    /// The day it was planned: its random streams are that day's.
    pub plan_date: BatchDate,
    /// Position in its day's plan: it names the encounter's random streams.
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
    /// The emergency visit (its number) this inpatient stay began in.
    pub source: Option<u64>,
}

impl Encounter {
    pub fn admit_secs(&self) -> i64 {
        self.admit.and_utc().timestamp()
    }

    pub fn discharge_secs(&self) -> i64 {
        self.discharge.and_utc().timestamp()
    }
}

/// Who can be seen today: indexes into the patient table.
pub struct Pools<'a> {
    pub patients: &'a [Patient],
    /// Patients registered before the run date.
    pub returning: &'a [usize],
    /// Patients registered on the run date.
    pub new: Range<usize>,
}

/// Plans `count` encounters admitted on `date` (fewer if the patients
/// available cannot take that many without overlapping), plus the inpatient
/// stays that emergency visits ending `admitted` continue as; sorted by admit
/// time and numbered from `first_number`.
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
        busy: HashMap::new(),
    };
    let mut encounters = Vec::with_capacity(count as usize);
    let mut stays = Vec::new();
    for ordinal in 0..count {
        if let Some((visit, stay)) = planner.encounter(ordinal)? {
            encounters.push(visit);
            stays.extend(stay);
        }
    }
    // Continued stays take ordinals after the day's visits: their own streams.
    for (k, mut stay) in stays.into_iter().enumerate() {
        stay.ordinal = count + k as u32;
        encounters.push(stay);
    }
    // Sorting the keys, then moving each encounter once, beats moving the
    // encounters about in the sort.
    encounters.sort_by_cached_key(|e| (e.admit, e.ordinal));
    // A stay names its visit by number: known only now. Ordinals run from
    // 0 without gaps, so they index a table.
    let mut numbers = vec![0; encounters.len()];
    for (i, e) in encounters.iter_mut().enumerate() {
        e.number = first_number + i as u64;
        if let Some(slot) = numbers.get_mut(e.ordinal as usize) {
            *slot = e.number;
        }
    }
    for e in &mut encounters {
        if let Some(visit) = e.source {
            e.source = numbers.get(visit as usize).copied();
        }
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
    /// Each patient's planned time today, as (start, end) in epoch seconds;
    /// the end is `i64::MAX` after a death.
    busy: HashMap<usize, Vec<(i64, i64)>>,
}

impl<R: Rng + ?Sized> Planner<'_, '_, R> {
    /// One encounter, and the inpatient stay it continues as; `None` when
    /// no patient available can take it without overlapping their other
    /// encounters today.
    #[allow(clippy::type_complexity)]
    fn encounter(&mut self, ordinal: u32) -> Result<Option<(Encounter, Option<Encounter>)>, Error> {
        let mut eligible = false;
        // A patient whose age or sex fits no scenario (possible only with a
        // custom config), or who is busy then, is passed over for another.
        for _ in 0..32 {
            let (patient, returning) = self.pick_patient();
            let Some(scenario) = self.pick_scenario(patient, returning) else {
                continue;
            };
            eligible = true;
            let visit = self.shape(ordinal, patient, returning, scenario);
            let stay = self.continued_stay(&visit);
            let span = |e: &Encounter| {
                let end = if e.disposition == Disposition::Expired {
                    i64::MAX
                } else {
                    e.discharge_secs()
                };
                (e.admit_secs(), end)
            };
            let spans = std::iter::once(span(&visit)).chain(stay.as_ref().map(span));
            let taken = self.busy.entry(patient).or_default();
            let overlaps = spans
                .clone()
                .any(|(a, b)| taken.iter().any(|&(c, d)| a <= d && c <= b));
            if overlaps {
                continue;
            }
            taken.extend(spans);
            return Ok(Some((visit, stay)));
        }
        if eligible {
            Ok(None)
        } else {
            Err(Error::InvalidInput(format!(
                "no scenario in the config is eligible for the patients available on {}",
                self.date
            )))
        }
    }

    /// The inpatient stay an emergency visit ending `admitted` continues
    /// as: the same patient, admitted when the visit ends, to a scenario the
    /// visit's `admits_to` names.
    fn continued_stay(&mut self, visit: &Encounter) -> Option<Encounter> {
        let from = &self.config.scenarios[visit.scenario];
        if visit.disposition != Disposition::Admitted || from.admits_to.is_empty() {
            return None;
        }
        let config = self.config;
        let pick = super::pick_weighted(self.rng, from.admits_to.values().copied())?;
        let name = from.admits_to.keys().nth(pick)?;
        let scenario = config.scenarios.iter().position(|s| &s.name == name)?;
        let s = &config.scenarios[scenario];
        let mut stay = self.outcome(
            visit.ordinal,
            visit.patient,
            visit.returning,
            scenario,
            visit.discharge,
        );
        stay.source = Some(u64::from(visit.ordinal));
        stay.complaint = self.rng.random_range(0..s.chief_complaints.len() as u64) as usize;
        Some(stay)
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
        let mut e = self.outcome(ordinal, patient, returning, scenario, admit);
        e.complaint = self.rng.random_range(0..s.chief_complaints.len() as u64) as usize;
        e
    }

    /// An encounter of `scenario` from `admit`: how long, how it ends, how ill.
    fn outcome(
        &mut self,
        ordinal: u32,
        patient: usize,
        returning: bool,
        scenario: usize,
        admit: NaiveDateTime,
    ) -> Encounter {
        let s: &Scenario = &self.config.scenarios[scenario];
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
            plan_date: self.date,
            ordinal,
            number: 0,
            patient,
            returning,
            scenario,
            complaint: 0,
            admit,
            discharge: admit + Duration::minutes(i64::from(minutes)),
            disposition,
            severity,
            source: None,
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

/// The inpatient stays already under way when a mode's first batch is made,
/// so its first day is not an empty ward: for each of the days before
/// `date` that a stay could still last from, stays are admitted at the
/// configured daily rate of inpatient admissions (direct, and from the
/// emergency department), and kept if they run into `date`. Each gets a new
/// patient, registered on its admission day, numbered from `first_patient`.
/// The stays are numbered from `first_number` in admit-time order; their
/// rows before `date` are never written.
pub fn warm_start(
    config: &Config,
    seed: u64,
    mode: Mode,
    date: BatchDate,
    first_patient: u64,
    first_number: u64,
) -> (Vec<Patient>, Vec<Encounter>) {
    let scenarios = &config.scenarios;
    let total: f64 = scenarios.iter().map(|s| s.weight).sum();
    // Each inpatient scenario's share of a day's encounters: its own weight,
    // plus the emergency visits that continue as it.
    let shares: Vec<f64> = scenarios
        .iter()
        .map(|s| {
            if s.encounter_type != EncounterType::Inpatient {
                return 0.0;
            }
            let continued: f64 = scenarios
                .iter()
                .map(|e| {
                    let admitted = e
                        .dispositions
                        .get(&Disposition::Admitted)
                        .copied()
                        .unwrap_or(0.0);
                    let weights: f64 = e.dispositions.values().sum();
                    let into: f64 = e.admits_to.values().sum();
                    let this = e.admits_to.get(&s.name).copied().unwrap_or(0.0);
                    if weights > 0.0 && into > 0.0 {
                        e.weight * admitted / weights * this / into
                    } else {
                        0.0
                    }
                })
                .sum();
            (s.weight + continued) / total
        })
        .collect();
    let Ok(pick) = WeightedIndex::new(shares.iter().copied()) else {
        return (Vec::new(), Vec::new());
    };
    let longest_days = scenarios
        .iter()
        .filter(|s| s.encounter_type == EncounterType::Inpatient)
        .map(|s| s.duration.max_minutes / 1440 + 1)
        .max()
        .unwrap_or(0);
    let start = date.date().and_time(NaiveTime::MIN);
    let volume = config.volume(mode);
    let mut patients: Vec<Patient> = Vec::new();
    let mut stays = Vec::new();
    for back in (1..=u64::from(longest_days)).rev() {
        // Before the supported range there is nothing to carry over.
        let Some(day) = date.days_before(back) else {
            continue;
        };
        let mut rng = super::DaySeed::new(seed, mode, day).rng(super::Stream::WarmStart);
        let factor = if day.is_weekend() {
            volume.weekend_factor
        } else {
            1.0
        };
        let rate = f64::from(volume.encounters) * factor * shares.iter().sum::<f64>();
        let count = (rate * (1.0 + volume.jitter * super::normal(&mut rng)))
            .round()
            .max(0.0) as u32;
        let pools = Pools {
            patients: &[],
            returning: &[],
            new: 0..0,
        };
        let mut planner = Planner {
            rng: &mut rng,
            config,
            date: day,
            pools: &pools,
            seen_returning: HashSet::new(),
            next_new: 0,
            scenarios: HashMap::new(),
            hours: [None, WeightedIndex::new(INPATIENT_HOURS).ok()],
            dispositions: scenarios
                .iter()
                .map(|s| WeightedIndex::new(s.dispositions.values().copied()).ok())
                .collect(),
            busy: HashMap::new(),
        };
        for ordinal in 0..count {
            let scenario = planner.rng.sample(&pick);
            let s = &scenarios[scenario];
            let admit = admit_time(
                planner.rng,
                day,
                EncounterType::Inpatient,
                planner.hours[1].as_ref(),
            );
            let mut stay = planner.outcome(ordinal, 0, false, scenario, admit);
            stay.complaint = planner.rng.random_range(0..s.chief_complaints.len() as u64) as usize;
            if stay.discharge <= start {
                continue;
            }
            // A patient this scenario admits (a few tries; the config
            // guarantees every adult age fits some scenario, not this one;
            // without one the stay is left out).
            let number = first_patient + patients.len() as u64;
            let patient = (0..16)
                .flat_map(|_| {
                    super::patients::register(planner.rng, &config.population, day, number, 1)
                })
                .find(|p| s.eligible.admits(p.age_on(day.date()), p.sex));
            let Some(patient) = patient else { continue };
            stay.patient = (number - 1) as usize;
            patients.push(patient);
            stays.push(stay);
        }
    }
    stays.sort_by_key(|e| (e.admit, e.plan_date, e.ordinal));
    for (i, stay) in stays.iter_mut().enumerate() {
        stay.number = first_number + i as u64;
    }
    (patients, stays)
}
