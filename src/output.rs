//! Writing files durably: CSV in the contract's dialect (UTF-8, header row,
//! `\n` line ends, RFC 4180 quoting) with each file's size and sha256 taken
//! while it streams out, RFC 3339 timestamps, and the fsyncs a crash-safe
//! commit relies on.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What the manifest records of one written file.
#[derive(Clone, Debug)]
pub struct Written {
    pub name: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// A file that hashes and counts what passes through it.
pub struct HashingFile {
    file: File,
    hasher: Sha256,
    bytes: u64,
}

impl HashingFile {
    pub fn create(path: &Path) -> Result<HashingFile> {
        let file = File::create_new(path).map_err(Error::io("cannot create", path))?;
        Ok(HashingFile {
            file,
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    /// Syncs to disk and describes the file for the manifest.
    pub fn finish(self, path: &Path, name: String, rows: u64) -> Result<Written> {
        self.file
            .sync_all()
            .map_err(Error::io("cannot sync", path))?;
        Ok(Written {
            name,
            rows,
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A CSV file being written: rows go straight through a 64 KiB buffer to disk.
pub struct CsvFile {
    path: PathBuf,
    name: String,
    writer: csv::Writer<HashingFile>,
    rows: u64,
}

impl CsvFile {
    pub fn create(dir: &Path, name: &str, header: &[&str]) -> Result<CsvFile> {
        let path = dir.join(name);
        let file = HashingFile::create(&path)?;
        let writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(1 << 16)
            .from_writer(file);
        let mut out = CsvFile {
            path,
            name: name.to_string(),
            writer,
            rows: 0,
        };
        out.writer
            .write_record(header)
            .map_err(|e| csv_error(&out.path, e))?;
        Ok(out)
    }

    /// Writes one complete row.
    pub fn row<I, T>(&mut self, fields: I) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.writer
            .write_record(fields)
            .map_err(|e| csv_error(&self.path, e))?;
        self.rows += 1;
        Ok(())
    }

    /// Writes one field of a row being built field by field (the hot path:
    /// no per-row allocation); end the row with [`CsvFile::end_row`].
    pub fn field(&mut self, field: &[u8]) -> Result<()> {
        self.writer
            .write_field(field)
            .map_err(|e| csv_error(&self.path, e))
    }

    pub fn end_row(&mut self) -> Result<()> {
        self.writer
            .write_record(None::<&[u8]>)
            .map_err(|e| csv_error(&self.path, e))?;
        self.rows += 1;
        Ok(())
    }

    /// Pushes buffered rows to the file (used before a crash-test pause, so
    /// a half-written file really is on disk).
    pub fn flush(&mut self) -> Result<()> {
        self.writer
            .flush()
            .map_err(Error::io("cannot write", self.path.clone()))
    }

    pub fn finish(self) -> Result<Written> {
        let CsvFile {
            path,
            name,
            writer,
            rows,
        } = self;
        let file = writer.into_inner().map_err(|e| Error::Io {
            what: "cannot write",
            path: path.clone(),
            source: io::Error::new(e.error().kind(), e.error().to_string()),
        })?;
        file.finish(&path, name, rows)
    }
}

/// A csv error is an I/O error here: the writer only ever gets valid rows.
fn csv_error(path: &Path, e: csv::Error) -> Error {
    let source = match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => io::Error::other(format!("{other:?}")),
    };
    Error::Io {
        what: "cannot write",
        path: path.to_path_buf(),
        source,
    }
}

/// A JSON Lines file being written: one serialized object per line.
pub struct JsonLinesFile {
    path: PathBuf,
    name: String,
    writer: io::BufWriter<HashingFile>,
    rows: u64,
}

impl JsonLinesFile {
    pub fn create(dir: &Path, name: &str) -> Result<JsonLinesFile> {
        let path = dir.join(name);
        let file = HashingFile::create(&path)?;
        Ok(JsonLinesFile {
            writer: io::BufWriter::with_capacity(1 << 16, file),
            path,
            name: name.to_string(),
            rows: 0,
        })
    }

    pub fn line<T: serde::Serialize>(&mut self, value: &T) -> Result<()> {
        let written = serde_json::to_writer(&mut self.writer, value)
            .map_err(io::Error::from)
            .and_then(|()| self.writer.write_all(b"\n"));
        if let Err(e) = written {
            return Err(Error::io("cannot write", &self.path)(e));
        }
        self.rows += 1;
        Ok(())
    }

    pub fn finish(self) -> Result<Written> {
        let JsonLinesFile {
            path,
            name,
            writer,
            rows,
        } = self;
        let file = writer
            .into_inner()
            .map_err(|e| Error::io("cannot write", path.clone())(e.into_error()))?;
        file.finish(&path, name, rows)
    }
}

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
            let mut prefix = [0u8; 11];
            let text = format!("{}T", date.format("%Y-%m-%d"));
            prefix.copy_from_slice(&text.as_bytes()[..11]);
            self.buf[..11].copy_from_slice(&prefix);
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

    pub fn format_naive(&mut self, t: NaiveDateTime) -> &[u8] {
        self.format(t.and_utc().timestamp())
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
