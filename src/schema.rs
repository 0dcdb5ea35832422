//! The file contracts: the JSON Schemas in `schemas/` (compiled in), the
//! datasets they describe, and checking CSV rows against them.
//!
//! The order of a schema's `properties` is its file's column order; the
//! writers' headers are checked against it by the test suite.

use std::sync::OnceLock;

use serde_json::{Map, Value};

/// A file of a batch, in generation order.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    Patients,
    Encounters,
    Vitals,
    Labs,
    Notes,
}

impl Dataset {
    pub const ALL: [Dataset; 5] = [
        Dataset::Patients,
        Dataset::Encounters,
        Dataset::Vitals,
        Dataset::Labs,
        Dataset::Notes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dataset::Patients => "patients",
            Dataset::Encounters => "encounters",
            Dataset::Vitals => "vitals",
            Dataset::Labs => "labs",
            Dataset::Notes => "notes",
        }
    }

    pub fn parse(name: &str) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The media type the file is served as.
    pub fn media_type(self) -> &'static str {
        match self {
            Dataset::Notes => "application/x-ndjson",
            _ => "text/csv; charset=utf-8",
        }
    }

    /// CSV with a header row, or JSON Lines.
    pub fn is_csv(self) -> bool {
        self != Dataset::Notes
    }

    pub fn file_name(self) -> &'static str {
        match self {
            Dataset::Patients => "patients.csv",
            Dataset::Encounters => "encounters.csv",
            Dataset::Vitals => "vitals.csv",
            Dataset::Labs => "labs.csv",
            Dataset::Notes => "notes.jsonl",
        }
    }

    pub fn schema_file(self) -> &'static str {
        match self {
            Dataset::Patients => "patients.schema.json",
            Dataset::Encounters => "encounters.schema.json",
            Dataset::Vitals => "vitals.schema.json",
            Dataset::Labs => "labs.schema.json",
            Dataset::Notes => "notes.schema.json",
        }
    }

    /// The schema's text, as shipped in `schemas/`.
    pub fn schema_text(self) -> &'static str {
        match self {
            Dataset::Patients => include_str!("../schemas/patients.schema.json"),
            Dataset::Encounters => include_str!("../schemas/encounters.schema.json"),
            Dataset::Vitals => include_str!("../schemas/vitals.schema.json"),
            Dataset::Labs => include_str!("../schemas/labs.schema.json"),
            Dataset::Notes => include_str!("../schemas/notes.schema.json"),
        }
    }

    /// The columns (for JSON Lines: the keys) the writer emits, in order.
    pub fn header(self) -> &'static [&'static str] {
        match self {
            Dataset::Patients => &[
                "patient_id",
                "mrn",
                "first_name",
                "last_name",
                "sex",
                "birth_date",
                "postal_code",
                "registered_date",
                "snapshot_date",
            ],
            Dataset::Encounters => &[
                "encounter_id",
                "patient_id",
                "encounter_type",
                "scenario",
                "department",
                "chief_complaint",
                "admit_time",
                "discharge_time",
                "disposition",
            ],
            Dataset::Vitals => &[
                "vital_id",
                "encounter_id",
                "patient_id",
                "measured_at",
                "heart_rate",
                "systolic_bp",
                "diastolic_bp",
                "respiratory_rate",
                "temperature_c",
                "spo2",
            ],
            Dataset::Labs => &[
                "lab_id",
                "encounter_id",
                "patient_id",
                "loinc_code",
                "test_name",
                "value",
                "unit",
                "reference_low",
                "reference_high",
                "abnormal_flag",
                "collected_at",
                "resulted_at",
            ],
            Dataset::Notes => &[
                "note_id",
                "encounter_id",
                "patient_id",
                "note_type",
                "authored_at",
                "author_role",
                "text",
            ],
        }
    }

    /// The schema's `x-schema-version`.
    pub fn version(self) -> &'static str {
        contract(self).version.as_str()
    }
}

/// A compiled schema with what the CSV reader needs to know of its columns.
pub struct Contract {
    pub schema: Value,
    pub version: String,
    pub columns: Vec<Column>,
    validator: jsonschema::Validator,
}

pub struct Column {
    pub name: String,
    pub nullable: bool,
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Number,
}

/// The compiled contract of a dataset. The schemas are part of the binary and
/// a test compiles each one, so failing here is a build defect, not input.
pub fn contract(dataset: Dataset) -> &'static Contract {
    static CONTRACTS: OnceLock<Vec<Contract>> = OnceLock::new();
    let all = CONTRACTS.get_or_init(|| {
        Dataset::ALL
            .into_iter()
            .map(|d| match Contract::compile(d) {
                Ok(c) => c,
                Err(e) => panic!("embedded schema {} is invalid: {e}", d.schema_file()),
            })
            .collect()
    });
    &all[Dataset::ALL.iter().position(|d| *d == dataset).unwrap_or(0)]
}

impl Contract {
    fn compile(dataset: Dataset) -> Result<Contract, String> {
        let schema: Value =
            serde_json::from_str(dataset.schema_text()).map_err(|e| e.to_string())?;
        let version = schema
            .get("x-schema-version")
            .and_then(Value::as_str)
            .ok_or("missing x-schema-version")?
            .to_string();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .ok_or("missing properties")?;
        let columns = properties
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
                } else {
                    Kind::String
                };
                Column {
                    name: name.clone(),
                    nullable: types.contains(&"null"),
                    kind,
                }
            })
            .collect();
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| e.to_string())?;
        Ok(Contract {
            schema,
            version,
            columns,
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

    #[test]
    fn every_schema_compiles_and_matches_its_writer_header() {
        for d in Dataset::ALL {
            let c = contract(d);
            let names: Vec<&str> = c.columns.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names, d.header(), "{}", d.name());
            assert_eq!(c.version, "1.0.0");
        }
    }

    /// The enumerations the generator draws from are exactly the ones the
    /// schemas allow: code and contract cannot drift apart.
    #[test]
    fn schema_enums_match_the_generator_vocabulary() {
        use crate::generate::{labs, notes};
        use crate::model::{Disposition, Sex};
        let allowed = |d: Dataset, column: &str| -> Vec<String> {
            let values = &contract(d).schema["properties"][column]["enum"];
            values
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v.dedup();
            v
        };
        let catalog = |f: fn(&labs::LabTest) -> &'static str| {
            sorted(labs::CATALOG.iter().map(|t| f(t).to_string()).collect())
        };
        assert_eq!(
            sorted(allowed(Dataset::Labs, "loinc_code")),
            catalog(|t| t.loinc)
        );
        assert_eq!(
            sorted(allowed(Dataset::Labs, "test_name")),
            catalog(|t| t.name)
        );
        assert_eq!(sorted(allowed(Dataset::Labs, "unit")), catalog(|t| t.unit));
        let strings = |xs: &[&str]| sorted(xs.iter().map(|s| s.to_string()).collect());
        let note_types: Vec<&str> = notes::NoteType::ALL.iter().map(|t| t.as_str()).collect();
        let roles: Vec<&str> = notes::AuthorRole::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            sorted(allowed(Dataset::Notes, "note_type")),
            strings(&note_types)
        );
        assert_eq!(
            sorted(allowed(Dataset::Notes, "author_role")),
            strings(&roles)
        );
        let sexes: Vec<&str> = Sex::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(sorted(allowed(Dataset::Patients, "sex")), strings(&sexes));
        let dispositions: Vec<&str> = [
            Disposition::Home,
            Disposition::HomeWithServices,
            Disposition::Admitted,
            Disposition::Transferred,
            Disposition::SkilledNursingFacility,
            Disposition::LeftAgainstMedicalAdvice,
            Disposition::Expired,
        ]
        .iter()
        .map(|d| d.as_str())
        .collect();
        assert_eq!(
            sorted(allowed(Dataset::Encounters, "disposition")),
            strings(&dispositions)
        );
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
