//! Writing files durably: rows encoded as CSV in the contract's dialect
//! (UTF-8, header row, `\n` line ends, RFC 4180 quoting) or as JSON Lines,
//! and as Arrow columns for a dataset's Parquet file (`crate::columnar`),
//! written in chunks with each file's size and sha256 taken while it streams
//! out, RFC 3339 timestamps, and the fsyncs a crash-safe commit relies on.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate};
use sha2::{Digest, Sha256};

use crate::columnar::{Columns, ParquetFile};
use crate::dataset::{Dataset, FileFormat, OutputFormat};
use crate::defects::{ChunkLabel, FileDefects, Label, Pending};
use crate::error::{Error, Result};
use crate::rows::{Encode, Fields, Row};

/// What the manifest records of one written file.
#[derive(Clone, Debug)]
pub struct Written {
    pub name: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// A file that hashes and counts what passes through it, and hands the disk
/// what it has written every few MB (see [`write_behind`]).
pub struct HashingFile {
    file: File,
    hasher: Sha256,
    bytes: u64,
    /// How much of the file has been handed to the disk ahead of its sync.
    started: u64,
}

impl HashingFile {
    pub fn create(path: &Path) -> Result<HashingFile> {
        let file = File::create_new(path).map_err(Error::io("cannot create", path))?;
        Ok(HashingFile {
            file,
            hasher: Sha256::new(),
            bytes: 0,
            started: 0,
        })
    }

    /// Describes a file written by another encoder (Parquet's) for the
    /// manifest, leaving the sync for later.
    pub fn close_as(self, path: PathBuf, name: String, rows: u64) -> Unsynced {
        self.close(path, name, rows, Truth::default())
    }

    /// Describes the file for the manifest, leaving the sync for later.
    fn close(self, path: PathBuf, name: String, rows: u64, truth: Truth) -> Unsynced {
        Unsynced {
            written: Written {
                name,
                rows,
                bytes: self.bytes,
                sha256: hex::encode(self.hasher.finalize()),
            },
            file: self.file,
            path,
            truth,
        }
    }
}

/// A file completely written but not yet synced (see [`Syncs`]).
pub struct Unsynced {
    written: Written,
    file: File,
    path: PathBuf,
    truth: Truth,
}

/// The defects a file was written with: their labels (lines counted in the
/// file), and the rows held back for later batches.
#[derive(Debug, Default)]
pub struct Truth {
    pub labels: Vec<Label>,
    pub held: Vec<Pending>,
}

impl Unsynced {
    pub fn written(&self) -> &Written {
        &self.written
    }

    /// Takes the file's defects out, leaving none.
    pub fn take_truth(&mut self) -> Truth {
        std::mem::take(&mut self.truth)
    }

    pub fn sync(self) -> Result<Written> {
        self.file
            .sync_all()
            .map_err(Error::io("cannot sync", &self.path))?;
        Ok(self.written)
    }
}

/// Files being synced in the background: a batch starts each file's sync as
/// soon as the file is complete, and waits for all of them just before its
/// commit point, so the disk works while the CPU renders and journals.
#[derive(Default)]
pub struct Syncs(Vec<(PathBuf, std::thread::JoinHandle<io::Result<()>>)>);

impl Syncs {
    /// Starts syncing `file` and returns its description.
    pub fn start(&mut self, file: Unsynced) -> Written {
        let Unsynced {
            written,
            file,
            path,
            ..
        } = file;
        self.sync(path, file);
        written
    }

    /// Starts syncing `file`, written at `path`.
    pub fn sync(&mut self, path: PathBuf, file: File) {
        self.0
            .push((path, std::thread::spawn(move || file.sync_all())));
    }

    /// Waits until every file is on disk.
    pub fn wait(self) -> Result<()> {
        for (path, handle) in self.0 {
            handle
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the syncing thread panicked")))
                .map_err(Error::io("cannot sync", path))?;
        }
        Ok(())
    }
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        if self.bytes - self.started >= WRITE_BEHIND_BYTES {
            write_behind(&self.file, self.started, self.bytes);
            self.started = self.bytes;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// How much of a file is written before the disk is asked to start on it.
const WRITE_BEHIND_BYTES: u64 = 8 << 20;

/// Starts writing `start..end` of `file` out to disk without waiting for
/// it, so that the sync before the commit finds most of a big file already
/// there instead of flushing all of it at the end. Only a hint: whatever it
/// does not do, or fails to do, the sync does (and reports).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn write_behind(file: &File, start: u64, end: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(start), i64::try_from(end - start)) else {
        return;
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed, and
    // sync_file_range reads nothing from our memory.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn write_behind(_: &File, _: u64, _: u64) {}

/// Rows of one file, encoded: the unit a worker hands to the file's writer.
#[derive(Debug, Default)]
pub struct Chunk {
    pub bytes: Vec<u8>,
    /// Lines (a duplicated row is two).
    pub rows: u64,
    /// The defects in these lines, lines counted from the chunk's first.
    pub labels: Vec<ChunkLabel>,
    /// Rows held back for a later batch.
    pub held: Vec<Pending>,
    /// The same rows as Arrow columns, for the Parquet file (an error if
    /// they did not fit its schema).
    pub columns: Option<std::result::Result<arrow_array::RecordBatch, String>>,
}

/// Encodes rows into a text format's bytes: CSV lines or JSON Lines objects.
/// Each format is a [`Fields`] implementation ([`CsvLine`], [`JsonLine`]),
/// the one interface every row writes itself through;
/// numbers and timestamps are formatted by hand (itoa, a day-prefix cache)
/// because this is the hot path of every batch, and nothing here allocates
/// per row.
pub struct Encoder {
    format: FileFormat,
    /// The columns; JSON Lines writes them as keys.
    keys: &'static [&'static str],
    chunk: Chunk,
    ts: Timestamps,
    /// The file's defects on this date, if it has any.
    defects: Option<Arc<FileDefects>>,
    /// Whether rows are encoded as text (CSV or JSON Lines).
    text: bool,
    /// The rows as Arrow columns too, for a Parquet file.
    columns: Option<Columns>,
}

impl Encoder {
    pub fn new(dataset: Dataset) -> Encoder {
        Encoder::with_columns(dataset.format(), crate::schema::header(dataset))
    }

    pub fn with_columns(format: FileFormat, keys: &'static [&'static str]) -> Encoder {
        Encoder {
            format,
            keys,
            chunk: Chunk::default(),
            ts: Timestamps::default(),
            defects: None,
            text: true,
            columns: None,
        }
    }

    /// Encodes rows for the files `format` asks for: as text, as Arrow
    /// columns for Parquet, or both.
    pub fn with_format(mut self, dataset: Dataset, format: OutputFormat) -> Encoder {
        self.text = format.text();
        self.columns = format.parquet().then(|| Columns::new(dataset));
        self
    }

    /// Spoils rows as the file's defects say (see [`crate::defects`]).
    pub fn with_defects(mut self, defects: Option<Arc<FileDefects>>) -> Encoder {
        self.defects = defects;
        self
    }

    /// The header line (CSV only; JSON Lines has none), not counted as a row.
    pub fn header(&mut self) {
        if self.format == FileFormat::Csv {
            let mut line = CsvLine::new(&mut self.chunk.bytes, &mut self.ts);
            for key in self.keys {
                line.text(key);
            }
            self.chunk.bytes.push(b'\n');
        }
    }

    /// Encodes one row as one line.
    pub fn row<E: Encode>(&mut self, row: &E) {
        if let Some(columns) = &mut self.columns {
            columns.next_row();
            row.encode(columns);
        }
        if !self.text {
            return;
        }
        let start = self.chunk.bytes.len();
        let bytes = &mut self.chunk.bytes;
        match self.format {
            FileFormat::Csv => {
                row.encode(&mut CsvLine::new(bytes, &mut self.ts));
                bytes.push(b'\n');
            }
            FileFormat::JsonLines => {
                bytes.push(b'{');
                row.encode(&mut JsonLine {
                    out: bytes,
                    keys: self.keys,
                    index: 0,
                    ts: &mut self.ts,
                });
                bytes.extend_from_slice(b"}\n");
            }
        }
        self.chunk.rows += 1;
        if let Some(defects) = &self.defects {
            defects.apply(&mut self.chunk, start);
        }
    }

    /// Bytes encoded so far, or for Parquet alone an estimate (rows are
    /// about 100 bytes), so a caller flushing by size bounds both.
    pub fn len(&self) -> usize {
        let rows = self.columns.as_ref().map_or(0, Columns::rows);
        self.chunk.bytes.len().max(rows * 100)
    }

    /// Hands over what is encoded, and starts a new chunk as large as this
    /// one was, so the next does not grow by copying.
    pub fn take(&mut self) -> Chunk {
        let capacity = self.chunk.bytes.len() + self.chunk.bytes.len() / 8;
        self.take_into(Vec::with_capacity(capacity))
    }

    /// Hands over what is encoded, and goes on in `buffer` (emptied): a
    /// buffer a writer is done with, so memory is reused rather than
    /// allocated and faulted in again.
    pub fn take_into(&mut self, mut buffer: Vec<u8>) -> Chunk {
        buffer.clear();
        let mut chunk = std::mem::replace(
            &mut self.chunk,
            Chunk {
                bytes: buffer,
                ..Chunk::default()
            },
        );
        if let Some(columns) = &mut self.columns {
            if !self.text {
                chunk.rows = columns.rows() as u64;
            }
            chunk.columns = Some(columns.take().map_err(|e| e.to_string()));
        }
        chunk
    }
}

/// The value writers every format shares: plain ASCII, no separators.
pub(crate) mod plain {
    pub use crate::numfmt::{date, fixed, padded, shortest, tenths, uint};

    pub fn id(out: &mut Vec<u8>, prefix: &str, number: u64, width: usize) {
        out.extend_from_slice(prefix.as_bytes());
        padded(out, number, width);
    }

    pub fn child_id(out: &mut Vec<u8>, encounter: u64, kind: &str, seq: u32, width: usize) {
        id(out, "E", encounter, 10);
        out.extend_from_slice(kind.as_bytes());
        padded(out, u64::from(seq), width);
    }
}

/// A CSV line in the contract's dialect: fields separated by commas, quoted
/// only when they hold a comma, a quote or a line break (quotes doubled), as
/// the `csv` crate's writer does.
pub struct CsvLine<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    ts: &'a mut Timestamps,
}

impl<'a> CsvLine<'a> {
    fn new(out: &'a mut Vec<u8>, ts: &'a mut Timestamps) -> CsvLine<'a> {
        CsvLine {
            out,
            first: true,
            ts,
        }
    }

    fn separate(&mut self) -> &mut Vec<u8> {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        self.out
    }
}

impl Fields for CsvLine<'_> {
    fn id(&mut self, prefix: &str, number: u64, width: usize) {
        plain::id(self.separate(), prefix, number, width);
    }
    fn child_id(&mut self, encounter: u64, kind: &str, seq: u32, width: usize) {
        plain::child_id(self.separate(), encounter, kind, seq, width);
    }
    fn text(&mut self, value: &str) {
        let out = self.separate();
        if value
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        {
            out.push(b'"');
            for b in value.bytes() {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(value.as_bytes());
        }
    }
    fn code(&mut self, value: &str) {
        self.separate().extend_from_slice(value.as_bytes());
    }
    fn uint(&mut self, value: Option<u64>) {
        let out = self.separate();
        if let Some(v) = value {
            plain::uint(out, v);
        }
    }
    fn tenths(&mut self, value: Option<u16>) {
        let out = self.separate();
        if let Some(v) = value {
            plain::tenths(out, v);
        }
    }
    fn fixed(&mut self, value: f64, decimals: usize) {
        plain::fixed(self.separate(), value, decimals);
    }
    fn shortest(&mut self, value: f64) {
        plain::shortest(self.separate(), value);
    }
    fn timestamp(&mut self, epoch_seconds: i64) {
        self.separate();
        self.out.extend_from_slice(self.ts.format(epoch_seconds));
    }
    fn date(&mut self, date: NaiveDate) {
        plain::date(self.separate(), date);
    }
    fn null(&mut self) {
        self.separate();
    }
    fn boolean(&mut self, value: bool) {
        self.code(if value { "true" } else { "false" });
    }
}

/// A JSON object's members, keys from the schema in order. Text is escaped
/// by `serde_json`; codes, IDs and timestamps are ASCII and written as is.
pub struct JsonLine<'a> {
    out: &'a mut Vec<u8>,
    keys: &'static [&'static str],
    index: usize,
    ts: &'a mut Timestamps,
}

impl JsonLine<'_> {
    /// Starts the next member: `"key":`.
    fn key(&mut self) -> &mut Vec<u8> {
        if self.index > 0 {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out
            .extend_from_slice(self.keys.get(self.index).copied().unwrap_or("").as_bytes());
        self.out.extend_from_slice(b"\":");
        self.index += 1;
        self.out
    }

    fn quoted(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let out = self.key();
        out.push(b'"');
        write(out);
        out.push(b'"');
    }
}

impl Fields for JsonLine<'_> {
    fn id(&mut self, prefix: &str, number: u64, width: usize) {
        self.quoted(|out| plain::id(out, prefix, number, width));
    }
    fn child_id(&mut self, encounter: u64, kind: &str, seq: u32, width: usize) {
        self.quoted(|out| plain::child_id(out, encounter, kind, seq, width));
    }
    fn text(&mut self, value: &str) {
        let out = self.key();
        let bytes = value.as_bytes();
        // Checked 64 bytes at a time without stopping early, which the
        // compiler turns into vector compares: a note is a thousand bytes.
        let control = |b: &u8| *b < 0x20 && *b != b'\n';
        if bytes
            .chunks(64)
            .any(|chunk| chunk.iter().fold(false, |found, b| found | control(b)))
        {
            // Rare control characters: serde_json knows every escape.
            // Writing a str into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, value);
            return;
        }
        // Notes are long and their only specials are line breaks (and the
        // odd quote): copy the runs between them whole.
        out.push(b'"');
        let mut rest = bytes;
        while let Some(at) = memchr::memchr3(b'\n', b'"', b'\\', rest) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(match rest[at] {
                b'\n' => b"\\n",
                b'"' => b"\\\"",
                _ => b"\\\\",
            });
            rest = &rest[at + 1..];
        }
        out.extend_from_slice(rest);
        out.push(b'"');
    }
    fn code(&mut self, value: &str) {
        self.quoted(|out| out.extend_from_slice(value.as_bytes()));
    }
    fn uint(&mut self, value: Option<u64>) {
        let out = self.key();
        match value {
            Some(v) => plain::uint(out, v),
            None => out.extend_from_slice(b"null"),
        }
    }
    fn tenths(&mut self, value: Option<u16>) {
        let out = self.key();
        match value {
            Some(v) => plain::tenths(out, v),
            None => out.extend_from_slice(b"null"),
        }
    }
    fn fixed(&mut self, value: f64, decimals: usize) {
        plain::fixed(self.key(), value, decimals);
    }
    fn shortest(&mut self, value: f64) {
        plain::shortest(self.key(), value);
    }
    fn timestamp(&mut self, epoch_seconds: i64) {
        self.key();
        self.out.push(b'"');
        self.out.extend_from_slice(self.ts.format(epoch_seconds));
        self.out.push(b'"');
    }
    fn date(&mut self, date: NaiveDate) {
        self.quoted(|out| plain::date(out, date));
    }
    fn null(&mut self) {
        self.key().extend_from_slice(b"null");
    }
    fn boolean(&mut self, value: bool) {
        let out = self.key();
        out.extend_from_slice(if value { b"true" } else { b"false" });
    }
}

/// One file being written from encoded chunks, in order: its size, sha256
/// and rows are taken as the bytes pass, and it is synced at the end. Every
/// dataset's file, and the state's CSV files, are written through it.
pub struct TextFile {
    path: PathBuf,
    name: String,
    file: HashingFile,
    rows: u64,
    /// Lines before the first row (the header).
    header_lines: u64,
    truth: Truth,
}

impl TextFile {
    /// Creates `dir/name` (which must not exist).
    pub fn create(dir: &Path, name: &str) -> Result<TextFile> {
        let path = dir.join(name);
        Ok(TextFile {
            file: HashingFile::create(&path)?,
            path,
            name: name.to_string(),
            rows: 0,
            header_lines: 0,
            truth: Truth::default(),
        })
    }

    /// A dataset's file, with its header line if it has one, as the file's
    /// defects on this date write it (a BOM, a drifted header, CRLF).
    pub fn for_dataset(
        dir: &Path,
        dataset: Dataset,
        defects: Option<&FileDefects>,
    ) -> Result<TextFile> {
        let mut file = TextFile::create(dir, dataset.file_name())?;
        if dataset.format() == FileFormat::Csv {
            let mut header = Encoder::new(dataset);
            match defects {
                Some(d) => {
                    header.chunk.bytes.extend_from_slice(d.preamble());
                    d.header(&mut header.chunk.bytes);
                    file.truth.labels.extend(d.file_labels());
                }
                None => header.header(),
            }
            file.write(&header.take())?;
            file.header_lines = 1;
        }
        Ok(file)
    }

    pub fn write(&mut self, chunk: &Chunk) -> Result<()> {
        self.file
            .write_all(&chunk.bytes)
            .map_err(Error::io("cannot write", &self.path))?;
        let before = self.header_lines + self.rows;
        self.truth.labels.extend(chunk.labels.iter().map(|l| Label {
            line: before + l.line,
            ..l.label.clone()
        }));
        self.truth.held.extend(chunk.held.iter().cloned());
        self.rows += chunk.rows;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn finish(self) -> Result<Written> {
        self.close().sync()
    }

    /// Completes the file without syncing it (see [`Syncs`]).
    pub fn close(self) -> Unsynced {
        self.file.close(self.path, self.name, self.rows, self.truth)
    }
}

/// A dataset's files in a batch: its text file, its Parquet file, or both,
/// written from the same chunks.
pub struct DatasetFiles {
    text: Option<TextFile>,
    parquet: Option<ParquetFile>,
}

impl DatasetFiles {
    pub fn create(
        dir: &Path,
        dataset: Dataset,
        defects: Option<&FileDefects>,
        format: OutputFormat,
    ) -> Result<DatasetFiles> {
        Ok(DatasetFiles {
            text: format
                .text()
                .then(|| TextFile::for_dataset(dir, dataset, defects))
                .transpose()?,
            parquet: format
                .parquet()
                .then(|| ParquetFile::create(dir, dataset))
                .transpose()?,
        })
    }

    pub fn write(&mut self, chunk: &Chunk) -> Result<()> {
        if let Some(text) = &mut self.text {
            text.write(chunk)?;
        }
        if let Some(parquet) = &mut self.parquet {
            match &chunk.columns {
                Some(Ok(batch)) => parquet.write(batch)?,
                Some(Err(e)) => return Err(Error::InvalidInput(e.clone())),
                None => {}
            }
        }
        Ok(())
    }

    /// The first file's path (where a failure is reported).
    pub fn path(&self) -> PathBuf {
        match (&self.text, &self.parquet) {
            (Some(text), _) => text.path().to_path_buf(),
            (None, Some(parquet)) => parquet.path().to_path_buf(),
            (None, None) => PathBuf::new(),
        }
    }

    /// Completes the files (text first) without syncing them.
    pub fn close(self) -> Result<Vec<Unsynced>> {
        let mut files = Vec::with_capacity(2);
        if let Some(text) = self.text {
            files.push(text.close());
        }
        if let Some(parquet) = self.parquet {
            files.push(parquet.close()?);
        }
        Ok(files)
    }
}

/// Writes every row of `rows` to new files of their dataset in `dir` (as
/// `format` says), in chunks of about 64 KiB, spoiled as `defects` say; the
/// files are synced later (see [`Syncs`]).
pub fn write_rows<R: Row>(
    dir: &Path,
    rows: impl IntoIterator<Item = R>,
    defects: Option<Arc<FileDefects>>,
    format: OutputFormat,
) -> Result<Vec<Unsynced>> {
    let mut files = DatasetFiles::create(dir, R::DATASET, defects.as_deref(), format)?;
    let mut encoder = Encoder::new(R::DATASET)
        .with_defects(defects)
        .with_format(R::DATASET, format);
    for row in rows {
        encoder.row(&row);
        if encoder.len() >= CHUNK_BYTES {
            files.write(&encoder.take())?;
        }
    }
    files.write(&encoder.take())?;
    files.close()
}

/// How much is encoded before it is written.
pub const CHUNK_BYTES: usize = 1 << 16;

/// The size and sha256 of a file on disk, read in 64 KiB chunks.
pub fn file_digest(path: &Path) -> io::Result<(u64, String)> {
    use std::io::Read;
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// Writes `bytes` to `path` durably and atomically: a temporary sibling is
/// written and synced, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(Error::io("cannot create", &tmp))?;
    file.write_all(bytes)
        .map_err(Error::io("cannot write", &tmp))?;
    file.sync_all().map_err(Error::io("cannot sync", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(Error::io("cannot rename into place", path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Writes `bytes` to a new file at `path` (an existing one is an error),
/// synced.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create_new(path).map_err(Error::io("cannot create", path))?;
    file.write_all(bytes)
        .map_err(Error::io("cannot write", path))?;
    file.sync_all().map_err(Error::io("cannot sync", path))
}

/// Makes a directory's entries (creations, renames, removals) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("cannot sync directory", dir))
}

/// RFC 3339 UTC timestamps (`2026-02-08T14:05:00Z`), fast enough for the
/// vitals hot path: the date part is formatted once per day and reused.
#[derive(Default)]
pub struct Timestamps {
    day: Option<i64>,
    buf: [u8; 20],
}

impl Timestamps {
    pub fn format(&mut self, epoch_seconds: i64) -> &[u8] {
        let day = epoch_seconds.div_euclid(86_400);
        if self.day != Some(day) {
            let date = DateTime::from_timestamp(day * 86_400, 0)
                .map(|t| t.date_naive())
                .unwrap_or_default();
            // Rows of one chunk alternate between days, so this runs often:
            // digits by hand, not through chrono's formatter.
            let mut prefix = Vec::with_capacity(11);
            plain::date(&mut prefix, date);
            prefix.push(b'T');
            self.buf[..11].copy_from_slice(&prefix[..11]);
            self.buf[13] = b':';
            self.buf[16] = b':';
            self.buf[19] = b'Z';
            self.day = Some(day);
        }
        let secs = epoch_seconds.rem_euclid(86_400);
        let two = |buf: &mut [u8], at: usize, v: i64| {
            buf[at] = b'0' + (v / 10) as u8;
            buf[at + 1] = b'0' + (v % 10) as u8;
        };
        two(&mut self.buf, 11, secs / 3600);
        two(&mut self.buf, 14, secs / 60 % 60);
        two(&mut self.buf, 17, secs % 60);
        &self.buf
    }
}

/// Parses an RFC 3339 UTC timestamp as written by [`Timestamps`].
pub fn parse_timestamp(s: &str) -> Option<i64> {
    if s.len() != 20 || !s.ends_with('Z') {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_escapes_exactly_as_serde_json_does() {
        for value in [
            "",
            "plain",
            "line\nbreak\n",
            "\"quoted\" and \\ back",
            "tab\there and \u{1} control",
            "caf\u{e9} \u{2014} \u{1F600}\n\n",
            "\n",
        ] {
            let mut out = Vec::new();
            let mut ts = Timestamps::default();
            JsonLine {
                out: &mut out,
                keys: &["text"],
                index: 0,
                ts: &mut ts,
            }
            .text(value);
            let expected = format!("\"text\":{}", serde_json::to_string(value).unwrap());
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{value:?}");
        }
    }

    #[test]
    fn timestamps_match_chrono_across_days() {
        let mut ts = Timestamps::default();
        for secs in [
            0i64,
            59,
            3_600 * 23 + 59 * 60 + 59,
            1_770_559_500,
            1_770_559_500 + 86_400 * 400,
        ] {
            let expected = DateTime::from_timestamp(secs, 0)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            assert_eq!(std::str::from_utf8(ts.format(secs)).unwrap(), expected);
            assert_eq!(parse_timestamp(&expected), Some(secs));
        }
    }
}
