//! The batch manifest, `_manifest.json`: written last, so its presence means
//! the batch is complete, and it lists what every file must be.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{BatchDate, Mode};
use crate::output::Written;

pub const MANIFEST_FILE: &str = "_manifest.json";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[schema(value_type = crate::model::BatchDate)]
    pub date: BatchDate,
    pub mode: Mode,
    pub generator: Generator,
    pub seed: u64,
    /// sha256 of the generation-shaping config (see `Config::fingerprint`).
    pub config_sha256: String,
    /// The day's volumes: new patients, and encounters planned.
    pub volumes: crate::pipeline::DayVolumes,
    /// IDs this batch took from the mode's counters (first..=last; null when none).
    pub ids: IdRanges,
    /// Every dataset of the batch, in generation order, then the defects'
    /// ground truth `_defects.jsonl` when the batch has a defects profile
    /// (the manifest itself, `_manifest.json`, is written last and not
    /// listed).
    pub files: Vec<FileEntry>,
    /// The defects profile the batch was generated with (`light`, `heavy`,
    /// `custom:<digest>`); absent for clean batches (`none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defects: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Generator {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdRanges {
    pub new_patients: Option<[String; 2]>,
    pub encounters: Option<[String; 2]>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// One of the batch's datasets, in generation order: patients.csv,
    /// encounters.csv, vitals.csv, labs.csv, notes.jsonl.
    #[schema(example = "labs.csv")]
    pub name: String,
    /// The schema this file conforms to and its version (see README,
    /// "Schema versions").
    pub schema: String,
    pub schema_version: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    /// The file's columns when they drifted from the schema's on this date
    /// (a column renamed, added or moved; `schema_version` announces it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
}

impl FileEntry {
    /// The dataset's name (`vitals` for `vitals.csv`), or the file name for
    /// a file the registry does not know.
    pub fn dataset_name(&self) -> &str {
        crate::dataset::Dataset::of_file(&self.name).map_or(self.name.as_str(), |d| d.name())
    }

    pub fn new(written: Written, dataset: crate::dataset::Dataset) -> FileEntry {
        FileEntry {
            name: written.name,
            schema: dataset.schema_file().to_string(),
            schema_version: crate::schema::version(dataset).to_string(),
            rows: written.rows,
            bytes: written.bytes,
            sha256: written.sha256,
            columns: None,
        }
    }
}

impl Manifest {
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and integers always serializes.
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(Error::io("cannot read", &path))?;
        Manifest::parse(&bytes, &path)
    }

    pub fn parse(bytes: &[u8], path: &Path) -> Result<Manifest> {
        serde_json::from_slice(bytes).map_err(|e| Error::Invalid {
            file: path.display().to_string(),
            line: Some(e.line() as u64),
            reason: format!("not a valid manifest: {e}"),
        })
    }

    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }
}
