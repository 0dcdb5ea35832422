//! An encounter's clinical course: how much of the admission deviation from
//! baseline is present at a given moment. Vitals, labs and notes all read the
//! same course, so a septic patient's heart rate, lactate and progress notes
//! improve (or, for a patient who dies, worsen) together.

use super::encounters::Encounter;
use crate::config::Scenario;
use crate::facility::Facility;
use crate::model::Disposition;

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
}

impl Course {
    pub fn new(encounter: &Encounter, scenario: &Scenario, clock: Facility) -> Course {
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
    /// halving every half-life, or growing slowly for a patient who dies.
    pub fn factor(&self, at: i64) -> f64 {
        let hours = self.hours_since_admit(at);
        if self.worsening {
            let stay = ((self.discharge - self.admit) as f64 / 3600.0).max(1.0);
            1.0 + 0.6 * hours / stay
        } else {
            0.5f64.powf(hours / self.half_life_hours)
        }
    }
}
