//! Streaming a batch to a client in bounded memory. Generation runs on the
//! blocking pool and hands over each file the moment it is complete (an open
//! handle, valid across the commit's rename); a second blocking task turns
//! those files into the response body (a tar archive, or one CSV) through a
//! small channel of 64 KiB chunks. The archive's end is written only after
//! the commit, so a client never mistakes an uncommitted batch for a whole one:
//! if the commit fails, a tar body gets an invalid block (so `tar x` fails
//! even on the bytes that arrived) and is then cut off with an error.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc as tokio_mpsc;

use super::error::ApiError;
use crate::dataset::Dataset;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::model::BatchDate;
use crate::pipeline::Outcome;

const CHUNK: usize = 64 * 1024;

/// What the generator reports, in order: files as they complete, then the end.
pub enum Event {
    File(String, io::Result<File>),
    Done(Box<Result<Outcome, ApiError>>),
}

/// What to send.
#[derive(Clone, Copy, Debug)]
pub enum Format {
    Tar,
    /// One file of the batch, as is: the dataset's text file, or with
    /// `parquet` its Parquet file.
    File(Dataset, bool),
}

impl Format {
    /// The one file sent, if that is what is sent.
    pub fn file_name(self) -> Option<String> {
        match self {
            Format::Tar => None,
            Format::File(d, false) => Some(d.file_name().to_string()),
            Format::File(d, true) => Some(d.parquet_file_name()),
        }
    }

    /// The media type of what is sent, without parameters.
    pub fn media_essence(self) -> &'static str {
        match self {
            Format::Tar => "application/x-tar",
            Format::File(d, false) => d.media_essence(),
            Format::File(_, true) => crate::dataset::PARQUET_MEDIA_TYPE,
        }
    }

    /// The media type of what is sent.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::File(d, false) => d.media_type(),
            other => other.media_essence(),
        }
    }
}

pub type BodySender = tokio_mpsc::Sender<Result<Bytes, io::Error>>;

/// The generation's events, in order. Unbounded: the generator on its
/// blocking thread must never wait for the stream (there are at most six).
pub type Events = tokio_mpsc::UnboundedReceiver<Event>;

/// A `Write` that sends 64 KiB chunks into the response body. Once the
/// stream is aborted, further writes are discarded.
pub struct ChannelWriter {
    tx: BodySender,
    buf: Vec<u8>,
    aborted: Arc<AtomicBool>,
}

/// Cuts a body off with an error, even while a `ChannelWriter` is borrowed.
pub struct Abort {
    tx: BodySender,
    aborted: Arc<AtomicBool>,
}

impl ChannelWriter {
    pub fn new(tx: BodySender) -> (ChannelWriter, Abort) {
        let aborted = Arc::new(AtomicBool::new(false));
        let abort = Abort {
            tx: tx.clone(),
            aborted: aborted.clone(),
        };
        (
            ChannelWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
                aborted,
            },
            abort,
        )
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() || self.aborted.load(Ordering::Relaxed) {
            self.buf.clear();
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        // A closed channel means the client went away: stop producing.
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client disconnected"))
    }
}

impl ChannelWriter {
    /// Ends a tar stream that failed: sends what is buffered followed by one
    /// 512-byte block that is not a valid header (it says why, in text), then
    /// discards every later write, the archive's end blocks included. A
    /// reader that got every byte up to the failure still fails on it:
    /// `tar x` exits 2 ("Skipping to next header"), where a stream cut at a
    /// member boundary would extract cleanly.
    ///
    /// The connection is cut off after this (see [`Abort::fail`]), and hyper
    /// drops what it has not written yet when a body fails, so this waits
    /// until the block has left the channel and gives the socket a moment.
    fn poison(&mut self, why: &str) {
        let mut block =
            format!("datagen: the batch was not committed, this archive is incomplete: {why}\n")
                .into_bytes();
        block.resize(512, b'#');
        block.truncate(512);
        self.buf.extend_from_slice(&block);
        if self.send().is_ok() {
            let started = std::time::Instant::now();
            while self.tx.capacity() < self.tx.max_capacity()
                && started.elapsed() < std::time::Duration::from_secs(5)
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        self.aborted.store(true, Ordering::Relaxed);
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Abort {
    pub fn fail(&self, why: String) {
        self.aborted.store(true, Ordering::Relaxed);
        let _ = self.tx.blocking_send(Err(io::Error::other(why)));
    }
}

/// What a stream starts from: the generation's first event, which also
/// decides the response head.
pub enum Start {
    /// The batch was already committed: send what is on disk.
    Committed,
    /// A new batch: its first file, the rest to follow.
    Live(Event),
}

/// Writes the body. Runs on the blocking pool, only once the head is known,
/// so no thread waits while a generation is queued.
pub fn serve(
    start: Start,
    events: Events,
    committed_dir: PathBuf,
    date: BatchDate,
    format: Format,
    body: BodySender,
) {
    let (mut out, abort) = ChannelWriter::new(body);
    let result = match start {
        Start::Committed => send_committed(&committed_dir, date, format, &mut out),
        Start::Live(first) => send_live(first, events, date, format, &mut out),
    };
    match result {
        Ok(()) => {
            let _ = out.flush();
        }
        Err(why) => {
            tracing::warn!(error = %why, "batch stream aborted");
            abort.fail(why);
        }
    }
}

fn send_live(
    first: Event,
    mut events: Events,
    date: BatchDate,
    format: Format,
    out: &mut ChannelWriter,
) -> Result<(), String> {
    match format {
        Format::Tar => {
            let mut builder = tar::Builder::new(&mut *out);
            let sent = until_committed(first, &mut events, |name, file| {
                append(&mut builder, date, name, file)
            });
            if let Err(why) = sent {
                // Before the builder's drop can end the archive: a batch that
                // did not commit must never arrive as a whole-looking tar.
                builder.get_mut().poison(&why);
                return Err(why);
            }
            builder.into_inner().map(|_| ()).map_err(|e| e.to_string())
        }
        Format::File(..) => until_committed(first, &mut events, |name, file| {
            if Some(name) == format.file_name().as_deref() {
                io::copy(file, out).map_err(|e| e.to_string())?;
            }
            Ok(())
        }),
    }
}

/// Hands each file to `each` until the batch is committed; an error if it is not.
fn until_committed(
    first: Event,
    events: &mut Events,
    mut each: impl FnMut(&str, &mut File) -> Result<(), String>,
) -> Result<(), String> {
    let mut event = first;
    loop {
        match event {
            Event::File(name, file) => {
                let mut file = file.map_err(|e| format!("cannot open {name}: {e}"))?;
                each(&name, &mut file)?;
            }
            Event::Done(done) => {
                return match *done {
                    Ok(_) => Ok(()),
                    Err(e) => Err(format!("batch not committed: {}", e.detail)),
                };
            }
        }
        event = events
            .blocking_recv()
            .ok_or_else(|| "the generator stopped without a result".to_string())?;
    }
}

fn send_committed(
    dir: &Path,
    date: BatchDate,
    format: Format,
    out: &mut ChannelWriter,
) -> Result<(), String> {
    match format {
        Format::File(..) => {
            let name = format.file_name().unwrap_or_default();
            let mut file =
                File::open(dir.join(&name)).map_err(|e| format!("cannot open {name}: {e}"))?;
            io::copy(&mut file, out).map_err(|e| e.to_string())?;
        }
        Format::Tar => {
            let manifest = Manifest::read(dir).map_err(|e| e.to_string())?;
            let mut builder = tar::Builder::new(&mut *out);
            let names = manifest
                .files
                .iter()
                .map(|f| f.name.as_str())
                .chain([MANIFEST_FILE]);
            for name in names {
                let mut file =
                    File::open(dir.join(name)).map_err(|e| format!("cannot open {name}: {e}"))?;
                append(&mut builder, date, name, &mut file)?;
            }
            builder.into_inner().map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// One archive member, `<date>/<name>`, with the file's size and mtime.
fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    date: BatchDate,
    name: &str,
    file: &mut File,
) -> Result<(), String> {
    let meta = file.metadata().map_err(|e| e.to_string())?;
    let mut header = tar::Header::new_ustar();
    header.set_size(meta.len());
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    header.set_mtime(mtime);
    let mut reader = (&mut *file).take(meta.len());
    builder
        .append_data(&mut header, format!("{date}/{name}"), &mut reader)
        .map_err(|e| format!("cannot stream {name}: {e}"))
}
