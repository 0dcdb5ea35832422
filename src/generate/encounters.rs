//! Encounters: the day's plan of who comes in, for which scenario, when, for
//! how long and how they leave; the inpatient stays an emergency visit
//! continues as; and the stays already running when a mode starts.
//!
//! A patient's life stays possible: nobody is planned while another of their
//! encounters is under way (the day's own, or a stay carried over in the
//! census, whose patients the caller leaves out of the pools), and nobody
//! after an encounter that ends in death.

use foldhash::{HashSet, HashSetExt};
use std::ops::Range;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use rand::distr::weighted::WeightedIndex;
use rand::{Rng, RngExt};
use rand_distr::LogNormal;

use super::alias::AliasTable;
use super::patients::Patient;
use crate::config::{Config, DurationModel, Scenario};
use crate::error::Error;
use crate::model::{BatchDate, Disposition, EncounterType, Mode};

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
    /// Emergency returns due on the run date: a patient, and when (epoch
    /// seconds, inside the day).
    pub returns: &'a [(usize, i64)],
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
    let by_scenario = returning_by_scenario(config, date, pools);
    let mut planner = Planner {
        rng,
        config,
        date,
        pools,
        by_scenario,
        today: Today::new(config, pools.patients.len(), count as usize),
        mix: day_mix(config, date),
        new_by_scenario: new_by_scenario(config, date, pools),
        seen_new: vec![false; pools.new.len()],
        arrivals: Arrivals::new(config, date),
        dispositions: config
            .scenarios
            .iter()
            .map(|s| WeightedIndex::new(s.dispositions.values().copied()).ok())
            .collect(),
    };
    // Each visit continues as one stay at most, and the stays join the
    // visits below: room for both, so the list is never copied to grow
    // (pages never written are never mapped).
    let mut encounters = Vec::with_capacity(2 * count as usize);
    let mut stays = Vec::new();
    // The day's emergency returns first: they take the first ordinals and
    // count towards the day's encounters.
    let returns = pools.returns.iter().take(count as usize);
    let planned = returns.len() as u32;
    for (ordinal, &(patient, at)) in (0..).zip(returns) {
        if let Some((visit, stay)) = planner.emergency_return(ordinal, patient, at) {
            encounters.push(visit);
            stays.extend(stay);
        }
    }
    for ordinal in planned..count {
        if let Some((visit, stay)) = planner.encounter(ordinal) {
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
    // encounters about in the sort; the keys are integers (admit time, then
    // the unique ordinal), which compare faster than dates.
    encounters.sort_by_cached_key(|e| {
        let at = e.admit.and_utc();
        let then = u64::from(at.timestamp_subsec_nanos()) << 32 | u64::from(e.ordinal);
        (at.timestamp(), then)
    });
    // A stay names its visit by number: known only now. Ordinals index a
    // table; it spans the largest, since a visit the patients could not
    // take leaves its ordinal unused (the list is then shorter than the
    // ordinals run).
    let slots = encounters.iter().map(|e| e.ordinal as usize + 1).max();
    let mut numbers = vec![0; slots.unwrap_or(0)];
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
    /// Per scenario: the returning patients it admits, and an index over
    /// them (see [`returning_by_scenario`]).
    by_scenario: Vec<Option<AliasTable>>,
    /// What each patient already has today.
    today: Today,
    // The weighted choices, built once per day rather than per encounter
    // (sampling a cached distribution draws exactly as a new one would).
    /// The day's scenario mix: weights, scaled at weekends by each
    /// scenario's factor.
    mix: Option<WeightedIndex<f64>>,
    /// Per scenario: the new patients it admits, in turn, and how far
    /// through them the day is.
    new_by_scenario: Vec<(Vec<usize>, usize)>,
    /// Which new patients (from `pools.new.start`) have had their visit.
    seen_new: Vec<bool>,
    arrivals: Arrivals,
    /// Dispositions, per scenario.
    dispositions: Vec<Option<WeightedIndex<f64>>>,
}

/// The end of a patient's list of spans in [`Today`].
const NO_SPAN: u32 = u32::MAX;

/// What the day's plan has given each patient so far, in tables indexed by
/// patient: a day of 100,000 encounters asks several times per encounter,
/// and hashing the keys cost more than the rest of a pick.
struct Today {
    /// Each patient's planned time today: the first of their spans in
    /// `spans` ([`NO_SPAN`]: none yet). Most patients have one or none, so
    /// a list per patient would be an allocation per booking.
    first_span: Vec<u32>,
    /// Planned time as (start, end, the patient's next span), in epoch
    /// seconds; the end is `i64::MAX` after a death.
    spans: Vec<(i64, i64, u32)>,
    /// For each scenario with a minimum gap, its mark in `marks`.
    gapped_mark: Vec<Option<usize>>,
    /// Each patient's marks, `stride` bytes of bits: mark 0, picked today
    /// as a returning patient; mark 1 + k, planned today for the k-th
    /// scenario with a minimum gap. One byte per patient for the default
    /// scenarios, so a pick's checks read one place in a table that stays
    /// in the cache.
    marks: Vec<u8>,
    stride: usize,
}

/// The mark of a returning patient picked today (see [`Today::marks`]).
const SEEN: usize = 0;

impl Today {
    /// For `patients` patients and a day of at most `visits` visits (each
    /// books its own time and its stay's: the spans are sized for that
    /// once, rather than copied as they grow).
    fn new(config: &Config, patients: usize, visits: usize) -> Today {
        let mut marks = 1;
        let gapped_mark = config
            .scenarios
            .iter()
            .map(|s| {
                (s.min_gap_days > 0).then(|| {
                    marks += 1;
                    marks - 1
                })
            })
            .collect();
        let stride = usize::div_ceil(marks, 8);
        Today {
            first_span: vec![NO_SPAN; patients],
            spans: Vec::with_capacity(2 * visits),
            gapped_mark,
            marks: vec![0; patients * stride],
            stride,
        }
    }

    fn is_marked(&self, patient: usize, mark: usize) -> bool {
        self.marks
            .get(patient * self.stride + mark / 8)
            .is_some_and(|byte| byte & (1 << (mark % 8)) != 0)
    }

    fn mark(&mut self, patient: usize, mark: usize) {
        if let Some(byte) = self.marks.get_mut(patient * self.stride + mark / 8) {
            *byte |= 1 << (mark % 8);
        }
    }
}

impl<R: Rng + ?Sized> Planner<'_, '_, R> {
    /// One encounter, and the inpatient stay it continues as: a scenario by
    /// the day's mix, then a patient it admits (returning or new); `None`
    /// when no patient available fits it without overlapping their other
    /// encounters today.
    #[allow(clippy::type_complexity)]
    fn encounter(&mut self, ordinal: u32) -> Option<(Encounter, Option<Encounter>)> {
        let scenario = self.rng.sample(self.mix.as_ref()?);
        for _ in 0..32 {
            let Some((patient, returning)) = self.pick_patient(scenario) else {
                continue;
            };
            let visit = self.shape(ordinal, patient, returning, scenario);
            let stay = self.continued_stay(&visit);
            if self.book(&visit, stay.as_ref()) {
                return Some((visit, stay));
            }
        }
        None
    }

    /// A patient's return to the emergency department at `at`, for an
    /// emergency scenario that admits them; `None` when none does or they
    /// are busy then.
    fn emergency_return(
        &mut self,
        ordinal: u32,
        patient: usize,
        at: i64,
    ) -> Option<(Encounter, Option<Encounter>)> {
        let p = &self.pools.patients[patient];
        let age = p.age_on(self.date.date());
        let weights = self.config.scenarios.iter().map(|s| {
            if s.encounter_type == EncounterType::Emergency
                && s.eligible.admits(age, p.sex, p.conditions)
            {
                s.weight
            } else {
                0.0
            }
        });
        let scenario = super::pick_weighted(self.rng, weights)?;
        let admit = DateTime::from_timestamp(at, 0)?.naive_utc();
        let mut visit = self.outcome(ordinal, patient, true, scenario, admit);
        let s = &self.config.scenarios[scenario];
        visit.complaint = self.rng.random_range(0..s.chief_complaints.len() as u64) as usize;
        let stay = self.continued_stay(&visit);
        self.book(&visit, stay.as_ref()).then_some((visit, stay))
    }

    /// Whether `patient` is not booked for `scenario` already today (its
    /// minimum gap, before today, is checked by [`gap_passed`]).
    fn free_today(&self, patient: usize, scenario: usize) -> bool {
        match self.today.gapped_mark.get(scenario) {
            Some(&Some(mark)) => !self.today.is_marked(patient, mark),
            _ => true,
        }
    }

    /// Takes the patient's time for a visit and the stay it continues as,
    /// unless it overlaps what they already have today.
    fn book(&mut self, visit: &Encounter, stay: Option<&Encounter>) -> bool {
        let span = |e: &Encounter| {
            let end = if e.disposition == Disposition::Expired {
                i64::MAX
            } else {
                e.discharge_secs()
            };
            (e.admit_secs(), end)
        };
        let spans = std::iter::once(span(visit)).chain(stay.map(span));
        let today = &mut self.today;
        let Some(&first) = today.first_span.get(visit.patient) else {
            return false;
        };
        let mut at = first;
        while let Some(&(c, d, next)) = today.spans.get(at as usize) {
            if spans.clone().any(|(a, b)| a <= d && c <= b) {
                return false;
            }
            at = next;
        }
        let mut head = first;
        for (a, b) in spans {
            let Ok(index) = u32::try_from(today.spans.len()) else {
                return false;
            };
            today.spans.push((a, b, head));
            head = index;
        }
        today.first_span[visit.patient] = head;
        if let Some(&Some(mark)) = self.today.gapped_mark.get(visit.scenario) {
            self.today.mark(visit.patient, mark);
        }
        true
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

    /// A patient for `scenario`: a returning one (likelier the more the
    /// scenario follows patients up), by propensity, preferring those not
    /// yet seen today; or a new one, each before anyone new comes twice.
    /// Either must be one the scenario admits and whose last visit for it
    /// is far enough back; `None` after a few tries.
    fn pick_patient(&mut self, scenario: usize) -> Option<(usize, bool)> {
        let pools = self.pools;
        let s = &self.config.scenarios[scenario];
        let returning = match (pools.returning.is_empty(), pools.new.is_empty()) {
            (true, true) => return None,
            (false, true) => true,
            (true, false) => false,
            (false, false) => {
                let r = self.config.population.returning_share * s.returning_affinity;
                let share = r / (r + 1.0 - self.config.population.returning_share);
                self.rng.random_bool(share.clamp(0.0, 1.0))
            }
        };
        if returning {
            let admitted = self.by_scenario.get(scenario).and_then(Option::as_ref)?;
            let mut fallback = None;
            for _ in 0..8 {
                let candidate = admitted.sample(self.rng) as usize;
                if !self.free_today(candidate, scenario) {
                    continue;
                }
                if !self.today.is_marked(candidate, SEEN) {
                    self.today.mark(candidate, SEEN);
                    return Some((candidate, true));
                }
                fallback.get_or_insert(candidate);
            }
            fallback.map(|candidate| (candidate, true))
        } else {
            self.pick_new(scenario)
        }
    }

    /// A new patient for `scenario`: the next who has not come yet, of
    /// those it admits and its age mix takes; once all have come, any.
    fn pick_new(&mut self, scenario: usize) -> Option<(usize, bool)> {
        let s = &self.config.scenarios[scenario];
        let (start, today) = (self.pools.new.start, self.date.date());
        let patients = self.pools.patients;
        let len = self.new_by_scenario.get(scenario)?.0.len();
        let taken = |planner: &mut Self, i: usize| {
            s.eligible.age_weights.is_empty()
                || planner
                    .rng
                    .random_bool(s.eligible.age_acceptance(patients[i].age_on(today)))
        };
        let mut k = self.new_by_scenario[scenario].1;
        while k < len && self.seen_new[self.new_by_scenario[scenario].0[k] - start] {
            k += 1;
        }
        self.new_by_scenario[scenario].1 = k;
        let mut checked = 0;
        while k < len && checked < 8 {
            let i = self.new_by_scenario[scenario].0[k];
            if !self.seen_new[i - start] {
                checked += 1;
                if taken(self, i) {
                    self.seen_new[i - start] = true;
                    return Some((i, false));
                }
            }
            k += 1;
        }
        if len == 0 {
            return None;
        }
        for _ in 0..8 {
            let i = self.new_by_scenario[scenario].0[self.rng.random_range(0..len)];
            if self.free_today(i, scenario) && taken(self, i) {
                return Some((i, false));
            }
        }
        None
    }

    fn shape(
        &mut self,
        ordinal: u32,
        patient: usize,
        returning: bool,
        scenario: usize,
    ) -> Encounter {
        let s: &Scenario = &self.config.scenarios[scenario];
        let admit = self.arrivals.admit_time(self.rng, s.encounter_type);
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
        let mut discharge = admit + Duration::minutes(i64::from(minutes));
        if s.encounter_type == EncounterType::Inpatient
            && matches!(
                disposition,
                Disposition::Home
                    | Disposition::HomeWithServices
                    | Disposition::SkilledNursingFacility
            )
        {
            discharge = daytime_discharge(
                self.rng,
                &self.config.facility,
                admit + Duration::minutes(i64::from(s.duration.min_minutes)),
                discharge,
            );
        }
        Encounter {
            plan_date: self.date,
            ordinal,
            number: 0,
            patient,
            returning,
            scenario,
            complaint: 0,
            admit,
            discharge,
            disposition,
            severity,
            source: None,
        }
    }
}

/// For each scenario, the returning patients it admits (age, sex,
/// conditions), and an index over them weighted by how often each seeks
/// care and the scenario's age mix: one pass over the pool a day, so a pick
/// never probes patients a follow-up clinic would not see. Alias tables
/// (see [`AliasTable`]): a pick reads one entry, where a cumulative table's
/// binary search over tens of thousands of patients missed the cache at
/// every step.
fn returning_by_scenario(
    config: &Config,
    date: BatchDate,
    pools: &Pools<'_>,
) -> Vec<Option<AliasTable>> {
    let today = date.date();
    // Room for everyone in every list: pages never written are never
    // mapped, and growing the lists copied them over and over.
    let room = pools.returning.len();
    let mut lists: Vec<Vec<(u32, f64)>> = (0..config.scenarios.len())
        .map(|_| Vec::with_capacity(room))
        .collect();
    for &i in pools.returning {
        let p = &pools.patients[i];
        let Ok(index) = u32::try_from(i) else {
            continue;
        };
        let age = p.age_on(today);
        for (s, admitted) in config.scenarios.iter().zip(&mut lists) {
            if s.eligible.admits(age, p.sex, p.conditions) && gap_passed(p, s, today) {
                let weight = f64::from(p.propensity) * s.eligible.age_acceptance(age);
                if weight > 0.0 {
                    admitted.push((index, weight));
                }
            }
        }
    }
    lists.into_iter().map(AliasTable::new).collect()
}

/// For each scenario, the day's new patients it admits, in registration
/// order, and a cursor.
fn new_by_scenario(
    config: &Config,
    date: BatchDate,
    pools: &Pools<'_>,
) -> Vec<(Vec<usize>, usize)> {
    let today = date.date();
    let room = pools.new.len();
    let mut lists: Vec<(Vec<usize>, usize)> = (0..config.scenarios.len())
        .map(|_| (Vec::with_capacity(room), 0))
        .collect();
    for i in pools.new.clone() {
        let p = &pools.patients[i];
        let age = p.age_on(today);
        for (s, (admitted, _)) in config.scenarios.iter().zip(&mut lists) {
            if s.eligible.admits(age, p.sex, p.conditions) {
                admitted.push(i);
            }
        }
    }
    lists
}

/// Whether `s`'s minimum gap has passed since `p` last came for it.
fn gap_passed(p: &Patient, s: &Scenario, today: NaiveDate) -> bool {
    s.min_gap_days == 0
        || p.last_visits
            .iter()
            .filter(|(name, _)| *name == s.name)
            .all(|(_, last)| (today - *last).num_days() >= i64::from(s.min_gap_days))
}

/// The day's scenario mix: each scenario's weight, scaled by its own
/// factor at weekends (the weekday weights if no scenario is open then).
fn day_mix(config: &Config, date: BatchDate) -> Option<WeightedIndex<f64>> {
    let weights = |weekend: bool| {
        config.scenarios.iter().map(move |s| {
            if weekend {
                s.weight * s.weekend_factor
            } else {
                s.weight
            }
        })
    };
    WeightedIndex::new(weights(date.is_weekend()))
        .or_else(|_| WeightedIndex::new(weights(false)))
        .ok()
}

/// Relative arrival intensity by hour of the local day: emergency
/// departments are busiest from late morning to evening, inpatient admissions
/// (mostly via the ED) peak in the afternoon.
const EMERGENCY_HOURS: [f64; 24] = [
    2.0, 1.6, 1.3, 1.1, 1.0, 1.1, 1.6, 2.6, 3.8, 4.6, 5.0, 5.0, 4.9, 4.8, 4.7, 4.6, 4.6, 4.6, 4.5,
    4.2, 3.8, 3.3, 2.8, 2.3,
];
const INPATIENT_HOURS: [f64; 24] = [
    1.5, 1.2, 1.0, 0.8, 0.7, 0.8, 1.0, 1.5, 2.5, 3.5, 4.0, 4.5, 5.0, 5.2, 5.4, 5.5, 5.5, 5.3, 5.0,
    4.5, 4.0, 3.2, 2.5, 2.0,
];

/// When the day's patients arrive, in UTC, following the facility's local
/// clock: each UTC hour of the batch day weighted by the arrival intensity of
/// the local hour it is, and clinics' booked slots in local opening hours.
struct Arrivals {
    start: NaiveDateTime,
    /// Emergency, inpatient: a UTC hour of the day.
    hours: [Option<WeightedIndex<f64>>; 2],
    /// Clinic check-in slots (UTC) that fall in the day.
    clinic_slots: Vec<NaiveDateTime>,
}

impl Arrivals {
    fn new(config: &Config, date: BatchDate) -> Arrivals {
        let facility = &config.facility;
        let start = date.date().and_time(NaiveTime::MIN);
        let end = start + Duration::days(1);
        let local_hours: Vec<usize> = (0..24)
            .map(|h| facility.local_hour(start + Duration::hours(h)) as usize)
            .collect();
        let weighted =
            |table: &[f64; 24]| WeightedIndex::new(local_hours.iter().map(|&h| table[h])).ok();
        // Booked 15-minute slots: weekday clinics 08:00-17:00, weekend
        // clinics 09:00-13:00, local time; a UTC day meets up to three
        // local days.
        let mut clinic_slots = Vec::new();
        for local in [
            date.date().pred_opt(),
            Some(date.date()),
            date.date().succ_opt(),
        ]
        .into_iter()
        .flatten()
        {
            let (open, slots) = if matches!(local.weekday(), Weekday::Sat | Weekday::Sun) {
                (9 * 60, 16)
            } else {
                (8 * 60, 36)
            };
            clinic_slots.extend(
                (0..slots)
                    .map(|k| facility.utc(local, open + 15 * k))
                    .filter(|t| (start..end).contains(t)),
            );
        }
        Arrivals {
            start,
            hours: [weighted(&EMERGENCY_HOURS), weighted(&INPATIENT_HOURS)],
            clinic_slots,
        }
    }

    fn admit_time<R: Rng + ?Sized>(&self, rng: &mut R, kind: EncounterType) -> NaiveDateTime {
        let last = self.start + Duration::minutes(1439);
        match kind {
            // Patients check in up to 10 minutes late.
            EncounterType::Outpatient if !self.clinic_slots.is_empty() => {
                let slot = self.clinic_slots[rng.random_range(0..self.clinic_slots.len())];
                (slot + Duration::minutes(rng.random_range(0..=10i64))).min(last)
            }
            EncounterType::Outpatient => self.start + Duration::hours(12),
            EncounterType::Emergency | EncounterType::Inpatient => {
                let table = usize::from(kind == EncounterType::Inpatient);
                let hour = self.hours[table]
                    .as_ref()
                    .map_or(12, |index| rng.sample(index)) as i64;
                self.start + Duration::minutes(hour * 60 + rng.random_range(0..60i64))
            }
        }
    }
}

/// A planned discharge from the ward happens in the day, after rounds and
/// the paperwork (local time, around 13:30, between 09:00 and 20:00), on the
/// day the stay would otherwise end, or the next if that is too soon.
/// Deaths, transfers and self-discharges keep the clock they fall on.
fn daytime_discharge<R: Rng + ?Sized>(
    rng: &mut R,
    facility: &crate::facility::Facility,
    earliest: NaiveDateTime,
    discharge: NaiveDateTime,
) -> NaiveDateTime {
    let minute = (13.5 * 60.0 + 110.0 * super::normal(rng)).clamp(9.0 * 60.0, 20.0 * 60.0) as u32;
    let day = facility.local(discharge).date();
    let at = facility.utc(day, minute);
    if at >= earliest {
        return at;
    }
    day.succ_opt()
        .map_or(discharge, |next| facility.utc(next, minute))
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
/// emergency department), and kept if they run into `date`. Each is a
/// patient of `population` the scenario admits, no patient in two stays.
/// The stays are numbered from `first_number` in admit-time order; their
/// rows before `date` are never written.
pub fn warm_start(
    config: &Config,
    seed: u64,
    mode: Mode,
    date: BatchDate,
    population: &[Patient],
    first_number: u64,
) -> Vec<Encounter> {
    let scenarios = &config.scenarios;
    let total: f64 = scenarios.iter().map(|s| s.weight).sum();
    // Each inpatient scenario's share of a weekday's encounters (at weekends,
    // each scenario's weight scaled by its own factor): its own weight, plus
    // the emergency visits that continue as it.
    let shares = |weekend: bool| -> Vec<f64> {
        let weight = |s: &Scenario| {
            if weekend {
                s.weight * s.weekend_factor
            } else {
                s.weight
            }
        };
        scenarios
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
                            weight(e) * admitted / weights * this / into
                        } else {
                            0.0
                        }
                    })
                    .sum();
                (weight(s) + continued) / total
            })
            .collect()
    };
    let shares = [shares(false), shares(true)];
    let (Ok(on_weekdays), Ok(at_weekends)) = (
        WeightedIndex::new(shares[0].iter().copied()),
        WeightedIndex::new(shares[1].iter().copied()),
    ) else {
        return Vec::new();
    };
    let longest_days = scenarios
        .iter()
        .filter(|s| s.encounter_type == EncounterType::Inpatient)
        .map(|s| s.duration.max_minutes / 1440 + 1)
        .max()
        .unwrap_or(0);
    let start = date.date().and_time(NaiveTime::MIN);
    let volume = config.volume(mode);
    if population.is_empty() {
        return Vec::new();
    }
    let mut in_stay = HashSet::new();
    let mut stays = Vec::new();
    for back in (1..=u64::from(longest_days)).rev() {
        // Before the supported range there is nothing to carry over.
        let Some(day) = date.days_before(back) else {
            continue;
        };
        let mut rng = super::DaySeed::new(seed, mode, day).rng(super::Stream::WarmStart);
        let (shares, pick) = if day.is_weekend() {
            (&shares[1], &at_weekends)
        } else {
            (&shares[0], &on_weekdays)
        };
        let rate = f64::from(volume.encounters) * shares.iter().sum::<f64>();
        let count = (rate * (1.0 + volume.jitter * super::normal(&mut rng)))
            .round()
            .max(0.0) as u32;
        let pools = Pools {
            patients: &[],
            returning: &[],
            new: 0..0,
            returns: &[],
        };
        let mut planner = Planner {
            rng: &mut rng,
            config,
            date: day,
            pools: &pools,
            by_scenario: Vec::new(),
            today: Today::new(config, 0, 0),
            mix: None,
            new_by_scenario: Vec::new(),
            seen_new: Vec::new(),
            arrivals: Arrivals::new(config, day),
            dispositions: scenarios
                .iter()
                .map(|s| WeightedIndex::new(s.dispositions.values().copied()).ok())
                .collect(),
        };
        for ordinal in 0..count {
            let scenario = planner.rng.sample(pick);
            let s = &scenarios[scenario];
            let admit = planner
                .arrivals
                .admit_time(planner.rng, EncounterType::Inpatient);
            let mut stay = planner.outcome(ordinal, 0, false, scenario, admit);
            stay.complaint = planner.rng.random_range(0..s.chief_complaints.len() as u64) as usize;
            if stay.discharge <= start {
                continue;
            }
            // A patient of the population this scenario admits, registered
            // by then and in no other stay (a few tries; without one the stay
            // is left out).
            let patient = (0..16)
                .map(|_| planner.rng.random_range(0..population.len()))
                .find(|&i| {
                    let p = &population[i];
                    p.registered_date <= day.date()
                        && s.eligible.admits(p.age_on(day.date()), p.sex, p.conditions)
                        && !in_stay.contains(&i)
                });
            let Some(patient) = patient else { continue };
            in_stay.insert(patient);
            stay.patient = patient;
            stays.push(stay);
        }
    }
    stays.sort_by_key(|e| (e.admit, e.plan_date, e.ordinal));
    for (i, stay) in stays.iter_mut().enumerate() {
        stay.number = first_number + i as u64;
    }
    stays
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config with more scenarios with a minimum gap than a byte has
    /// bits gives each patient two bytes of marks, kept apart.
    #[test]
    fn marks_past_one_byte_stay_with_their_patient_and_mark() {
        let mut today = Today {
            first_span: Vec::new(),
            spans: Vec::new(),
            gapped_mark: Vec::new(),
            marks: vec![0; 3 * 2],
            stride: 2,
        };
        today.mark(1, 9);
        today.mark(2, SEEN);
        assert!(today.is_marked(1, 9));
        assert!(!today.is_marked(1, 8) && !today.is_marked(1, 1) && !today.is_marked(1, SEEN));
        assert!(!today.is_marked(0, 9) && !today.is_marked(2, 9));
        assert!(today.is_marked(2, SEEN) && !today.is_marked(0, SEEN));
        // Beyond the table: never marked, and marking it changes nothing.
        today.mark(3, 0);
        assert!(!today.is_marked(3, 0));
        assert_eq!(today.marks, [0, 0, 0, 2, 1, 0]);
    }
}
