//! Parquet output: each dataset's Arrow schema, derived from its JSON Schema
//! by one mapping ([`arrow_schema`]), the column builders rows write
//! themselves into ([`Columns`], a [`Fields`] sink like a CSV line), and the
//! file writer ([`ParquetFile`]: zstd, row groups bounded in rows, pinned
//! writer properties so the same rows give the same bytes).
//!
//! The mapping: RFC 3339 timestamps as `TIMESTAMP(MILLIS, UTC)`, dates as
//! `DATE`, integers as `INT64`, measured values as `DOUBLE`, enumerations as
//! dictionary-encoded strings, booleans as `BOOLEAN`, other strings as
//! `UTF8`; a column is nullable exactly when its schema allows null.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    StringDictionaryBuilder, TimestampMillisecondBuilder,
};
use arrow_array::types::{Date32Type, Int32Type};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::output::{HashingFile, Unsynced};
use crate::rows::Fields;
use crate::schema::{Column, Kind, contract};

/// Rows per row group: the writer holds one row group (its pages
/// compressed as they fill) in memory, so this bounds its memory whatever
/// the file's size.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// What the files record as their writer: the same for every build, so the
/// bytes depend on the rows only.
const CREATED_BY: &str = "datagen";

/// The Arrow type of one schema column.
pub fn arrow_type(column: &Column) -> DataType {
    match column.kind {
        Kind::Integer => DataType::Int64,
        Kind::Number => DataType::Float64,
        Kind::Boolean => DataType::Boolean,
        Kind::String if column.timestamp => {
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        }
        Kind::String if column.date => DataType::Date32,
        Kind::String if !column.allowed.is_empty() => {
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
        }
        Kind::String => DataType::Utf8,
    }
}

/// A dataset's Arrow schema: its JSON Schema's columns, in order.
pub fn arrow_schema(dataset: Dataset) -> SchemaRef {
    let fields: Vec<Field> = contract(dataset)
        .columns
        .iter()
        .map(|c| Field::new(&c.name, arrow_type(c), c.nullable))
        .collect();
    Arc::new(Schema::new(fields))
}

enum Builder {
    Text(StringBuilder),
    Enum(StringDictionaryBuilder<Int32Type>),
    Int(Int64Builder),
    Float(Float64Builder),
    Time(TimestampMillisecondBuilder),
    Date(Date32Builder),
    Bool(BooleanBuilder),
}

impl Builder {
    fn of(data_type: &DataType) -> Builder {
        match data_type {
            DataType::Int64 => Builder::Int(Int64Builder::new()),
            DataType::Float64 => Builder::Float(Float64Builder::new()),
            DataType::Boolean => Builder::Bool(BooleanBuilder::new()),
            DataType::Timestamp(..) => {
                Builder::Time(TimestampMillisecondBuilder::new().with_timezone("UTC"))
            }
            DataType::Date32 => Builder::Date(Date32Builder::new()),
            DataType::Dictionary(..) => Builder::Enum(StringDictionaryBuilder::new()),
            _ => Builder::Text(StringBuilder::new()),
        }
    }

    fn null(&mut self) {
        match self {
            Builder::Text(b) => b.append_null(),
            Builder::Enum(b) => b.append_null(),
            Builder::Int(b) => b.append_null(),
            Builder::Float(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Enum(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// A dataset's rows as Arrow columns: each [`Fields`] call fills the next
/// column of the row being written.
pub struct Columns {
    schema: SchemaRef,
    builders: Vec<Builder>,
    index: usize,
    rows: usize,
    /// Reused for the IDs formatted per row.
    scratch: Vec<u8>,
}

impl Columns {
    pub fn new(dataset: Dataset) -> Columns {
        let schema = arrow_schema(dataset);
        let builders = schema
            .fields()
            .iter()
            .map(|f| Builder::of(f.data_type()))
            .collect();
        Columns {
            schema,
            builders,
            index: 0,
            rows: 0,
            scratch: Vec::new(),
        }
    }

    /// Starts the next row.
    pub fn next_row(&mut self) {
        self.index = 0;
        self.rows += 1;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The rows so far as a record batch; the builders start over.
    pub fn take(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| Error::InvalidInput(format!("rows do not fit their Parquet schema: {e}")))
    }

    fn column(&mut self) -> Option<&mut Builder> {
        let builder = self.builders.get_mut(self.index);
        self.index += 1;
        builder
    }

    fn string(&mut self, value: &str) {
        match self.column() {
            Some(Builder::Text(b)) => b.append_value(value),
            Some(Builder::Enum(b)) => {
                b.append_value(value);
            }
            Some(other) => other.null(),
            None => {}
        }
    }

    fn float(&mut self, value: Option<f64>) {
        match self.column() {
            Some(Builder::Float(b)) => b.append_option(value),
            Some(other) => other.null(),
            None => {}
        }
    }

    fn scratch(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let mut text = std::mem::take(&mut self.scratch);
        text.clear();
        write(&mut text);
        // IDs are ASCII.
        self.string(std::str::from_utf8(&text).unwrap_or_default());
        self.scratch = text;
    }
}

impl Fields for Columns {
    fn id(&mut self, prefix: &str, number: u64, width: usize) {
        self.scratch(|s| crate::output::plain::id(s, prefix, number, width));
    }
    fn child_id(&mut self, encounter: u64, kind: &str, seq: u32, width: usize) {
        self.scratch(|s| crate::output::plain::child_id(s, encounter, kind, seq, width));
    }
    fn text(&mut self, value: &str) {
        self.string(value);
    }
    fn code(&mut self, value: &str) {
        self.string(value);
    }
    fn uint(&mut self, value: Option<u64>) {
        match self.column() {
            Some(Builder::Int(b)) => b.append_option(value.map(|v| v as i64)),
            Some(Builder::Float(b)) => b.append_option(value.map(|v| v as f64)),
            Some(other) => other.null(),
            None => {}
        }
    }
    fn tenths(&mut self, value: Option<u16>) {
        self.float(value.map(|v| f64::from(v) / 10.0));
    }
    fn fixed(&mut self, value: f64, _decimals: usize) {
        self.float(Some(value));
    }
    fn shortest(&mut self, value: f64) {
        self.float(Some(value));
    }
    fn timestamp(&mut self, epoch_seconds: i64) {
        match self.column() {
            Some(Builder::Time(b)) => b.append_value(epoch_seconds * 1000),
            Some(other) => other.null(),
            None => {}
        }
    }
    fn date(&mut self, date: NaiveDate) {
        match self.column() {
            Some(Builder::Date(b)) => b.append_value(Date32Type::from_naive_date(date)),
            Some(other) => other.null(),
            None => {}
        }
    }
    fn null(&mut self) {
        if let Some(b) = self.column() {
            b.null();
        }
    }
    fn boolean(&mut self, value: bool) {
        match self.column() {
            Some(Builder::Bool(b)) => b.append_value(value),
            Some(other) => other.null(),
            None => {}
        }
    }
}

/// One dataset's Parquet file, written from record batches in order; its
/// size and sha256 are taken as the bytes pass, like every other file.
pub struct ParquetFile {
    path: PathBuf,
    name: String,
    writer: ArrowWriter<HashingFile>,
    rows: u64,
}

impl ParquetFile {
    /// Creates `dir/<dataset>.parquet` (which must not exist).
    pub fn create(dir: &Path, dataset: Dataset) -> Result<ParquetFile> {
        let name = dataset.parquet_file_name();
        let path = dir.join(&name);
        let file = HashingFile::create(&path)?;
        let properties = WriterProperties::builder()
            .set_created_by(CREATED_BY.into())
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(file, arrow_schema(dataset), Some(properties))
            .map_err(|e| parquet_error(&path, e))?;
        Ok(ParquetFile {
            path,
            name,
            writer,
            rows: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.writer
            .write(batch)
            .map_err(|e| parquet_error(&self.path, e))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Writes the footer; the file is synced later (see `output::Syncs`).
    pub fn close(self) -> Result<Unsynced> {
        let file = self
            .writer
            .into_inner()
            .map_err(|e| parquet_error(&self.path, e))?;
        Ok(file.close_as(self.path, self.name, self.rows))
    }
}

fn parquet_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error::io("cannot write", path)(std::io::Error::other(e.to_string()))
}
