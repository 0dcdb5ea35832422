//! A patient's history as the notes tell it: medications for their chronic
//! conditions, allergies, social and family history, and the story,
//! review of systems, examination and plan of an admission. A patient's own
//! facts (medications, occupation, smoking) are a function of the patient,
//! so every note of every encounter tells the same ones; how each note
//! words them is drawn from the note's own stream.
//!
//! Nothing here states a vital sign or a lab value: those come only from the
//! structured rows (see [`super::notes`]).

use rand::RngExt;
use rand::rngs::ChaCha8Rng;
use rand::seq::IndexedRandom;

use crate::model::{Condition, Conditions, Sex};

/// Picks from `bank` by the patient's number and a purpose, so the same
/// patient always gets the same item.
fn own<'a>(patient: u64, purpose: u64, bank: &'a [&'a str]) -> &'a str {
    let mixed = patient
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
        .wrapping_add(purpose.wrapping_mul(0xD1B5_4A32_D192_ED03));
    bank[(mixed % bank.len() as u64) as usize]
}

fn any<'a>(rng: &mut ChaCha8Rng, bank: &'a [&'a str]) -> &'a str {
    bank.choose(rng).copied().unwrap_or("")
}

/// A condition as a problem-list entry.
pub fn condition_name(c: Condition) -> &'static str {
    match c {
        Condition::Hypertension => "Essential hypertension",
        Condition::Diabetes => "Type 2 diabetes mellitus",
        Condition::Ckd => "Chronic kidney disease, stage 3",
        Condition::Copd => "Chronic obstructive pulmonary disease",
        Condition::HeartFailure => "Heart failure with reduced ejection fraction",
        Condition::Anaemia => "Chronic anaemia",
    }
}

fn medications_for(c: Condition) -> &'static [&'static [&'static str]] {
    match c {
        Condition::Hypertension => &[
            &[
                "lisinopril 10 mg daily",
                "lisinopril 20 mg daily",
                "losartan 50 mg daily",
                "losartan 100 mg daily",
            ],
            &[
                "amlodipine 5 mg daily",
                "amlodipine 10 mg daily",
                "hydrochlorothiazide 25 mg daily",
                "chlorthalidone 12.5 mg daily",
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
pub fn medications(patient: u64, conditions: Conditions) -> Vec<&'static str> {
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

const OCCUPATIONS: &[&str] = &[
    "retired schoolteacher",
    "retired machinist",
    "nurse's aide",
    "accountant",
    "electrician",
    "bus driver",
    "software engineer",
    "line cook",
    "retired postal worker",
    "warehouse associate",
    "home health aide",
    "carpenter",
    "graduate student",
    "retired firefighter",
    "hairdresser",
    "paralegal",
    "plumber",
    "retail manager",
    "landscaper",
    "pharmacist",
    "truck driver",
    "librarian",
    "custodian",
    "dental hygienist",
    "retired engineer",
    "barista",
    "real estate agent",
    "security guard",
    "college professor",
    "cashier",
    "fisherman",
    "mechanic",
    "social worker",
    "bookkeeper",
    "construction laborer",
    "retired nurse",
    "childcare worker",
    "restaurant owner",
    "insurance adjuster",
    "retired police officer",
    "painter",
    "laboratory technician",
    "delivery driver",
    "homemaker",
    "musician",
    "physical therapist",
    "welder",
    "administrative assistant",
    "retired banker",
    "roofer",
    "court clerk",
    "teacher's aide",
];

const TOWNS: &[&str] = &[
    "Worcester",
    "Springfield",
    "Lowell",
    "Cambridge",
    "Brockton",
    "Quincy",
    "Lynn",
    "New Bedford",
    "Fall River",
    "Newton",
    "Somerville",
    "Lawrence",
    "Framingham",
    "Haverhill",
    "Waltham",
    "Malden",
    "Medford",
    "Taunton",
    "Chicopee",
    "Weymouth",
    "Revere",
    "Peabody",
    "Methuen",
    "Barnstable",
    "Pittsfield",
    "Attleboro",
    "Arlington",
    "Everett",
    "Salem",
    "Westfield",
    "Leominster",
    "Fitchburg",
    "Beverly",
    "Holyoke",
    "Marlborough",
    "Woburn",
    "Chelsea",
    "Braintree",
    "Shrewsbury",
    "Dartmouth",
];

const HOUSEHOLDS: &[&str] = &[
    "lives with spouse in",
    "lives alone in an apartment in",
    "lives with daughter in",
    "lives with son and his family in",
    "lives with partner in",
    "lives in an assisted-living facility in",
    "lives with two roommates in",
    "lives with husband in",
    "lives with wife in",
    "lives with a sibling in",
    "lives in a senior apartment complex in",
];

const SMOKING: &[&str] = &[
    "never smoker",
    "never smoker",
    "never smoker",
    "former smoker, quit over ten years ago",
    "former smoker with a remote history",
    "current smoker, about half a pack per day",
    "current smoker, one pack per day",
    "occasional cigar use",
    "vapes nicotine daily",
];

const ALCOHOL: &[&str] = &[
    "drinks socially",
    "denies alcohol use",
    "one to two glasses of wine per week",
    "drinks two to three beers on weekends",
    "no alcohol for several years",
    "rare alcohol use",
];

const FAMILY: &[&str] = &[
    "Father with coronary artery disease in his sixties.",
    "Mother with type 2 diabetes.",
    "Mother with breast cancer.",
    "Father died of a stroke.",
    "Sister with hypothyroidism.",
    "Brother with hypertension.",
    "Mother with rheumatoid arthritis.",
    "Father with colon cancer.",
    "Maternal grandmother with dementia.",
    "Both parents with hypertension.",
    "Father with COPD.",
    "Paternal uncle with sudden cardiac death.",
    "Daughter with asthma.",
];

const ALLERGIES: &[&str] = &[
    "No known drug allergies.",
    "No known drug allergies.",
    "No known drug allergies.",
    "Penicillin (rash).",
    "Sulfa drugs (hives).",
    "Codeine (nausea).",
    "Lisinopril (cough).",
    "Iodinated contrast (itching).",
    "Latex.",
    "Morphine (pruritus).",
    "Shellfish.",
];

/// What brings a patient in, by scenario: story fragments, review-of-systems
/// positives, exam findings, and plan lines.
struct Story {
    onset: &'static [&'static str],
    symptoms: &'static [&'static str],
    positives: &'static [&'static str],
    exam: &'static [&'static str],
    assessment: &'static [&'static str],
    plan: &'static [&'static str],
}

fn story(scenario: &str) -> Story {
    match scenario {
        "pneumonia_admission" => Story {
            onset: &[
                "three days",
                "four days",
                "about a week",
                "five days",
                "two days",
            ],
            symptoms: &[
                "productive cough with yellow-green sputum",
                "fevers and chills at home",
                "pleuritic chest pain on the right",
                "progressive shortness of breath on exertion",
                "fatigue and poor appetite",
                "night sweats",
                "rusty sputum",
                "myalgias",
                "shaking chills overnight",
            ],
            positives: &[
                "cough",
                "fever",
                "dyspnea",
                "fatigue",
                "decreased appetite",
                "chills",
            ],
            exam: &[
                "crackles at the right base",
                "bronchial breath sounds over the left lower lobe",
                "dullness to percussion at the right base",
                "scattered rhonchi bilaterally",
                "egophony over the right lower zone",
                "decreased air entry at the left base",
            ],
            assessment: &[
                "Community-acquired pneumonia",
                "Lobar pneumonia",
                "Pneumonia with hypoxemia",
            ],
            plan: &[
                "Ceftriaxone and azithromycin; reassess at 48 hours.",
                "Sputum and blood cultures sent before antibiotics.",
                "Chest X-ray reviewed: consolidation as described.",
                "Titrate supplemental oxygen to saturation of 92 to 96 percent.",
                "Incentive spirometry and early mobilization.",
                "Pneumococcal and influenza vaccination status to be reviewed before discharge.",
                "Encourage oral fluids; monitor intake and output.",
            ],
        },
        "heart_failure_exacerbation" => Story {
            onset: &["a week", "ten days", "two weeks", "five days"],
            symptoms: &[
                "worsening dyspnea on exertion",
                "orthopnea requiring three pillows",
                "paroxysmal nocturnal dyspnea",
                "increasing bilateral leg swelling",
                "weight gain of several pounds",
                "abdominal bloating",
                "reduced exercise tolerance",
                "dietary indiscretion over the holidays",
                "missed diuretic doses",
            ],
            positives: &["dyspnea", "orthopnea", "edema", "weight gain", "fatigue"],
            exam: &[
                "jugular venous distension to the angle of the jaw",
                "bibasilar crackles",
                "pitting edema to the knees",
                "an S3 gallop",
                "hepatojugular reflux",
                "cool extremities with sluggish capillary refill",
            ],
            assessment: &[
                "Acute on chronic systolic heart failure",
                "Decompensated heart failure, volume overloaded",
                "Heart failure exacerbation",
            ],
            plan: &[
                "Intravenous furosemide with strict intake and output.",
                "Daily weights and a fluid restriction of 1.5 liters.",
                "Low-sodium diet; dietitian consult.",
                "Echocardiogram if none in the past year.",
                "Continue beta blocker unless hypotensive.",
                "Monitor potassium and creatinine daily during diuresis.",
                "Heart failure education before discharge.",
            ],
        },
        "sepsis_icu" => Story {
            onset: &["one day", "two days", "since last night", "about 36 hours"],
            symptoms: &[
                "fevers and rigors",
                "new confusion noted by family",
                "burning on urination",
                "decreased urine output",
                "generalized weakness",
                "lightheadedness on standing",
                "poor oral intake",
                "vomiting",
            ],
            positives: &[
                "fever",
                "confusion",
                "dysuria",
                "weakness",
                "reduced urine output",
            ],
            exam: &[
                "ill-appearing and diaphoretic",
                "dry mucous membranes",
                "suprapubic tenderness",
                "warm peripheries",
                "mottling over the knees",
                "flank tenderness on the right",
                "delayed capillary refill",
            ],
            assessment: &[
                "Sepsis, likely urinary source",
                "Septic shock",
                "Sepsis of unclear source",
            ],
            plan: &[
                "Broad-spectrum antibiotics given within the first hour.",
                "Blood and urine cultures obtained.",
                "Crystalloid resuscitation, 30 mL/kg.",
                "Norepinephrine for a mean arterial pressure goal of 65.",
                "Trend lactate until clearing.",
                "Source control: imaging of the abdomen and renal tract.",
                "Arterial line and central venous access.",
                "Stress ulcer and venous thromboembolism prophylaxis.",
            ],
        },
        "postoperative_recovery" => Story {
            onset: &["the day of surgery"],
            symptoms: &[
                "incisional pain controlled with oral analgesia",
                "mild nausea after anesthesia",
                "ambulating with assistance",
                "tolerating sips of clear liquids",
                "no flatus yet",
                "voiding without difficulty",
            ],
            positives: &["incisional pain", "nausea"],
            exam: &[
                "clean, dry and intact dressing",
                "mildly tender around the incision",
                "soft abdomen with hypoactive bowel sounds",
                "calves soft and non-tender",
                "distal pulses intact",
                "no erythema at the surgical site",
            ],
            assessment: &[
                "Status post elective surgery, expected recovery",
                "Postoperative day course, uncomplicated",
            ],
            plan: &[
                "Multimodal analgesia; minimize opioids.",
                "Enoxaparin for thromboprophylaxis.",
                "Physical therapy evaluation today.",
                "Advance diet as tolerated.",
                "Remove urinary catheter on postoperative day one.",
                "Wound check daily.",
            ],
        },
        _ => Story {
            onset: &["a day", "two days", "several days"],
            symptoms: &["generalized malaise", "fatigue", "poor appetite"],
            positives: &["fatigue"],
            exam: &["no acute distress", "alert and oriented"],
            assessment: &["Acute illness requiring admission"],
            plan: &[
                "Supportive care and monitoring.",
                "Reassess in the morning.",
            ],
        },
    }
}

const NEGATIVES: &[&str] = &[
    "headache",
    "visual changes",
    "sore throat",
    "hemoptysis",
    "palpitations",
    "syncope",
    "abdominal pain",
    "melena",
    "hematochezia",
    "diarrhea",
    "constipation",
    "hematuria",
    "rash",
    "joint swelling",
    "focal weakness",
    "numbness",
    "weight loss",
    "calf pain",
    "neck stiffness",
    "photophobia",
];

const NORMAL_EXAM: &[(&str, &[&str])] = &[
    (
        "General",
        &[
            "alert, oriented, in no acute distress",
            "awake and conversant",
            "comfortable at rest",
            "pleasant and cooperative",
        ],
    ),
    (
        "HEENT",
        &[
            "pupils equal and reactive, oropharynx clear",
            "moist mucous membranes, no lymphadenopathy",
            "anicteric sclerae",
        ],
    ),
    (
        "Cardiovascular",
        &[
            "regular rate and rhythm, no murmurs",
            "normal S1 and S2, no rubs or gallops",
            "regular rhythm, soft systolic murmur at the apex",
        ],
    ),
    (
        "Respiratory",
        &[
            "clear to auscultation bilaterally",
            "good air entry throughout",
            "no wheezes or crackles",
        ],
    ),
    (
        "Abdomen",
        &[
            "soft, non-tender, non-distended",
            "bowel sounds present, no organomegaly",
            "soft with mild epigastric tenderness",
        ],
    ),
    (
        "Extremities",
        &[
            "warm and well perfused, no edema",
            "no calf tenderness",
            "trace ankle edema bilaterally",
        ],
    ),
    (
        "Neurological",
        &[
            "grossly non-focal",
            "cranial nerves intact, moving all limbs",
            "strength symmetric throughout",
        ],
    ),
];

/// The social and family history, as one paragraph.
pub fn social(rng: &mut ChaCha8Rng, patient: u64) -> String {
    let mut out = String::with_capacity(200);
    out.push_str("Social history: ");
    out.push_str(own(patient, 1, OCCUPATIONS));
    out.push_str("; ");
    out.push_str(own(patient, 2, HOUSEHOLDS));
    out.push(' ');
    out.push_str(own(patient, 3, TOWNS));
    out.push_str(". ");
    let smoking = own(patient, 4, SMOKING);
    let mut first = smoking.chars();
    if let Some(c) = first.next() {
        out.extend(c.to_uppercase());
        out.push_str(first.as_str());
    }
    out.push_str("; ");
    out.push_str(own(patient, 5, ALCOHOL));
    out.push_str(". Family history: ");
    if own(patient, 9, &["known", "known", "none"]) == "none" {
        out.push_str(any(
            rng,
            &[
                "noncontributory.",
                "no known family history of premature heart disease.",
                "unknown; adopted.",
            ],
        ));
    } else {
        let (first, second) = (own(patient, 6, FAMILY), own(patient, 7, FAMILY));
        out.push_str(first);
        if second != first && rng.random_bool(0.4) {
            out.push(' ');
            out.push_str(second);
        }
    }
    out.push_str(" Allergies: ");
    out.push_str(own(patient, 8, ALLERGIES));
    out
}

fn sentence_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// What the admitting physician writes beyond the numbers: the story, the
/// past history and medications, the review of systems and the exam; the
/// assessment and plan and the problem list. `vitals` and `labs` are the
/// already-written sentences of what was measured.
#[allow(clippy::too_many_arguments)]
pub fn admission(
    rng: &mut ChaCha8Rng,
    scenario: &str,
    complaint: &str,
    age: u32,
    sex: Sex,
    patient: u64,
    conditions: Conditions,
    vitals: &str,
    labs: &str,
) -> String {
    let story = story(scenario);
    let mut out = String::with_capacity(2_600);
    let who = match sex {
        Sex::Female => "woman",
        Sex::Male => "man",
        Sex::Other | Sex::Unknown => "patient",
    };
    let history: Vec<&str> = conditions.iter().map(condition_name).collect();
    let pmh = if history.is_empty() {
        "no significant past medical history".to_string()
    } else {
        format!("a history of {}", sentence_list(&history).to_lowercase())
    };
    let symptoms = some_of(rng, story.symptoms, 2, 4);
    out.push_str(&format!(
        "HPI: {age}-year-old {who} with {pmh} who presents with {} over {}. Reports {symptoms}. ",
        complaint.to_lowercase(),
        any(rng, story.onset),
    ));
    out.push_str(any(
        rng,
        &[
            "Came in at the urging of family.",
            "Presented after symptoms failed to improve at home.",
            "Was referred in by primary care after a telephone assessment.",
            "Called an ambulance when symptoms worsened overnight.",
            "Tried over-the-counter remedies without relief.",
        ],
    ));
    out.push_str("\n\nPast medical history: ");
    if history.is_empty() {
        out.push_str("none.");
    } else {
        out.push_str(&history.join("; "));
        out.push('.');
    }
    out.push_str("\nMedications: ");
    let meds = medications(patient, conditions);
    if meds.is_empty() {
        out.push_str("no regular medications.");
    } else {
        out.push_str(&meds.join("; "));
        out.push('.');
    }
    out.push('\n');
    out.push_str(&social(rng, patient));
    out.push_str("\n\nReview of systems: positive for ");
    out.push_str(&some_of(rng, story.positives, 1, story.positives.len()));
    out.push_str("; negative for ");
    out.push_str(&some_of(rng, NEGATIVES, 4, 8));
    out.push_str(". All other systems reviewed and negative.");

    out.push_str("\n\nExamination: ");
    out.push_str(vitals);
    for (system, findings) in NORMAL_EXAM {
        out.push_str("\n- ");
        out.push_str(system);
        out.push_str(": ");
        out.push_str(any(rng, findings));
        out.push('.');
    }
    out.push_str("\n- Pertinent: ");
    out.push_str(&some_of(rng, story.exam, 1, 3));
    out.push('.');
    out.push_str(labs);

    out.push_str("\n\nAssessment and plan: ");
    out.push_str(any(rng, story.assessment));
    out.push_str(any(
        rng,
        &[
            " in a patient with ",
            " on a background of ",
            " complicating ",
        ],
    ));
    if history.is_empty() {
        out.push_str("no chronic illness");
    } else {
        out.push_str(&sentence_list(&history).to_lowercase());
    }
    out.push('.');
    for line in some_lines(rng, story.plan, 3, 6) {
        out.push_str("\n- ");
        out.push_str(line);
    }
    for c in conditions.iter() {
        out.push_str("\n- ");
        out.push_str(chronic_plan(rng, c));
    }
    out.push_str("\n- Code status: ");
    out.push_str(any(
        rng,
        &[
            "full code",
            "full code, confirmed with the patient",
            "DNR/DNI per goals-of-care discussion",
            "full code; health care proxy is the spouse",
        ],
    ));
    out.push('.');
    out.push_str("\n\nProblem list:");
    let mut problems = vec![any(rng, story.assessment)];
    problems.extend(history.iter().copied());
    for (i, problem) in problems.iter().enumerate() {
        out.push_str(&format!("\n{}. {problem}", i + 1));
    }
    out
}

fn chronic_plan(rng: &mut ChaCha8Rng, c: Condition) -> &'static str {
    any(
        rng,
        match c {
            Condition::Hypertension => &[
                "Hypertension: hold antihypertensives if pressure runs low; resume as tolerated.",
                "Hypertension: continue home regimen, titrate to pressures.",
            ],
            Condition::Diabetes => &[
                "Diabetes: hold metformin while acutely unwell; sliding-scale insulin.",
                "Diabetes: basal-bolus insulin, fingersticks before meals and at bedtime.",
            ],
            Condition::Ckd => &[
                "CKD: renally dose medications, avoid nephrotoxins and contrast where possible.",
                "CKD: trend creatinine, avoid NSAIDs.",
            ],
            Condition::Copd => &[
                "COPD: continue inhalers, nebulizers as needed.",
                "COPD: target saturation 88 to 92 percent, inhaled bronchodilators.",
            ],
            Condition::HeartFailure => &[
                "Heart failure: daily weights, careful fluid balance.",
                "Heart failure: continue guideline-directed therapy as pressure allows.",
            ],
            Condition::Anaemia => &[
                "Anaemia: iron studies, transfuse for haemoglobin below 7.",
                "Anaemia: chronic and stable, continue iron supplementation.",
            ],
        },
    )
}

/// Between `at_least` and `at_most` of `bank`'s items, in a random order,
/// as a list ("a, b and c").
fn some_of(rng: &mut ChaCha8Rng, bank: &[&str], at_least: usize, at_most: usize) -> String {
    sentence_list(&some_lines(rng, bank, at_least, at_most))
}

/// Between `at_least` and `at_most` of `bank`'s lines, in a random order.
fn some_lines<'a>(
    rng: &mut ChaCha8Rng,
    bank: &[&'a str],
    at_least: usize,
    at_most: usize,
) -> Vec<&'a str> {
    use rand::seq::SliceRandom;
    let mut items: Vec<&str> = bank.to_vec();
    items.shuffle(rng);
    let most = at_most.min(items.len()).max(at_least.min(items.len()));
    let count = rng.random_range(at_least.min(most)..=most);
    items.truncate(count);
    items
}

/// A summary's diagnoses: the principal one and the chronic ones.
fn diagnoses(
    rng: &mut ChaCha8Rng,
    out: &mut String,
    story: &Story,
    label: &str,
    conditions: Conditions,
) {
    out.push_str(label);
    out.push_str(any(rng, story.assessment));
    out.push_str(".\nSecondary diagnoses: ");
    let history: Vec<&str> = conditions.iter().map(condition_name).collect();
    if history.is_empty() {
        out.push_str("none.");
    } else {
        out.push_str(&history.join("; "));
        out.push('.');
    }
}

/// The discharge summary's narrative beyond the numbers: the course, the
/// medications to go home on, and the follow-up.
#[allow(clippy::too_many_arguments)]
pub fn discharge(
    rng: &mut ChaCha8Rng,
    scenario: &str,
    complaint: &str,
    patient: u64,
    conditions: Conditions,
    days: f64,
    disposition: &str,
    results: &str,
    last_vitals: &str,
) -> String {
    let story = story(scenario);
    let mut out = String::with_capacity(2_200);
    diagnoses(rng, &mut out, &story, "Discharge diagnosis: ", conditions);
    out.push_str(&format!(
        "\n\nPresentation: admitted with {} for a stay of {days:.1} days. {}",
        complaint.to_lowercase(),
        any(
            rng,
            &[
                "Symptoms had been building at home before presentation.",
                "Referred from the emergency department after initial stabilization.",
                "Presented with the complaint above and was admitted for treatment and monitoring.",
            ]
        )
    ));
    out.push_str(&format!(
        " On admission the patient reported {}.",
        some_of(rng, story.symptoms, 2, 3)
    ));
    out.push_str("\nFunctional status: ");
    out.push_str(any(
        rng,
        &[
            "independent in activities of daily living before admission and at discharge",
            "needed help with bathing before admission; unchanged",
            "walks with a cane at home; assessed by physical therapy as safe for discharge",
            "deconditioned after the admission; home exercises prescribed",
            "independent, still working part-time",
        ],
    ));
    out.push('.');
    out.push_str("\nConsultations: ");
    out.push_str(any(
        rng,
        &[
            "none",
            "physical therapy; case management",
            "nutrition; physical therapy",
            "infectious diseases",
            "cardiology",
            "nephrology for creatinine trend",
            "social work for discharge planning",
        ],
    ));
    out.push_str(".\nProcedures: ");
    out.push_str(any(
        rng,
        match scenario {
            "sepsis_icu" => &[
                "arterial line; central venous catheter",
                "central venous catheter",
                "arterial line",
            ][..],
            "postoperative_recovery" => &[
                "the index operation as scheduled",
                "the index operation; urinary catheter removed on day one",
            ][..],
            "heart_failure_exacerbation" => &["transthoracic echocardiogram", "none"][..],
            _ => &["none", "chest radiograph", "none"][..],
        },
    ));
    out.push('.');
    out.push_str("\n\nHospital course: ");
    out.push_str(&some_lines(rng, story.plan, 2, 4).join(" "));
    out.push(' ');
    out.push_str(any(
        rng,
        &[
            "Symptoms settled gradually over the admission.",
            "Course was complicated by a brief period of delirium, which resolved.",
            "Mobilized with physical therapy and cleared for discharge.",
            "Oral intake improved and intravenous therapy was stopped.",
            "Pain was controlled on oral agents by the day of discharge.",
        ],
    ));
    out.push_str(results);
    out.push_str("\n\nCondition at discharge: ");
    out.push_str(any(
        rng,
        &[
            "stable",
            "improved",
            "ambulating independently",
            "at functional baseline",
            "stable, using a walker",
        ],
    ));
    out.push_str(". ");
    out.push_str(last_vitals);
    out.push_str("\n\nDischarge medications: ");
    let mut meds = medications(patient, conditions);
    meds.extend(match scenario {
        "pneumonia_admission" => &["amoxicillin-clavulanate to complete a 7-day course"][..],
        "heart_failure_exacerbation" => &["furosemide at the adjusted dose"][..],
        "sepsis_icu" => &["oral antibiotics to complete a 10-day course"][..],
        "postoperative_recovery" => &["acetaminophen as needed", "enoxaparin for two weeks"][..],
        _ => &[][..],
    });
    if meds.is_empty() {
        out.push_str("none.");
    } else {
        out.push_str(&meds.join("; "));
        out.push('.');
    }
    out.push_str("\nDisposition: ");
    out.push_str(disposition);
    out.push_str(".\nFollow-up: ");
    out.push_str(any(
        rng,
        &[
            "primary care within 7 days",
            "primary care in one to two weeks, with a basic metabolic panel",
            "the specialty clinic in two weeks",
            "primary care and the heart failure clinic within a week",
            "surgical clinic for wound check in ten to fourteen days",
        ],
    ));
    out.push_str(". Return precautions reviewed: ");
    out.push_str(any(
        rng,
        &[
            "worsening breathlessness, fever, chest pain or confusion",
            "fever, wound redness, or calf swelling",
            "weight gain of more than two kilograms in three days, or breathlessness lying flat",
            "any new or worsening symptoms",
        ],
    ));
    out.push('.');
    out.push_str("\n\nInstructions: ");
    out.push_str(any(rng, &[
        "Resume a regular diet with attention to salt intake. Walk daily as tolerated, increasing gradually.",
        "Low-sodium diet and daily morning weights, recorded in a log for the clinic visit.",
        "Keep the wound clean and dry; showering is allowed, no baths or swimming for two weeks.",
        "Complete the full course of antibiotics even if feeling well; stay well hydrated.",
        "Use the incentive spirometer ten times an hour while awake for the next week.",
    ]));
    out.push(' ');
    out.push_str(any(
        rng,
        &[
            "No driving while taking opioid pain medicine.",
            "The patient and family verbalized understanding of the plan.",
            "Written instructions were provided and reviewed with teach-back.",
            "Medication changes were reconciled with the outpatient pharmacy.",
        ],
    ));
    out.push_str("\nDiet: ");
    out.push_str(any(
        rng,
        &[
            "regular",
            "2 g sodium, 1.5 L fluid restriction",
            "consistent carbohydrate",
            "soft diet, advance as tolerated",
            "heart healthy",
        ],
    ));
    out.push_str(". Activity: ");
    out.push_str(any(
        rng,
        &[
            "as tolerated",
            "no lifting over ten pounds for six weeks",
            "walk three times a day, rest between",
            "weight bearing as tolerated with a walker",
        ],
    ));
    out.push('.');
    out.push_str("\nPending at discharge: ");
    out.push_str(any(
        rng,
        &[
            "none",
            "final blood culture results",
            "outpatient echocardiogram",
            "pathology report",
        ],
    ));
    out.push('.');
    out
}

/// The summary of a stay that ended in death: the same diagnoses and
/// presentation, the course to the end, and what followed.
#[allow(clippy::too_many_arguments)]
pub fn death(
    rng: &mut ChaCha8Rng,
    scenario: &str,
    complaint: &str,
    conditions: Conditions,
    days: f64,
    died: &str,
    results: &str,
    last_vitals: &str,
) -> String {
    let story = story(scenario);
    let mut out = String::with_capacity(2_000);
    diagnoses(
        rng,
        &mut out,
        &story,
        "Death summary.\nPrincipal diagnosis: ",
        conditions,
    );
    out.push_str(&format!(
        "\n\nPresentation: admitted with {}; the patient died on {died}, after {days:.1} days.",
        complaint.to_lowercase()
    ));
    out.push_str("\n\nHospital course: ");
    out.push_str(&some_lines(rng, story.plan, 2, 4).join(" "));
    out.push(' ');
    out.push_str(any(
        rng,
        &[
            "Despite treatment, pressures fell progressively and vasopressor requirements rose.",
            "The patient developed worsening hypotension and rising lactate over the final day.",
            "Renal function declined and urine output fell despite resuscitation.",
            "Mental status worsened as perfusion failed, with increasing oxygen requirements.",
        ],
    ));
    out.push(' ');
    out.push_str(any(rng, &[
        "After a goals-of-care meeting with the family, care was transitioned to comfort measures.",
        "The patient had a cardiac arrest; resuscitation was not successful.",
        "In keeping with the patient's documented wishes, no escalation beyond the ward was pursued.",
        "The family was present at the bedside.",
    ]));
    out.push_str(results);
    out.push_str("\n\nPrior history: ");
    out.push_str(if conditions == Conditions::default() {
        "no chronic illness was documented before this admission."
    } else {
        any(
            rng,
            &[
                "the chronic conditions above limited physiological reserve.",
                "chronic illness, as listed above, was managed alongside the acute problem.",
                "home medications for the conditions above were held on admission.",
            ],
        )
    });
    out.push_str(&format!(
        " On arrival the patient had reported {}.",
        some_of(rng, story.symptoms, 2, 3)
    ));
    out.push_str("\n\nFinal observations: ");
    out.push_str(last_vitals);
    out.push_str("\nCause of death: ");
    out.push_str(any(
        rng,
        &[
            "multi-organ failure due to septic shock",
            "refractory shock",
            "cardiogenic shock",
            "respiratory failure",
            "multi-organ failure",
        ],
    ));
    out.push_str(".\nNotifications: ");
    out.push_str(any(
        rng,
        &[
            "family notified; primary care physician informed",
            "health care proxy notified at the bedside",
            "family informed by telephone; the medical examiner was not required",
        ],
    ));
    out.push_str(".\nAutopsy: ");
    out.push_str(any(
        rng,
        &[
            "declined by family",
            "not requested",
            "offered and declined",
        ],
    ));
    out.push('.');
    out
}
