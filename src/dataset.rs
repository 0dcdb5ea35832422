//! The dataset registry: every file of a batch, declared once, in generation
//! order. The pipeline, the manifest, `validate`, the HTTP routes, the
//! OpenAPI document, the metrics and the tests all read it; a file's columns
//! (its header, or its JSON keys) are its schema's `properties`, in order
//! ([`crate::schema::header`]).
//!
//! Adding a dataset: a variant here and its [`REGISTRY`] entry, its schema in
//! `schemas/`, its row type in [`crate::rows`], and its generator.

/// A file of a batch, in generation order.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
    strum::EnumIter,
)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    Patients,
    Encounters,
    Vitals,
    Labs,
    Notes,
    /// The ground truth of a batch with defects (`_defects.jsonl`): not a
    /// dataset of the feed, and only in batches of a profile other than
    /// `none`.
    Defects,
}

/// How a dataset's file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// UTF-8, a header row, `\n` line ends, RFC 4180 quoting.
    Csv,
    /// One JSON object per line, keys in schema order.
    JsonLines,
}

/// Which files a batch has for each dataset: its text file (CSV, or JSON
/// Lines for notes), its Parquet file (`crate::columnar`), or both.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Csv,
    Parquet,
    Both,
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl OutputFormat {
    /// Whether the text files are written.
    pub fn text(self) -> bool {
        self != OutputFormat::Parquet
    }

    /// Whether the Parquet files are written.
    pub fn parquet(self) -> bool {
        self != OutputFormat::Csv
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The format of a batch whose manifest lists `files`.
    pub fn of_files<'a>(mut files: impl Iterator<Item = &'a str>) -> OutputFormat {
        let (mut text, mut parquet) = (false, false);
        for name in &mut files {
            match Dataset::of_file(name) {
                Some(Dataset::Defects) | None => {}
                Some(_) if name.ends_with(".parquet") => parquet = true,
                Some(_) => text = true,
            }
        }
        match (text, parquet) {
            (true, true) => OutputFormat::Both,
            (false, true) => OutputFormat::Parquet,
            _ => OutputFormat::Csv,
        }
    }
}

/// The media type Parquet files are served as.
pub const PARQUET_MEDIA_TYPE: &str = "application/vnd.apache.parquet";

impl FileFormat {
    /// The media type a file of this format is served as.
    pub fn media_type(self) -> &'static str {
        match self {
            FileFormat::Csv => "text/csv; charset=utf-8",
            FileFormat::JsonLines => "application/x-ndjson",
        }
    }
}

/// What the registry says of one dataset.
pub struct Spec {
    pub dataset: Dataset,
    pub name: &'static str,
    pub file_name: &'static str,
    pub schema_file: &'static str,
    /// The schema as shipped in `schemas/`, compiled in.
    pub schema_text: &'static str,
    pub format: FileFormat,
}

/// Every file a batch may hold, in generation order (the order of
/// [`Dataset`]'s variants): the feed's five datasets, then the defects'
/// ground truth.
pub const REGISTRY: [Spec; 6] = [
    Spec {
        dataset: Dataset::Patients,
        name: "patients",
        file_name: "patients.csv",
        schema_file: "patients.schema.json",
        schema_text: include_str!("../schemas/patients.schema.json"),
        format: FileFormat::Csv,
    },
    Spec {
        dataset: Dataset::Encounters,
        name: "encounters",
        file_name: "encounters.csv",
        schema_file: "encounters.schema.json",
        schema_text: include_str!("../schemas/encounters.schema.json"),
        format: FileFormat::Csv,
    },
    Spec {
        dataset: Dataset::Vitals,
        name: "vitals",
        file_name: "vitals.csv",
        schema_file: "vitals.schema.json",
        schema_text: include_str!("../schemas/vitals.schema.json"),
        format: FileFormat::Csv,
    },
    Spec {
        dataset: Dataset::Labs,
        name: "labs",
        file_name: "labs.csv",
        schema_file: "labs.schema.json",
        schema_text: include_str!("../schemas/labs.schema.json"),
        format: FileFormat::Csv,
    },
    Spec {
        dataset: Dataset::Notes,
        name: "notes",
        file_name: "notes.jsonl",
        schema_file: "notes.schema.json",
        schema_text: include_str!("../schemas/notes.schema.json"),
        format: FileFormat::JsonLines,
    },
    Spec {
        dataset: Dataset::Defects,
        name: "defects",
        file_name: "_defects.jsonl",
        schema_file: "defects.schema.json",
        schema_text: include_str!("../schemas/defects.schema.json"),
        format: FileFormat::JsonLines,
    },
];

impl Dataset {
    /// Every dataset of the feed, in generation order.
    pub const ALL: [Dataset; 5] = [
        REGISTRY[0].dataset,
        REGISTRY[1].dataset,
        REGISTRY[2].dataset,
        REGISTRY[3].dataset,
        REGISTRY[4].dataset,
    ];

    pub fn spec(self) -> &'static Spec {
        &REGISTRY[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn parse(name: &str) -> Option<Dataset> {
        REGISTRY.iter().find(|s| s.name == name).map(|s| s.dataset)
    }

    pub fn file_name(self) -> &'static str {
        self.spec().file_name
    }

    /// The dataset's Parquet file (`vitals.parquet`; see `crate::columnar`).
    pub fn parquet_file_name(self) -> String {
        format!("{}.parquet", self.name())
    }

    pub fn format(self) -> FileFormat {
        self.spec().format
    }

    /// The media type the file is served as.
    pub fn media_type(self) -> &'static str {
        self.format().media_type()
    }

    /// The media type without parameters, as content negotiation compares it.
    pub fn media_essence(self) -> &'static str {
        let media = self.media_type();
        media.split_once(';').map_or(media, |(essence, _)| essence)
    }

    /// The dataset a file of a batch belongs to (its text or Parquet file).
    pub fn of_file(file_name: &str) -> Option<Dataset> {
        REGISTRY
            .iter()
            .find(|s| {
                s.file_name == file_name
                    || file_name
                        .strip_suffix(".parquet")
                        .is_some_and(|n| n == s.name && s.dataset != Dataset::Defects)
            })
            .map(|s| s.dataset)
    }

    pub fn schema_file(self) -> &'static str {
        self.spec().schema_file
    }
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn the_registry_lists_every_dataset_once_in_variant_order() {
        let variants: Vec<Dataset> = Dataset::iter().collect();
        assert_eq!(variants[..5], Dataset::ALL);
        assert_eq!(variants[5..], [Dataset::Defects]);
        for (i, spec) in REGISTRY.iter().enumerate() {
            assert_eq!(spec.dataset as usize, i);
            assert_eq!(Dataset::parse(spec.name), Some(spec.dataset));
            assert_eq!(Dataset::of_file(spec.file_name), Some(spec.dataset));
            assert_eq!(spec.schema_file, format!("{}.schema.json", spec.name));
        }
    }
}
