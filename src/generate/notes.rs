//! Clinical notes: varied templates filled from the encounter's own rows, so
//! every number a note states (vital signs, lab values) can be found in
//! vitals.csv or labs.csv for the same encounter.
//!
//! Outpatient visits get a clinic note; ED visits a triage note and an ED
//! disposition note; admissions an admission note, a progress note each
//! hospital day and a discharge summary.

use chrono::DateTime;
use rand::RngExt;
use rand::rngs::ChaCha8Rng;
use rand::seq::IndexedRandom;

use super::course::Course;
use super::history;
use super::vitals::news2;
use crate::config::Scenario;
use crate::model::{AuthorRole, Disposition, EncounterType, NoteType, Sex};
use crate::numfmt;
use crate::rows::{LabRow, NoteRow, VitalRow};

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
}

/// Writes the notes of one encounter, in the order they are authored, up to
/// (not including) the first authored at or after `until` (`i64::MAX`: all
/// of them). A note reads only what was charted and resulted by the time it
/// is authored, and draws only after the notes before it, so the notes before
/// a cut are the same as without it, and so is the chart they need: the
/// vitals and labs up to the cut, and the first vital-sign set (the triage
/// note is timed by it).
pub fn compose(mut rng: ChaCha8Rng, chart: &Chart<'_>, until: i64) -> Vec<NoteRow> {
    let mut notes = Vec::new();
    // Adds a note unless it is past the cut; false once it is.
    let mut add = |rng: &mut ChaCha8Rng,
                   note_type,
                   author_role,
                   authored_at: i64,
                   text: &dyn Fn(&mut ChaCha8Rng) -> (String, bool)| {
        if authored_at >= until {
            return false;
        }
        let (text, grounded) = text(rng);
        notes.push(NoteRow {
            encounter: chart.encounter,
            patient: chart.patient,
            seq: notes.len() as u32 + 1,
            note_type,
            author_role,
            authored_at,
            text,
            grounded,
        });
        true
    };
    // Every note but a copied-forward progress note states the latest values.
    let fresh = |text: String| (text, true);
    let (admit, discharge) = (chart.course.admit(), chart.course.discharge());
    match chart.scenario.encounter_type {
        EncounterType::Outpatient => {
            let author = *[AuthorRole::Physician, AuthorRole::NursePractitioner]
                .choose(&mut rng)
                .unwrap_or(&AuthorRole::Physician);
            add(&mut rng, NoteType::ClinicNote, author, discharge, &|rng| {
                fresh(clinic_note(rng, chart))
            });
        }
        EncounterType::Emergency => {
            let first_vitals = chart.vitals.first().map_or(admit, |v| v.measured_at);
            let triage_at = (first_vitals + rng.random_range(1..=5i64) * 60).min(discharge);
            if add(
                &mut rng,
                NoteType::Triage,
                AuthorRole::TriageNurse,
                triage_at,
                &|rng| fresh(triage_note(rng, chart)),
            ) {
                add(
                    &mut rng,
                    NoteType::EdDisposition,
                    AuthorRole::EmergencyPhysician,
                    discharge,
                    &|rng| fresh(ed_disposition_note(rng, chart)),
                );
            }
        }
        EncounterType::Inpatient => {
            let at = (admit + rng.random_range(30..=120i64) * 60).min(discharge);
            if !add(
                &mut rng,
                NoteType::AdmissionNote,
                AuthorRole::Hospitalist,
                at,
                &|rng| fresh(admission_note(rng, chart, at)),
            ) {
                return notes;
            }
            let mut day: i64 = 1;
            loop {
                // Rounds: late morning, local time.
                let at = chart.course.clock.days_later_at(
                    admit,
                    day.unsigned_abs(),
                    rng.random_range(600..=720u32),
                );
                if at >= discharge {
                    break;
                }
                if !add(
                    &mut rng,
                    NoteType::Progress,
                    AuthorRole::Hospitalist,
                    at,
                    &|rng| progress_note(rng, chart, at, day),
                ) {
                    return notes;
                }
                day += 1;
            }
            add(
                &mut rng,
                NoteType::DischargeSummary,
                AuthorRole::Hospitalist,
                discharge,
                &|rng| fresh(discharge_summary(rng, chart)),
            );
        }
    }
    notes
}

fn sex_word(sex: Sex) -> &'static str {
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

/// The latest vital set taken at or before `at`.
fn vitals_at<'a>(chart: &Chart<'a>, at: i64) -> Option<&'a VitalRow> {
    chart.vitals.iter().rev().find(|v| v.measured_at <= at)
}

/// The latest result of each test available (resulted) by `at`, in catalog order.
fn labs_known_at<'a>(chart: &'a Chart<'_>, at: i64) -> Vec<&'a LabRow> {
    let mut latest: Vec<&LabRow> = Vec::new();
    for r in chart.labs.iter().filter(|r| r.resulted_at <= at) {
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

fn labs_sentence(rng: &mut ChaCha8Rng, results: &[&LabRow]) -> String {
    if results.is_empty() {
        return String::new();
    }
    let list: Vec<String> = results.iter().map(|r| lab_phrase(r)).collect();
    let lead = ["Labs:", "Latest labs:", "Laboratory results:"]
        .choose(rng)
        .copied()
        .unwrap_or("Labs:");
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

/// `2026-02-08 14:05 UTC`.
fn date_time(at: i64) -> String {
    use chrono::{Datelike, Timelike};
    let Some(t) = DateTime::from_timestamp(at, 0) else {
        return String::new();
    };
    let mut out = String::with_capacity(20);
    numfmt::padded(&mut out, u64::try_from(t.year()).unwrap_or(0), 4);
    for (separator, value) in [
        ('-', t.month()),
        ('-', t.day()),
        (' ', t.hour()),
        (':', t.minute()),
    ] {
        out.push(separator);
        numfmt::padded(&mut out, u64::from(value), 2);
    }
    out.push_str(" UTC");
    out
}

fn clinic_note(rng: &mut ChaCha8Rng, chart: &Chart<'_>) -> String {
    let vitals = chart.vitals.first().map(vitals_phrase).unwrap_or_default();
    let dept = &chart.scenario.department;
    let cc = chart.complaint.to_lowercase();
    let opening = match rng.random_range(0..3u32) {
        0 => format!(
            "{}-year-old {} seen in {dept} for {cc}.",
            chart.course.age,
            sex_word(chart.sex)
        ),
        1 => format!(
            "{dept} visit: {cc}. {} y/o {}.",
            chart.course.age,
            sex_word(chart.sex)
        ),
        _ => format!(
            "Patient ({}, {}) presents to {dept} for {cc}.",
            chart.course.age,
            sex_word(chart.sex)
        ),
    };
    let discharge = chart.course.discharge();
    let known = labs_known_at(chart, discharge);
    let pending: Vec<&str> = {
        let mut names: Vec<&str> = chart
            .labs
            .iter()
            .filter(|r| r.resulted_at > discharge)
            .map(|r| r.test.name)
            .collect();
        names.dedup();
        names
    };
    let labs = if !known.is_empty() {
        labs_sentence(rng, &known)
    } else if !pending.is_empty() {
        format!(
            " Labs drawn today ({}); results to follow.",
            pending.join(", ")
        )
    } else {
        String::new()
    };
    let plan = [
        "Continue current management.",
        "No changes to medications today.",
        "Lifestyle counselling given.",
    ]
    .choose(rng)
    .copied()
    .unwrap_or("");
    let months = [3, 6, 12].choose(rng).copied().unwrap_or(6);
    format!("{opening} Vitals: {vitals}.{labs} {plan} Follow-up in {months} months.")
}

fn triage_note(rng: &mut ChaCha8Rng, chart: &Chart<'_>) -> String {
    let Some(first) = chart.vitals.first() else {
        return format!("Arrived with {}.", chart.complaint.to_lowercase());
    };
    let vitals = vitals_phrase(first);
    let score = news2_of(first);
    let esi = triage_level(rng, chart, first, score);
    let cc = chart.complaint.to_lowercase();
    let sex = sex_word(chart.sex);
    match rng.random_range(0..3u32) {
        0 => format!(
            "{}-year-old {sex} presenting with {cc}. Triage vitals: {vitals}. NEWS2 {score}, ESI {esi}.",
            chart.course.age
        ),
        1 => format!(
            "Pt is a {} y/o {sex} arriving with {cc}. Initial vitals {vitals}. ESI level {esi} (NEWS2 {score}).",
            chart.course.age
        ),
        _ => format!(
            "Chief complaint: {cc}. Age {}, {sex}. Vitals at triage: {vitals}. Assigned ESI {esi}; NEWS2 {score}.",
            chart.course.age
        ),
    }
}

/// The Emergency Severity Index a triage nurse gives: the complaint's own
/// level (chest pain is ESI 2 by protocol, a sprain 4), raised for a
/// patient whose first vitals look dangerous (NEWS2, shock), and, as between
/// nurses, a level off either way now and then.
fn triage_level(rng: &mut ChaCha8Rng, chart: &Chart<'_>, first: &VitalRow, score: u32) -> u32 {
    let by_vitals = match score {
        7.. => 2,
        5..=6 => 2,
        1..=4 => 3,
        0 => 4,
    };
    let mut level = chart
        .scenario
        .triage_esi
        .map_or(by_vitals, |protocol| u32::from(protocol).min(by_vitals));
    let shocked = first.systolic_bp.is_some_and(|s| s < 80) || score >= 9;
    if shocked && rng.random_bool(0.6) {
        level = 1;
    } else if level == 4 && score == 0 && rng.random_bool(0.3) {
        level = 5;
    } else if rng.random_bool(0.12) {
        level = if rng.random_bool(0.5) {
            level + 1
        } else {
            level.saturating_sub(1)
        };
    }
    level.clamp(1, 5)
}

fn ed_disposition_note(rng: &mut ChaCha8Rng, chart: &Chart<'_>) -> String {
    let discharge = chart.course.discharge();
    let last = vitals_at(chart, discharge)
        .map(vitals_phrase)
        .unwrap_or_default();
    let labs = labs_sentence(rng, &labs_known_at(chart, discharge));
    let cc = chart.complaint.to_lowercase();
    let opening = match rng.random_range(0..2u32) {
        0 => format!("Evaluated in the emergency department for {cc}."),
        _ => format!("ED course for {cc}."),
    };
    format!(
        "{opening}{labs} Last vitals: {last}. Disposition: {}.",
        disposition_text(chart.disposition)
    )
}

fn admission_note(rng: &mut ChaCha8Rng, chart: &Chart<'_>, at: i64) -> String {
    let arrival = chart.vitals.first().map(vitals_phrase).unwrap_or_default();
    let labs = labs_sentence(rng, &labs_known_at(chart, at));
    let monitoring = match chart.scenario.vitals.interval_minutes {
        0..=60 => "close monitoring with hourly vital signs",
        _ => "vital signs every 4 hours and daily labs",
    };
    let mut note = format!(
        "Admission to {} for {monitoring}.\n\n",
        chart.scenario.department
    );
    note.push_str(&history::admission(
        rng,
        &chart.scenario.name,
        chart.complaint,
        chart.course.age,
        chart.sex,
        chart.patient,
        chart.course.conditions,
        &format!("Vitals on arrival: {arrival}."),
        &labs,
    ));
    note
}

/// Share of progress notes (after the first) that copy forward the day
/// before's vital signs instead of the latest, as busy charting does.
const COPY_FORWARD_SHARE: f64 = 0.055;

/// A progress note, and whether it states the latest values (false: it
/// copied the vitals of the day before forward).
fn progress_note(rng: &mut ChaCha8Rng, chart: &Chart<'_>, at: i64, day: i64) -> (String, bool) {
    // The physician's impression: what the vitals show against the day
    // before, read with a clinician's noise, not what the outcome will be.
    let now = vitals_at(chart, at).map_or(0, news2_of);
    let before = vitals_at(chart, at - 86_400)
        .or(chart.vitals.first())
        .map_or(0, news2_of);
    let impression = f64::from(now) - f64::from(before) + 1.2 * super::normal(rng);
    let status = if impression >= 1.5 {
        [
            "Condition deteriorating despite treatment.",
            "Clinically worse since yesterday.",
        ]
    } else if impression <= -1.5 {
        ["Improving.", "Clinically much improved."]
    } else {
        [
            "Slowly improving.",
            "Some improvement, not yet at baseline.",
        ]
    }
    .choose(rng)
    .copied()
    .unwrap_or("");
    let copied = day > 1 && rng.random_bool(COPY_FORWARD_SHARE);
    let shown = if copied {
        vitals_at(chart, at - 86_400)
    } else {
        vitals_at(chart, at)
    };
    let vitals = shown.map(vitals_phrase).unwrap_or_default();
    let since = at - 30 * 3600;
    let recent: Vec<&LabRow> = labs_known_at(chart, at)
        .into_iter()
        .filter(|r| r.collected_at >= since)
        .collect();
    let labs = labs_sentence(rng, &recent);
    let text = format!("Hospital day {}. {status} Vitals: {vitals}.{labs}", day + 1);
    (text, !copied)
}

fn discharge_summary(rng: &mut ChaCha8Rng, chart: &Chart<'_>) -> String {
    let (admit, discharge) = (chart.course.admit(), chart.course.discharge());
    let days = (discharge - admit) as f64 / 86_400.0;
    let last = vitals_at(chart, discharge)
        .map(vitals_phrase)
        .unwrap_or_default();
    // The worst value of each test over the stay.
    let mut peaks: Vec<&LabRow> = Vec::new();
    for r in chart.labs.iter().filter(|r| r.resulted_at <= discharge) {
        let worse = |a: &LabRow, b: &LabRow| {
            let (low, high) = a.reference;
            let distance = |x: f64| {
                if x < low {
                    low - x
                } else if x > high {
                    x - high
                } else {
                    0.0
                }
            };
            distance(a.value) > distance(b.value)
        };
        match peaks.iter_mut().find(|p| p.test.key == r.test.key) {
            Some(slot) if worse(r, slot) => *slot = r,
            Some(_) => {}
            None => peaks.push(r),
        }
    }
    let abnormal: Vec<String> = peaks
        .iter()
        .filter(|r| r.flag != "N")
        .map(|r| lab_phrase(r))
        .collect();
    let course = if abnormal.is_empty() {
        String::new()
    } else {
        format!(" Most abnormal results: {}.", abnormal.join(", "))
    };
    let dept = &chart.scenario.department;
    if chart.disposition == Disposition::Expired {
        return history::death(
            rng,
            &chart.scenario.name,
            chart.complaint,
            chart.course.conditions,
            days,
            &format!("{} in {dept}", date_time(discharge)),
            &course,
            &format!("Final vitals: {last}."),
        );
    }
    history::discharge(
        rng,
        &chart.scenario.name,
        chart.complaint,
        chart.patient,
        chart.course.conditions,
        days,
        disposition_text(chart.disposition),
        &course,
        &format!("Vitals at discharge: {last}."),
    )
}
