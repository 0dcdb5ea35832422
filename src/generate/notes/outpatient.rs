//! The clinic note of an outpatient visit, in SOAP order: the visit's story,
//! medications and review of systems; the vitals, examination and results;
//! the assessment and plan, the patient's chronic problems and follow-up.

use rand::RngExt;
use rand::rngs::ChaCha8Rng;

use super::{Voice, labs_sentence, plan_lines, sex_word, vitals_phrase};
use crate::generate::grammar::GRAMMAR;
use crate::generate::history::sentence_list;

pub(super) fn clinic_note(rng: &mut ChaCha8Rng, voice: &Voice<'_, '_>) -> String {
    let chart = voice.chart;
    let (age, cc) = (voice.age(), voice.complaint());
    let meds = voice.history().medication_list();
    let dept = chart.scenario.department.as_str();
    let vars = [
        ("age", age.as_str()),
        ("sex", sex_word(chart.sex)),
        ("cc", cc.as_str()),
        ("dept", dept),
        ("meds", meds.as_str()),
    ];
    let mut out = String::with_capacity(1_800);
    out.push_str("Subjective: ");
    GRAMMAR.say(rng, "clinic.opening", &vars, &mut out);
    out.push(' ');
    GRAMMAR.say(rng, voice.bank("subjective"), &vars, &mut out);
    out.push(' ');
    let meds_bank = if meds.is_empty() {
        "clinic.no_meds"
    } else {
        "clinic.meds"
    };
    GRAMMAR.say(rng, meds_bank, &vars, &mut out);
    out.push_str("\nROS: ");
    GRAMMAR.say(rng, "ros.line", &vars, &mut out);

    let first = chart.vitals.first();
    out.push_str("\n\nObjective: Vitals: ");
    out.push_str(
        &first
            .map(vitals_phrase)
            .unwrap_or_else(|| "not recorded".into()),
    );
    out.push('.');
    out.push_str("\nExam: ");
    voice.brief_exam(rng, first, &mut out);
    out.push_str(". ");
    GRAMMAR.say(rng, voice.bank("exam"), &vars, &mut out);

    let discharge = chart.course.discharge();
    let known = voice.labs_known_at(discharge);
    let mut pending: Vec<&str> = chart
        .labs
        .iter()
        .filter(|r| r.resulted_at > discharge)
        .map(|r| r.test.name)
        .collect();
    pending.dedup();
    if !known.is_empty() {
        out.push_str(&labs_sentence(rng, &known));
    } else if !pending.is_empty() {
        out.push(' ');
        let pending = sentence_list(&pending);
        GRAMMAR.say(
            rng,
            "clinic.pending",
            &[("pending", pending.as_str())],
            &mut out,
        );
    }

    out.push_str("\n\nAssessment and plan:\n1. ");
    GRAMMAR.say(rng, voice.bank("assessment"), &vars, &mut out);
    for line in plan_lines(rng, voice.bank("plan"), 2, 3, &vars) {
        out.push_str("\n- ");
        out.push_str(&line);
    }
    // The patient's other chronic problems, as a clinic reviews them.
    let mut item = 2;
    for c in chart.course.conditions.iter() {
        if chart.scenario.eligible.conditions.contains(&c) || !rng.random_bool(0.7) {
            continue;
        }
        out.push('\n');
        crate::numfmt::uint(&mut out, item);
        out.push_str(". ");
        if let Some(bank) = GRAMMAR.find(&["clinic.chronic.", c.as_str()]) {
            GRAMMAR.say(rng, bank, &vars, &mut out);
        }
        item += 1;
    }
    let months = ["3", "6", "12", "4", "2"][rng.random_range(0..5usize)];
    out.push_str("\nFollow-up: ");
    // A prenatal clinic sees its patients every few weeks, not months.
    let followup = voice.own("followup").unwrap_or("clinic.followup");
    GRAMMAR.say(rng, followup, &[("months", months)], &mut out);
    let who = rng.random_range(0..1_000);
    voice.sign(rng, who, &mut out);
    out
}
