//! The batch engine that the CLI and the server share: one call generates
//! and commits a date's batch for a mode, or reports the one already there.

mod batch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use batch::{DayVolumes, day_volumes};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::model::{BatchDate, Mode};
use crate::state::{LEDGER_FILE, LedgerEntry, StateStore, read_ledger};

/// Per-run volume overrides, taken exactly (the CLI's `--new-patients` and
/// `--encounters`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub new_patients: Option<u32>,
    pub encounters: Option<u32>,
}

/// What a `generate` call did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// False when the date was already committed and nothing changed.
    pub created: bool,
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub elapsed: Duration,
}

pub struct Engine {
    config: Config,
    layout: Layout,
}

impl Engine {
    pub fn new(config: Config) -> Engine {
        let layout = Layout::new(&config.paths.data_dir, &config.paths.state_dir);
        Engine { config, layout }
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
        on_file: &mut dyn FnMut(&std::path::Path),
    ) -> Result<Outcome> {
        let started = Instant::now();
        let timeout = Duration::from_secs(self.config.state.lock_timeout_secs);
        let store = StateStore::open(&self.layout, mode, timeout)?;
        let dir = self.layout.batch_dir(mode, date);

        let ledger = store.ledger()?;
        if let Some(entry) = ledger.iter().find(|e| e.date == date) {
            let manifest = self.committed_manifest(mode, entry)?;
            return Ok(Outcome {
                created: false,
                dir,
                manifest,
                elapsed: started.elapsed(),
            });
        }

        let mut state = store.load()?;
        let staging = store.begin(date)?;
        let manifest = match batch::build(
            &self.config,
            mode,
            date,
            overrides,
            &mut state,
            &staging,
            on_file,
        ) {
            Ok(manifest) => manifest,
            Err(e) => {
                store.abort(date);
                return Err(e);
            }
        };
        state.ledger.push(LedgerEntry {
            date,
            patients_total: state.patients.len() as u64,
            encounter_counter: state.encounter_counter,
            manifest_sha256: hex::encode(Sha256::digest(manifest.to_bytes())),
        });
        store.commit(date, &state)?;
        tracing::info!(
            %mode,
            %date,
            seconds = started.elapsed().as_secs_f64(),
            "batch committed"
        );
        Ok(Outcome {
            created: true,
            dir,
            manifest,
            elapsed: started.elapsed(),
        })
    }

    /// The committed batches of a mode, in commit order. Reads without the
    /// lock: the ledger is only ever replaced whole, by rename.
    pub fn batches(&self, mode: Mode) -> Result<Vec<LedgerEntry>> {
        let path = self.layout.state_dir(mode).join(LEDGER_FILE);
        if path.exists() {
            read_ledger(&path)
        } else {
            Ok(Vec::new())
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
        let dir = self.layout.batch_dir(mode, entry.date);
        let missing = || Error::MissingBatch {
            mode,
            date: entry.date,
            ledger: self.layout.state_dir(mode).join(LEDGER_FILE),
            dir: dir.clone(),
        };
        let bytes = std::fs::read(dir.join(MANIFEST_FILE)).map_err(|_| missing())?;
        if hex::encode(Sha256::digest(&bytes)) != entry.manifest_sha256 {
            return Err(missing());
        }
        Manifest::parse(&bytes, &dir.join(MANIFEST_FILE))
    }
}
