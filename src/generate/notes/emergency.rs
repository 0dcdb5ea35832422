//! Emergency department notes: the triage nurse's note, timed by the first
//! vital-sign set, and the ED physician's note at disposition (history,
//! examination, ED course, medical decision-making, disposition).

use rand::RngExt;
use rand::rngs::ChaCha8Rng;

use super::{Voice, disposition_text, labs_sentence, news2_of, sex_word, vitals_phrase};
use crate::generate::grammar::GRAMMAR;
use crate::generate::history::short_history;
use crate::rows::VitalRow;

pub(super) fn triage_note(rng: &mut ChaCha8Rng, voice: &Voice<'_, '_>) -> String {
    let chart = voice.chart;
    let (age, cc) = (voice.age(), voice.complaint());
    // Injuries and chest pain hurt; a fever or wheeze mostly does not.
    let pain = match voice.scenario() {
        "ed_minor_injury" => rng.random_range(3..=9u32),
        "ed_chest_pain" => rng.random_range(2..=8u32),
        _ => rng.random_range(0..=5u32),
    }
    .to_string();
    let pmh = short_history(rng, chart.course.conditions);
    let vars = [
        ("age", age.as_str()),
        ("sex", sex_word(chart.sex)),
        ("cc", cc.as_str()),
        ("pain", pain.as_str()),
    ];
    let mut out = String::with_capacity(700);
    GRAMMAR.say(rng, "triage.opening", &vars, &mut out);
    out.push(' ');
    GRAMMAR.say(rng, voice.bank("story"), &vars, &mut out);
    match chart.vitals.first() {
        Some(first) => {
            let score = news2_of(first);
            let esi = triage_level(rng, voice, first, score);
            out.push_str("\nTriage vitals: ");
            out.push_str(&vitals_phrase(first));
            out.push_str(". ESI ");
            out.push_str(&esi.to_string());
            out.push_str(", NEWS2 ");
            out.push_str(&score.to_string());
            out.push('.');
        }
        None => out.push_str("\nVitals deferred."),
    }
    out.push(' ');
    GRAMMAR.say(rng, "triage.pain", &vars, &mut out);
    out.push_str("\nPMH: ");
    out.push_str(&pmh);
    out.push_str("; allergies: ");
    let start = out.len();
    crate::generate::history::allergies(rng, chart.patient, &mut out);
    // One sentence: the allergy's own full stop ends it.
    if let Some(c) = out[start..].chars().next() {
        let lower: String = c.to_lowercase().collect();
        if out[start..].chars().nth(1).is_some_and(char::is_lowercase) {
            out.replace_range(start..start + c.len_utf8(), &lower);
        }
    }
    out.push('\n');
    GRAMMAR.say(rng, "triage.placement", &vars, &mut out);
    let who = rng.random_range(0..1_000);
    voice.sign(rng, who, &mut out);
    out
}

/// The Emergency Severity Index a triage nurse gives: the complaint's own
/// level (chest pain is ESI 2 by protocol, a sprain 4), raised for a
/// patient whose first vitals look dangerous (NEWS2, shock), and, as between
/// nurses, a level off either way now and then.
fn triage_level(rng: &mut ChaCha8Rng, voice: &Voice<'_, '_>, first: &VitalRow, score: u32) -> u32 {
    let by_vitals = match score {
        5.. => 2,
        1..=4 => 3,
        0 => 4,
    };
    let mut level = voice
        .chart
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

pub(super) fn provider_note(rng: &mut ChaCha8Rng, voice: &Voice<'_, '_>) -> String {
    let chart = voice.chart;
    let (age, cc) = (voice.age(), voice.complaint());
    let pmh = short_history(rng, chart.course.conditions);
    let discharge = chart.course.discharge();
    let last = voice.vitals_at(discharge);
    let time = voice.local_time();
    let mut ddx = String::new();
    GRAMMAR.say(rng, voice.ddx(), &[("cc", cc.as_str())], &mut ddx);
    let vars = [
        ("age", age.as_str()),
        ("sex", sex_word(chart.sex)),
        ("cc", cc.as_str()),
        ("pmh_short", pmh.as_str()),
        ("ddx", ddx.as_str()),
        ("dispo", disposition_text(chart.disposition)),
        ("time", time.as_str()),
    ];
    let mut out = String::with_capacity(1_200);
    out.push_str("HPI: ");
    GRAMMAR.say(rng, "ed.opening", &vars, &mut out);
    out.push(' ');
    GRAMMAR.say(rng, voice.bank("story"), &vars, &mut out);
    out.push_str("\nExam: ");
    voice.brief_exam(rng, chart.vitals.first(), &mut out);
    out.push_str(". ");
    GRAMMAR.say(rng, voice.bank("exam"), &vars, &mut out);
    out.push_str("\nED course: ");
    GRAMMAR.say(rng, voice.bank("course"), &vars, &mut out);
    out.push_str(&labs_sentence(rng, &voice.labs_known_at(discharge)));
    if let Some(last) = last {
        out.push_str(" Last vitals: ");
        out.push_str(&vitals_phrase(last));
        out.push('.');
    }
    out.push_str("\nMDM: ");
    GRAMMAR.say(rng, "ed.mdm", &vars, &mut out);
    out.push('\n');
    GRAMMAR.say(rng, "ed.dispo", &vars, &mut out);
    let who = rng.random_range(0..1_000);
    voice.sign(rng, who, &mut out);
    out
}
