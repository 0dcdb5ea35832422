//! Streaming a batch to a client in bounded memory. Generation runs on the
//! blocking pool and hands over each file the moment it is complete (an open
//! handle, valid across the commit's rename); a second blocking task turns
//! those files into the response body (a tar archive, or one CSV) through a
//! small channel of 64 KiB chunks. The archive's end is written only after
//! the commit, so a client never mistakes an uncommitted batch for a whole one:
//! if the commit fails, the body is cut off with an error instead.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use bytes::Bytes;
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

use super::error::ApiError;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::model::BatchDate;
use crate::pipeline::Outcome;
use crate::schema::Dataset;

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
    /// One file of the batch, as is.
    File(Dataset),
}

pub type BodySender = tokio_mpsc::Sender<Result<Bytes, io::Error>>;

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

/// Decides the response head from the first event (`true` = newly created),
/// then writes the body. Runs on the blocking pool.
pub fn serve(
    events: mpsc::Receiver<Event>,
    committed_dir: PathBuf,
    date: BatchDate,
    format: Format,
    head: oneshot::Sender<Result<bool, ApiError>>,
    body: BodySender,
) {
    let (mut out, abort) = ChannelWriter::new(body);
    let first = match events.recv() {
        Ok(event) => event,
        Err(_) => {
            let _ = head.send(Err(ApiError::internal(
                &"the generator stopped without a result",
            )));
            return;
        }
    };
    let result = match first {
        Event::Done(done) if done.is_err() => {
            let Err(e) = *done else { return };
            let _ = head.send(Err(e));
            return;
        }
        // Already committed (or nothing new to stream): send what is on disk.
        Event::Done(_) => {
            if head.send(Ok(false)).is_err() {
                return; // answered 202, or the client left
            }
            send_committed(&committed_dir, date, format, &mut out)
        }
        Event::File(name, file) => {
            if head.send(Ok(true)).is_err() {
                return; // answered 202, or the client left: the generation goes on alone
            }
            send_live(Event::File(name, file), &events, date, format, &mut out)
        }
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
    events: &mpsc::Receiver<Event>,
    date: BatchDate,
    format: Format,
    out: &mut ChannelWriter,
) -> Result<(), String> {
    match format {
        Format::Tar => {
            let mut builder = tar::Builder::new(&mut *out);
            until_committed(first, events, |name, file| {
                append(&mut builder, date, name, file)
            })?;
            builder.into_inner().map(|_| ()).map_err(|e| e.to_string())
        }
        Format::File(d) => until_committed(first, events, |name, file| {
            if name == d.file_name() {
                io::copy(file, out).map_err(|e| e.to_string())?;
            }
            Ok(())
        }),
    }
}

/// Hands each file to `each` until the batch is committed; an error if it is not.
fn until_committed(
    first: Event,
    events: &mpsc::Receiver<Event>,
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
            .recv()
            .map_err(|_| "the generator stopped without a result".to_string())?;
    }
}

fn send_committed(
    dir: &Path,
    date: BatchDate,
    format: Format,
    out: &mut ChannelWriter,
) -> Result<(), String> {
    match format {
        Format::File(d) => {
            let mut file = File::open(dir.join(d.file_name()))
                .map_err(|e| format!("cannot open {}: {e}", d.file_name()))?;
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
