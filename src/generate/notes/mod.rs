//! Clinical notes: documents written from phrase banks ([`super::grammar`])
//! around the encounter's own rows, so every number a note states (vital
//! signs, lab values) can be found in vitals.csv or labs.csv for the same
//! encounter.
//!
//! Outpatient visits get a clinic note ([`outpatient`]); ED visits a triage
//! note and an ED provider note ([`emergency`]); admissions an admission
//! note, a progress note each hospital day, a nursing note at the end of
//! each shift and a discharge (or death) summary ([`inpatient`]).

mod emergency;
mod inpatient;
mod outpatient;

use std::cell::OnceCell;

use chrono::{DateTime, Datelike, Timelike};
use foldhash::{HashMap, HashMapExt};
use rand::RngExt;
use rand::rngs::ChaCha8Rng;

use super::course::Course;
use super::grammar::GRAMMAR;
use super::history::History;
use super::names;
use super::vitals::news2;
use crate::config::Scenario;
use crate::model::{AuthorRole, Condition, Conditions, Disposition, EncounterType, NoteType, Sex};
use crate::numfmt;
use crate::rows::{LabRow, NoteRow, VitalRow};
use strum::IntoEnumIterator;

/// What the notes of one encounter are written from.
pub struct Chart<'a> {
    /// The encounter's and the patient's numbers, for the rows' IDs.
    pub encounter: u64,
    pub patient: u64,
    pub scenario: &'a Scenario,
    pub complaint: &'a str,
    pub sex: Sex,
    pub disposition: Disposition,
    pub course: &'a Course,
    pub vitals: &'a [VitalRow],
    pub labs: &'a [LabRow],
    /// The scenario's banks.
    pub banks: &'a Banks,
}

/// Where one scenario's notes find their words, resolved once per batch
/// from the grammar's names (`<scenario>.<part>`, its refinements
/// `<scenario>.<part>.without.<condition>`, `<kind>.<part>`,
/// `<scenario>.exam.<system>`): joining those names and looking them up for
/// every note cost more than writing some of the notes' sentences.
pub struct Banks {
    parts: HashMap<&'static str, Part>,
    /// Per system, the scenario's own examination finding and the tail
    /// added to it.
    exam: HashMap<&'static str, (&'static str, Option<&'static str>)>,
    /// The differential an ED provider note gives.
    ddx: &'static str,
}

/// One part of a scenario's notes (`subjective`, `plan`, ...).
struct Part {
    /// Its wording for patients without a condition, in condition order.
    without: Vec<(Condition, &'static str)>,
    /// The scenario's own bank.
    own: Option<&'static str>,
    /// The encounter type's bank ("" if none).
    general: &'static str,
}

impl Banks {
    pub fn of(scenario: &Scenario) -> Banks {
        let name = scenario.name.as_str();
        let kind = match scenario.encounter_type {
            EncounterType::Outpatient => "outpatient",
            EncounterType::Emergency => "emergency",
            EncounterType::Inpatient => "inpatient",
        };
        let mut parts = HashMap::new();
        // Every name a bank has after the scenario's or the kind's prefix,
        // with and without its refinement: a part is looked up as the name
        // it is asked by.
        let names = GRAMMAR.under(name).iter().chain(GRAMMAR.under(kind));
        let candidates = names.flat_map(|rest| {
            let base = rest.split_once(".without.").map_or(*rest, |(part, _)| part);
            [*rest, base]
        });
        for part in candidates {
            parts.entry(part).or_insert_with(|| {
                let without = if GRAMMAR.is_refined(&[name, ".", part]) {
                    Condition::iter()
                        .filter_map(|c| {
                            let without = [name, ".", part, ".without.", c.as_str()];
                            Some((c, GRAMMAR.find(&without)?))
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Part {
                    without,
                    own: GRAMMAR.find(&[name, ".", part]),
                    general: GRAMMAR.find(&[kind, ".", part]).unwrap_or_default(),
                }
            });
        }
        let exam = GRAMMAR
            .under(name)
            .iter()
            .filter_map(|rest| rest.strip_prefix("exam."))
            .filter_map(|system| {
                let own = GRAMMAR.find(&[name, ".exam.", system])?;
                Some((system, (own, GRAMMAR.find(&["exam.tail.", system]))))
            })
            .collect();
        Banks {
            parts,
            exam,
            ddx: GRAMMAR.find(&["ed.ddx.", name]).unwrap_or("ed.ddx.any"),
        }
    }

    /// The bank for `part` of a patient with `conditions`: the scenario's
    /// wording for patients without one of them, else its own, else its
    /// encounter type's ("" if none).
    fn bank(&self, part: &str, conditions: Conditions) -> &'static str {
        let Some(part) = self.parts.get(part) else {
            return "";
        };
        part.without
            .iter()
            .find(|(c, _)| !conditions.has(*c))
            .map(|(_, bank)| *bank)
            .or(part.own)
            .unwrap_or(part.general)
    }

    /// The scenario's own bank for `part`, if it has one.
    fn own(&self, part: &str) -> Option<&'static str> {
        self.parts.get(part)?.own
    }
}

/// One note to write: when, by whom, and which kind of document.
#[derive(Clone, Copy)]
struct Slot {
    at: i64,
    note_type: NoteType,
    author_role: AuthorRole,
    /// The hospital day of a progress note; the shift of a nursing note
    /// (0 night, 1 day).
    day: i64,
}

/// Writes the notes of one encounter, in the order they are authored, up to
/// (not including) the first authored at or after `until` (`i64::MAX`: all
/// of them). The schedule is drawn first and in full, and a note reads only
/// what was charted and resulted by the time it is authored and draws only
/// after the notes before it, so the notes before a cut are the same as
/// without it, and so is the chart they need: the vitals and labs up to the
/// cut, and the first vital-sign set (the triage note is timed by it).
pub fn compose(mut rng: ChaCha8Rng, chart: &Chart<'_>, until: i64) -> Vec<NoteRow> {
    let schedule = schedule(&mut rng, chart);
    let mut notes = Vec::with_capacity(schedule.len());
    if schedule.first().is_none_or(|first| first.at >= until) {
        return notes;
    }
    // Built when a note first reads it (emergency notes never do).
    let history = OnceCell::new();
    for slot in schedule {
        if slot.at >= until {
            break;
        }
        let voice = Voice {
            chart,
            at: slot.at,
            role: slot.author_role,
            history: &history,
        };
        let (text, grounded) = match slot.note_type {
            NoteType::ClinicNote => (outpatient::clinic_note(&mut rng, &voice), true),
            NoteType::Triage => (emergency::triage_note(&mut rng, &voice), true),
            NoteType::EdDisposition => (emergency::provider_note(&mut rng, &voice), true),
            NoteType::AdmissionNote => (inpatient::admission_note(&mut rng, &voice), true),
            NoteType::Progress => inpatient::progress_note(&mut rng, &voice, slot.day),
            NoteType::NursingNote => (
                inpatient::nursing_note(&mut rng, &voice, slot.day == 1),
                true,
            ),
            NoteType::DischargeSummary => (inpatient::discharge_summary(&mut rng, &voice), true),
        };
        notes.push(NoteRow {
            encounter: chart.encounter,
            patient: chart.patient,
            seq: notes.len() as u32 + 1,
            note_type: slot.note_type,
            author_role: slot.author_role,
            authored_at: slot.at,
            text,
            grounded,
        });
    }
    notes
}

/// When each note of the encounter is written, in order.
fn schedule(rng: &mut ChaCha8Rng, chart: &Chart<'_>) -> Vec<Slot> {
    let (admit, discharge) = (chart.course.admit(), chart.course.discharge());
    let slot = |at, note_type, author_role, day| Slot {
        at,
        note_type,
        author_role,
        day,
    };
    match chart.scenario.encounter_type {
        EncounterType::Outpatient => {
            let author = if rng.random_bool(0.5) {
                AuthorRole::Physician
            } else {
                AuthorRole::NursePractitioner
            };
            vec![slot(discharge, NoteType::ClinicNote, author, 0)]
        }
        EncounterType::Emergency => {
            let first_vitals = chart.vitals.first().map_or(admit, |v| v.measured_at);
            let triage_at = (first_vitals + rng.random_range(1..=5i64) * 60).min(discharge);
            vec![
                slot(triage_at, NoteType::Triage, AuthorRole::TriageNurse, 0),
                slot(
                    discharge,
                    NoteType::EdDisposition,
                    AuthorRole::EmergencyPhysician,
                    0,
                ),
            ]
        }
        EncounterType::Inpatient => {
            let clock = &chart.course.clock;
            let mut slots = vec![slot(
                (admit + rng.random_range(30..=120i64) * 60).min(discharge),
                NoteType::AdmissionNote,
                AuthorRole::Hospitalist,
                0,
            )];
            let mut day: i64 = 1;
            loop {
                // Rounds: late morning, local time.
                let at =
                    clock.days_later_at(admit, day.unsigned_abs(), rng.random_range(600..=720u32));
                if at >= discharge {
                    break;
                }
                slots.push(slot(at, NoteType::Progress, AuthorRole::Hospitalist, day));
                day += 1;
            }
            // Nursing notes close each twelve-hour shift (07:00 and 19:00
            // local), once the patient has been on the unit a few hours.
            for day in 0.. {
                let mut past_discharge = false;
                for (shift, ends) in [(0, 7 * 60), (1, 19 * 60)] {
                    let at = clock.days_later_at(admit, day, ends - rng.random_range(15..=75u32));
                    if at >= discharge {
                        past_discharge = true;
                        break;
                    }
                    if at >= admit + 3 * 3600 {
                        slots.push(slot(
                            at,
                            NoteType::NursingNote,
                            AuthorRole::RegisteredNurse,
                            shift,
                        ));
                    }
                }
                if past_discharge {
                    break;
                }
            }
            slots.push(slot(
                discharge,
                NoteType::DischargeSummary,
                AuthorRole::Hospitalist,
                0,
            ));
            // Stable: a nursing note and a progress note at the same second
            // keep their order above.
            slots.sort_by_key(|s| s.at);
            slots
        }
    }
}

/// What every note of an encounter knows about the patient at the time it
/// is written, and the helpers that turn it into words.
struct Voice<'c, 'a> {
    chart: &'c Chart<'a>,
    at: i64,
    /// Who writes the note, who signs it.
    role: AuthorRole,
    history: &'c OnceCell<History>,
}

impl<'c, 'a> Voice<'c, 'a> {
    /// What the chart knew of the patient when the encounter began (it
    /// draws nothing from the note's stream, so building it late or never
    /// changes no words).
    fn history(&self) -> &'c History {
        let chart = self.chart;
        self.history.get_or_init(|| {
            let year = DateTime::from_timestamp(chart.course.admit(), 0).map_or(2026, |t| t.year());
            History::of(
                chart.patient,
                chart.sex,
                chart.course.age,
                chart.course.conditions,
                year,
            )
        })
    }

    fn scenario(&self) -> &str {
        &self.chart.scenario.name
    }

    /// The scenario's own bank for `part`, else its encounter type's. A
    /// scenario can word a part for patients without one of their chronic
    /// conditions (`<part>.without.<condition>`): heart failure that is new
    /// is not "acute on chronic".
    fn bank(&self, part: &str) -> &'static str {
        self.chart.banks.bank(part, self.chart.course.conditions)
    }

    /// The scenario's own bank for `part` (`<scenario>.<part>`), if it has one.
    fn own(&self, part: &str) -> Option<&'static str> {
        self.chart.banks.own(part)
    }

    fn age(&self) -> String {
        self.chart.course.age.to_string()
    }

    fn complaint(&self) -> String {
        self.chart.complaint.to_lowercase()
    }

    /// The principal diagnosis of the stay: drawn once per encounter (from
    /// a stream of its own), the same in every note of it.
    fn assessment(&self) -> String {
        use rand::SeedableRng;
        let mut rng = ChaCha8Rng::seed_from_u64(self.chart.encounter ^ 0xA55E_55ED_D1A6_0000);
        let cc = self.complaint();
        GRAMMAR.text(&mut rng, self.bank("assessment"), &[("cc", cc.as_str())])
    }

    /// The local wall-clock time of the note, "14:05".
    fn local_time(&self) -> String {
        let mut stamp = self.stamp();
        stamp.drain(..stamp.len().min(11));
        stamp
    }

    /// A local date and time for a signature, "2026-03-05 14:05".
    fn stamp(&self) -> String {
        let mut out = String::with_capacity(16);
        self.stamp_into(&mut out);
        out
    }

    /// Appends [`Voice::stamp`] to `out`.
    fn stamp_into(&self, out: &mut String) {
        if let Some(utc) = DateTime::from_timestamp(self.at, 0) {
            minute_stamp(out, self.chart.course.clock.local(utc.naive_utc()));
        }
    }

    /// [`Voice::stamp`] with the zone's abbreviation, "2026-03-05 14:05 EST",
    /// for a time a reader must not mistake (a death).
    fn zoned_stamp(&self) -> String {
        use chrono::TimeZone;
        let Some(utc) = DateTime::from_timestamp(self.at, 0) else {
            return String::new();
        };
        let zone = self.chart.course.clock.time_zone;
        let mut out = self.stamp();
        out.push(' ');
        out.push_str(
            &zone
                .from_utc_datetime(&utc.naive_utc())
                .format("%Z")
                .to_string(),
        );
        out
    }

    /// "Electronically signed by Maria Okafor, MD at 2026-03-05 14:05.":
    /// staff member `who` of the note's role (several notes of one stay
    /// pass the same `who` to be signed by the same physician).
    fn sign(&self, rng: &mut ChaCha8Rng, who: u64, out: &mut String) {
        let role = self.role;
        let (roster, credential, bank) = match role {
            AuthorRole::RegisteredNurse | AuthorRole::TriageNurse => {
                (160, "credential_rn", "nurse_signature")
            }
            AuthorRole::NursePractitioner => (30, "credential_np", "signature"),
            _ => (90, "credential_md", "signature"),
        };
        // The three values, in one buffer: a signature is written for
        // every note.
        let mut words = String::with_capacity(80);
        push_staff_name(&mut words, role, who % roster);
        words.push_str(", ");
        // A person's credentials are theirs: the same in every note they sign.
        words.push_str(GRAMMAR.own_plain(staff_key(role, who % roster) >> 40, credential));
        let author_end = words.len();
        self.stamp_into(&mut words);
        let stamp_end = words.len();
        push_staff_name(&mut words, AuthorRole::Hospitalist, rng.random_range(0..90));
        out.push_str("\n\n");
        GRAMMAR.say(
            rng,
            bank,
            &[
                ("author", &words[..author_end]),
                ("stamp", &words[author_end..stamp_end]),
                ("colleague", &words[stamp_end..]),
            ],
            out,
        );
    }

    /// The latest vital set taken at or before `at`.
    fn vitals_at(&self, at: i64) -> Option<&'a VitalRow> {
        self.chart.vitals.iter().rev().find(|v| v.measured_at <= at)
    }

    /// The latest result of each test available (resulted) by `at`, in catalog order.
    fn labs_known_at(&self, at: i64) -> Vec<&'a LabRow> {
        let mut latest: Vec<&LabRow> = Vec::new();
        for r in self.chart.labs.iter().filter(|r| r.resulted_at <= at) {
            match latest.iter_mut().find(|l| l.test.key == r.test.key) {
                Some(slot) => *slot = r,
                None => latest.push(r),
            }
        }
        latest.sort_by_key(|r| {
            crate::catalog::CATALOG
                .iter()
                .position(|t| t.key == r.test.key)
        });
        latest
    }

    /// The scenario's own bank for `part` most of the time, else `generic`
    /// (a heart failure patient mostly goes to the heart failure clinic).
    fn say_own_or(
        &self,
        rng: &mut ChaCha8Rng,
        part: &str,
        generic: &str,
        vars: &super::grammar::Vars<'_>,
        out: &mut String,
    ) {
        let bank = match self.own(part) {
            Some(own) if rng.random_bool(0.7) => own,
            _ => generic,
        };
        GRAMMAR.say(rng, bank, vars, out);
    }

    /// Exam lines for the general appearance, heart and lungs that agree
    /// with a vital-sign set: a tachycardic patient is not written up with
    /// a normal rate.
    fn exam_banks(&self, v: Option<&VitalRow>) -> [&'static str; 3] {
        let Some(v) = v else {
            return [
                "exam.General.well",
                "exam.Cardiovascular",
                "exam.Respiratory",
            ];
        };
        let general = if news2_of(v) >= 5 || v.temperature_dc.is_some_and(|t| t >= 385) {
            "exam.General.ill"
        } else {
            "exam.General.well"
        };
        let heart = match v.heart_rate {
            Some(101..) => "exam.Cardiovascular.fast",
            Some(..=54) => "exam.Cardiovascular.slow",
            _ => "exam.Cardiovascular",
        };
        let lungs = if v.respiratory_rate.is_some_and(|r| r >= 24) || v.spo2.is_some_and(|s| s < 91)
        {
            "exam.Respiratory.labored"
        } else {
            "exam.Respiratory"
        };
        [general, heart, lungs]
    }

    /// A short examination, "general; heart; lungs", agreeing with `v`.
    fn brief_exam(&self, rng: &mut ChaCha8Rng, v: Option<&VitalRow>, out: &mut String) {
        let [general, heart, lungs] = self.exam_banks(v);
        GRAMMAR.say(rng, general, &[], out);
        out.push_str("; ");
        self.exam_into(rng, "Cardiovascular", heart, out);
        out.push_str("; ");
        self.exam_into(rng, "Respiratory", lungs, out);
    }

    /// One examination line of a system: the scenario's own finding where it
    /// has one, else the bank the vitals call for.
    fn exam_line(&self, rng: &mut ChaCha8Rng, system: &str, default: &str) -> String {
        let mut line = String::new();
        self.exam_into(rng, system, default, &mut line);
        line
    }

    /// Appends [`Voice::exam_line`] to `out`.
    fn exam_into(&self, rng: &mut ChaCha8Rng, system: &str, default: &str, out: &mut String) {
        let Some(&(own, tail)) = self.chart.banks.exam.get(system) else {
            return GRAMMAR.say(rng, default, &[], out);
        };
        GRAMMAR.say(rng, own, &[], out);
        if let Some(tail) = tail {
            GRAMMAR.say(rng, tail, &[], out);
        }
    }

    /// The differential an ED provider note gives.
    fn ddx(&self) -> &'static str {
        self.chart.banks.ddx
    }
}

/// Between `least` and `most` distinct lines of a plan bank, some with the
/// status a note gives an order ("- ordered", "per protocol").
fn plan_lines(
    rng: &mut ChaCha8Rng,
    bank: &str,
    least: usize,
    most: usize,
    vars: &super::grammar::Vars<'_>,
) -> Vec<String> {
    let mut lines = GRAMMAR.lines(rng, bank, least, most, vars);
    for line in &mut lines {
        if rng.random_bool(0.85) {
            let stop = line.ends_with('.');
            if stop {
                line.pop();
            }
            line.push(' ');
            GRAMMAR.say(rng, "plan.tail", &[], line);
            if stop {
                line.push('.');
            }
        }
    }
    lines
}

/// The number a staff member's own picks (name, credentials) derive from.
fn staff_key(role: AuthorRole, index: u64) -> u64 {
    (index + 1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((role as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
        .rotate_left(23)
}

/// A staff member's name: the same `index` of a role is the same person in
/// every batch.
pub(super) fn staff_name(role: AuthorRole, index: u64) -> String {
    let mut name = String::with_capacity(24);
    push_staff_name(&mut name, role, index);
    name
}

/// Appends [`staff_name`] to `out`.
fn push_staff_name(out: &mut String, role: AuthorRole, index: u64) {
    let mixed = staff_key(role, index);
    let firsts = if mixed & 1 == 0 {
        names::FEMALE_FIRST
    } else {
        names::MALE_FIRST
    };
    let first = firsts[((mixed >> 8) % firsts.len() as u64) as usize];
    let mut last = names::LAST[((mixed >> 32) % names::LAST.len() as u64) as usize];
    if last == first {
        last = names::LAST[((mixed >> 32).wrapping_add(1) % names::LAST.len() as u64) as usize];
    }
    out.push_str(first);
    out.push(' ');
    out.push_str(last);
}

pub(crate) fn sex_word(sex: Sex) -> &'static str {
    match sex {
        Sex::Female => "female",
        Sex::Male => "male",
        Sex::Other | Sex::Unknown => "patient",
    }
}

/// "HR 118, BP 92/51, RR 26, T 38.9 C, SpO2 91%", leaving out what was not measured.
pub fn vitals_phrase(v: &VitalRow) -> String {
    /// Starts the next part of the phrase.
    fn part<'a>(out: &'a mut String, label: &str) -> &'a mut String {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(label);
        out
    }
    let mut out = String::with_capacity(48);
    if let Some(hr) = v.heart_rate {
        numfmt::uint(part(&mut out, "HR "), u64::from(hr));
    }
    if let (Some(s), Some(d)) = (v.systolic_bp, v.diastolic_bp) {
        let out = part(&mut out, "BP ");
        numfmt::uint(out, u64::from(s));
        out.push('/');
        numfmt::uint(out, u64::from(d));
    }
    if let Some(rr) = v.respiratory_rate {
        numfmt::uint(part(&mut out, "RR "), u64::from(rr));
    }
    if let Some(t) = v.temperature_dc {
        let out = part(&mut out, "T ");
        numfmt::tenths(out, t);
        out.push_str(" C");
    }
    if let Some(s) = v.spo2 {
        let out = part(&mut out, "SpO2 ");
        numfmt::uint(out, u64::from(s));
        out.push('%');
    }
    out
}

/// "Lactate 4.2 mmol/L (HH)"; the flag only when abnormal.
pub fn lab_phrase(r: &LabRow) -> String {
    let mut out = String::with_capacity(40);
    out.push_str(r.test.name);
    out.push(' ');
    numfmt::fixed(&mut out, r.value, r.test.decimals);
    out.push(' ');
    out.push_str(r.test.unit);
    if r.flag != "N" {
        out.push_str(" (");
        out.push_str(r.flag);
        out.push(')');
    }
    out
}

fn news2_of(v: &VitalRow) -> u32 {
    // Unmeasured signs count as normal.
    news2(&[
        v.heart_rate.map_or(75.0, f64::from),
        v.systolic_bp.map_or(125.0, f64::from),
        0.0,
        v.respiratory_rate.map_or(16.0, f64::from),
        v.temperature_dc.map_or(36.8, |t| f64::from(t) / 10.0),
        v.spo2.map_or(98.0, f64::from),
    ])
}

/// " Labs: Sodium 139 mmol/L, ..." (empty without results).
fn labs_sentence(rng: &mut ChaCha8Rng, results: &[&LabRow]) -> String {
    if results.is_empty() {
        return String::new();
    }
    let list: Vec<String> = results.iter().map(|r| lab_phrase(r)).collect();
    let lead = [
        "Labs:",
        "Latest labs:",
        "Laboratory results:",
        "Results:",
        "Labs reviewed:",
    ][rng.random_range(0..5usize)];
    format!(" {lead} {}.", list.join(", "))
}

fn disposition_text(d: Disposition) -> &'static str {
    match d {
        Disposition::Home => "discharged home",
        Disposition::HomeWithServices => "discharged home with home health services",
        Disposition::Admitted => "admitted to the hospital",
        Disposition::Transferred => "transferred to another facility",
        Disposition::SkilledNursingFacility => "discharged to a skilled nursing facility",
        Disposition::LeftAgainstMedicalAdvice => "left against medical advice",
        Disposition::Expired => "expired",
    }
}

/// `2026-02-08 14:05`.
fn minute_stamp(out: &mut String, t: chrono::NaiveDateTime) {
    numfmt::date(out, t.date());
    out.push(' ');
    numfmt::padded(out, u64::from(t.hour()), 2);
    out.push(':');
    numfmt::padded(out, u64::from(t.minute()), 2);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bank a note asks for, found by its names as notes did before
    /// [`Banks`] resolved them once per scenario.
    fn bank_by_name(scenario: &Scenario, part: &str, conditions: Conditions) -> &'static str {
        let name = scenario.name.as_str();
        if GRAMMAR.is_refined(&[name, ".", part]) {
            for missing in Condition::iter().filter(|c| !conditions.has(*c)) {
                if let Some(bank) = GRAMMAR.find(&[name, ".", part, ".without.", missing.as_str()])
                {
                    return bank;
                }
            }
        }
        if let Some(own) = GRAMMAR.find(&[name, ".", part]) {
            return own;
        }
        let kind = match scenario.encounter_type {
            EncounterType::Outpatient => "outpatient",
            EncounterType::Emergency => "emergency",
            EncounterType::Inpatient => "inpatient",
        };
        GRAMMAR.find(&[kind, ".", part]).unwrap_or_default()
    }

    #[test]
    fn a_scenarios_banks_are_the_ones_its_names_give() {
        let config = crate::config::Config::load(&crate::config::ConfigSources::default())
            .expect("embedded config");
        let mut condition_sets = vec![Conditions::default()];
        for c in Condition::iter() {
            let mut one = Conditions::default();
            one.insert(c);
            condition_sets.push(one);
            let mut all_but = Conditions::default();
            Condition::iter()
                .filter(|other| *other != c)
                .for_each(|other| all_but.insert(other));
            condition_sets.push(all_but);
        }
        let mut refined = 0;
        for scenario in &config.scenarios {
            let banks = Banks::of(scenario);
            let parts = GRAMMAR
                .under(&scenario.name)
                .iter()
                .chain(GRAMMAR.under("outpatient"))
                .chain(GRAMMAR.under("emergency"))
                .chain(GRAMMAR.under("inpatient"))
                .copied()
                .chain(["no_such_part", "subjective", "plan", "exam"]);
            for part in parts {
                for &conditions in &condition_sets {
                    let expected = bank_by_name(scenario, part, conditions);
                    assert_eq!(
                        banks.bank(part, conditions),
                        expected,
                        "{} {part} {}",
                        scenario.name,
                        conditions.to_list()
                    );
                    refined += usize::from(expected.contains(".without."));
                }
                assert_eq!(
                    banks.own(part),
                    GRAMMAR.find(&[&scenario.name, ".", part]),
                    "{} {part}",
                    scenario.name
                );
            }
            for system in [
                "General",
                "Cardiovascular",
                "Respiratory",
                "Abdomen",
                "Extremities",
            ] {
                let own = GRAMMAR.find(&[&scenario.name, ".exam.", system]);
                assert_eq!(banks.exam.get(system).map(|(own, _)| *own), own);
            }
        }
        // The refinements are exercised, not only the plain banks.
        assert!(refined > 0);
    }

    #[test]
    fn staff_names_are_stable_and_varied() {
        assert_eq!(
            staff_name(AuthorRole::Hospitalist, 3),
            staff_name(AuthorRole::Hospitalist, 3)
        );
        let distinct: std::collections::HashSet<String> = (0..90)
            .map(|i| staff_name(AuthorRole::Hospitalist, i))
            .collect();
        assert!(distinct.len() > 80, "{}", distinct.len());
    }
}
