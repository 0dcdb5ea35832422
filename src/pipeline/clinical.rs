//! The clinical files of a batch (`vitals.csv`, `labs.csv`, `notes.jsonl`),
//! written in one pass over the encounters under way on the batch's day.
//!
//! Each encounter's rows are a pure function of its plan entry (the random
//! streams of its planning day, its course), so a stay that spans days is
//! generated from its start each day, up to that day's end, and only the
//! rows dated that day are written: vitals measured, labs resulted, notes
//! authored. The encounters are cut
//! into chunks that are rendered, generated, filtered and encoded, on worker
//! threads, while the calling thread writes finished chunks in encounter
//! order, hashing as it goes. The bytes are therefore the same for any
//! number of threads, and memory is bounded by the chunks in flight: at most
//! [`AHEAD`] chunks per worker beyond the last one written.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, mpsc};

use super::batch::Day;
use crate::config::Config;
use crate::crashpoint;
use crate::dataset::{Dataset, OutputFormat};
use crate::defects::DayDefects;
use crate::error::{Error, Result};
use crate::generate::course::Course;
use crate::generate::encounters::Encounter;
use crate::generate::notes::{self, Chart};
use crate::generate::vitals::Series;
use crate::generate::{DaySeed, Stream, labs};
use crate::model::{BatchDate, Mode};
use crate::output::{Chunk, DatasetFiles, Encoder, Unsynced};
use crate::rows::{LabRow, NoteRow, Patient, VitalRow};

/// The files this pass writes, in contract order.
pub const DATASETS: [Dataset; 3] = [Dataset::Vitals, Dataset::Labs, Dataset::Notes];

/// Encounters per chunk: big enough to amortize a hand-over, small enough
/// that chunks in flight stay a few MB.
const ENCOUNTERS_PER_CHUNK: usize = 256;

/// How many chunks a worker may render beyond the last one written: enough
/// to keep the workers busy while the calling thread writes the day's
/// patients and encounters first.
const AHEAD: usize = 8;

/// No defects: what a pass writes unless told otherwise.
static CLEAN: DayDefects = DayDefects::NONE;

/// What the pass reads.
pub struct Inputs<'a> {
    config: &'a Config,
    mode: Mode,
    day: Day,
    patients: &'a [Patient],
    /// The encounters under way, by number.
    active: &'a [Encounter],
    /// The random streams of each planning day the encounters come from
    /// (derived once per day, not per encounter: a sha256 each).
    seeds: HashMap<BatchDate, DaySeed>,
    /// What the day's files are spoiled with (nothing by default).
    pub defects: &'a DayDefects,
    /// Which files each dataset gets (its text file by default).
    pub format: OutputFormat,
}

impl<'a> Inputs<'a> {
    pub fn new(
        config: &'a Config,
        mode: Mode,
        day: Day,
        patients: &'a [Patient],
        active: &'a [Encounter],
    ) -> Inputs<'a> {
        let mut seeds = HashMap::new();
        for e in active {
            seeds
                .entry(e.plan_date)
                .or_insert_with(|| DaySeed::new(config.seed, mode, e.plan_date));
        }
        Inputs {
            config,
            mode,
            day,
            patients,
            active,
            seeds,
            defects: &CLEAN,
            format: OutputFormat::Csv,
        }
    }

    fn seed(&self, e: &Encounter) -> DaySeed {
        self.seeds
            .get(&e.plan_date)
            .copied()
            .unwrap_or_else(|| DaySeed::new(self.config.seed, self.mode, e.plan_date))
    }

    /// Whether `e` has a row in the day's batch: it is in the house at some
    /// time that day, or a result of it arrives that day.
    pub fn touches(&self, e: &Encounter) -> bool {
        if e.admit_secs() < self.day.end && e.discharge_secs() >= self.day.start {
            return true;
        }
        let (patient, scenario) = (
            &self.patients[e.patient],
            &self.config.scenarios[e.scenario],
        );
        labs::results(
            self.seed(e).rng(Stream::Labs(e.ordinal)),
            scenario,
            &Course::new(e, scenario, self.config.facility, patient),
            patient.sex,
            (e.number, patient.number),
            self.day.end,
        )
        .iter()
        .any(|r| self.day.contains(r.resulted_at))
    }
}

/// One chunk of encounters, rendered: a chunk of each file, and each
/// encounter's last event as far as it was generated (its discharge or a
/// later result): after the day's end, a later day's batch has more of it.
type Rendered = ([Chunk; 3], Vec<i64>);

/// Writes the three files into `dir` using `threads` threads (1: all on the
/// calling thread), each ending with its chunk of `tails` (rows due from
/// earlier batches), and returns them in contract order, not yet synced.
/// `first` writes the batch's earlier files: with one thread before the
/// pass, otherwise on a thread of its own alongside it.
/// Also returns each active encounter's last event, in their order.
pub fn write(
    dir: &Path,
    inputs: &Inputs<'_>,
    threads: usize,
    tails: [Chunk; 3],
    first: &mut (dyn FnMut() -> Result<()> + Send),
) -> Result<(Vec<Unsynced>, Vec<i64>)> {
    let mut files = Vec::with_capacity(DATASETS.len());
    for dataset in DATASETS {
        files.push(DatasetFiles::create(
            dir,
            dataset,
            inputs.defects.file(dataset).as_deref(),
            inputs.format,
        )?);
    }
    let chunks: Vec<&[Encounter]> = inputs.active.chunks(ENCOUNTERS_PER_CHUNK).collect();
    let buffers = Buffers::default();
    // Where the crash tests stop or fail a batch: halfway through the pass.
    let crash_path = files[0].path();
    let checkpoint = |index: usize| -> Result<()> {
        if index == chunks.len() / 2 && crashpoint::armed() {
            crashpoint::reached("vitals");
            crashpoint::failure("vitals").map_err(Error::io("cannot write", &crash_path))?;
        }
        Ok(())
    };

    if threads <= 1 || chunks.len() <= 1 {
        first()?;
        let mut renderer = Renderer::new(inputs, &buffers);
        let mut last_events = Vec::with_capacity(inputs.active.len());
        for (index, encounters) in chunks.iter().enumerate() {
            let (rendered, last) = renderer.render(encounters);
            checkpoint(index)?;
            for (file, chunk) in files.iter_mut().zip(&rendered) {
                file.write(chunk)?;
            }
            buffers.give_back(rendered);
            last_events.extend(last);
        }
        for (file, tail) in files.iter_mut().zip(&tails) {
            file.write(tail)?;
        }
        let mut closed = Vec::with_capacity(files.len() * 2);
        for file in files {
            closed.extend(file.close()?);
        }
        return Ok((closed, last_events));
    }
    in_parallel(
        dir,
        inputs,
        &buffers,
        &chunks,
        files,
        tails,
        threads,
        first,
        &checkpoint,
    )
}

/// Renders `chunks` on `threads` workers, and writes each file on a thread
/// of its own (writing and hashing the three files overlap each other and
/// the rendering), handing the chunks over in order.
#[allow(clippy::too_many_arguments)]
fn in_parallel(
    dir: &Path,
    inputs: &Inputs<'_>,
    buffers: &Buffers,
    chunks: &[&[Encounter]],
    files: Vec<DatasetFiles>,
    tails: [Chunk; 3],
    threads: usize,
    first: &mut (dyn FnMut() -> Result<()> + Send),
    checkpoint: &dyn Fn(usize) -> Result<()>,
) -> Result<(Vec<Unsynced>, Vec<i64>)> {
    let next = AtomicUsize::new(0);
    let window = Window::new(threads * AHEAD);
    let (sender, received) = mpsc::channel::<(usize, Rendered)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (next, window, sender) = (&next, &window, sender.clone());
            scope.spawn(move || {
                let mut renderer = Renderer::new(inputs, buffers);
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= chunks.len() || !window.wait_for(index) {
                        return;
                    }
                    if sender
                        .send((index, renderer.render(chunks[index])))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
        drop(sender);
        let first = scope.spawn(|| {
            let written = first();
            if written.is_err() {
                window.close();
            }
            written
        });
        let paths: Vec<PathBuf> = files.iter().map(DatasetFiles::path).collect();
        let (outlets, writers): (Vec<_>, Vec<_>) = files
            .into_iter()
            .zip(tails)
            .enumerate()
            .map(|(index, (mut file, tail))| {
                let (outlet, inlet) = mpsc::sync_channel::<Chunk>(AHEAD);
                let writer = scope.spawn(move || -> Result<Vec<Unsynced>> {
                    for chunk in inlet {
                        file.write(&chunk)?;
                        buffers.give(index, chunk.bytes);
                    }
                    file.write(&tail)?;
                    file.close()
                });
                (outlet, writer)
            })
            .unzip();

        let handed = hand_over(&received, &outlets, &window, checkpoint);
        if !matches!(handed, Ok(Some(_))) {
            window.close();
        }
        drop(outlets);
        let stopped =
            |path: &Path, why: &str| Error::io("cannot write", path)(io::Error::other(why));
        let files: Vec<Result<Vec<Unsynced>>> = writers
            .into_iter()
            .zip(&paths)
            .map(|(writer, path)| {
                writer
                    .join()
                    .unwrap_or_else(|_| Err(stopped(path, "its writer thread panicked")))
            })
            .collect();
        let first = first.join().unwrap_or_else(|_| {
            Err(Error::io("cannot write", dir)(io::Error::other(
                "the thread writing the first files panicked",
            )))
        });
        // The calling thread's own error first, then the first files' (which
        // stops the pass), then a writer's (which is why the calling thread
        // could not hand a chunk over).
        let last_events = handed?;
        first?;
        let files: Vec<Unsynced> = files
            .into_iter()
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let last_events =
            last_events.ok_or_else(|| stopped(&paths[0], "a writer stopped early"))?;
        Ok((files, last_events))
    })
}

/// Hands the rendered chunks to the files' writers in plan order as they
/// arrive (in any order); `None` when a writer stopped.
fn hand_over(
    received: &mpsc::Receiver<(usize, Rendered)>,
    outlets: &[mpsc::SyncSender<Chunk>],
    window: &Window,
    checkpoint: &dyn Fn(usize) -> Result<()>,
) -> Result<Option<Vec<i64>>> {
    let mut waiting = BTreeMap::new();
    let mut expected = 0;
    let mut last_events = Vec::new();
    for (index, rendered) in received {
        waiting.insert(index, rendered);
        while let Some((rendered, last)) = waiting.remove(&expected) {
            checkpoint(expected)?;
            for (outlet, chunk) in outlets.iter().zip(rendered) {
                if outlet.send(chunk).is_err() {
                    return Ok(None);
                }
            }
            last_events.extend(last);
            expected += 1;
            window.advance(expected);
        }
    }
    Ok(Some(last_events))
}

/// Lets workers run at most `ahead` chunks beyond the last one written, so
/// memory stays bounded however uneven the chunks are.
struct Window {
    state: Mutex<(usize, bool)>,
    moved: Condvar,
    ahead: usize,
}

impl Window {
    fn new(ahead: usize) -> Window {
        Window {
            state: Mutex::new((0, false)),
            moved: Condvar::new(),
            ahead,
        }
    }

    /// Waits until chunk `index` may be rendered; false once the writer gave up.
    fn wait_for(&self, index: usize) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        while !state.1 && index >= state.0 + self.ahead {
            match self.moved.wait(state) {
                Ok(next) => state = next,
                Err(_) => return false,
            }
        }
        !state.1
    }

    fn advance(&self, written: usize) {
        if let Ok(mut state) = self.state.lock() {
            state.0 = written;
        }
        self.moved.notify_all();
    }

    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.1 = true;
        }
        self.moved.notify_all();
    }
}

/// Buffers the writers are done with, for the renderers to fill again; one
/// pool per file, so a buffer comes back to a file whose chunks it fits (a
/// notes chunk is several times a vitals chunk: growing one copies it).
#[derive(Default)]
struct Buffers([Mutex<Vec<Vec<u8>>>; 3]);

impl Buffers {
    fn get(&self, file: usize) -> Vec<u8> {
        self.0[file]
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    fn give(&self, file: usize, buffer: Vec<u8>) {
        if let Ok(mut free) = self.0[file].lock() {
            free.push(buffer);
        }
    }

    fn give_back(&self, rendered: [Chunk; 3]) {
        for (file, chunk) in rendered.into_iter().enumerate() {
            self.give(file, chunk.bytes);
        }
    }
}

/// Generates and encodes encounters' rows, reusing its buffers.
struct Renderer<'a> {
    inputs: &'a Inputs<'a>,
    buffers: &'a Buffers,
    vitals: Vec<VitalRow>,
    encoders: [Encoder; 3],
}

impl<'a> Renderer<'a> {
    fn new(inputs: &'a Inputs<'a>, buffers: &'a Buffers) -> Renderer<'a> {
        Renderer {
            inputs,
            buffers,
            vitals: Vec::new(),
            encoders: DATASETS.map(|d| {
                Encoder::new(d)
                    .with_defects(inputs.defects.file(d))
                    .with_format(d, inputs.format)
            }),
        }
    }

    fn render(&mut self, encounters: &[Encounter]) -> Rendered {
        let inputs = self.inputs;
        let day = inputs.day;
        let [vitals_out, labs_out, notes_out] = &mut self.encoders;
        let mut last_events = Vec::with_capacity(encounters.len());
        for e in encounters {
            let (labs, notes) = rows_until(inputs, e, day.end, &mut self.vitals);
            for row in self.vitals.iter().filter(|v| day.contains(v.measured_at)) {
                vitals_out.row(row);
            }
            let mut last = e.discharge_secs();
            for row in &labs {
                last = last.max(row.resulted_at);
                if day.contains(row.resulted_at) {
                    labs_out.row(row);
                }
            }
            for row in &notes {
                last = last.max(row.authored_at);
                if day.contains(row.authored_at) {
                    notes_out.row(row);
                }
            }
            last_events.push(last);
        }
        let buffers = self.buffers;
        let chunks = std::array::from_fn(|file| self.encoders[file].take_into(buffers.get(file)));
        (chunks, last_events)
    }
}

/// An encounter's rows up to `until`: its vitals (into `vitals`) and the
/// results and notes of its samples and notes taken before then. These are
/// the first rows of the whole encounter's, so a stay that goes on after a
/// day is generated up to that day's end only (`notes::compose` says why
/// the first vital-sign set is kept whenever it is).
fn rows_until(
    inputs: &Inputs<'_>,
    e: &Encounter,
    until: i64,
    vitals: &mut Vec<VitalRow>,
) -> (Vec<LabRow>, Vec<NoteRow>) {
    let config = inputs.config;
    let patient = &inputs.patients[e.patient];
    let scenario = &config.scenarios[e.scenario];
    let course = Course::new(e, scenario, config.facility, patient);
    let ids = (e.number, patient.number);
    let seed = inputs.seed(e);
    vitals.clear();
    vitals.extend(
        Series::new(
            seed.rng(Stream::Vitals(e.ordinal)),
            scenario,
            &config.missing,
            course,
            ids,
        )
        .enumerate()
        .take_while(|(i, v)| *i == 0 || v.measured_at < until)
        .map(|(_, v)| v),
    );
    let labs = labs::results(
        seed.rng(Stream::Labs(e.ordinal)),
        scenario,
        &course,
        patient.sex,
        ids,
        until,
    );
    let chart = Chart {
        encounter: e.number,
        patient: patient.number,
        scenario,
        complaint: &scenario.chief_complaints[e.complaint],
        sex: patient.sex,
        disposition: e.disposition,
        course: &course,
        vitals,
        labs: &labs,
    };
    let notes = notes::compose(seed.rng(Stream::Notes(e.ordinal)), &chart, until);
    (labs, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSources;
    use crate::generate::encounters;

    /// Cutting a stay at any day's end gives the whole stay's rows up to
    /// there, byte for byte: a batch that generates a stay only up to its
    /// day's end writes what the whole stay would.
    #[test]
    fn a_stay_cut_at_a_day_end_begins_as_the_whole_stay() {
        let config = Config::load(&ConfigSources::default()).expect("embedded config");
        let date: BatchDate = "2026-03-10".parse().expect("date");
        // The stays under way when a mode starts: long ones, from earlier days.
        let patients = crate::generate::patients::population(
            &mut DaySeed::new(config.seed, Mode::Raw, date).rng(Stream::Population),
            &config.population,
            date,
            config.volumes.raw.population,
        );
        let stays = encounters::warm_start(&config, config.seed, Mode::Raw, date, &patients, 1);
        assert!(stays.len() > 50, "{} stays", stays.len());
        let inputs = Inputs::new(&config, Mode::Raw, Day::of(date), &patients, &stays);
        let (mut whole_vitals, mut cut_vitals) = (Vec::new(), Vec::new());
        let mut cuts = 0;
        for e in &stays {
            let (labs, notes) = rows_until(&inputs, e, i64::MAX, &mut whole_vitals);
            let mut end = (e.admit_secs().div_euclid(86_400) + 1) * 86_400;
            while end <= e.discharge_secs() {
                let (cut_labs, cut_notes) = rows_until(&inputs, e, end, &mut cut_vitals);
                let kept = |at: i64| at < end;
                let vitals: Vec<_> = whole_vitals
                    .iter()
                    .enumerate()
                    .filter(|(i, v)| *i == 0 || kept(v.measured_at))
                    .map(|(_, v)| *v)
                    .collect();
                assert_eq!(cut_vitals, vitals, "vitals of {} cut at {end}", e.number);
                let encode = |dataset, rows: &dyn Fn(&mut Encoder)| {
                    let mut encoder = Encoder::new(dataset);
                    rows(&mut encoder);
                    encoder.take().bytes
                };
                assert_eq!(
                    encode(Dataset::Labs, &|out| cut_labs
                        .iter()
                        .for_each(|r| out.row(r))),
                    encode(Dataset::Labs, &|out| {
                        labs.iter()
                            .filter(|r| kept(r.collected_at))
                            .for_each(|r| out.row(r))
                    }),
                    "labs of {} cut at {end}",
                    e.number
                );
                assert_eq!(
                    encode(Dataset::Notes, &|out| cut_notes
                        .iter()
                        .for_each(|r| out.row(r))),
                    encode(Dataset::Notes, &|out| {
                        notes
                            .iter()
                            .filter(|r| kept(r.authored_at))
                            .for_each(|r| out.row(r))
                    }),
                    "notes of {} cut at {end}",
                    e.number
                );
                cuts += 1;
                end += 86_400;
            }
        }
        assert!(cuts > 100, "only {cuts} cuts");
    }
}
