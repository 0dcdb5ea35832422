//! The rows of a batch's files, typed: what the generators return and the
//! writers encode. One type per dataset, and [`Row::encode`] puts its columns,
//! in schema order, into any [`Fields`] sink (a CSV line, a JSON object, and
//! later a Parquet column set), so no generator ever formats bytes.

use chrono::NaiveDate;

use crate::catalog::LabTest;
use crate::dataset::Dataset;
use crate::model::{AuthorRole, Conditions, Disposition, EncounterType, NoteType, Sex};

/// Where a row's columns go, one call per column, in schema order. The
/// method says what the value is; the sink decides how it is written.
pub trait Fields {
    /// An identifier: `prefix` and `number` zero-padded to `width` digits
    /// (`P00000042`, `E0000000123`).
    fn id(&mut self, prefix: &str, number: u64, width: usize);
    /// An encounter's child row: `E0000000123-V001`.
    fn child_id(&mut self, encounter: u64, kind: &str, seq: u32, width: usize);
    /// Free text, quoted or escaped as the format needs.
    fn text(&mut self, value: &str);
    /// A code or enumeration value: ASCII that never needs quoting.
    fn code(&mut self, value: &str);
    /// A whole number; `None` is a value not taken (empty, or null).
    fn uint(&mut self, value: Option<u64>);
    /// Tenths as a one-decimal number (372 is 37.2); `None` as for `uint`.
    fn tenths(&mut self, value: Option<u16>);
    /// A number with exactly `decimals` digits after the point.
    fn fixed(&mut self, value: f64, decimals: usize);
    /// A number in its shortest decimal form (135, 3.5, 0.6).
    fn shortest(&mut self, value: f64);
    /// An RFC 3339 UTC timestamp, from seconds since the epoch.
    fn timestamp(&mut self, epoch_seconds: i64);
    /// A calendar date, `YYYY-MM-DD`.
    fn date(&mut self, date: NaiveDate);
    /// No value: an empty CSV field, a JSON `null`.
    fn null(&mut self);
    /// `true` or `false` (a JSON boolean).
    fn boolean(&mut self, value: bool);
}

/// Something that writes itself as one line of a file, column by column.
pub trait Encode {
    fn encode<F: Fields>(&self, f: &mut F);
}

/// A row of one dataset's file.
pub trait Row: Encode {
    const DATASET: Dataset;
}

/// One patient of the master, and of a day's snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patient {
    /// The number behind `patient_id` (`P` + 8 digits).
    pub number: u64,
    pub mrn: String,
    pub first_name: String,
    pub last_name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub postal_code: String,
    pub registered_date: NaiveDate,
    /// The day the patient died in care, if they did.
    pub deceased_date: Option<NaiveDate>,
    // The rest is kept in the master only (state, not the feed).
    /// How often this patient seeks care, in hundredths of the average.
    pub propensity: u16,
    pub conditions: Conditions,
    /// The last visit day of each scenario that has a minimum gap, by name.
    pub last_visits: Vec<(String, NaiveDate)>,
    /// When this patient will be back in the emergency department after a
    /// visit that sent them home, if they will (epoch seconds).
    pub ed_return_at: Option<i64>,
}

/// Completed years of age on `date` of someone born on `birth_date`.
pub fn age(birth_date: NaiveDate, date: NaiveDate) -> u32 {
    date.years_since(birth_date).unwrap_or(0)
}

impl Patient {
    /// Completed years of age on `date`.
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        age(self.birth_date, date)
    }

    /// The columns the master and the snapshot share, in order.
    fn encode_master<F: Fields>(&self, f: &mut F) {
        f.id("P", self.number, 8);
        f.code(&self.mrn);
        f.text(&self.first_name);
        f.text(&self.last_name);
        f.code(self.sex.as_str());
        f.date(self.birth_date);
        f.code(&self.postal_code);
        f.date(self.registered_date);
        match self.deceased_date {
            Some(date) => f.date(date),
            None => f.null(),
        }
    }
}

/// A row of `patients_master.csv` (state, not a dataset): the snapshot's
/// columns without `snapshot_date`, then [`MASTER_ONLY`].
pub struct MasterRow<'a>(pub &'a Patient);

/// The master's columns after the snapshot's.
pub const MASTER_ONLY: [&str; 4] = ["propensity", "conditions", "last_visits", "ed_return_at"];

impl Encode for MasterRow<'_> {
    fn encode<F: Fields>(&self, f: &mut F) {
        let p = self.0;
        p.encode_master(f);
        f.uint(Some(u64::from(p.propensity)));
        // Most patients have neither: no allocation for them (the master is
        // rewritten whole every day).
        if p.conditions == Conditions::default() {
            f.code("");
        } else {
            f.code(&p.conditions.to_list());
        }
        if p.last_visits.is_empty() {
            f.text("");
        } else {
            let mut visits = String::with_capacity(32 * p.last_visits.len());
            for (i, (scenario, date)) in p.last_visits.iter().enumerate() {
                if i > 0 {
                    visits.push(';');
                }
                visits.push_str(scenario);
                visits.push(':');
                crate::numfmt::date(&mut visits, *date);
            }
            f.text(&visits);
        }
        match p.ed_return_at {
            Some(at) => f.timestamp(at),
            None => f.null(),
        }
    }
}

/// A row of `patients.csv`: a patient as of the snapshot date.
pub struct PatientRow<'a> {
    pub patient: &'a Patient,
    pub snapshot_date: NaiveDate,
}

impl Row for PatientRow<'_> {
    const DATASET: Dataset = Dataset::Patients;
}

impl Encode for PatientRow<'_> {
    fn encode<F: Fields>(&self, f: &mut F) {
        self.patient.encode_master(f);
        f.date(self.snapshot_date);
    }
}

/// Where an encounter stands in a row of the upsert feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Status {
    InProgress,
    Finished,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A row of `encounters.csv`: the encounter as of `updated_at`. An open
/// encounter has no discharge time or disposition yet.
pub struct EncounterRow<'a> {
    pub number: u64,
    pub patient: u64,
    pub encounter_type: EncounterType,
    pub scenario: &'a str,
    pub department: &'a str,
    pub chief_complaint: &'a str,
    pub admit: i64,
    /// The discharge time and disposition, once finished.
    pub end: Option<(i64, Disposition)>,
    /// The emergency visit this inpatient stay began in.
    pub source: Option<u64>,
}

impl EncounterRow<'_> {
    pub fn status(&self) -> Status {
        match self.end {
            Some(_) => Status::Finished,
            None => Status::InProgress,
        }
    }

    /// When this row's content became true.
    pub fn updated_at(&self) -> i64 {
        self.end.map_or(self.admit, |(discharge, _)| discharge)
    }
}

impl Row for EncounterRow<'_> {
    const DATASET: Dataset = Dataset::Encounters;
}

impl Encode for EncounterRow<'_> {
    fn encode<F: Fields>(&self, f: &mut F) {
        f.id("E", self.number, 10);
        f.id("P", self.patient, 8);
        f.code(self.encounter_type.as_str());
        f.code(self.scenario);
        f.text(self.department);
        f.text(self.chief_complaint);
        f.timestamp(self.admit);
        match self.end {
            Some((discharge, disposition)) => {
                f.timestamp(discharge);
                f.code(disposition.as_str());
            }
            None => {
                f.null();
                f.null();
            }
        }
        f.code(self.status().as_str());
        f.timestamp(self.updated_at());
        match self.source {
            Some(source) => f.id("E", source, 10),
            None => f.null(),
        }
    }
}

/// A row of `vitals.csv`: one charted set. `None` is a measurement not taken.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VitalRow {
    pub encounter: u64,
    pub patient: u64,
    /// 1-based position within the encounter (`-V001`).
    pub seq: u32,
    /// Seconds since the Unix epoch, UTC.
    pub measured_at: i64,
    pub heart_rate: Option<u16>,
    pub systolic_bp: Option<u16>,
    pub diastolic_bp: Option<u16>,
    pub respiratory_rate: Option<u16>,
    /// Tenths of a degree Celsius (372 = 37.2).
    pub temperature_dc: Option<u16>,
    pub spo2: Option<u16>,
}

impl Row for VitalRow {
    const DATASET: Dataset = Dataset::Vitals;
}

impl Encode for VitalRow {
    fn encode<F: Fields>(&self, f: &mut F) {
        let n = |v: Option<u16>| v.map(u64::from);
        f.child_id(self.encounter, "-V", self.seq, 3);
        f.id("E", self.encounter, 10);
        f.id("P", self.patient, 8);
        f.timestamp(self.measured_at);
        f.uint(n(self.heart_rate));
        f.uint(n(self.systolic_bp));
        f.uint(n(self.diastolic_bp));
        f.uint(n(self.respiratory_rate));
        f.tenths(self.temperature_dc);
        f.uint(n(self.spo2));
    }
}

/// A row of `labs.csv`: one test's result.
#[derive(Clone, Copy, Debug)]
pub struct LabRow {
    pub encounter: u64,
    pub patient: u64,
    /// 1-based position within the encounter (`-L001`).
    pub seq: u32,
    pub test: &'static LabTest,
    /// Already rounded to the test's decimals.
    pub value: f64,
    pub reference: (f64, f64),
    pub flag: &'static str,
    pub collected_at: i64,
    pub resulted_at: i64,
}

impl Row for LabRow {
    const DATASET: Dataset = Dataset::Labs;
}

impl Encode for LabRow {
    fn encode<F: Fields>(&self, f: &mut F) {
        f.child_id(self.encounter, "-L", self.seq, 3);
        f.id("E", self.encounter, 10);
        f.id("P", self.patient, 8);
        f.code(self.test.loinc);
        f.text(self.test.name);
        f.fixed(self.value, self.test.decimals);
        f.code(self.test.unit);
        f.shortest(self.reference.0);
        f.shortest(self.reference.1);
        f.code(self.flag);
        f.timestamp(self.collected_at);
        f.timestamp(self.resulted_at);
    }
}

/// A line of `notes.jsonl`: one clinical note.
#[derive(Clone, Debug)]
pub struct NoteRow {
    pub encounter: u64,
    pub patient: u64,
    /// 1-based position within the encounter (`-N01`).
    pub seq: u32,
    pub note_type: NoteType,
    pub authored_at: i64,
    pub author_role: AuthorRole,
    pub text: String,
    /// False for a note that copies forward an earlier day's values.
    pub grounded: bool,
}

impl Row for NoteRow {
    const DATASET: Dataset = Dataset::Notes;
}

impl Encode for NoteRow {
    fn encode<F: Fields>(&self, f: &mut F) {
        f.child_id(self.encounter, "-N", self.seq, 2);
        f.id("E", self.encounter, 10);
        f.id("P", self.patient, 8);
        f.code(self.note_type.as_str());
        f.timestamp(self.authored_at);
        f.code(self.author_role.as_str());
        f.text(&self.text);
        f.boolean(self.grounded);
    }
}
