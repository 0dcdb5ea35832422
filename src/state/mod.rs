//! One mode's persistent state and the crash-safe commit of a batch with it.
//!
//! State files (in `<state_dir>/<mode>/`): `patients_master.csv` (every patient
//! ever registered), `encounter_id_counter.txt` (the last encounter number
//! issued) and `ledger.csv` (every committed date, with the counters after it
//! and its manifest's sha256). The ledger ties the three together: loading
//! refuses state whose files disagree. A mode generated with a defects
//! profile also has `defects.json`: the profile, and the rows held back for
//! later batches (see [`crate::defects`]).
//!
//! Commit protocol, under the mode's lock:
//! 1. the batch is written to `<data_dir>/.staging/<mode>/<date>/` and the new
//!    state files to `<state>/.txn/`, all synced (the batch files sync in the
//!    background while the state is journaled);
//! 2. `.txn/COMMIT` (naming the date) is written atomically: the commit point;
//! 3. the staged batch is renamed to `<data_dir>/<mode>/<date>/` and each state
//!    file renamed over its old version;
//! 4. `COMMIT` and `.txn/` are removed.
//!
//! Recovery (every time the lock is taken): with a `COMMIT` marker, steps 3-4
//! are finished (roll forward); without one, staging and `.txn/` are removed
//! (roll back). Either way no reader ever sees a half-written batch or state.
//! If the batch is already in place when a commit is rolled forward, its
//! manifest decides: the same one means the step was done; another one is a
//! mismatch to refuse, never to overwrite.
//!
//! State and data must agree before anything runs ([`check_agreement`]):
//! every ledger entry has its batch with the recorded manifest, and every
//! committed batch has its ledger entry. A state that was lost, or restored
//! from a backup older than the data, would otherwise reissue IDs. The way
//! back is `datagen state rebuild` (`crate::pipeline::rebuild`), which
//! replays the committed batches.

mod files;
mod lock;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use files::{Carried, LedgerEntry, read_ledger};
pub use lock::StateLock;

use crate::crashpoint;
use crate::error::{Error, Result};
use crate::generate::patients::Patient;
use crate::layout::Layout;
use crate::manifest::MANIFEST_FILE;
use crate::model::{BatchDate, Mode};
use crate::output::{Syncs, sync_dir, write_atomic, write_new};

pub const MASTER_FILE: &str = "patients_master.csv";
pub const COUNTER_FILE: &str = "encounter_id_counter.txt";
pub const LEDGER_FILE: &str = "ledger.csv";
pub const CENSUS_FILE: &str = "census.csv";
pub const DEFECTS_FILE: &str = "defects.json";
/// Written in this order, the ledger last (see [`StateStore::replace`]).
const STATE_FILES: [&str; 4] = [MASTER_FILE, COUNTER_FILE, CENSUS_FILE, LEDGER_FILE];
/// Every file a state may have, in the order they are moved into place:
/// the optional defects file before the ledger.
pub(crate) const ALL_STATE_FILES: [&str; 5] = [
    MASTER_FILE,
    COUNTER_FILE,
    CENSUS_FILE,
    DEFECTS_FILE,
    LEDGER_FILE,
];
const TXN_DIR: &str = ".txn";
const COMMIT_MARKER: &str = "COMMIT";
/// Where `state rebuild` prepares the new files before renaming them over.
const REBUILD_DIR: &str = ".rebuild";
/// Where a copy of the state from an object store is downloaded first.
const SYNC_DIR: &str = ".sync";

/// Everything generation needs from the past.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub patients: Vec<Patient>,
    /// The last encounter number issued.
    pub encounter_counter: u64,
    /// The encounters carried to the next day.
    pub census: Vec<Carried>,
    pub ledger: Vec<LedgerEntry>,
    /// The defects profile and the rows it holds back; `None` for `none`.
    pub defects: Option<crate::defects::Ledger>,
}

/// The size and modification time of each state file: any commit or edit
/// changes it.
pub type StateFingerprint = Vec<Option<(u64, std::time::SystemTime)>>;

/// Writes the three state files into a new directory `dir`, synced.
fn write_state_files(dir: &Path, state: &State) -> Result<()> {
    std::fs::create_dir(dir).map_err(Error::io("cannot create", dir))?;
    // The census is written beside the master, the commit's longest step.
    std::thread::scope(|scope| {
        let census = scope.spawn(|| files::write_census(&dir.join(CENSUS_FILE), &state.census));
        let master = files::write_master(&dir.join(MASTER_FILE), &state.patients);
        let census = census
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        master.and(census)
    })?;
    files::write_counter(&dir.join(COUNTER_FILE), state.encounter_counter)?;
    if let Some(defects) = &state.defects {
        let mut bytes = serde_json::to_vec(defects).unwrap_or_default();
        bytes.push(b'\n');
        write_new(&dir.join(DEFECTS_FILE), &bytes)?;
    }
    files::write_ledger(&dir.join(LEDGER_FILE), &state.ledger)?;
    sync_dir(dir)
}

/// The defects file of a state folder, if it has one.
fn read_defects(path: &Path) -> Result<Option<crate::defects::Ledger>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::CorruptState {
                path: path.to_path_buf(),
                line: Some(e.line() as u64),
                reason: format!("not a defects ledger: {e}"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("cannot read", path)(e)),
    }
}

/// A mode's state, locked for writing.
pub struct StateStore {
    layout: Layout,
    mode: Mode,
    dir: PathBuf,
    _lock: StateLock,
}

impl StateStore {
    /// Takes the mode's lock (waiting up to `timeout`) and recovers from any
    /// interrupted run.
    pub fn open(layout: &Layout, mode: Mode, timeout: Duration) -> Result<StateStore> {
        layout.prepare(mode)?;
        let dir = layout.state_dir(mode);
        let lock = StateLock::acquire(&dir, mode, timeout)?;
        let store = StateStore {
            layout: layout.clone(),
            mode,
            dir,
            _lock: lock,
        };
        store.recover()?;
        Ok(store)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn txn(&self) -> PathBuf {
        self.dir.join(TXN_DIR)
    }

    /// Finishes or discards an interrupted run, and logs which.
    fn recover(&self) -> Result<()> {
        let txn = self.txn();
        let marker = txn.join(COMMIT_MARKER);
        if marker.exists() {
            let text =
                std::fs::read_to_string(&marker).map_err(Error::io("cannot read", &marker))?;
            let date: BatchDate = text.trim_end().parse().map_err(|_| Error::CorruptState {
                path: marker.clone(),
                line: Some(1),
                reason: format!("{text:?} is not a batch date"),
            })?;
            self.apply(date)?;
            tracing::warn!(mode = %self.mode, %date, "recovery: finished an interrupted commit");
            return Ok(());
        }
        let mut discarded = false;
        for dir in [txn, self.dir.join(REBUILD_DIR), self.dir.join(SYNC_DIR)] {
            if dir.exists() {
                remove_dir_all(&dir)?;
                discarded = true;
            }
        }
        let staging = self.layout.staging_root(self.mode);
        if staging.exists() {
            let entries =
                std::fs::read_dir(&staging).map_err(Error::io("cannot list", &staging))?;
            for entry in entries {
                let entry = entry.map_err(Error::io("cannot list", &staging))?;
                remove_dir_all(&entry.path())?;
                discarded = true;
            }
        }
        self.tidy_staging();
        if discarded {
            tracing::warn!(mode = %self.mode, "recovery: discarded an interrupted, uncommitted batch");
        }
        Ok(())
    }

    /// The committed dates, without loading the master.
    pub fn ledger(&self) -> Result<Vec<LedgerEntry>> {
        let path = self.path(LEDGER_FILE);
        if path.exists() {
            read_ledger(&path)
        } else {
            Ok(Vec::new())
        }
    }

    /// Loads and cross-checks the state; an empty directory is a fresh start.
    pub fn load(&self) -> Result<State> {
        let present: Vec<bool> = STATE_FILES.iter().map(|f| self.path(f).exists()).collect();
        if present.iter().all(|p| !p) {
            return Ok(State::default());
        }
        if let Some(missing) = STATE_FILES.iter().zip(&present).find(|(_, p)| !**p) {
            return Err(Error::CorruptState {
                path: self.path(missing.0),
                line: None,
                reason: "missing while the other state files exist".into(),
            });
        }
        let ledger = read_ledger(&self.path(LEDGER_FILE))?;
        let patients = files::read_master(&self.path(MASTER_FILE))?;
        let encounter_counter = files::read_counter(&self.path(COUNTER_FILE))?;
        let census = files::read_census(&self.path(CENSUS_FILE))?;
        let (expected_patients, expected_counter, expected_census) =
            ledger.last().map_or((0, 0, 0), |e| {
                (e.patients_total, e.encounter_counter, e.census)
            });
        // The master and counter first: a census entry past them usually
        // means one of them was cut short.
        if patients.len() as u64 != expected_patients {
            return Err(Error::CorruptState {
                path: self.path(MASTER_FILE),
                line: Some(patients.len() as u64 + 1),
                reason: format!(
                    "holds {} patients but {} records {expected_patients} (truncated or edited?)",
                    patients.len(),
                    LEDGER_FILE
                ),
            });
        }
        if encounter_counter != expected_counter {
            return Err(Error::CorruptState {
                path: self.path(COUNTER_FILE),
                line: Some(1),
                reason: format!(
                    "holds {encounter_counter} but {LEDGER_FILE} records {expected_counter}"
                ),
            });
        }
        if census.len() as u64 != expected_census {
            return Err(Error::CorruptState {
                path: self.path(CENSUS_FILE),
                line: Some(census.len() as u64 + 1),
                reason: format!(
                    "carries {} encounters but {LEDGER_FILE} records {expected_census}",
                    census.len()
                ),
            });
        }
        if let Some(c) = census.iter().find(|c| {
            c.encounter.number > encounter_counter || c.encounter.patient >= patients.len()
        }) {
            return Err(Error::CorruptState {
                path: self.path(CENSUS_FILE),
                line: None,
                reason: format!(
                    "carries {} of {}, who is not in the master or past the counter",
                    crate::model::encounter_id(c.encounter.number),
                    crate::model::patient_id(c.encounter.patient as u64 + 1)
                ),
            });
        }
        let defects = read_defects(&self.path(DEFECTS_FILE))?;
        Ok(State {
            patients,
            encounter_counter,
            census,
            ledger,
            defects,
        })
    }

    /// The defects profile the mode's state records (`none` without one),
    /// read without loading the rest.
    pub fn defects_profile(&self) -> Result<String> {
        Ok(read_defects(&self.path(DEFECTS_FILE))?
            .map_or_else(|| "none".to_string(), |d| d.profile))
    }

    /// A fresh staging directory for `date`'s batch.
    pub fn begin(&self, date: BatchDate) -> Result<PathBuf> {
        let staging = self.layout.staging_dir(self.mode, date);
        std::fs::create_dir_all(&staging)
            .map_err(Error::io("cannot create staging directory", &staging))?;
        Ok(staging)
    }

    /// Commits the staged batch of `date` together with `state`.
    /// `staged` are the batch files' syncs, still under way: the new state
    /// is journaled meanwhile, and the commit point waits for both.
    pub fn commit(&self, date: BatchDate, state: &State, staged: Syncs) -> Result<()> {
        let staging = self.layout.staging_dir(self.mode, date);
        let txn = self.txn();
        let journaled = self.prepare_txn(&txn, state);
        let synced = staged.wait().and_then(|()| sync_dir(&staging));
        if let Err(e) = journaled.and(synced) {
            self.abort(date);
            return Err(e);
        }
        crashpoint::reached("staged");
        crashpoint::reached("journaled");
        if let Err(e) = write_atomic(&txn.join(COMMIT_MARKER), format!("{date}\n").as_bytes()) {
            self.abort(date);
            return Err(e);
        }
        crashpoint::reached("committed");
        // Past the commit point: a failure from here on is finished by the
        // next recovery, so the marker must stay.
        self.apply(date)
    }

    fn prepare_txn(&self, txn: &Path, state: &State) -> Result<()> {
        write_state_files(txn, state)
    }

    /// Replaces the mode's state with `state`, for `state rebuild`: the files
    /// are written and synced in `.rebuild/`, then renamed over the old ones,
    /// the ledger last. A crash in between leaves files that disagree, which
    /// loading refuses; the rebuild then simply runs again.
    pub fn replace(&self, state: &State) -> Result<()> {
        let dir = self.dir.join(REBUILD_DIR);
        if dir.exists() {
            remove_dir_all(&dir)?;
        }
        write_state_files(&dir, state)?;
        for file in ALL_STATE_FILES {
            if dir.join(file).exists() {
                std::fs::rename(dir.join(file), self.path(file)).map_err(Error::io(
                    "cannot move state file into place",
                    self.path(file),
                ))?;
            } else if file == DEFECTS_FILE && self.path(file).exists() {
                remove_file(&self.path(file))?;
            }
        }
        sync_dir(&self.dir)?;
        remove_dir_all(&dir)?;
        sync_dir(&self.dir)
    }

    /// The identity of the state as committed: its ledger's length and
    /// digest (the ledger records every other file's counts and each
    /// batch's manifest). `None` for a fresh state; a state whose ledger is
    /// missing beside other files is `"incomplete"`, which no store names.
    pub fn generation(&self) -> Result<Option<String>> {
        match std::fs::read(self.path(LEDGER_FILE)) {
            Ok(bytes) => {
                let entries = bytes
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    .saturating_sub(1);
                let digest = hex::encode(Sha256::digest(&bytes));
                Ok(Some(format!("{entries}-{}", &digest[..16])))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let any = ALL_STATE_FILES.iter().any(|f| self.path(f).exists());
                Ok(any.then(|| "incomplete".to_string()))
            }
            Err(e) => Err(Error::io("cannot read", self.path(LEDGER_FILE))(e)),
        }
    }

    /// The folder of the mode's state files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh, empty folder to download a state into before [`install`].
    ///
    /// [`install`]: StateStore::install
    pub fn sync_dir(&self) -> Result<PathBuf> {
        let dir = self.dir.join(SYNC_DIR);
        if dir.exists() {
            remove_dir_all(&dir)?;
        }
        std::fs::create_dir(&dir).map_err(Error::io("cannot create", &dir))?;
        Ok(dir)
    }

    /// Replaces the mode's state files with those of [`sync_dir`] (an
    /// empty one clears the state). The ledger goes first and comes back
    /// last, so a crash in between leaves an `"incomplete"` state, never one
    /// that looks whole.
    ///
    /// [`sync_dir`]: StateStore::sync_dir
    pub fn install(&self) -> Result<()> {
        let from = self.dir.join(SYNC_DIR);
        if self.path(LEDGER_FILE).exists() {
            remove_file(&self.path(LEDGER_FILE))?;
            sync_dir(&self.dir)?;
        }
        for file in ALL_STATE_FILES {
            if from.join(file).exists() {
                std::fs::rename(from.join(file), self.path(file)).map_err(Error::io(
                    "cannot move state file into place",
                    self.path(file),
                ))?;
            } else if self.path(file).exists() {
                remove_file(&self.path(file))?;
            }
        }
        sync_dir(&self.dir)?;
        remove_dir_all(&from)?;
        sync_dir(&self.dir)
    }

    /// The state files' sizes and modification times.
    pub fn fingerprint(&self) -> StateFingerprint {
        ALL_STATE_FILES
            .iter()
            .map(|f| {
                let meta = std::fs::metadata(self.path(f)).ok()?;
                Some((meta.len(), meta.modified().ok()?))
            })
            .collect()
    }

    /// Steps 3 and 4 of the protocol; safe to repeat after a crash in them.
    fn apply(&self, date: BatchDate) -> Result<()> {
        let staged = self.layout.staging_dir(self.mode, date);
        let target = self.layout.batch_dir(self.mode, date);
        if staged.exists() && target.exists() {
            // Renamed into place before a crash, or a batch that was there
            // already: the manifests tell which.
            let same = |dir: &Path| std::fs::read(dir.join(MANIFEST_FILE)).ok();
            if same(&staged).is_none() || same(&staged) != same(&target) {
                return Err(Error::StateMismatch {
                    mode: self.mode,
                    problem: format!(
                        "{} commits {date}, but {} already holds a different batch",
                        self.txn().join(COMMIT_MARKER).display(),
                        target.display()
                    ),
                });
            }
            remove_dir_all(&staged)?;
        } else if staged.exists() {
            std::fs::rename(&staged, &target)
                .map_err(Error::io("cannot move batch into place", &target))?;
            sync_dir(&self.layout.mode_dir(self.mode))?;
        } else if !target.exists() {
            return Err(Error::CorruptState {
                path: self.txn().join(COMMIT_MARKER),
                line: None,
                reason: format!(
                    "commits {date}, but neither the staged nor the final batch exists"
                ),
            });
        }
        crashpoint::reached("published");
        let txn = self.txn();
        for file in ALL_STATE_FILES {
            let from = txn.join(file);
            if from.exists() {
                std::fs::rename(&from, self.path(file)).map_err(Error::io(
                    "cannot move state file into place",
                    self.path(file),
                ))?;
            }
        }
        sync_dir(&self.dir)?;
        crashpoint::reached("applied");
        remove_dir_all(&txn)?;
        sync_dir(&self.dir)?;
        self.tidy_staging();
        Ok(())
    }

    /// Discards an uncommitted batch after a failure (best effort: whatever
    /// is left is rolled back by the next recovery).
    pub fn abort(&self, date: BatchDate) {
        for dir in [self.layout.staging_dir(self.mode, date), self.txn()] {
            if dir.exists()
                && let Err(e) = std::fs::remove_dir_all(&dir)
            {
                tracing::warn!(dir = %dir.display(), error = %e, "could not clean up; the next run will");
            }
        }
        self.tidy_staging();
    }

    /// Leaves no empty staging folders in the data directory. `remove_dir`
    /// only removes empty ones, so another mode's batch in flight is safe.
    pub(crate) fn tidy_staging(&self) {
        let root = self.layout.staging_root(self.mode);
        let _ = std::fs::remove_dir(&root);
        if let Some(parent) = root.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

fn remove_file(path: &Path) -> Result<()> {
    std::fs::remove_file(path).map_err(Error::io("cannot remove", path))
}

fn remove_dir_all(dir: &Path) -> Result<()> {
    std::fs::remove_dir_all(dir).map_err(Error::io("cannot remove", dir))
}

/// The dates with a batch directory under `<data_dir>/<mode>/`. Entries
/// whose names are not batch dates are not datagen's and are left alone.
pub fn committed_dates(layout: &Layout, mode: Mode) -> Result<BTreeSet<BatchDate>> {
    let dir = layout.mode_dir(mode);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(Error::io("cannot list", &dir)(e)),
    };
    let mut dates = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(Error::io("cannot list", &dir))?;
        if let Some(date) = entry.file_name().to_str().and_then(|n| n.parse().ok())
            && entry.path().is_dir()
        {
            dates.insert(date);
        }
    }
    Ok(dates)
}

/// The bytes of a ledger entry's manifest, checked against the sha256 the
/// ledger recorded.
pub fn recorded_manifest(layout: &Layout, mode: Mode, entry: &LedgerEntry) -> Result<Vec<u8>> {
    let path = layout.batch_dir(mode, entry.date).join(MANIFEST_FILE);
    let ledger = layout.state_dir(mode).join(LEDGER_FILE);
    let bytes = std::fs::read(&path).map_err(|e| Error::StateMismatch {
        mode,
        problem: format!(
            "{} records {}, but {} cannot be read ({e})",
            ledger.display(),
            entry.date,
            path.display()
        ),
    })?;
    let sha = hex::encode(Sha256::digest(&bytes));
    if sha != entry.manifest_sha256 {
        return Err(Error::StateMismatch {
            mode,
            problem: format!(
                "{} records {} with manifest sha256 {}, but {} has sha256 {sha}",
                ledger.display(),
                entry.date,
                entry.manifest_sha256,
                path.display()
            ),
        });
    }
    Ok(bytes)
}

/// State and data agree: every ledger entry has its batch, with the manifest
/// it recorded, and every committed batch has its ledger entry.
pub fn check_agreement(layout: &Layout, mode: Mode, ledger: &[LedgerEntry]) -> Result<()> {
    let recorded: BTreeSet<BatchDate> = ledger.iter().map(|e| e.date).collect();
    let unrecorded: Vec<String> = committed_dates(layout, mode)?
        .difference(&recorded)
        .map(|d| d.to_string())
        .collect();
    if !unrecorded.is_empty() {
        let shown = unrecorded
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::StateMismatch {
            mode,
            problem: format!(
                "{} holds {} committed batch{} that {} does not record ({shown}{}): the state is missing, or older than the data",
                layout.mode_dir(mode).display(),
                unrecorded.len(),
                if unrecorded.len() == 1 { "" } else { "es" },
                layout.state_dir(mode).join(LEDGER_FILE).display(),
                if unrecorded.len() > 5 { ", ..." } else { "" },
            ),
        });
    }
    for entry in ledger {
        recorded_manifest(layout, mode, entry)?;
    }
    Ok(())
}
