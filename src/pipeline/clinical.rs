//! The clinical files of a batch (`vitals.csv`, `labs.csv`, `notes.jsonl`),
//! written in one pass over the encounters under way on the batch's day.
//!
//! Each encounter's rows are a pure function of its plan entry (the random
//! streams of its planning day, its course), so a stay that spans days is
//! generated from its start each day, up to that day's end, and only the
//! rows dated that day are written: vitals measured, labs resulted, notes
//! authored. The encounters are cut into chunks that are rendered
//! (generated, filtered and encoded) on worker threads, and written in
//! encounter order, each file on a thread of its own that hashes as it
//! goes. The bytes are therefore the same for any number of threads, and
//! memory is bounded by the chunks in flight: at most [`AHEAD`] chunks per
//! thread beyond the last one written.
//!
//! A [`Pass`] starts before the day is planned: the stays carried from
//! earlier days are known then, and they render while the calling thread
//! plans the day's own encounters, which it submits after them.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, mpsc};

use super::batch::Day;
use crate::config::Config;
use crate::config::Scenario;
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
use crate::model::{Conditions, Sex};
use crate::output::{Chunk, DatasetFiles, Encoder, Unsynced};
use crate::rows::{LabRow, NoteRow, Patient, VitalRow};

/// The files this pass writes, in contract order.
pub const DATASETS: [Dataset; 3] = [Dataset::Vitals, Dataset::Labs, Dataset::Notes];

/// Encounters per chunk: big enough to amortize a hand-over, small enough
/// that chunks in flight stay a few MB.
const ENCOUNTERS_PER_CHUNK: usize = 256;

/// How many chunks a thread may render beyond the last one written: enough
/// to keep the workers busy while the calling thread writes the day's
/// patients and encounters.
const AHEAD: usize = 8;

/// No defects: what a pass writes unless told otherwise.
static CLEAN: DayDefects = DayDefects::NONE;

/// What the pass reads of a patient: what registration fixed (the master's
/// other fields change while a day is planned, and the pass starts first).
#[derive(Clone, Copy, Debug)]
pub struct Facts {
    pub number: u64,
    pub birth_date: chrono::NaiveDate,
    pub sex: Sex,
    pub conditions: Conditions,
}

impl Facts {
    pub fn of(p: &Patient) -> Facts {
        Facts {
            number: p.number,
            birth_date: p.birth_date,
            sex: p.sex,
            conditions: p.conditions,
        }
    }
}

/// What the pass reads.
pub struct Inputs<'a> {
    config: &'a Config,
    mode: Mode,
    day: Day,
    /// Every patient of the master, by index.
    patients: &'a [Facts],
    /// The random streams of each planning day the encounters come from
    /// (derived once per day, not per encounter: a sha256 each).
    seeds: HashMap<BatchDate, DaySeed>,
    /// Each scenario's note banks, by scenario index.
    banks: Vec<notes::Banks>,
    /// What the day's files are spoiled with (nothing by default).
    pub defects: &'a DayDefects,
    /// Which files each dataset gets (its text file by default).
    pub format: OutputFormat,
}

impl<'a> Inputs<'a> {
    /// `plan_dates`: the days the encounters to come were planned on.
    pub fn new(
        config: &'a Config,
        mode: Mode,
        day: Day,
        patients: &'a [Facts],
        plan_dates: impl IntoIterator<Item = BatchDate>,
    ) -> Inputs<'a> {
        let mut seeds = HashMap::new();
        for date in plan_dates {
            seeds
                .entry(date)
                .or_insert_with(|| DaySeed::new(config.seed, mode, date));
        }
        Inputs {
            config,
            mode,
            day,
            patients,
            seeds,
            banks: config.scenarios.iter().map(notes::Banks::of).collect(),
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
            &course(e, scenario, self.config, patient),
            patient.sex,
            (e.number, patient.number),
            self.day.end,
        )
        .iter()
        .any(|r| self.day.contains(r.resulted_at))
    }
}

fn course(e: &Encounter, scenario: &Scenario, config: &Config, patient: &Facts) -> Course {
    Course::new(
        e,
        scenario,
        config.facility,
        patient.birth_date,
        patient.conditions,
    )
}

/// One chunk of encounters, rendered: a chunk of each file, and each
/// encounter's last event as far as it was generated (its discharge or a
/// later result): after the day's end, a later day's batch has more of it.
type Rendered = ([Chunk; 3], Vec<i64>);

/// The pass, under way: encounters are handed to it in order, in as many
/// submissions as the caller likes (the census's stays while the day is
/// still being planned, then the day's own), rendered on worker threads
/// and written on a thread per file, in submission order; [`Pass::finish`]
/// writes each file's tail and closes them. With one thread, nothing runs
/// until `finish`, which does all of it on the calling thread.
///
/// Dropping a pass without finishing it stops its threads (the scope they
/// run in then joins them): an error while the day is planned leaves no
/// thread waiting for work.
pub struct Pass<'scope, 'data> {
    inputs: &'scope Inputs<'data>,
    shared: &'scope Shared<'data>,
    threads: usize,
    /// The chunks cut so far, for the one-thread pass.
    cut: Vec<Pieces<'data>>,
    /// Chunks handed out so far.
    chunks: usize,
    /// Cuts everything submitted into chunks.
    chunker: Chunker<'data, Encounter>,
    /// Writes the files in order; `None` with one thread.
    writing: Option<std::thread::ScopedJoinHandle<'scope, Written>>,
    /// Where this thread sends the chunks it renders once it has submitted
    /// everything.
    results: Option<mpsc::Sender<(usize, Rendered)>>,
    files: Option<(Vec<DatasetFiles>, [Chunk; 3])>,
    crash_path: PathBuf,
}

/// What the writing side of a pass returns: each file closed, and each
/// encounter's last event in submission order (`None`: a writer stopped).
type Written = Result<(Vec<Unsynced>, Option<Vec<i64>>)>;

/// What a pass's threads share: made by the caller before the scope they
/// run in, so it outlives them.
pub struct Shared<'data> {
    buffers: Buffers,
    work: Work<'data>,
    window: Window,
}

impl Shared<'_> {
    pub fn new(threads: usize) -> Self {
        Shared {
            buffers: Buffers::default(),
            work: Work::default(),
            window: Window::new(threads.max(1) * AHEAD),
        }
    }
}

/// Cuts items submitted in any number of slices into chunks of `size`: the
/// same chunks as if they had come in one slice (a Parquet file's pages
/// follow the chunks, so its bytes would otherwise depend on how a day's
/// encounters were submitted).
struct Chunker<'d, T> {
    size: usize,
    /// The items since the last whole chunk, in pieces.
    open: Vec<&'d [T]>,
    open_len: usize,
}

impl<'d, T> Chunker<'d, T> {
    fn new(size: usize) -> Self {
        Chunker {
            size: size.max(1),
            open: Vec::new(),
            open_len: 0,
        }
    }

    /// The whole chunks `items` completes, in order.
    fn push(&mut self, mut items: &'d [T]) -> Vec<Vec<&'d [T]>> {
        let mut whole = Vec::new();
        while !items.is_empty() {
            let (piece, rest) = items.split_at((self.size - self.open_len).min(items.len()));
            self.open.push(piece);
            self.open_len += piece.len();
            items = rest;
            if self.open_len == self.size {
                whole.push(std::mem::take(&mut self.open));
                self.open_len = 0;
            }
        }
        whole
    }

    /// The last chunk, if one is open.
    fn rest(&mut self) -> Option<Vec<&'d [T]>> {
        self.open_len = 0;
        (!self.open.is_empty()).then(|| std::mem::take(&mut self.open))
    }
}

/// Chunks of encounters waiting for a worker, in order, and whether more
/// will come.
#[derive(Default)]
struct Work<'data> {
    queue: Mutex<Queue<'data>>,
    ready: Condvar,
}

/// The chunks (numbered in submission order) and whether the queue is closed.
type Queue<'data> = (std::collections::VecDeque<(usize, Pieces<'data>)>, bool);

/// A chunk of encounters, as the pieces of the submissions it spans.
type Pieces<'data> = Vec<&'data [Encounter]>;

impl<'data> Work<'data> {
    fn push(&self, index: usize, chunk: Pieces<'data>) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.0.push_back((index, chunk));
        }
        self.ready.notify_one();
    }

    fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.1 = true;
        }
        self.ready.notify_all();
    }

    /// The next chunk to render; `None` once closed and empty.
    fn next(&self) -> Option<(usize, Pieces<'data>)> {
        let mut queue = self.queue.lock().ok()?;
        loop {
            if let Some(job) = queue.0.pop_front() {
                return Some(job);
            }
            if queue.1 {
                return None;
            }
            queue = self.ready.wait(queue).ok()?;
        }
    }
}

impl<'scope, 'data: 'scope> Pass<'scope, 'data> {
    /// Creates the three files in `dir` and, with more than one thread,
    /// starts the workers and writers in `scope`; each file ends with its
    /// chunk of `tails` (rows due from earlier batches).
    pub fn start<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        shared: &'scope Shared<'data>,
        dir: &Path,
        inputs: &'scope Inputs<'data>,
        threads: usize,
        tails: [Chunk; 3],
    ) -> Result<Pass<'scope, 'data>> {
        let mut files = Vec::with_capacity(DATASETS.len());
        for dataset in DATASETS {
            files.push(DatasetFiles::create(
                dir,
                dataset,
                inputs.defects.file(dataset).as_deref(),
                inputs.format,
            )?);
        }
        let crash_path = files[0].path();
        let mut pass = Pass {
            inputs,
            shared,
            threads,
            cut: Vec::new(),
            chunks: 0,
            chunker: Chunker::new(ENCOUNTERS_PER_CHUNK),
            writing: None,
            results: None,
            files: Some((files, tails)),
            crash_path,
        };
        if threads > 1
            && let Some((files, tails)) = pass.files.take()
        {
            let (writing, results) = spawn(scope, shared, inputs, threads - 1, files, tails);
            pass.writing = Some(writing);
            pass.results = Some(results);
        }
        Ok(pass)
    }

    /// Hands `encounters` to the pass, after everything submitted before.
    pub fn submit(&mut self, encounters: &'data [Encounter]) {
        for chunk in self.chunker.push(encounters) {
            self.hand(chunk);
        }
    }

    /// Hands a chunk to the workers (or keeps it, with one thread).
    fn hand(&mut self, chunk: Pieces<'data>) {
        if self.threads <= 1 {
            self.cut.push(chunk);
        } else {
            self.shared.work.push(self.chunks, chunk);
        }
        self.chunks += 1;
    }

    /// Runs `first` (the batch's earlier files) on this thread while the
    /// pass goes on, then renders beside the workers (while the caller was
    /// planning, one fewer thread rendered than asked for, so as not to
    /// slow the planning down), and waits for the pass: returns the three
    /// files, not yet synced, and each submitted encounter's last event, in
    /// order.
    pub fn finish(
        mut self,
        first: &mut dyn FnMut() -> Result<()>,
    ) -> Result<(Vec<Unsynced>, Vec<i64>)> {
        if let Some(last) = self.chunker.rest() {
            self.hand(last);
        }
        let Some(writing) = self.writing.take() else {
            return self.finish_here(first);
        };
        self.shared.work.close();
        let first = first().and_then(|()| self.checkpoint());
        if first.is_err() {
            self.shared.window.close();
        }
        if let Some(results) = self.results.take() {
            render(self.inputs, self.shared, &results);
        }
        let written = writing.join().unwrap_or_else(|_| {
            Err(Error::io("cannot write", &self.crash_path)(
                io::Error::other("a thread of the pass panicked"),
            ))
        });
        first?;
        let (files, last_events) = written?;
        let last_events = last_events.ok_or_else(|| {
            Error::io("cannot write", &self.crash_path)(io::Error::other("a writer stopped early"))
        })?;
        Ok((files, last_events))
    }

    /// Where the crash tests stop or fail a batch: the earlier files are
    /// written, and the pass's are still open.
    fn checkpoint(&self) -> Result<()> {
        if crashpoint::armed() {
            crashpoint::reached("vitals");
            crashpoint::failure("vitals").map_err(Error::io("cannot write", &self.crash_path))?;
        }
        Ok(())
    }

    /// The one-thread pass: everything on the calling thread, in order.
    fn finish_here(
        mut self,
        first: &mut dyn FnMut() -> Result<()>,
    ) -> Result<(Vec<Unsynced>, Vec<i64>)> {
        first()?;
        self.checkpoint()?;
        let Some((mut files, tails)) = self.files.take() else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut renderer = Renderer::new(self.inputs, &self.shared.buffers);
        let mut last_events = Vec::new();
        for chunk in std::mem::take(&mut self.cut) {
            let (rendered, last) = renderer.render(&chunk);
            for (file, chunk) in files.iter_mut().zip(&rendered) {
                file.write(chunk)?;
            }
            self.shared.buffers.give_back(rendered);
            last_events.extend(last);
        }
        for (file, tail) in files.iter_mut().zip(&tails) {
            file.write(tail)?;
        }
        let mut closed = Vec::with_capacity(files.len() * 2);
        for file in files {
            closed.extend(file.close()?);
        }
        Ok((closed, last_events))
    }
}

impl Drop for Pass<'_, '_> {
    fn drop(&mut self) {
        self.shared.work.close();
        if self.writing.is_some() {
            // Not finished: an error on the caller's side. Stop everything.
            self.shared.window.close();
        }
    }
}

/// Starts `threads` workers rendering the submitted chunks, a thread per
/// file writing and hashing them (writing and hashing the three files
/// overlap each other and the rendering), and a thread handing the chunks
/// over in order; returns that last thread.
#[allow(clippy::type_complexity)]
fn spawn<'scope, 'env, 'data: 'scope>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    shared: &'scope Shared<'data>,
    inputs: &'scope Inputs<'data>,
    workers: usize,
    files: Vec<DatasetFiles>,
    tails: [Chunk; 3],
) -> (
    std::thread::ScopedJoinHandle<'scope, Written>,
    mpsc::Sender<(usize, Rendered)>,
) {
    let (sender, received) = mpsc::channel::<(usize, Rendered)>();
    let (buffers, window) = (&shared.buffers, &shared.window);
    for _ in 0..workers {
        let sender = sender.clone();
        scope.spawn(move || render(inputs, shared, &sender));
    }
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
    let writing = scope.spawn(move || {
        let last_events = hand_over(&received, &outlets, window);
        if last_events.is_none() {
            window.close();
        }
        drop(outlets);
        let stopped =
            |path: &Path, why: &str| Error::io("cannot write", path)(io::Error::other(why));
        let mut closed = Vec::with_capacity(paths.len() * 2);
        let mut failed = None;
        for (writer, path) in writers.into_iter().zip(&paths) {
            match writer.join() {
                Ok(Ok(files)) => closed.extend(files),
                Ok(Err(e)) => {
                    failed.get_or_insert(e);
                }
                Err(_) => {
                    failed.get_or_insert(stopped(path, "its writer thread panicked"));
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok((closed, last_events)),
        }
    });
    (writing, sender)
}

/// Renders submitted chunks until there are none left (or the pass stops),
/// sending each to `results`.
fn render(inputs: &Inputs<'_>, shared: &Shared<'_>, results: &mpsc::Sender<(usize, Rendered)>) {
    let mut renderer = Renderer::new(inputs, &shared.buffers);
    while let Some((index, chunk)) = shared.work.next() {
        if !shared.window.wait_for(index) || results.send((index, renderer.render(&chunk))).is_err()
        {
            return;
        }
    }
}

/// Hands the rendered chunks to the files' writers in submission order as
/// they arrive (in any order); `None` when a writer stopped.
fn hand_over(
    received: &mpsc::Receiver<(usize, Rendered)>,
    outlets: &[mpsc::SyncSender<Chunk>],
    window: &Window,
) -> Option<Vec<i64>> {
    let mut waiting = BTreeMap::new();
    let mut expected = 0;
    let mut last_events = Vec::new();
    for (index, rendered) in received {
        waiting.insert(index, rendered);
        while let Some((rendered, last)) = waiting.remove(&expected) {
            for (outlet, chunk) in outlets.iter().zip(rendered) {
                if outlet.send(chunk).is_err() {
                    return None;
                }
            }
            last_events.extend(last);
            expected += 1;
            window.advance(expected);
        }
    }
    Some(last_events)
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

    fn render(&mut self, chunk: &[&[Encounter]]) -> Rendered {
        let inputs = self.inputs;
        let day = inputs.day;
        let [vitals_out, labs_out, notes_out] = &mut self.encoders;
        let mut last_events = Vec::with_capacity(ENCOUNTERS_PER_CHUNK);
        for e in chunk.iter().copied().flatten() {
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
    let course = course(e, scenario, config, patient);
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
        banks: &inputs.banks[e.scenario],
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
    /// However a day's encounters are submitted, they are cut into the
    /// same chunks.
    #[test]
    fn chunks_do_not_depend_on_how_items_are_submitted() {
        let items: Vec<u32> = (0..1_000).collect();
        let chunks_of = |splits: &[usize]| -> Vec<Vec<u32>> {
            let mut chunker = Chunker::new(256);
            let mut chunks = Vec::new();
            let mut from = 0;
            for &to in splits.iter().chain([&items.len()]) {
                chunks.extend(chunker.push(&items[from..to]));
                from = to;
            }
            chunks.extend(chunker.rest());
            chunks.into_iter().map(|pieces| pieces.concat()).collect()
        };
        let whole = chunks_of(&[]);
        assert_eq!(
            whole.iter().map(Vec::len).collect::<Vec<_>>(),
            [256, 256, 256, 232]
        );
        for splits in [
            &[0][..],
            &[1],
            &[255],
            &[256],
            &[300, 301, 302],
            &[10, 900],
            &[1_000],
        ] {
            assert_eq!(chunks_of(splits), whole, "split at {splits:?}");
        }
    }

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
        let facts: Vec<Facts> = patients.iter().map(Facts::of).collect();
        let inputs = Inputs::new(
            &config,
            Mode::Raw,
            Day::of(date),
            &facts,
            stays.iter().map(|e| e.plan_date),
        );
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
