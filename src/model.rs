//! The vocabulary shared by every layer: modes, batch dates, the enumerations
//! that appear in the files, and the identifier formats.
//!
//! Everything here is parsed at the edge (CLI flags, HTTP paths, state files)
//! before any path is built from it.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

/// Input that is not a mode or a supported date. Parsing happens at the
/// edge, so these carry the input as given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid date {input:?}: {reason}")]
    InvalidDate { input: String, reason: String },
    #[error("unknown mode {0:?}: expected raw or sample")]
    UnknownMode(String),
}

/// A batch's volume mode; each mode has its own data folder and its own state.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Raw,
    Sample,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Raw, Mode::Sample];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Raw => "raw",
            Mode::Sample => "sample",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "raw" => Ok(Mode::Raw),
            "sample" => Ok(Mode::Sample),
            other => Err(ParseError::UnknownMode(other.to_string())),
        }
    }
}

/// A run date, accepted only as a real calendar date in `YYYY-MM-DD` form
/// inside the supported range, so that it is safe to use as a folder name and
/// every timestamp of its batch (the longest stay included) is a valid
/// four-digit-year RFC 3339 time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchDate(NaiveDate);

const fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("not a calendar date"),
    }
}

impl BatchDate {
    /// The first supported run date.
    pub const MIN: BatchDate = BatchDate(ymd(1900, 1, 1));
    /// The last supported run date. Stays last at most 90 days (config
    /// validation), so the latest timestamp is in 2200.
    pub const MAX: BatchDate = BatchDate(ymd(2199, 12, 31));

    /// The supported range as a JSON Schema `pattern` (ECMA-262): exactly the
    /// real calendar dates from [`BatchDate::MIN`] to [`BatchDate::MAX`], leap
    /// days included (1900 and 2100 are not leap years, 2000 is). Published in
    /// the OpenAPI document, so a client generating dates from the spec only
    /// sends dates the service accepts; a unit test checks it day by day.
    pub const PATTERN: &str = concat!(
        "^(?:(?:19|20|21)[0-9]{2}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])",
        "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))",
        "|(?:19|20|21)(?:0[48]|[2468][048]|[13579][26])-02-29|2000-02-29)$"
    );

    pub fn date(self) -> NaiveDate {
        self.0
    }

    pub fn is_weekend(self) -> bool {
        matches!(self.0.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The next day, if it is in the supported range.
    pub fn succ(self) -> Option<BatchDate> {
        self.0
            .succ_opt()
            .map(BatchDate)
            .filter(|d| *d <= BatchDate::MAX)
    }

    /// The day `days` after, if it is in the supported range.
    pub fn days_after(self, days: u64) -> Option<BatchDate> {
        self.0
            .checked_add_days(chrono::Days::new(days))
            .map(BatchDate)
            .filter(|d| *d <= BatchDate::MAX)
    }

    /// The day `days` before, if it is in the supported range.
    pub fn days_before(self, days: u64) -> Option<BatchDate> {
        self.0
            .checked_sub_days(chrono::Days::new(days))
            .map(BatchDate)
            .filter(|d| *d >= BatchDate::MIN)
    }
}

/// In JSON (the manifest), the same `YYYY-MM-DD` text.
impl Serialize for BatchDate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BatchDate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How the OpenAPI document describes a date path parameter: the format, and
/// the supported range as a pattern a schema-driven client can generate from.
impl utoipa::PartialSchema for BatchDate {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .pattern(Some(BatchDate::PATTERN))
            .description(Some(format!(
                "A run date, YYYY-MM-DD, from {} to {} inclusive.",
                BatchDate::MIN,
                BatchDate::MAX
            )))
            .examples(["2026-02-08"])
            .into()
    }
}

impl utoipa::ToSchema for BatchDate {}

impl fmt::Display for BatchDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl FromStr for BatchDate {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let invalid = |reason: &str| ParseError::InvalidDate {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        if !has_date_shape(s) {
            return Err(invalid("expected a calendar date as YYYY-MM-DD"));
        }
        let date = BatchDate(parse_iso_date(s).ok_or_else(|| invalid("no such calendar date"))?);
        if !(BatchDate::MIN..=BatchDate::MAX).contains(&date) {
            return Err(invalid(&format!(
                "outside the supported range {}..{}",
                BatchDate::MIN,
                BatchDate::MAX
            )));
        }
        Ok(date)
    }
}

fn has_date_shape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Any real calendar date written exactly as `YYYY-MM-DD` (birth dates may
/// predate the earliest batch date).
pub fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    if !has_date_shape(s) {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Sex> {
        s.parse().ok()
    }
}

/// A chronic condition a patient lives with: it sets their baselines (blood
/// pressure, creatinine, glucose, haemoglobin) and which follow-up clinics
/// they attend.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Condition {
    Hypertension,
    Diabetes,
    /// Chronic kidney disease, stage 3 or worse.
    Ckd,
    Copd,
    HeartFailure,
    Anaemia,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The set of a patient's chronic conditions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Conditions(u8);

impl Conditions {
    pub fn has(self, condition: Condition) -> bool {
        self.0 & condition.bit() != 0
    }

    pub fn insert(&mut self, condition: Condition) {
        self.0 |= condition.bit();
    }

    pub fn iter(self) -> impl Iterator<Item = Condition> {
        use strum::IntoEnumIterator;
        Condition::iter().filter(move |c| self.has(*c))
    }

    /// `hypertension;diabetes`, in declaration order; empty for none.
    pub fn to_list(self) -> String {
        self.iter()
            .map(Condition::as_str)
            .collect::<Vec<_>>()
            .join(";")
    }

    /// The inverse of [`Conditions::to_list`]; `None` names an unknown one.
    pub fn parse_list(s: &str) -> Option<Conditions> {
        let mut set = Conditions::default();
        for name in s.split(';').filter(|n| !n.is_empty()) {
            set.insert(name.parse().ok()?);
        }
        Some(set)
    }
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "snake_case")]
pub enum EncounterType {
    Outpatient,
    Emergency,
    Inpatient,
}

impl EncounterType {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Disposition {
    Home,
    HomeWithServices,
    Admitted,
    Transferred,
    SkilledNursingFacility,
    LeftAgainstMedicalAdvice,
    Expired,
}

impl Disposition {
    pub fn parse(s: &str) -> Option<Disposition> {
        s.parse().ok()
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The kinds of note written (notes.jsonl `note_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum NoteType {
    ClinicNote,
    Triage,
    EdDisposition,
    AdmissionNote,
    Progress,
    NursingNote,
    DischargeSummary,
}

impl NoteType {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Who writes a note (notes.jsonl `author_role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum AuthorRole {
    Physician,
    NursePractitioner,
    TriageNurse,
    EmergencyPhysician,
    Hospitalist,
    RegisteredNurse,
}

impl AuthorRole {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// `P` + 8 digits, from the mode's patient counter.
pub fn patient_id(number: u64) -> String {
    format!("P{number:08}")
}

/// `E` + 10 digits, from the mode's encounter counter.
pub fn encounter_id(number: u64) -> String {
    format!("E{number:010}")
}

/// Parses `P00000042` back to 42.
pub fn parse_patient_id(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('P')?;
    (digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Parses `E0000000123` back to 123.
pub fn parse_encounter_id(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('E')?;
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// A medical record number that looks unrelated to the patient id but is
/// unique: an affine bijection on 0..10^9 (3^18 is coprime to 10^9).
pub fn mrn(patient_number: u64) -> String {
    const MODULUS: u64 = 1_000_000_000;
    let scrambled = (patient_number.wrapping_mul(387_420_489) + 104_729) % MODULUS;
    let mut mrn = String::with_capacity(12);
    mrn.push_str("MRN");
    crate::numfmt::padded(&mut mrn, scrambled, 9);
    mrn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_step_inside_the_supported_range_only() {
        let d = |s: &str| s.parse::<BatchDate>().unwrap();
        assert_eq!(d("2026-02-28").succ(), Some(d("2026-03-01")));
        assert_eq!(BatchDate::MAX.succ(), None);
        assert_eq!(d("2026-03-01").days_before(1), Some(d("2026-02-28")));
        assert_eq!(d("1900-01-10").days_before(9), Some(BatchDate::MIN));
        assert_eq!(d("1900-01-10").days_before(10), None);
    }

    #[test]
    fn dates_must_be_real_and_well_formed() {
        assert!("2026-02-08".parse::<BatchDate>().is_ok());
        for bad in [
            "2026-02-30",
            "20260208",
            "../x",
            "2026-2-8",
            "2026-02-08/..",
            "",
        ] {
            assert!(bad.parse::<BatchDate>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_supported_range_is_enforced_at_both_bounds() {
        for ok in ["1900-01-01", "2199-12-31", "2000-02-29"] {
            assert!(ok.parse::<BatchDate>().is_ok(), "{ok} refused");
        }
        for out in ["1899-12-31", "2200-01-01", "0001-01-01", "9999-12-31"] {
            let err = out.parse::<BatchDate>().unwrap_err().to_string();
            assert!(
                err.contains("outside the supported range 1900-01-01..2199-12-31"),
                "{out}: {err}"
            );
        }
    }

    /// The published pattern accepts exactly the dates the parser accepts:
    /// every day from a week before the range to a week after it, plus
    /// strings that only look like dates.
    #[test]
    fn the_published_pattern_matches_the_parser_day_by_day() {
        let pattern = jsonschema::validator_for(
            &serde_json::json!({ "type": "string", "pattern": BatchDate::PATTERN }),
        )
        .unwrap();
        let mut day = NaiveDate::from_ymd_opt(1899, 12, 25).unwrap();
        let end = NaiveDate::from_ymd_opt(2200, 1, 7).unwrap();
        let mut checked = 0;
        while day <= end {
            let text = day.format("%Y-%m-%d").to_string();
            assert_eq!(
                pattern.is_valid(&serde_json::json!(text)),
                text.parse::<BatchDate>().is_ok(),
                "{text}"
            );
            day = day.succ_opt().unwrap();
            checked += 1;
        }
        assert!(checked > 109_000);
        for text in [
            "1900-02-29",
            "2100-02-29",
            "2026-02-30",
            "2026-04-31",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "2026-02-08\n",
            " 2026-02-08",
            "",
        ] {
            assert!(!pattern.is_valid(&serde_json::json!(text)), "{text}");
            assert!(text.parse::<BatchDate>().is_err(), "{text}");
        }
    }

    #[test]
    fn ids_round_trip_and_mrns_are_unique() {
        assert_eq!(patient_id(42), "P00000042");
        assert_eq!(parse_patient_id("P00000042"), Some(42));
        assert_eq!(parse_patient_id("P42"), None);
        assert_eq!(encounter_id(123), "E0000000123");
        let mrns: std::collections::HashSet<_> = (1..20_000).map(mrn).collect();
        assert_eq!(mrns.len(), 19_999);
    }
}
