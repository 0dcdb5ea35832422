//! An encounter's clinical course: who the patient is (age and chronic
//! conditions set their baselines), how much of the admission deviation from
//! baseline is present at a given moment, and, for a patient who dies, the
//! shock that comes before death. Vitals, labs and notes all read the same
//! course, so a septic patient's heart rate, lactate and progress notes
//! improve (or worsen) together.

use super::encounters::Encounter;
use crate::config::Scenario;
use crate::facility::Facility;
use crate::model::{Conditions, Disposition};
use chrono::NaiveDate;

#[derive(Clone, Copy, Debug)]
pub struct Course {
    admit: i64,
    discharge: i64,
    half_life_hours: f64,
    worsening: bool,
    /// Admitted, transferred or died: the patients whose tests (troponin in
    /// chest pain, say) show what sent them on.
    pub escalated: bool,
    /// How ill this patient is relative to the scenario's typical case.
    pub severity: f64,
    /// The facility's clock, which the ward's routines (early-morning
    /// bloods, late-morning rounds) follow.
    pub clock: Facility,
    /// The patient's age on admission (so every note of a stay, whichever
    /// day it is written, says the same), and their chronic conditions.
    pub age: u32,
    pub conditions: Conditions,
}

impl Course {
    /// The course of `encounter` for a patient born on `birth_date`.
    pub fn new(
        encounter: &Encounter,
        scenario: &Scenario,
        clock: Facility,
        birth_date: NaiveDate,
        conditions: Conditions,
    ) -> Course {
        Course {
            admit: encounter.admit.and_utc().timestamp(),
            discharge: encounter.discharge.and_utc().timestamp(),
            half_life_hours: scenario.vitals.trend_half_life_hours,
            worsening: encounter.disposition == Disposition::Expired,
            escalated: matches!(
                encounter.disposition,
                Disposition::Admitted | Disposition::Transferred | Disposition::Expired
            ),
            severity: encounter.severity,
            clock,
            age: crate::rows::age(birth_date, encounter.admit.date()),
            conditions,
        }
    }

    pub fn admit(&self) -> i64 {
        self.admit
    }

    pub fn discharge(&self) -> i64 {
        self.discharge
    }

    pub fn hours_since_admit(&self, at: i64) -> f64 {
        (at - self.admit) as f64 / 3600.0
    }

    /// The share of the admission deviation present at `at`: 1 on arrival,
    /// halving every half-life; for a patient who dies it does not fade (the
    /// shock before death comes on top, see [`Course::shock`]).
    pub fn factor(&self, at: i64) -> f64 {
        if self.worsening {
            1.0
        } else {
            0.5f64.powf(self.hours_since_admit(at) / self.half_life_hours)
        }
    }

    /// How far into the shock before death the patient is at `at`: 0 for
    /// a patient who lives and for the first part of a fatal stay, rising
    /// to 1 at death over its last 40% (at least the last 6 hours): pressure
    /// falls, lactate and creatinine rise, the fever gives way.
    pub fn shock(&self, at: i64) -> f64 {
        if !self.worsening {
            return 0.0;
        }
        let stay = (self.discharge - self.admit).max(1) as f64;
        let onset = (stay * 0.4).max(6.0 * 3600.0).min(stay);
        let into = (at - (self.discharge - onset as i64)) as f64 / onset;
        into.clamp(0.0, 1.0)
    }
}
