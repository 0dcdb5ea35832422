//! Patients: registering the day's new patients and moving some returning ones
//! (a new postal code, for downstream slowly-changing-dimension handling).

use chrono::{Datelike, Days, NaiveDate};
use rand::distr::weighted::WeightedIndex;
use rand::seq::IndexedRandom;
use rand::{Rng, RngExt};

use super::names;
use crate::config::Population;
use crate::model::{self, BatchDate, Condition, Conditions, Sex};
pub use crate::rows::Patient;

/// Nobody is seen past this age: a patient registered decades before a
/// backfilled (or far later) date has died by then, and a 209-year-old with
/// vital signs is impossible.
pub const OLDEST_AGE: u32 = 110;

/// Whether `patient` can come back on `date`: registered earlier, alive, and
/// not past [`OLDEST_AGE`] by then.
pub fn can_return_on(patient: &Patient, date: NaiveDate) -> bool {
    patient.registered_date < date
        && patient.deceased_date.is_none()
        && patient.age_on(date) <= OLDEST_AGE
}

/// Registers `count` new patients on `date`, numbered from `first_number`.
pub fn register<R: Rng + ?Sized>(
    rng: &mut R,
    population: &Population,
    date: BatchDate,
    first_number: u64,
    count: u32,
) -> Vec<Patient> {
    people(rng, population, date, first_number, count, |_| date.date())
}

/// The patients a facility already has when its feed starts on `date`:
/// `count` of them, numbered from 1, registered on days up to ten years
/// before, with the population's ages on `date`.
pub fn population<R: Rng + ?Sized>(
    rng: &mut R,
    population: &Population,
    date: BatchDate,
    count: u32,
) -> Vec<Patient> {
    let first = date.date();
    people(rng, population, date, 1, count, |rng| {
        first
            .checked_sub_days(Days::new(rng.random_range(1..=3650u64)))
            .unwrap_or(first)
    })
}

/// `count` people of the population's mix, aged as of `date`, numbered from
/// `first_number`, registered on the day `registered` draws (never after
/// `date`, nor before birth).
fn people<R: Rng + ?Sized>(
    rng: &mut R,
    population: &Population,
    date: BatchDate,
    first_number: u64,
    count: u32,
    registered: impl Fn(&mut R) -> NaiveDate,
) -> Vec<Patient> {
    let sexes: Vec<(Sex, f64)> = population
        .sex_weights
        .iter()
        .map(|(s, w)| (*s, *w))
        .collect();
    // Built once, not per person: a cached index draws exactly as a new one.
    let sex_index = WeightedIndex::new(sexes.iter().map(|(_, w)| *w)).ok();
    let bracket_index = WeightedIndex::new(population.age_brackets.iter().map(|b| b.weight)).ok();
    (0..u64::from(count))
        .map(|i| {
            let number = first_number + i;
            let sex = sex_index
                .as_ref()
                .map_or(Sex::Unknown, |index| sexes[rng.sample(index)].0);
            let bracket = bracket_index
                .as_ref()
                .map_or(&population.age_brackets[0], |index| {
                    &population.age_brackets[rng.sample(index)]
                });
            let age = rng.random_range(bracket.min..=bracket.max);
            let birth_date = birth_date_for_age(rng, date.date(), age);
            let first_pool = match sex {
                Sex::Female => names::FEMALE_FIRST,
                Sex::Male => names::MALE_FIRST,
                Sex::Other | Sex::Unknown => names::NEUTRAL_FIRST,
            };
            let first_name = pick(rng, first_pool).to_string();
            let last_name = pick(rng, names::LAST).to_string();
            let postal_code = postal_code(rng);
            let registered_date = registered(rng).max(birth_date);
            Patient {
                number,
                mrn: model::mrn(number),
                first_name,
                last_name,
                sex,
                birth_date,
                postal_code,
                registered_date,
                deceased_date: None,
                propensity: propensity(rng),
                conditions: conditions(rng, age, sex),
                last_visits: Vec::new(),
                ed_return_at: None,
            }
        })
        .collect()
}

/// How often someone seeks care relative to the average, in hundredths:
/// lognormal with mean 1, so a few patients account for many visits, as in
/// any clinic panel.
fn propensity<R: Rng + ?Sized>(rng: &mut R) -> u16 {
    const SIGMA: f64 = 0.9;
    let x = (SIGMA * super::normal(rng) - SIGMA * SIGMA / 2.0).exp();
    (x * 100.0).round().clamp(5.0, 2_000.0) as u16
}

/// Chronic conditions by age and sex: approximate US adult prevalence
/// (NHANES and CDC figures for hypertension, diabetes, CKD stage 3+, COPD,
/// heart failure and anaemia), rising with age.
fn conditions<R: Rng + ?Sized>(rng: &mut R, age: u32, sex: Sex) -> Conditions {
    let by_age = |bands: [f64; 4]| match age {
        0..45 => bands[0],
        45..65 => bands[1],
        65..80 => bands[2],
        _ => bands[3],
    };
    let female = sex == Sex::Female;
    let prevalence = [
        (Condition::Hypertension, by_age([0.12, 0.40, 0.62, 0.72])),
        (Condition::Diabetes, by_age([0.04, 0.15, 0.25, 0.24])),
        (Condition::Ckd, by_age([0.02, 0.07, 0.20, 0.35])),
        (Condition::Copd, by_age([0.02, 0.07, 0.12, 0.13])),
        (Condition::HeartFailure, by_age([0.005, 0.02, 0.06, 0.12])),
        (
            Condition::Anaemia,
            by_age(if female {
                [0.12, 0.08, 0.12, 0.20]
            } else {
                [0.02, 0.04, 0.10, 0.20]
            }),
        ),
    ];
    let mut set = Conditions::default();
    for (condition, p) in prevalence {
        if rng.random_bool(p) {
            set.insert(condition);
        }
    }
    set
}

/// A birth date that makes the patient exactly `age` on `on`.
fn birth_date_for_age<R: Rng + ?Sized>(rng: &mut R, on: NaiveDate, age: u32) -> NaiveDate {
    let anniversary = on
        .with_year(on.year() - age as i32)
        // 29 February in a year that has none.
        .or_else(|| NaiveDate::from_ymd_opt(on.year() - age as i32, 2, 28))
        .unwrap_or(on);
    // Anywhere in the year before the most recent birthday, keeping the age.
    let back = rng.random_range(0..365u64);
    anniversary
        .checked_sub_days(Days::new(back))
        .unwrap_or(anniversary)
}

fn pick<'a, R: Rng + ?Sized>(rng: &mut R, pool: &'a [&'a str]) -> &'a str {
    pool.choose(rng).copied().unwrap_or("Unknown")
}

pub fn postal_code<R: Rng + ?Sized>(rng: &mut R) -> String {
    let prefix = pick(rng, names::ZIP_PREFIXES);
    let mut code = String::with_capacity(prefix.len() + 2);
    code.push_str(prefix);
    crate::numfmt::padded(&mut code, u64::from(rng.random_range(0..100u32)), 2);
    code
}

/// A different postal code from `current`, for a patient who moved.
pub fn moved_postal_code<R: Rng + ?Sized>(rng: &mut R, current: &str) -> String {
    loop {
        let code = postal_code(rng);
        if code != current {
            return code;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigSources};
    use crate::generate::{DaySeed, Stream};
    use crate::model::Mode;

    #[test]
    fn registered_patients_are_adults_with_consistent_attributes() {
        let config = Config::load(&ConfigSources {
            env: Some(Default::default()),
            ..Default::default()
        })
        .unwrap();
        let date: BatchDate = "2026-02-08".parse().unwrap();
        let mut rng = DaySeed::new(1, Mode::Raw, date).rng(Stream::NewPatients);
        let patients = register(&mut rng, &config.population, date, 100, 2_000);
        assert_eq!(patients.len(), 2_000);
        assert_eq!(patients[0].number, 100);
        for p in &patients {
            let age = p.age_on(date.date());
            assert!((18..=100).contains(&age), "age {age}");
            assert_eq!(p.postal_code.len(), 5);
            assert_eq!(p.registered_date, date.date());
        }
        let female = patients.iter().filter(|p| p.sex == Sex::Female).count();
        assert!((900..1_100).contains(&female), "{female} female of 2000");
    }

    /// Patients live possible lives: nobody comes back before registering,
    /// after dying, or past the oldest age.
    #[test]
    fn only_the_living_under_the_oldest_age_return() {
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let patient = Patient {
            number: 1,
            mrn: "MRN00000001".into(),
            first_name: "Ada".into(),
            last_name: "Byron".into(),
            sex: Sex::Female,
            birth_date: day("1900-06-01"),
            postal_code: "02139".into(),
            registered_date: day("1950-06-01"),
            deceased_date: None,
            propensity: 100,
            conditions: Conditions::default(),
            last_visits: Vec::new(),
            ed_return_at: None,
        };
        assert!(
            !can_return_on(&patient, day("1950-06-01")),
            "registered that day"
        );
        assert!(can_return_on(&patient, day("1950-06-02")));
        assert!(
            can_return_on(&patient, day("2011-05-31")),
            "110 the day before 111"
        );
        assert!(!can_return_on(&patient, day("2011-06-01")), "111");
        let died = Patient {
            deceased_date: Some(day("1960-01-01")),
            ..patient
        };
        assert!(!can_return_on(&died, day("1960-01-02")));
        assert!(!can_return_on(&died, day("1970-01-01")));
    }
}
