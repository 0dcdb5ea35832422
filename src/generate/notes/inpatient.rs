//! The documents of a hospital stay: the admission history and physical,
//! daily progress notes, nursing shift notes, and the discharge (or death)
//! summary.

use rand::RngExt;
use rand::rngs::ChaCha8Rng;

use super::{
    Voice, disposition_text, lab_phrase, labs_sentence, news2_of, plan_lines, vitals_phrase,
};
use crate::generate::grammar::GRAMMAR;
use crate::generate::history::{lower_first, sentence_list, social};
use crate::model::{Disposition, Sex};
use crate::rows::LabRow;

/// The attending of a stay signs its admission note, progress notes and
/// summary; `who` for [`Voice::sign`].
fn attending(voice: &Voice<'_, '_>) -> u64 {
    voice.chart.encounter.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40
}

fn who_word(sex: Sex) -> &'static str {
    match sex {
        Sex::Female => "woman",
        Sex::Male => "man",
        Sex::Other | Sex::Unknown => "patient",
    }
}

/// The systems an admission examination covers, in the order written.
const SYSTEMS: [&str; 8] = [
    "General",
    "HEENT",
    "Cardiovascular",
    "Respiratory",
    "Abdomen",
    "Extremities",
    "Neurological",
    "Skin",
];

pub(super) fn admission_note(rng: &mut ChaCha8Rng, voice: &Voice<'_, '_>) -> String {
    let chart = voice.chart;
    let at = voice.at;
    let (age, cc) = (voice.age(), voice.complaint());
    let pmh = voice.history().phrase(rng);
    let symptoms = sentence_list(&GRAMMAR.lines(rng, voice.bank("symptom"), 2, 4, &[]));
    let onset = GRAMMAR.text(rng, voice.bank("onset"), &[]);
    let monitoring = GRAMMAR.text(
        rng,
        match chart.scenario.vitals.interval_minutes {
            0..=60 => "adm.monitoring.icu",
            _ => "adm.monitoring.ward",
        },
        &[],
    );
    let dept = chart.scenario.department.as_str();
    let time = voice.local_time();
    let vars = [
        ("age", age.as_str()),
        ("who", who_word(chart.sex)),
        ("cc", cc.as_str()),
        ("pmh", pmh.as_str()),
        ("symptoms", symptoms.as_str()),
        ("onset", onset.as_str()),
        ("dept", dept),
        ("monitoring", monitoring.as_str()),
        ("time", time.as_str()),
    ];
    let mut out = String::with_capacity(4_096);
    GRAMMAR.say(rng, "adm.header", &vars, &mut out);
    out.push_str("\n\nHPI: ");
    GRAMMAR.say(rng, "adm.hpi", &vars, &mut out);

    let history = voice.history();
    out.push_str("\n\nPast medical history: ");
    if history.problems.is_empty() {
        out.push_str("none.");
    } else {
        out.push_str(&history.problems.join("; "));
        out.push('.');
    }
    out.push_str("\nPast surgical history: ");
    if history.surgeries.is_empty() {
        GRAMMAR.say(rng, "surgery.none", &[], &mut out);
    } else {
        for (i, surgery) in history.surgeries.iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            if rng.random_bool(0.5) {
                out.push_str("s/p ");
            }
            out.push_str(surgery);
        }
    }
    out.push_str(".\nMedications: ");
    if history.medications.is_empty() {
        GRAMMAR.say(rng, "meds.none", &[], &mut out);
        out.push('.');
    } else {
        out.push_str(&history.medication_list());
        out.push('.');
    }
    out.push('\n');
    out.push_str(&social(rng, chart.patient, chart.course.age));

    out.push_str("\n\nReview of systems: positive for ");
    let positives = GRAMMAR.lines(rng, voice.bank("positive"), 1, 5, &[]);
    out.push_str(&sentence_list(&positives));
    out.push_str("; negative for ");
    let negatives = GRAMMAR.lines(rng, "ros.negative", 4, 8, &[]);
    out.push_str(&sentence_list(&negatives));
    out.push_str("; ");
    GRAMMAR.say(rng, "ros.closing", &[], &mut out);
    out.push('.');

    let arrival = chart.vitals.first();
    out.push_str("\n\nExamination: Vitals on arrival: ");
    out.push_str(
        &arrival
            .map(vitals_phrase)
            .unwrap_or_else(|| "pending".into()),
    );
    out.push('.');
    let [general, heart, lungs] = voice.exam_banks(arrival);
    for system in SYSTEMS {
        let default = match system {
            "General" => general,
            "Cardiovascular" => heart,
            "Respiratory" => lungs,
            _ => "",
        };
        let default = if default.is_empty() {
            GRAMMAR.find(&["exam.", system]).unwrap_or_default()
        } else {
            default
        };
        out.push_str("\n- ");
        out.push_str(system);
        out.push_str(": ");
        voice.exam_into(rng, system, default, &mut out);
        out.push('.');
    }
    out.push_str(&labs_sentence(rng, &voice.labs_known_at(at)));

    let assessment = voice.assessment();
    out.push_str("\n\nAssessment and plan: ");
    out.push_str(&assessment);
    out.push(' ');
    if history.problems_short.is_empty() {
        out.push_str("in a patient with no chronic illness.");
    } else {
        GRAMMAR.say(rng, "adm.assessment_link", &[], &mut out);
        out.push(' ');
        let items: Vec<String> = history
            .problems_short
            .iter()
            .map(|p| lower_first(p))
            .collect();
        out.push_str(&sentence_list(&items));
        out.push('.');
    }
    for line in plan_lines(rng, voice.bank("plan"), 3, 6, &vars) {
        out.push_str("\n- ");
        out.push_str(&line);
    }
    for c in chart.course.conditions.iter() {
        out.push_str("\n- ");
        if let Some(bank) = GRAMMAR.find(&["chronic.", c.as_str()]) {
            GRAMMAR.say(rng, bank, &vars, &mut out);
        }
    }
    out.push_str("\n- Code status: ");
    // Most younger patients are full code; limits are an older patient's talk.
    let code = if chart.course.age < 60 {
        "adm.code.young"
    } else {
        "adm.code"
    };
    GRAMMAR.say(rng, code, &vars, &mut out);
    out.push_str("\n- ");
    GRAMMAR.say(rng, "adm.dispo_plan", &vars, &mut out);

    out.push_str("\n\nProblem list:");
    let mut number = 1;
    let mut item = |out: &mut String, text: &str| {
        out.push('\n');
        out.push_str(&number.to_string());
        out.push_str(". ");
        out.push_str(text);
        number += 1;
    };
    item(&mut out, &assessment);
    for problem in &history.problems {
        item(&mut out, problem);
    }
    voice.sign(rng, attending(voice), &mut out);
    out
}

/// Share of progress notes (after the first) that copy forward the day
/// before's vital signs instead of the latest, as busy charting does.
const COPY_FORWARD_SHARE: f64 = 0.055;

/// A progress note, and whether it states the latest values (false: it
/// copied the vitals of the day before forward).
pub(super) fn progress_note(
    rng: &mut ChaCha8Rng,
    voice: &Voice<'_, '_>,
    day: i64,
) -> (String, bool) {
    let chart = voice.chart;
    let at = voice.at;
    // The physician's impression: what the vitals show against the day
    // before, read with a clinician's noise, not what the outcome will be.
    let latest = voice.vitals_at(at);
    let now = latest.map_or(0, news2_of);
    let before = voice
        .vitals_at(at - 86_400)
        .or(chart.vitals.first())
        .map_or(0, news2_of);
    let impression = f64::from(now) - f64::from(before) + 1.2 * crate::generate::normal(rng);
    let status = if impression >= 1.5 {
        "progress.status.worse"
    } else if impression <= -1.5 {
        "progress.status.improving"
    } else {
        "progress.status.steady"
    };
    let copied = day > 1 && rng.random_bool(COPY_FORWARD_SHARE);
    let shown = if copied {
        voice.vitals_at(at - 86_400)
    } else {
        latest
    };
    let day_text = (day + 1).to_string();
    let day_before = day.to_string();
    let assessment = lower_first(&voice.assessment());
    let dept = chart.scenario.department.as_str();
    let vars = [
        ("day", day_text.as_str()),
        ("day_before", day_before.as_str()),
        ("assessment_lower", assessment.as_str()),
        ("dept", dept),
    ];
    let mut out = String::with_capacity(1_600);
    GRAMMAR.say(rng, "progress.header", &vars, &mut out);
    out.push_str("\nSubjective: ");
    GRAMMAR.say(rng, "progress.overnight", &vars, &mut out);
    out.push(' ');
    GRAMMAR.say(rng, voice.bank("progress"), &vars, &mut out);
    out.push_str("\nObjective: ");
    GRAMMAR.say(rng, status, &vars, &mut out);
    out.push_str(" Vitals: ");
    out.push_str(&shown.map(vitals_phrase).unwrap_or_default());
    out.push('.');
    let since = at - 30 * 3600;
    let recent: Vec<&LabRow> = voice
        .labs_known_at(at)
        .into_iter()
        .filter(|r| r.collected_at >= since)
        .collect();
    out.push_str(&labs_sentence(rng, &recent));
    let [general, heart, lungs] = voice.exam_banks(shown);
    let general = voice.exam_line(rng, "General", general);
    let focus = match voice.scenario() {
        "heart_failure_exacerbation" => voice.exam_line(rng, "Extremities", "exam.Extremities"),
        "postoperative_recovery" | "sepsis_icu" => voice.exam_line(rng, "Abdomen", "exam.Abdomen"),
        _ => {
            let heart = voice.exam_line(rng, "Cardiovascular", heart);
            let lungs = voice.exam_line(rng, "Respiratory", lungs);
            format!("{heart}; {lungs}")
        }
    };
    out.push('\n');
    GRAMMAR.say(
        rng,
        "progress.exam",
        &[("general", general.as_str()), ("focus", focus.as_str())],
        &mut out,
    );
    out.push_str("\n\nAssessment and plan: ");
    out.push_str(&voice.assessment());
    out.push_str(", hospital day ");
    out.push_str(&day_text);
    out.push('.');
    for line in plan_lines(rng, voice.bank("progress_plan"), 1, 3, &vars) {
        out.push_str("\n- ");
        out.push_str(&line);
    }
    if let Some(c) = chart
        .course
        .conditions
        .iter()
        .nth(rng.random_range(0..4usize))
    {
        out.push_str("\n- ");
        if let Some(bank) = GRAMMAR.find(&["chronic.", c.as_str()]) {
            GRAMMAR.say(rng, bank, &vars, &mut out);
        }
    }
    out.push_str("\n- ");
    GRAMMAR.say(rng, "progress.dispo", &vars, &mut out);
    voice.sign(rng, attending(voice), &mut out);
    (out, !copied)
}

/// A nurse's note at the end of a shift (`day`: the day shift, else the night).
pub(super) fn nursing_note(rng: &mut ChaCha8Rng, voice: &Voice<'_, '_>, day: bool) -> String {
    let chart = voice.chart;
    let latest = voice.vitals_at(voice.at);
    let pain = match voice.scenario() {
        "postoperative_recovery" => rng.random_range(1..=7u32),
        _ => rng.random_range(0..=5u32),
    }
    .to_string();
    let dept = chart.scenario.department.as_str();
    let time = voice.local_time();
    let mut site = String::new();
    GRAMMAR.say(
        rng,
        voice.own("pain_site").unwrap_or("pain.site"),
        &[],
        &mut site,
    );
    let vars = [
        ("time", time.as_str()),
        ("site", site.as_str()),
        ("shift", if day { "day" } else { "night" }),
        ("pain", pain.as_str()),
        ("dept", dept),
    ];
    let mut out = String::with_capacity(1_400);
    GRAMMAR.say(rng, "nursing.header", &vars, &mut out);
    let unwell = latest.is_some_and(|v| news2_of(v) >= 5);
    out.push_str("\nNeuro: ");
    let confused = voice.scenario() == "sepsis_icu" || (chart.course.age >= 80 && unwell);
    GRAMMAR.say(
        rng,
        if confused {
            "nursing.neuro.confused"
        } else {
            "nursing.neuro.alert"
        },
        &vars,
        &mut out,
    );
    if let Some(v) = latest {
        out.push_str("\nVital signs: ");
        out.push_str(&vitals_phrase(v));
        out.push('.');
    }
    out.push_str("\nResp: ");
    let low = latest.and_then(|v| v.spo2).is_some_and(|s| s < 94);
    GRAMMAR.say(
        rng,
        if low {
            "nursing.resp.oxygen"
        } else {
            "nursing.resp.air"
        },
        &vars,
        &mut out,
    );
    for (label, bank) in [
        ("Pain", "nursing.pain"),
        ("GI", "nursing.gi"),
        ("GU", "nursing.gu"),
        ("Skin", "nursing.skin"),
        ("Activity", "nursing.mobility"),
        ("Safety", "nursing.safety"),
        ("Lines", "nursing.lines"),
    ] {
        out.push('\n');
        out.push_str(label);
        out.push_str(": ");
        GRAMMAR.say(rng, bank, &vars, &mut out);
    }
    out.push('\n');
    GRAMMAR.say(rng, voice.bank("nursing"), &vars, &mut out);
    out.push_str("\nPsychosocial: ");
    GRAMMAR.say(rng, "nursing.psychosocial", &vars, &mut out);
    out.push_str("\nPlan: ");
    GRAMMAR.say(rng, "nursing.plan", &vars, &mut out);
    let who = rng.random_range(0..1_000);
    voice.sign(rng, who, &mut out);
    out
}

pub(super) fn discharge_summary(rng: &mut ChaCha8Rng, voice: &Voice<'_, '_>) -> String {
    let chart = voice.chart;
    let (admit, discharge) = (chart.course.admit(), chart.course.discharge());
    let days = format!("{:.1}", (discharge - admit) as f64 / 86_400.0);
    let last = voice
        .vitals_at(discharge)
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
    let results = if abnormal.is_empty() {
        String::new()
    } else {
        format!(" Most abnormal results: {}.", abnormal.join(", "))
    };
    let cc = voice.complaint();
    let symptoms = sentence_list(&GRAMMAR.lines(rng, voice.bank("symptom"), 2, 3, &[]));
    let assessment = voice.assessment();
    let assessment_lower = lower_first(&assessment);
    let died = format!("{} in {}", voice.zoned_stamp(), chart.scenario.department);
    let wean = rng.random_range(2..=4u32).to_string();
    let dept = chart.scenario.department.as_str();
    let time = voice.local_time();
    let colleague = super::staff_name(crate::model::AuthorRole::Physician, rng.random_range(0..90));
    let vars = [
        ("time", time.as_str()),
        ("colleague", colleague.as_str()),
        ("cc", cc.as_str()),
        ("days", days.as_str()),
        ("symptoms", symptoms.as_str()),
        ("assessment_lower", assessment_lower.as_str()),
        ("died", died.as_str()),
        ("dept", dept),
        ("wean", wean.as_str()),
    ];
    let history = voice.history();
    let mut out = String::with_capacity(3_072);
    let expired = chart.disposition == Disposition::Expired;
    out.push_str(if expired {
        "Death summary.\nPrincipal diagnosis: "
    } else {
        "Discharge diagnosis: "
    });
    out.push_str(&assessment);
    out.push_str(".\nSecondary diagnoses: ");
    if history.problems.is_empty() {
        out.push_str("none.");
    } else {
        out.push_str(&history.problems.join("; "));
        out.push('.');
    }
    out.push_str("\n\nPresentation: ");
    if expired {
        GRAMMAR.say(rng, "death.presentation", &vars, &mut out);
    } else {
        GRAMMAR.say(rng, "dc.presentation", &vars, &mut out);
        out.push(' ');
        GRAMMAR.say(rng, "dc.reported", &vars, &mut out);
        out.push_str("\nFunctional status: ");
        GRAMMAR.say(rng, "dc.functional", &vars, &mut out);
        out.push_str(".\nConsultations: ");
        GRAMMAR.say(rng, "dc.consults", &vars, &mut out);
        out.push('.');
    }
    out.push_str("\n\nHospital course: ");
    let course = GRAMMAR.lines(rng, voice.bank("course"), 2, 3, &vars);
    out.push_str(&course.join(" "));
    out.push(' ');
    if expired {
        GRAMMAR.say(rng, "death.decline", &vars, &mut out);
        out.push(' ');
        GRAMMAR.say(rng, "death.end", &vars, &mut out);
    } else {
        GRAMMAR.say(rng, "dc.course_extra", &vars, &mut out);
    }
    out.push_str(&results);
    if expired {
        out.push_str("\n\nPrior history: ");
        if history.problems.is_empty() {
            out.push_str("no chronic illness was documented before this admission.");
        } else {
            GRAMMAR.say(rng, "death.prior", &vars, &mut out);
        }
        out.push(' ');
        out.push_str("On arrival the patient had reported ");
        out.push_str(&symptoms);
        out.push_str(".\n\nFinal observations: Final vitals: ");
        out.push_str(&last);
        out.push_str(".\nCause of death: ");
        GRAMMAR.say(rng, "death.cause", &vars, &mut out);
        out.push_str(".\nNotifications: ");
        GRAMMAR.say(rng, "death.notify", &vars, &mut out);
        out.push_str(".\nAutopsy: ");
        GRAMMAR.say(rng, "death.autopsy", &vars, &mut out);
        out.push('.');
        voice.sign(rng, attending(voice), &mut out);
        return out;
    }
    out.push_str("\n\nCondition at discharge: ");
    GRAMMAR.say(rng, "dc.condition", &vars, &mut out);
    out.push_str(". Vitals at discharge: ");
    out.push_str(&last);
    out.push_str(".\n\nDischarge medications: ");
    let mut meds: Vec<String> = history.medications.iter().map(|m| m.to_string()).collect();
    let new = GRAMMAR.text(rng, voice.bank("discharge_med"), &vars);
    if !new.is_empty() {
        meds.push(new);
    }
    if meds.is_empty() {
        out.push_str("none.");
    } else {
        out.push_str(&meds.join("; "));
        out.push('.');
    }
    out.push_str("\nDisposition: ");
    out.push_str(disposition_text(chart.disposition));
    out.push_str(" at ");
    out.push_str(&time);
    GRAMMAR.say(rng, "dc.leaving", &vars, &mut out);
    out.push_str(".\nFollow-up: ");
    voice.say_own_or(rng, "followup", "dc.followup", &vars, &mut out);
    out.push_str(". Return precautions reviewed: ");
    let returns = GRAMMAR.lines(rng, "dc.return", 2, 4, &vars);
    out.push_str(&sentence_list(&returns));
    out.push_str(".\n\nInstructions: ");
    voice.say_own_or(rng, "instructions", "dc.instructions", &vars, &mut out);
    out.push(' ');
    GRAMMAR.say(rng, "dc.teach", &vars, &mut out);
    out.push_str("\nDiet: ");
    GRAMMAR.say(rng, "dc.diet", &vars, &mut out);
    out.push_str(". Activity: ");
    GRAMMAR.say(rng, "dc.activity", &vars, &mut out);
    out.push_str(".\nPending at discharge: ");
    GRAMMAR.say(rng, "dc.pending", &vars, &mut out);
    out.push('.');
    voice.sign(rng, attending(voice), &mut out);
    out
}
