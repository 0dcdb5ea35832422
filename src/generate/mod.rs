//! Pure generation, in the contract's order: [`patients`], [`encounters`],
//! then each encounter's [`course`], [`vitals`], [`labs`] and [`notes`]. Functions here take an RNG and their inputs and return rows;
//! they never touch the file system, so the CLI, the server and the tests all
//! get the same rows for the same inputs.
//!
//! Every random draw comes from a [`DaySeed`]: one ChaCha8 key per
//! (global seed, mode, date), split into independent streams per purpose and
//! per encounter, so changing how vitals are drawn never shifts patient or
//! encounter draws, and an encounter's vitals do not depend on its neighbours.

mod alias;
pub mod course;
pub mod encounters;
mod grammar;
mod history;
pub mod labs;
mod names;
pub mod notes;
pub mod patients;
pub mod vitals;

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::model::{BatchDate, Mode};

/// The key all of one batch's randomness derives from.
#[derive(Clone, Copy, Debug)]
pub struct DaySeed([u8; 32]);

/// What a stream of random numbers is used for.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Volumes,
    NewPatients,
    Encounters,
    PostalChanges,
    /// The stays already under way when a mode starts (one per earlier day).
    WarmStart,
    /// The patients a facility has when a mode starts.
    Population,
    /// Which emergency patients come back, and when.
    Returns,
    /// The keys of the day's defects (see `crate::defects`).
    Defects,
    /// One stream per encounter and purpose, by its position in the day's plan.
    Vitals(u32),
    Labs(u32),
    Notes(u32),
}

impl DaySeed {
    pub fn new(global_seed: u64, mode: Mode, date: BatchDate) -> DaySeed {
        let mut h = Sha256::new();
        h.update(b"datagen/day-seed/v1\0");
        h.update(global_seed.to_le_bytes());
        h.update(mode.as_str().as_bytes());
        h.update(b"\0");
        h.update(date.to_string().as_bytes());
        DaySeed(h.finalize().into())
    }

    pub fn rng(&self, stream: Stream) -> ChaCha8Rng {
        let id = match stream {
            Stream::Volumes => 1,
            Stream::NewPatients => 2,
            Stream::Encounters => 3,
            Stream::PostalChanges => 4,
            Stream::WarmStart => 5,
            Stream::Population => 6,
            Stream::Returns => 7,
            Stream::Defects => 8,
            Stream::Vitals(ordinal) => (1 << 32) | u64::from(ordinal),
            Stream::Labs(ordinal) => (2 << 32) | u64::from(ordinal),
            Stream::Notes(ordinal) => (3 << 32) | u64::from(ordinal),
        };
        let mut rng = ChaCha8Rng::from_seed(self.0);
        rng.set_stream(id);
        rng
    }
}

/// Picks an index with probability proportional to its weight; `None` when
/// no weight is positive.
pub(crate) fn pick_weighted<R: rand::Rng + ?Sized>(
    rng: &mut R,
    weights: impl IntoIterator<Item = f64>,
) -> Option<usize> {
    use rand::RngExt;
    let index = rand::distr::weighted::WeightedIndex::new(weights).ok()?;
    Some(rng.sample(index))
}

/// Two numbers mixed into one by SplitMix64's finalizer: neighbouring
/// inputs land far apart, so keyed picks (a patient's, a row's) are not
/// correlated with each other.
pub(crate) fn mix64(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A standard normal draw.
pub(crate) fn normal<R: rand::Rng + ?Sized>(rng: &mut R) -> f64 {
    use rand::RngExt;
    rng.sample::<f64, _>(rand_distr::StandardNormal)
}
