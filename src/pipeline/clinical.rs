//! The clinical files of a batch (`vitals.csv`, `labs.csv`, `notes.jsonl`),
//! written in one pass over the encounters under way on the batch's day.
//!
//! Each encounter's rows are a pure function of its plan entry (the random
//! streams of its planning day, its course), so a stay that spans days is
//! generated whole each day and only the rows dated that day are written:
//! vitals measured, labs resulted, notes authored. The encounters are cut
//! into chunks that are rendered, generated, filtered and encoded, on worker
//! threads, while the calling thread writes finished chunks in encounter
//! order, hashing as it goes. The bytes are therefore the same for any
//! number of threads, and memory is bounded by the chunks in flight: at most
//! [`AHEAD`] chunks per worker beyond the last one written.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, mpsc};

use super::batch::Day;
use crate::config::Config;
use crate::crashpoint;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::generate::course::Course;
use crate::generate::encounters::Encounter;
use crate::generate::notes::{self, Chart};
use crate::generate::vitals::Series;
use crate::generate::{DaySeed, Stream, labs};
use crate::model::{BatchDate, Mode};
use crate::output::{Chunk, Encoder, TextFile, Unsynced};
use crate::rows::{Patient, VitalRow};

/// The files this pass writes, in contract order.
pub const DATASETS: [Dataset; 3] = [Dataset::Vitals, Dataset::Labs, Dataset::Notes];

/// Encounters per chunk: big enough to amortize a hand-over, small enough
/// that chunks in flight stay a few MB.
const ENCOUNTERS_PER_CHUNK: usize = 256;

/// How many chunks a worker may render beyond the last one written: enough
/// to keep the workers busy while the calling thread writes the day's
/// patients and encounters first.
const AHEAD: usize = 8;

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
}

impl<'a> Inputs<'a> {
    pub fn new(
        config: &'a Config,
        mode: Mode,
        day: Day,
        patients: &'a [Patient],
        active: &'a [Encounter],
    ) -> Inputs<'a> {
        let seeds = active
            .iter()
            .map(|e| (e.plan_date, DaySeed::new(config.seed, mode, e.plan_date)))
            .collect();
        Inputs {
            config,
            mode,
            day,
            patients,
            active,
            seeds,
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
            &Course::new(e, scenario),
            patient.sex,
            (e.number, patient.number),
        )
        .iter()
        .any(|r| self.day.contains(r.resulted_at))
    }
}

/// One chunk of encounters, rendered: a chunk of each file, and each
/// encounter's last event (a later day's batch will have more of it if
/// that is after the day).
type Rendered = ([Chunk; 3], Vec<i64>);

/// Writes the three files into `dir` using `threads` threads (1: all on the
/// calling thread) and returns them in contract order, not yet synced.
/// `first` runs on the calling thread once the workers have started, before
/// any chunk is written: the batch writes its earlier files there, so that
/// work overlaps the rendering.
/// Also returns each active encounter's last event, in their order.
pub fn write(
    dir: &Path,
    inputs: &Inputs<'_>,
    threads: usize,
    first: &mut dyn FnMut() -> Result<()>,
) -> Result<(Vec<Unsynced>, Vec<i64>)> {
    let mut files = Vec::with_capacity(DATASETS.len());
    for dataset in DATASETS {
        files.push(TextFile::for_dataset(dir, dataset)?);
    }
    let chunks: Vec<&[Encounter]> = inputs.active.chunks(ENCOUNTERS_PER_CHUNK).collect();
    let buffers = Buffers::default();
    let mut last_events = Vec::with_capacity(inputs.active.len());
    let mut write = |index: usize, (rendered, last): Rendered| -> Result<()> {
        if index == chunks.len() / 2 && crashpoint::armed() {
            crashpoint::reached("vitals");
            crashpoint::failure("vitals").map_err(Error::io("cannot write", files[0].path()))?;
        }
        for (file, chunk) in files.iter_mut().zip(&rendered) {
            file.write(chunk)?;
        }
        buffers.give_back(rendered);
        last_events.extend(last);
        Ok(())
    };

    if threads <= 1 || chunks.len() <= 1 {
        first()?;
        let mut renderer = Renderer::new(inputs, &buffers);
        for (index, encounters) in chunks.iter().enumerate() {
            write(index, renderer.render(encounters))?;
        }
    } else {
        in_parallel(inputs, &buffers, &chunks, threads, first, &mut write)?;
    }
    Ok((
        files.into_iter().map(TextFile::close).collect(),
        last_events,
    ))
}

/// Renders `chunks` on `threads` workers and hands them to `write` in order.
fn in_parallel(
    inputs: &Inputs<'_>,
    buffers: &Buffers,
    chunks: &[&[Encounter]],
    threads: usize,
    first: &mut dyn FnMut() -> Result<()>,
    write: &mut dyn FnMut(usize, Rendered) -> Result<()>,
) -> Result<()> {
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
        if let Err(e) = first() {
            window.close();
            return Err(e);
        }
        // Chunks arrive in any order; they are written in plan order.
        let mut waiting = BTreeMap::new();
        let mut expected = 0;
        let result = received.iter().try_for_each(|(index, rendered)| {
            waiting.insert(index, rendered);
            while let Some(rendered) = waiting.remove(&expected) {
                write(expected, rendered)?;
                expected += 1;
                window.advance(expected);
            }
            Ok(())
        });
        if result.is_err() {
            window.close();
        }
        result
    })
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

/// Buffers the writer is done with, for the renderers to fill again.
#[derive(Default)]
struct Buffers(Mutex<Vec<Vec<u8>>>);

impl Buffers {
    fn get(&self) -> Vec<u8> {
        self.0
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    fn give_back(&self, rendered: [Chunk; 3]) {
        if let Ok(mut free) = self.0.lock() {
            free.extend(rendered.into_iter().map(|chunk| chunk.bytes));
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
            encoders: DATASETS.map(Encoder::new),
        }
    }

    fn render(&mut self, encounters: &[Encounter]) -> Rendered {
        let inputs = self.inputs;
        let (config, day, patients) = (inputs.config, inputs.day, inputs.patients);
        let [vitals_out, labs_out, notes_out] = &mut self.encoders;
        let mut last_events = Vec::with_capacity(encounters.len());
        for e in encounters {
            let patient = &patients[e.patient];
            let scenario = &config.scenarios[e.scenario];
            let course = Course::new(e, scenario);
            let ids = (e.number, patient.number);
            let seed = inputs.seed(e);
            let mut last = e.discharge_secs();

            self.vitals.clear();
            self.vitals.extend(Series::new(
                seed.rng(Stream::Vitals(e.ordinal)),
                scenario,
                &config.missing,
                course,
                ids,
            ));
            for row in self.vitals.iter().filter(|v| day.contains(v.measured_at)) {
                vitals_out.row(row);
            }
            let results = labs::results(
                seed.rng(Stream::Labs(e.ordinal)),
                scenario,
                &course,
                patient.sex,
                ids,
            );
            for row in &results {
                last = last.max(row.resulted_at);
                if day.contains(row.resulted_at) {
                    labs_out.row(row);
                }
            }
            let chart = Chart {
                encounter: e.number,
                patient: patient.number,
                scenario,
                complaint: &scenario.chief_complaints[e.complaint],
                // As of admission, so the notes read the same whichever day
                // of the stay they are generated on.
                age: patient.age_on(e.admit.date()),
                sex: patient.sex,
                disposition: e.disposition,
                course: &course,
                vitals: &self.vitals,
                labs: &results,
            };
            for row in notes::compose(seed.rng(Stream::Notes(e.ordinal)), &chart) {
                last = last.max(row.authored_at);
                if day.contains(row.authored_at) {
                    notes_out.row(&row);
                }
            }
            last_events.push(last);
        }
        let buffers = self.buffers;
        let chunks = self
            .encoders
            .each_mut()
            .map(|encoder| encoder.take_into(buffers.get()));
        (chunks, last_events)
    }
}
