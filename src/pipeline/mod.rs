//! The batch engine that the CLI and the server share: one call generates
//! and commits a date's batch for a mode, or reports the one already there.

mod batch;
mod bucket;
mod clinical;
mod rebuild;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use batch::{DayVolumes, day_volumes};
pub use rebuild::Rebuilt;

use crate::config::{Config, Storage};
use crate::dataset::OutputFormat;
use crate::defects::{Profile, Rates};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::model::{BatchDate, Mode};
use crate::remote::{Patience, Remote};
use crate::state::{
    LEDGER_FILE, LedgerEntry, State, StateFingerprint, StateStore, check_agreement, read_ledger,
    recorded_manifest,
};

/// Per-run options: volume overrides, taken exactly (the CLI's
/// `--new-patients` and `--encounters`), whether to generate the days
/// missing before the date first (`--catch-up`), and how many at most, and
/// the defects profile (`--defects`; the config's when `None`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub new_patients: Option<u32>,
    pub encounters: Option<u32>,
    /// `Some(limit)`: generate up to `limit` missing days first.
    pub catch_up: Option<u32>,
    pub defects: Option<Profile>,
    /// The files to write (`--format`; the config's when `None`).
    pub format: Option<OutputFormat>,
}

/// What a `generate` call did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// False when the date was already committed and nothing changed.
    pub created: bool,
    /// The batch's folder on this machine (with a bucket, the cache's).
    pub dir: PathBuf,
    /// With a bucket, the batch's folder in it.
    pub url: Option<String>,
    pub manifest: Manifest,
    pub elapsed: Duration,
    /// With catch-up, the days generated first, in order.
    pub caught_up: Vec<Outcome>,
}

pub struct Engine {
    config: Config,
    layout: Layout,
    /// The bucket batches and state live in, if the config names one; the
    /// layout's directories are then this machine's cache of it.
    remote: Option<Remote>,
    /// Per mode, the state files as they were when they last loaded cleanly.
    loaded: std::sync::Mutex<[Option<StateFingerprint>; 2]>,
}

impl Engine {
    /// An engine over the config's directories, or its bucket (whose
    /// client is set up here, without a request yet).
    pub fn new(config: Config) -> Result<Engine> {
        let layout = Layout::new(&config.paths.data_dir, &config.paths.state_dir);
        let remote = match config.paths.storage().map_err(|reason| Error::Config {
            origin: "paths".into(),
            reason,
        })? {
            Storage::Local => None,
            Storage::Bucket { data, state } => Some(Remote::new(
                &data,
                &state,
                Patience {
                    timeout: Duration::from_secs(config.object_store.timeout_secs),
                    retries: config.object_store.max_retries,
                },
            )?),
        };
        Ok(Engine {
            config,
            layout,
            remote,
            loaded: std::sync::Mutex::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Generates and commits `date`'s batch for `mode`; if it is already
    /// committed, returns it unchanged. Blocks while another process holds the
    /// mode's lock, up to the configured timeout.
    pub fn generate(&self, mode: Mode, date: BatchDate, overrides: &Overrides) -> Result<Outcome> {
        self.generate_with(mode, date, overrides, &mut |_| {})
    }

    /// [`Engine::generate`], calling `on_file` with each new file's staged
    /// path as soon as it is complete, so a caller can start streaming it (an
    /// open handle stays valid across the commit's rename). Not called when
    /// the batch already existed.
    pub fn generate_with(
        &self,
        mode: Mode,
        date: BatchDate,
        overrides: &Overrides,
        on_file: &mut (dyn FnMut(&std::path::Path) + Send),
    ) -> Result<Outcome> {
        let started = Instant::now();
        if let Some(remote) = &self.remote {
            return bucket::generate(self, remote, mode, date, overrides, on_file);
        }
        let (store, ledger) = self.open(mode, self.lock_timeout())?;
        self.run(&store, &ledger, mode, date, overrides, on_file, started)
    }

    fn lock_timeout(&self) -> Duration {
        Duration::from_secs(self.config.state.lock_timeout_secs)
    }

    /// [`Engine::generate_with`] on an open, checked store.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        store: &StateStore,
        ledger: &[LedgerEntry],
        mode: Mode,
        date: BatchDate,
        overrides: &Overrides,
        on_file: &mut (dyn FnMut(&std::path::Path) + Send),
        started: Instant,
    ) -> Result<Outcome> {
        let rates = self.config.defects.rates(overrides.defects);
        let format = overrides.format.unwrap_or(self.config.output.format);
        if !rates.is_clean() && format != OutputFormat::Csv {
            return Err(Error::DefectsNeedText {
                profile: rates.profile.to_string(),
                format: format.to_string(),
            });
        }
        if !ledger.is_empty() {
            let recorded = store.defects_profile()?;
            if recorded != rates.record() {
                return Err(Error::DefectsConflict {
                    mode,
                    recorded,
                    asked: rates.record(),
                });
            }
        }
        let dir = self.layout.batch_dir(mode, date);
        if let Some(entry) = ledger.iter().find(|e| e.date == date) {
            let manifest = self.committed_manifest(mode, entry)?;
            check_volumes(mode, date, &manifest, overrides)?;
            let committed = OutputFormat::of_files(manifest.files.iter().map(|f| f.name.as_str()));
            if let Some(asked) = overrides.format
                && asked != committed
            {
                return Err(Error::VolumeConflict {
                    mode,
                    date,
                    committed: format!("format={committed}"),
                    asked: format!("format={asked}"),
                });
            }
            return Ok(Outcome {
                created: false,
                dir,
                url: None,
                manifest,
                elapsed: started.elapsed(),
                caught_up: Vec::new(),
            });
        }
        // A mode's days run forward one at a time: the census carries its
        // stays from each day to the next.
        let mut missing = Vec::new();
        if let Some(last) = ledger.last().map(|e| e.date) {
            let next = last.succ();
            match next {
                Some(next) if next == date => {}
                Some(next) if date > next && overrides.catch_up.is_some() => {
                    let gap = (date.date() - next.date()).num_days().unsigned_abs();
                    let limit = overrides.catch_up.unwrap_or(0);
                    if gap > u64::from(limit) {
                        return Err(Error::CatchUpTooFar {
                            mode,
                            asked: date,
                            next,
                            days: gap,
                            limit,
                        });
                    }
                    let mut day = next;
                    while day < date {
                        missing.push(day);
                        match day.succ() {
                            Some(following) => day = following,
                            None => break,
                        }
                    }
                }
                _ => {
                    return Err(Error::DateOrder {
                        mode,
                        asked: date,
                        last,
                        next,
                    });
                }
            }
        }

        let mut state = store.load()?;
        let mut caught_up = Vec::with_capacity(missing.len());
        for day in missing {
            let began = Instant::now();
            let manifest = self.commit_day(
                store,
                &mut state,
                mode,
                day,
                &Overrides::default(),
                &rates,
                format,
                &mut |_| {},
            )?;
            caught_up.push(Outcome {
                created: true,
                dir: self.layout.batch_dir(mode, day),
                url: None,
                manifest,
                elapsed: began.elapsed(),
                caught_up: Vec::new(),
            });
        }
        let began = Instant::now();
        let manifest = self.commit_day(
            store, &mut state, mode, date, overrides, &rates, format, on_file,
        )?;
        free_later(state);
        Ok(Outcome {
            created: true,
            dir,
            url: None,
            manifest,
            elapsed: if caught_up.is_empty() {
                started.elapsed()
            } else {
                began.elapsed()
            },
            caught_up,
        })
    }

    /// Generates and commits one day on top of `state`, which it advances.
    #[allow(clippy::too_many_arguments)]
    fn commit_day(
        &self,
        store: &StateStore,
        state: &mut State,
        mode: Mode,
        date: BatchDate,
        overrides: &Overrides,
        rates: &Rates,
        format: OutputFormat,
        on_file: &mut (dyn FnMut(&std::path::Path) + Send),
    ) -> Result<Manifest> {
        let started = Instant::now();
        let staging = store.begin(date)?;
        let (manifest, syncs) = match batch::build(
            &self.config,
            mode,
            date,
            overrides,
            rates,
            format,
            self.config.generation.effective_threads(),
            state,
            &staging,
            on_file,
        ) {
            Ok(built) => built,
            Err(e) => {
                store.abort(date);
                return Err(e);
            }
        };
        state.ledger.push(LedgerEntry {
            date,
            volumes: manifest.volumes,
            patients_total: state.patients.len() as u64,
            encounter_counter: state.encounter_counter,
            census: state.census.len() as u64,
            manifest_sha256: hex::encode(Sha256::digest(manifest.to_bytes())),
        });
        store.commit(date, state, syncs)?;
        tracing::info!(
            %mode,
            %date,
            carried = state.census.len(),
            seconds = started.elapsed().as_secs_f64(),
            "batch committed"
        );
        Ok(manifest)
    }

    /// Opens the mode's state for a run, with its ledger, refusing it unless
    /// state and data agree: a state that disagrees with the data would
    /// reissue IDs. A missing state folder is checked before anything is
    /// created.
    fn open(&self, mode: Mode, timeout: Duration) -> Result<(StateStore, Vec<LedgerEntry>)> {
        if !self.layout.state_dir(mode).exists() {
            check_agreement(&self.layout, mode, &[])?;
        }
        let store = StateStore::open(&self.layout, mode, timeout)?;
        let ledger = store.ledger()?;
        check_agreement(&self.layout, mode, &ledger)?;
        Ok((store, ledger))
    }

    /// The committed batches of a mode, in commit order. Reads without the
    /// lock (the ledger is only ever replaced whole, by rename), except with
    /// a bucket: the cache is first brought to the bucket's state, under the
    /// lock, so a read waits for a run of this replica to finish.
    pub fn batches(&self, mode: Mode) -> Result<Vec<LedgerEntry>> {
        if let Some(remote) = &self.remote {
            bucket::refresh(self, remote, mode, self.lock_timeout())?;
        }
        let path = self.layout.state_dir(mode).join(LEDGER_FILE);
        if path.exists() {
            read_ledger(&path)
        } else {
            Ok(Vec::new())
        }
    }

    /// Makes sure this machine holds a committed batch's files (only `file`
    /// if given): with a bucket, the cache fetches what it lacks. Local
    /// batches are always whole.
    pub fn materialize(&self, mode: Mode, date: BatchDate, file: Option<&str>) -> Result<()> {
        match &self.remote {
            Some(remote) => bucket::fetch(self, remote, mode, date, file),
            None => Ok(()),
        }
    }

    /// The manifest of a committed batch, or `None` when the date is not committed.
    pub fn manifest(&self, mode: Mode, date: BatchDate) -> Result<Option<Manifest>> {
        match self.batches(mode)?.iter().find(|e| e.date == date) {
            Some(entry) => self.committed_manifest(mode, entry).map(Some),
            None => Ok(None),
        }
    }

    /// Reads a committed batch's manifest and checks it is the one the ledger
    /// recorded.
    fn committed_manifest(&self, mode: Mode, entry: &LedgerEntry) -> Result<Manifest> {
        let bytes = recorded_manifest(&self.layout, mode, entry)?;
        let path = self.layout.batch_dir(mode, entry.date).join(MANIFEST_FILE);
        Manifest::parse(&bytes, &path)
    }

    /// Checks that the mode's state can be trusted, as a run would before
    /// writing anything: state and data agree, and the state files agree with
    /// each other. Takes the mode's lock (waiting up to `timeout`), recovering
    /// an interrupted run first. Parsing the master is skipped while the state
    /// files are unchanged since they last loaded cleanly, so a readiness
    /// probe stays cheap.
    pub fn check(&self, mode: Mode, timeout: Duration) -> Result<()> {
        if let Some(remote) = &self.remote {
            bucket::refresh(self, remote, mode, timeout)?;
        }
        let (store, _) = self.open(mode, timeout)?;
        let fingerprint = store.fingerprint();
        let slot = mode as usize;
        if self
            .loaded
            .lock()
            .is_ok_and(|l| l[slot] == Some(fingerprint.clone()))
        {
            return Ok(());
        }
        store.load()?;
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded[slot] = Some(fingerprint);
        }
        Ok(())
    }

    /// Rebuilds the mode's state by replaying its committed batches (see
    /// [`rebuild`]).
    pub fn rebuild_state(&self, mode: Mode) -> Result<Rebuilt> {
        if self.remote.is_some() {
            return Err(Error::InvalidInput(
                "state rebuild mends a local state; with a bucket, the state is the generation its head names, and this machine's copy is only a cache (delete the cache folders to refetch it)".into(),
            ));
        }
        let timeout = Duration::from_secs(self.config.state.lock_timeout_secs);
        let store = StateStore::open(&self.layout, mode, timeout)?;
        rebuild::replay(self, &store, mode)
    }
}

/// The rates a mode's batches were made with, from the profile their
/// manifests record (`None`: clean). A custom table must still be the
/// config's: its digest is what was recorded.
fn recorded_rates(config: &Config, recorded: Option<&str>, mode: Mode) -> Result<Rates> {
    let Some(recorded) = recorded else {
        return Ok(config.defects.rates(Some(Profile::None)));
    };
    let profile = if recorded.starts_with("custom:") {
        Profile::Custom
    } else {
        recorded.parse().map_err(|_| Error::StateMismatch {
            mode,
            problem: format!("the batches record an unknown defects profile {recorded:?}"),
        })?
    };
    let rates = config.defects.rates(Some(profile));
    if rates.record() != recorded {
        return Err(Error::StateMismatch {
            mode,
            problem: format!(
                "the batches were made with the defects profile {recorded}, and the config's custom table is now {}: restore that table to rebuild",
                rates.record()
            ),
        });
    }
    Ok(rates)
}

/// Frees `state` on a thread of its own: a master of tens of thousands of
/// patients, each with strings of its own, takes milliseconds to free that
/// the caller need not wait for (the CLI exits without waiting at all).
fn free_later(state: State) {
    // If no thread can be started, the closure and the state are dropped here.
    let _ = std::thread::Builder::new()
        .name("free-state".into())
        .spawn(move || drop(state));
}

/// A committed date asked for again with volumes: they must be its own.
fn check_volumes(
    mode: Mode,
    date: BatchDate,
    manifest: &Manifest,
    overrides: &Overrides,
) -> Result<()> {
    let committed = (manifest.volumes.new_patients, manifest.volumes.encounters);
    let mut differs = Vec::new();
    let mut has = Vec::new();
    for (name, asked, committed) in [
        ("new_patients", overrides.new_patients, committed.0),
        ("encounters", overrides.encounters, committed.1),
    ] {
        if let Some(asked) = asked
            && asked != committed
        {
            differs.push(format!("{name}={asked}"));
            has.push(format!("{name}={committed}"));
        }
    }
    if differs.is_empty() {
        Ok(())
    } else {
        Err(Error::VolumeConflict {
            mode,
            date,
            committed: has.join(", "),
            asked: differs.join(", "),
        })
    }
}
