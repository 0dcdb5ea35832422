//! Parquet files read back: their column types against the one mapping of
//! `crate::columnar` (from the JSON Schemas), then each row as the text the
//! CSV would hold, for the same checks as the text files, or for a
//! comparison with them when the batch has both.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::dataset::Dataset;
use crate::schema::contract;

/// Reads `path` and calls `each` with every row's values as text (`None`
/// for null), in order; returns the rows read.
pub(super) fn for_each_row(
    path: &Path,
    dataset: Dataset,
    mut each: impl FnMut(u64, Vec<Option<String>>) -> bool,
) -> Result<u64, String> {
    let file = File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("is not a Parquet file: {e}"))?;
    let expected = crate::columnar::arrow_schema(dataset);
    let actual = builder.schema().clone();
    let describe = |s: &arrow_schema::Schema| {
        s.fields()
            .iter()
            .map(|f| {
                format!(
                    "{} {}{}",
                    f.name(),
                    f.data_type(),
                    if f.is_nullable() { "" } else { " NOT NULL" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if describe(&actual) != describe(&expected) {
        return Err(format!(
            "columns are [{}], the schema maps to [{}]",
            describe(&actual),
            describe(&expected)
        ));
    }
    let reader = builder
        .build()
        .map_err(|e| format!("cannot be read: {e}"))?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| format!("cannot be read: {e}"))?;
        for i in 0..batch.num_rows() {
            rows += 1;
            if !each(rows, row_text(&batch, i, dataset)) {
                return Ok(rows);
            }
        }
    }
    Ok(rows)
}

/// One row's values as the text file writes them: numbers with the decimals
/// the contract reports them with, timestamps in RFC 3339 UTC.
fn row_text(batch: &RecordBatch, i: usize, dataset: Dataset) -> Vec<Option<String>> {
    let columns = &contract(dataset).columns;
    let mut values: Vec<Option<String>> = Vec::with_capacity(columns.len());
    for (c, array) in columns.iter().zip(batch.columns()) {
        if array.is_null(i) {
            values.push(None);
            continue;
        }
        let text = match array.data_type() {
            DataType::Utf8 => array.as_string::<i32>().value(i).to_string(),
            DataType::Dictionary(..) => {
                let dict = array.as_dictionary::<Int32Type>();
                let key = dict.keys().value(i) as usize;
                dict.values().as_string::<i32>().value(key).to_string()
            }
            DataType::Int64 => array.as_primitive::<Int64Type>().value(i).to_string(),
            DataType::Float64 => {
                let v = array.as_primitive::<Float64Type>().value(i);
                match c.name.as_str() {
                    "temperature_c" => format!("{v:.1}"),
                    "value" => {
                        // A lab value: the catalog's decimals for its test.
                        let loinc = values.get(3).cloned().flatten().unwrap_or_default();
                        let decimals = contract(Dataset::Labs)
                            .lab_catalog
                            .iter()
                            .find(|t| t.loinc_code == loinc)
                            .map_or(1, |t| t.decimals);
                        format!("{v:.decimals$}")
                    }
                    _ => v.to_string(),
                }
            }
            DataType::Timestamp(..) => {
                let ms = array.as_primitive::<TimestampMillisecondType>().value(i);
                chrono::DateTime::from_timestamp_millis(ms)
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_default()
            }
            DataType::Date32 => {
                let days = array.as_primitive::<Date32Type>().value(i);
                Date32Type::to_naive_date_opt(days)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default()
            }
            DataType::Boolean => array.as_boolean().value(i).to_string(),
            other => format!("<{other}>"),
        };
        values.push(Some(text));
    }
    values
}
