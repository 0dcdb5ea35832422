//! A patient's history as the notes tell it: the chronic conditions datagen
//! models, worded the way their chart words them, the other problems and
//! operations of a life, medications, allergies, and social and family
//! history. A patient's facts are a function of the patient's number, so
//! every note of every encounter tells the same ones; how a note words its
//! sentences around them is drawn from the note's own stream.
//!
//! Nothing here states a vital sign or a lab value: those come only from the
//! structured rows (see [`super::notes`]).

use std::sync::LazyLock;

use rand::rngs::ChaCha8Rng;

use super::grammar::GRAMMAR;
use crate::model::{Condition, Conditions, Sex};

/// A number mixed from the patient's and a purpose, for the picks that must
/// stay the same for that patient.
fn key(patient: u64, purpose: u64) -> u64 {
    super::mix64(patient, purpose)
}

/// Picks from `bank` by the patient's number and a purpose, so the same
/// patient always gets the same item.
fn own<'a>(patient: u64, purpose: u64, bank: &'a [&'a str]) -> &'a str {
    bank[(key(patient, purpose) % bank.len() as u64) as usize]
}

fn medications_for(c: Condition) -> &'static [&'static [&'static str]] {
    match c {
        Condition::Hypertension => &[
            &[
                "lisinopril 5 mg daily",
                "lisinopril 10 mg daily",
                "lisinopril 20 mg daily",
                "lisinopril 40 mg daily",
                "losartan 25 mg daily",
                "losartan 50 mg daily",
                "losartan 100 mg daily",
                "valsartan 160 mg daily",
                "olmesartan 20 mg daily",
                "ramipril 5 mg daily",
            ],
            &[
                "amlodipine 2.5 mg daily",
                "amlodipine 5 mg daily",
                "amlodipine 10 mg daily",
                "hydrochlorothiazide 12.5 mg daily",
                "hydrochlorothiazide 25 mg daily",
                "chlorthalidone 12.5 mg daily",
                "chlorthalidone 25 mg daily",
                "nifedipine ER 30 mg daily",
                "indapamide 1.25 mg daily",
            ],
        ],
        Condition::Diabetes => &[
            &[
                "metformin 500 mg twice daily",
                "metformin 1000 mg twice daily",
                "metformin ER 750 mg daily",
            ],
            &[
                "empagliflozin 10 mg daily",
                "sitagliptin 100 mg daily",
                "glipizide 5 mg daily",
                "insulin glargine 18 units at bedtime",
                "semaglutide 0.5 mg weekly",
            ],
        ],
        Condition::Ckd => &[&[
            "calcitriol 0.25 mcg daily",
            "sodium bicarbonate 650 mg twice daily",
            "sevelamer 800 mg with meals",
        ]],
        Condition::Copd => &[
            &[
                "tiotropium inhaler daily",
                "umeclidinium-vilanterol inhaler daily",
                "budesonide-formoterol inhaler twice daily",
            ],
            &[
                "albuterol inhaler as needed",
                "ipratropium-albuterol nebulizer as needed",
            ],
        ],
        Condition::HeartFailure => &[
            &[
                "furosemide 40 mg daily",
                "furosemide 20 mg twice daily",
                "torsemide 20 mg daily",
                "bumetanide 1 mg daily",
            ],
            &[
                "carvedilol 12.5 mg twice daily",
                "metoprolol succinate 50 mg daily",
                "bisoprolol 5 mg daily",
            ],
            &[
                "sacubitril-valsartan 49-51 mg twice daily",
                "spironolactone 25 mg daily",
                "dapagliflozin 10 mg daily",
            ],
        ],
        Condition::Anaemia => &[&[
            "ferrous sulfate 325 mg daily",
            "folic acid 1 mg daily",
            "ferrous gluconate 240 mg daily",
        ]],
    }
}

/// The patient's regular medications: one of each class their conditions
/// call for, the same in every note.
fn medications(patient: u64, conditions: Conditions) -> Vec<&'static str> {
    let mut meds = Vec::new();
    for (i, c) in conditions.iter().enumerate() {
        for (j, class) in medications_for(c).iter().enumerate() {
            meds.push(own(patient, 100 + (i * 10 + j) as u64, class));
        }
    }
    if conditions.has(Condition::Diabetes)
        || conditions.has(Condition::Ckd)
        || conditions.has(Condition::HeartFailure)
    {
        meds.push(own(
            patient,
            200,
            &[
                "atorvastatin 40 mg nightly",
                "rosuvastatin 10 mg nightly",
                "atorvastatin 20 mg nightly",
                "pravastatin 40 mg nightly",
            ],
        ));
    }
    if conditions.has(Condition::HeartFailure) {
        meds.push(own(
            patient,
            201,
            &[
                "aspirin 81 mg daily",
                "apixaban 5 mg twice daily",
                "aspirin 81 mg daily",
            ],
        ));
    }
    meds
}

/// One problem of a patient's past beyond the modelled conditions, and the
/// medication it brings, if any (`notes.grammar`, `@other_history`).
struct OtherProblem {
    problem: &'static str,
    medication: Option<&'static str>,
}

static OTHER_HISTORY: LazyLock<Vec<OtherProblem>> = LazyLock::new(|| {
    GRAMMAR
        .plain("other_history")
        .into_iter()
        .filter_map(|line| {
            let (problem, medication) = line.split_once(" ~ ")?;
            let medication = medication.trim();
            Some(OtherProblem {
                problem: problem.trim(),
                medication: (medication != "-").then_some(medication),
            })
        })
        .collect()
});

/// Whether a problem or an operation fits a patient of `sex` (by the words
/// only one sex's contain).
fn fits(sex: Sex, problem: &str) -> bool {
    use memchr::memmem::Finder;
    // Searchers built once: `str::contains` builds one per call, and a
    // history asks for up to five problems and operations.
    static MALE_ONLY: LazyLock<Vec<Finder<'static>>> =
        LazyLock::new(|| ["prostat"].map(Finder::new).into());
    static FEMALE_ONLY: LazyLock<Vec<Finder<'static>>> = LazyLock::new(|| {
        ["breast", "cesarean", "hysterectomy", "tubal", "ovarian"]
            .map(Finder::new)
            .into()
    });
    let has =
        |words: &[Finder<'static>]| words.iter().any(|w| w.find(problem.as_bytes()).is_some());
    match sex {
        Sex::Female => !has(&MALE_ONLY),
        Sex::Male => !has(&FEMALE_ONLY),
        Sex::Other | Sex::Unknown => true,
    }
}

/// What a patient's chart says about them before this encounter.
pub struct History {
    /// The modelled conditions as the chart words them, with the year each
    /// was diagnosed, then the patient's other problems.
    pub problems: Vec<String>,
    /// The same, without years, for a sentence ("a history of ...").
    pub problems_short: Vec<&'static str>,
    pub medications: Vec<&'static str>,
    pub surgeries: Vec<&'static str>,
}

impl History {
    /// `year` is the calendar year the note is written in.
    pub fn of(patient: u64, sex: Sex, age: u32, conditions: Conditions, year: i32) -> History {
        let plain = |purpose: u64, bank: &str| GRAMMAR.own_plain(key(patient, purpose), bank);
        // "<problem><since><year>", without `format!`: a history is written
        // for every clinic visit and every stay.
        let dated = |problem: &str, since: &str, year: i64| {
            let mut text = String::with_capacity(problem.len() + since.len() + 8);
            text.push_str(problem);
            text.push_str(since);
            crate::numfmt::int(&mut text, year);
            text
        };
        let mut problems = Vec::new();
        let mut problems_short = Vec::new();
        let adult_years = age.saturating_sub(18).clamp(1, 30);
        for (i, c) in conditions.iter().enumerate() {
            let bank = GRAMMAR
                .find(&["condition.", c.as_str()])
                .unwrap_or_default();
            let name = plain(20 + i as u64, bank);
            let years_ago = 1 + key(patient, 40 + i as u64) % u64::from(adult_years);
            problems.push(dated(
                name,
                ", diagnosed ",
                i64::from(year) - years_ago as i64,
            ));
            problems_short.push(name);
        }
        let mut medications = medications(patient, conditions);
        let others = &*OTHER_HISTORY;
        // Half the patients have none; older patients more.
        let count = (key(patient, 60) % 4) as u32 * u32::from(age >= 30) + u32::from(age >= 65);
        for j in 0..u64::from(count.min(3)) {
            let other = &others[(key(patient, 61 + j) % others.len() as u64) as usize];
            if !fits(sex, other.problem) || problems_short.contains(&other.problem) {
                continue;
            }
            let years_ago = key(patient, 90 + j) % u64::from(adult_years.max(2)) + 1;
            problems.push(dated(
                other.problem,
                ", since ",
                i64::from(year) - years_ago as i64,
            ));
            problems_short.push(other.problem);
            if let Some(med) = other.medication {
                // One drug of a kind: no second statin beside the first.
                let drug = med.split(' ').next().unwrap_or(med);
                let same_kind = |m: &&str| {
                    let other = m.split(' ').next().unwrap_or(m);
                    other == drug || (other.ends_with("statin") && drug.ends_with("statin"))
                };
                if !medications.iter().any(same_kind) {
                    medications.push(med);
                }
            }
        }
        // Supplements and over-the-counter medicines, for some.
        for j in 0..(key(patient, 80) % 5).saturating_sub(2) {
            let supplement = GRAMMAR.own_plain(key(patient, 81 + j), "supplement");
            if !supplement.is_empty() && !medications.contains(&supplement) {
                medications.push(supplement);
            }
        }
        let mut surgeries = Vec::new();
        for j in 0..(key(patient, 70) % 3) {
            let surgery = plain(71 + j, "surgery");
            if fits(sex, surgery) && !surgeries.contains(&surgery) {
                surgeries.push(surgery);
            }
        }
        History {
            problems,
            problems_short,
            medications,
            surgeries,
        }
    }

    /// "a history of hypertension, COPD and gout", or "no significant PMH".
    pub fn phrase(&self, rng: &mut ChaCha8Rng) -> String {
        if self.problems_short.is_empty() {
            return GRAMMAR.text(rng, "pmh.none", &[]);
        }
        let items: Vec<String> = self.problems_short.iter().map(|p| lower_first(p)).collect();
        format!("a history of {}", sentence_list(&items))
    }

    /// The medications as the notes list them, "; "-separated.
    pub fn medication_list(&self) -> String {
        self.medications.join("; ")
    }
}

/// The conditions as a triage nurse or ED physician abbreviates them.
pub fn short_history(rng: &mut ChaCha8Rng, conditions: Conditions) -> String {
    let items: Vec<String> = conditions
        .iter()
        .map(|c| {
            let bank = GRAMMAR.find(&["abbrev.", c.as_str()]).unwrap_or_default();
            GRAMMAR.text(rng, bank, &[])
        })
        .collect();
    if items.is_empty() {
        GRAMMAR.text(rng, "pmh.none", &[])
    } else {
        sentence_list(&items)
    }
}

/// A patient's allergies, as a sentence: the same allergy in every note,
/// "no known allergies" worded as the note's author words it.
pub fn allergies(rng: &mut ChaCha8Rng, patient: u64, out: &mut String) {
    match GRAMMAR.own_plain(key(patient, 8), "allergy") {
        "none" => GRAMMAR.say(rng, "allergy.none", &[], out),
        allergy => {
            out.push_str(allergy.trim_end_matches('.'));
            GRAMMAR.say(rng, "allergy.tail", &[], out);
            out.push('.');
        }
    }
}

/// The social and family history, as one paragraph. Work and household
/// follow age: students and shared flats when young, retirement (for most)
/// and assisted living when old.
pub fn social(rng: &mut ChaCha8Rng, patient: u64, age: u32) -> String {
    let own_text = |rng: &mut ChaCha8Rng, purpose: u64, bank: &str, out: &mut String| {
        GRAMMAR.own(rng, key(patient, purpose), bank, &[], out);
    };
    let mut out = String::with_capacity(320);
    out.push_str("Social history: ");
    let still_working = key(patient, 14).is_multiple_of(10);
    let occupation = match age {
        ..=24 => "occupation.young",
        67.. if !still_working => "occupation.retired",
        _ => "occupation",
    };
    own_text(rng, 1, occupation, &mut out);
    out.push_str("; ");
    let household = match age {
        ..=24 => "household.young",
        75.. => "household.older",
        65.. if key(patient, 15).is_multiple_of(2) => "household.older",
        _ => "household",
    };
    own_text(rng, 2, household, &mut out);
    out.push(' ');
    own_text(rng, 3, "town", &mut out);
    out.push_str(". ");
    let start = out.len();
    own_text(rng, 4, "smoking", &mut out);
    capitalise_at(&mut out, start);
    out.push_str("; ");
    own_text(rng, 5, "alcohol", &mut out);
    out.push_str("; ");
    own_text(rng, 10, "drugs", &mut out);
    out.push_str(". Enjoys ");
    own_text(rng, 11, "hobby", &mut out);
    out.push_str("; ");
    own_text(rng, 12, "support", &mut out);
    out.push_str(". Family history: ");
    if own(patient, 9, &["known", "known", "none"]) == "none" {
        GRAMMAR.say(rng, "family.none", &[], &mut out);
    } else {
        // Two relatives' histories in one sentence.
        let first = GRAMMAR.own_plain(key(patient, 6), "family");
        let mut second = GRAMMAR.own_plain(key(patient, 7), "family");
        if second == first {
            second = GRAMMAR.own_plain(key(patient, 13), "family");
        }
        out.push_str(first.trim_end_matches('.'));
        if second != first {
            out.push_str("; ");
            out.push_str(&lower_first(second));
        } else {
            out.push('.');
        }
    }
    out.push_str(" Allergies: ");
    allergies(rng, patient, &mut out);
    out
}

fn capitalise_at(out: &mut String, start: usize) {
    if let Some(c) = out[start..].chars().next() {
        let upper: String = c.to_uppercase().collect();
        out.replace_range(start..start + c.len_utf8(), &upper);
    }
}

/// "Hypertension" -> "hypertension", but "COPD" stays.
pub fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => first
            .to_lowercase()
            .chain(s[first.len_utf8()..].chars())
            .collect(),
        _ => s.to_string(),
    }
}

/// "a, b and c".
pub fn sentence_list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", init.join(", "), last.as_ref())
        }
    }
}
