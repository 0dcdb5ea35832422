//! The file contracts: the JSON Schemas in `schemas/` (compiled in, one per
//! dataset of the [`crate::dataset`] registry), and checking rows against them.
//!
//! The order of a schema's `properties` is its file's column order; the
//! writers' headers are checked against it by the test suite.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::dataset::Dataset;

/// The columns (for JSON Lines: the keys) of a dataset's file, in order:
/// its schema's `properties`.
pub fn header(dataset: Dataset) -> &'static [&'static str] {
    &contract(dataset).header
}

/// The schema's `x-schema-version`.
pub fn version(dataset: Dataset) -> &'static str {
    &contract(dataset).version
}

/// A compiled schema with what the CSV reader needs to know of its columns.
pub struct Contract {
    pub version: String,
    pub columns: Vec<Column>,
    /// The column names, in order.
    pub header: Vec<&'static str>,
    /// The published test catalog (`x-lab-catalog`; labs only, else empty).
    pub lab_catalog: Vec<CatalogTest>,
    validator: jsonschema::Validator,
}

/// One test of the lab catalog as `labs.schema.json` publishes it: what a
/// consumer (and `datagen validate`) checks lab rows against.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogTest {
    pub loinc_code: String,
    pub test_name: String,
    pub unit: String,
    pub reference: SexRanges,
    pub critical_low: Option<f64>,
    pub critical_high: Option<f64>,
    /// Every value stays inside this range.
    pub plausible: (f64, f64),
    /// Digits after the decimal point the value is reported with.
    pub decimals: usize,
}

/// Adult reference ranges by sex.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SexRanges {
    pub female: (f64, f64),
    pub male: (f64, f64),
}

impl SexRanges {
    /// The range for a patient of `sex` (`female`, `male`; the union of both
    /// for `other` and `unknown`).
    pub fn for_sex(&self, sex: &str) -> (f64, f64) {
        match sex {
            "female" => self.female,
            "male" => self.male,
            _ => (
                self.female.0.min(self.male.0),
                self.female.1.max(self.male.1),
            ),
        }
    }
}

pub struct Column {
    pub name: String,
    pub nullable: bool,
    pub kind: Kind,
    /// The values an enumerated column allows (empty for any other).
    pub allowed: Vec<String>,
    /// The bounds of a numeric column.
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    /// An RFC 3339 UTC timestamp column (`format: date-time`).
    pub timestamp: bool,
    /// A calendar date column (`format: date`).
    pub date: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Number,
    Boolean,
}

/// The compiled contract of a dataset. The schemas are part of the binary and
/// a test compiles each one, so failing here is a build defect, not input.
pub fn contract(dataset: Dataset) -> &'static Contract {
    static CONTRACTS: OnceLock<Vec<Contract>> = OnceLock::new();
    let all = CONTRACTS.get_or_init(|| {
        crate::dataset::REGISTRY
            .iter()
            .map(|spec| spec.dataset)
            .map(|d| match Contract::compile(d) {
                Ok(c) => c,
                Err(e) => panic!("embedded schema {} is invalid: {e}", d.spec().schema_file),
            })
            .collect()
    });
    &all[dataset as usize]
}

impl Contract {
    fn compile(dataset: Dataset) -> Result<Contract, String> {
        let schema: Value =
            serde_json::from_str(dataset.spec().schema_text).map_err(|e| e.to_string())?;
        let version = schema
            .get("x-schema-version")
            .and_then(Value::as_str)
            .ok_or("missing x-schema-version")?
            .to_string();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .ok_or("missing properties")?;
        let columns: Vec<Column> = properties
            .iter()
            .map(|(name, spec)| {
                let types: Vec<&str> = match spec.get("type") {
                    Some(Value::String(t)) => vec![t.as_str()],
                    Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                let kind = if types.contains(&"integer") {
                    Kind::Integer
                } else if types.contains(&"number") {
                    Kind::Number
                } else if types.contains(&"boolean") {
                    Kind::Boolean
                } else {
                    Kind::String
                };
                Column {
                    name: name.clone(),
                    nullable: types.contains(&"null"),
                    kind,
                    allowed: spec
                        .get("enum")
                        .and_then(Value::as_array)
                        .map(|values| {
                            values
                                .iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                    minimum: spec.get("minimum").and_then(Value::as_f64),
                    maximum: spec.get("maximum").and_then(Value::as_f64),
                    timestamp: spec.get("format").and_then(Value::as_str) == Some("date-time"),
                    date: spec.get("format").and_then(Value::as_str) == Some("date"),
                }
            })
            .collect();
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| e.to_string())?;
        let lab_catalog = match schema.get("x-lab-catalog") {
            Some(catalog) => serde_json::from_value(catalog.clone())
                .map_err(|e| format!("x-lab-catalog: {e}"))?,
            None => Vec::new(),
        };
        // Compiled once per process (see `contract`), so leaking the few
        // names gives every caller a plain `&'static [&str]`.
        let header = columns
            .iter()
            .map(|c: &Column| &*c.name.clone().leak())
            .collect();
        Ok(Contract {
            version,
            columns,
            header,
            lab_catalog,
            validator,
        })
    }

    /// Checks a header row against the column order.
    pub fn check_header(&self, header: &csv::StringRecord) -> Result<(), String> {
        let expected: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        let actual: Vec<&str> = header.iter().collect();
        if expected == actual {
            Ok(())
        } else {
            Err(format!(
                "header is [{}], the schema requires [{}]",
                actual.join(","),
                expected.join(",")
            ))
        }
    }

    /// Turns a CSV row into the JSON object the schema describes: empty cells
    /// of nullable columns become null, numeric columns become numbers where
    /// they parse (and stay strings, which the schema then rejects, where not).
    pub fn row_to_json(&self, row: &csv::StringRecord) -> Value {
        let mut object = Map::with_capacity(self.columns.len());
        for (column, cell) in self.columns.iter().zip(row.iter()) {
            let value = if cell.is_empty() && column.nullable {
                Value::Null
            } else {
                match column.kind {
                    Kind::Integer => cell
                        .parse::<i64>()
                        .map(Value::from)
                        .unwrap_or_else(|_| Value::from(cell)),
                    Kind::Number => cell
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                        .unwrap_or_else(|| Value::from(cell)),
                    Kind::Boolean => match cell {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        _ => Value::from(cell),
                    },
                    Kind::String => Value::from(cell),
                }
            };
            object.insert(column.name.clone(), value);
        }
        Value::Object(object)
    }

    /// Validates one row; the error names the column and the rule broken.
    pub fn check_row(&self, row: &csv::StringRecord) -> Result<(), String> {
        if row.len() != self.columns.len() {
            return Err(format!(
                "has {} fields, the schema has {} columns",
                row.len(),
                self.columns.len()
            ));
        }
        self.check_value(&self.row_to_json(row))
    }

    /// Validates one JSON object (a JSON Lines row, or a converted CSV row).
    pub fn check_value(&self, value: &Value) -> Result<(), String> {
        self.validator.validate(value).map_err(|e| {
            let path = e.instance_path().to_string();
            let column = path.trim_start_matches('/');
            if column.is_empty() {
                e.to_string()
            } else {
                format!("column {column}: {e}")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(d: Dataset) -> Value {
        serde_json::from_str(d.spec().schema_text).unwrap()
    }

    /// Every schema compiles, and every row type writes exactly as many
    /// columns as its schema has.
    #[test]
    fn every_schema_compiles_and_every_row_writes_its_columns() {
        use chrono::NaiveDate;

        use crate::model::{AuthorRole, Disposition, EncounterType, NoteType, Sex};
        use crate::rows::*;

        struct Count(usize);
        impl Fields for Count {
            fn id(&mut self, _: &str, _: u64, _: usize) {
                self.0 += 1;
            }
            fn child_id(&mut self, _: u64, _: &str, _: u32, _: usize) {
                self.0 += 1;
            }
            fn text(&mut self, _: &str) {
                self.0 += 1;
            }
            fn code(&mut self, _: &str) {
                self.0 += 1;
            }
            fn uint(&mut self, _: Option<u64>) {
                self.0 += 1;
            }
            fn tenths(&mut self, _: Option<u16>) {
                self.0 += 1;
            }
            fn fixed(&mut self, _: f64, _: usize) {
                self.0 += 1;
            }
            fn shortest(&mut self, _: f64) {
                self.0 += 1;
            }
            fn timestamp(&mut self, _: i64) {
                self.0 += 1;
            }
            fn date(&mut self, _: NaiveDate) {
                self.0 += 1;
            }
            fn null(&mut self) {
                self.0 += 1;
            }
            fn boolean(&mut self, _: bool) {
                self.0 += 1;
            }
        }
        fn columns<R: Row>(row: &R) -> (Dataset, usize) {
            let mut count = Count(0);
            row.encode(&mut count);
            (R::DATASET, count.0)
        }
        let day = NaiveDate::from_ymd_opt(2026, 2, 8).unwrap();
        let patient = Patient {
            number: 1,
            mrn: "MRN000000001".into(),
            first_name: "A".into(),
            last_name: "B".into(),
            sex: Sex::Female,
            birth_date: day,
            postal_code: "01234".into(),
            registered_date: day,
            deceased_date: None,
            propensity: 100,
            conditions: crate::model::Conditions::default(),
            last_visits: Vec::new(),
            ed_return_at: None,
        };
        let counted = [
            columns(&PatientRow {
                patient: &patient,
                snapshot_date: day,
            }),
            columns(&EncounterRow {
                number: 1,
                patient: 1,
                encounter_type: EncounterType::Inpatient,
                scenario: "s",
                department: "d",
                chief_complaint: "c",
                admit: 0,
                end: Some((60, Disposition::Home)),
                source: None,
            }),
            columns(&VitalRow {
                encounter: 1,
                patient: 1,
                seq: 1,
                measured_at: 0,
                heart_rate: None,
                systolic_bp: None,
                diastolic_bp: None,
                respiratory_rate: None,
                temperature_dc: None,
                spo2: None,
            }),
            columns(&LabRow {
                encounter: 1,
                patient: 1,
                seq: 1,
                test: &crate::catalog::CATALOG[0],
                value: 140.0,
                reference: (135.0, 145.0),
                flag: "N",
                collected_at: 0,
                resulted_at: 60,
            }),
            columns(&NoteRow {
                encounter: 1,
                patient: 1,
                seq: 1,
                note_type: NoteType::Triage,
                authored_at: 0,
                author_role: AuthorRole::TriageNurse,
                text: String::new(),
                grounded: true,
            }),
        ];
        for (d, count) in counted {
            assert_eq!(count, crate::schema::header(d).len(), "{}", d.name());
            // Notes went to 3.0.0 when they gained `grounded`, and to 3.1.0
            // with nursing notes (two enum values more).
            let expected = if d == Dataset::Notes {
                "3.1.0"
            } else {
                "2.0.0"
            };
            assert_eq!(contract(d).version, expected, "{}", d.name());
        }
    }

    /// The enumerations the generator draws from are exactly the ones the
    /// schemas allow, variant by variant (strum iterates every variant, so a
    /// new one without a schema change fails here), and every value the
    /// configured scenarios put in a file passes its column's schema.
    #[test]
    fn every_value_the_generator_emits_is_allowed_by_its_schema() {
        use strum::IntoEnumIterator;

        use crate::catalog as labs;
        use crate::model::{AuthorRole, Disposition, EncounterType, NoteType, Sex};

        let sorted = |values: Vec<String>| -> Vec<String> {
            let mut values = values;
            values.sort();
            values.dedup();
            values
        };
        let allowed = |d: Dataset, column: &str| -> Vec<String> {
            let schema = schema_of(d);
            let values = schema["properties"][column]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{}.{column} has no enum", d.name()));
            // A nullable column's enum also allows null: not a value.
            sorted(
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
            )
        };
        let emitted = |values: Vec<&str>| sorted(values.into_iter().map(String::from).collect());

        let enums = [
            (
                Dataset::Patients,
                "sex",
                emitted(Sex::iter().map(Sex::as_str).collect()),
            ),
            (
                Dataset::Encounters,
                "encounter_type",
                emitted(EncounterType::iter().map(EncounterType::as_str).collect()),
            ),
            (
                Dataset::Encounters,
                "status",
                emitted(
                    crate::rows::Status::iter()
                        .map(crate::rows::Status::as_str)
                        .collect(),
                ),
            ),
            (
                Dataset::Encounters,
                "disposition",
                emitted(Disposition::iter().map(Disposition::as_str).collect()),
            ),
            (
                Dataset::Notes,
                "note_type",
                emitted(NoteType::iter().map(NoteType::as_str).collect()),
            ),
            (
                Dataset::Notes,
                "author_role",
                emitted(AuthorRole::iter().map(AuthorRole::as_str).collect()),
            ),
            (
                Dataset::Labs,
                "loinc_code",
                emitted(labs::CATALOG.iter().map(|t| t.loinc).collect()),
            ),
            (
                Dataset::Labs,
                "test_name",
                emitted(labs::CATALOG.iter().map(|t| t.name).collect()),
            ),
            (
                Dataset::Labs,
                "unit",
                emitted(labs::CATALOG.iter().map(|t| t.unit).collect()),
            ),
        ];
        for (d, column, values) in enums {
            assert_eq!(allowed(d, column), values, "{}.{column}", d.name());
        }

        // Config-driven vocabularies: each value must pass its column's schema.
        let config = crate::config::Config::load(&crate::config::ConfigSources {
            file: None,
            env: Some(Default::default()),
        })
        .unwrap();
        let column = |column: &str| {
            jsonschema::validator_for(&schema_of(Dataset::Encounters)["properties"][column])
                .unwrap()
        };
        let (scenario, department, complaint) = (
            column("scenario"),
            column("department"),
            column("chief_complaint"),
        );
        for s in &config.scenarios {
            assert!(
                scenario.is_valid(&s.name.as_str().into()),
                "scenario {}",
                s.name
            );
            assert!(
                department.is_valid(&s.department.as_str().into()),
                "{}",
                s.department
            );
            for c in &s.chief_complaints {
                assert!(complaint.is_valid(&c.as_str().into()), "{c}");
            }
        }
        assert!(config.scenarios.len() >= 12);
    }

    /// The generator's catalog is the published one, test by test, so what
    /// `validate` reads from the schema is what the generator produces.
    #[test]
    fn the_published_lab_catalog_is_the_generators() {
        use crate::catalog::CATALOG;
        let published = &contract(Dataset::Labs).lab_catalog;
        assert_eq!(published.len(), CATALOG.len());
        for (p, t) in published.iter().zip(CATALOG) {
            assert_eq!(
                (p.loinc_code.as_str(), p.test_name.as_str(), p.unit.as_str()),
                (t.loinc, t.name, t.unit)
            );
            assert_eq!(
                [p.reference.female, p.reference.male],
                t.reference,
                "{}",
                t.name
            );
            assert_eq!((p.critical_low, p.critical_high), t.critical, "{}", t.name);
            assert_eq!(p.plausible, t.plausible, "{}", t.name);
            assert_eq!(p.decimals, t.decimals, "{}", t.name);
        }
        // The schema's own clauses enforce the catalog on a row.
        let c = contract(Dataset::Labs);
        let row = |loinc: &str, name: &str, value: &str| {
            csv::StringRecord::from(vec![
                "E0000000001-L001",
                "E0000000001",
                "P00000001",
                loinc,
                name,
                value,
                "mmol/L",
                "135",
                "145",
                "N",
                "2026-02-08T10:00:00Z",
                "2026-02-08T11:00:00Z",
            ])
        };
        assert_eq!(c.check_row(&row("2951-2", "Sodium", "140")), Ok(()));
        assert!(c.check_row(&row("2951-2", "Potassium", "140")).is_err());
        assert!(c.check_row(&row("2951-2", "Sodium", "170")).is_err());
    }

    #[test]
    fn rows_are_typed_and_rejected_with_the_column_named() {
        let c = contract(Dataset::Vitals);
        let ok = csv::StringRecord::from(vec![
            "E0000000001-V001",
            "E0000000001",
            "P00000001",
            "2026-02-08T10:00:00Z",
            "80",
            "120",
            "80",
            "16",
            "",
            "98",
        ]);
        assert_eq!(c.check_row(&ok), Ok(()));
        let mut bad: Vec<&str> = ok.iter().collect();
        bad[4] = "300";
        let err = c.check_row(&csv::StringRecord::from(bad)).unwrap_err();
        assert!(err.contains("heart_rate"), "{err}");
    }
}
