//! The typed configuration: what it holds, how its layers are merged, and the
//! checks that make a loaded config safe to generate from.
//!
//! Layers, later ones winning: the embedded `config/default.yaml`, an optional
//! file (`config/default.yaml` in the working directory, or `--config PATH`),
//! `DATAGEN__*` environment variables, then command-line flags (applied by the
//! caller through [`Config::apply`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::facility::Facility;
use crate::model::{Condition, Conditions, Disposition, EncounterType, Sex};

/// The defaults compiled into the binary, so it runs with no files around it.
pub const EMBEDDED_DEFAULTS: &str = include_str!("../config/default.yaml");

/// The file looked for in the working directory when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "config/default.yaml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub seed: u64,
    pub paths: PathsConfig,
    pub state: StateConfig,
    pub generation: GenerationConfig,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub facility: Facility,
    pub volumes: Volumes,
    pub population: Population,
    pub missing: MissingRates,
    pub defects: DefectsConfig,
    pub output: OutputConfig,
    #[serde(default)]
    pub object_store: ObjectStoreConfig,
    pub scenarios: Vec<Scenario>,
}

/// The files a batch is written as.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// `csv` (the text files: CSV, and JSON Lines for notes), `parquet`, or
    /// `both`.
    pub format: crate::dataset::OutputFormat,
}

/// The defects batches carry (see [`crate::defects`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefectsConfig {
    pub profile: crate::defects::Profile,
    /// The `custom` profile's table: kind -> dataset -> rate.
    #[serde(default)]
    pub rates: crate::defects::CustomRates,
}

impl DefectsConfig {
    /// The rates of `profile` (the config's own when `None`).
    pub fn rates(&self, profile: Option<crate::defects::Profile>) -> crate::defects::Rates {
        crate::defects::Rates::of(profile.unwrap_or(self.profile), &self.rates)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    /// The batches; with an object-store `data_url`, this machine's cache of
    /// them.
    pub data_dir: PathBuf,
    /// The state; with an object-store `state_url`, this machine's cache of
    /// it.
    pub state_dir: PathBuf,
    /// `s3://bucket/prefix` to keep the batches in a bucket; a plain path
    /// or `file://` URL sets `data_dir` instead.
    #[serde(default)]
    pub data_url: Option<String>,
    /// `s3://bucket/prefix` to keep the state in a bucket, shared by every
    /// replica pointed at it; a plain path or `file://` URL sets `state_dir`.
    #[serde(default)]
    pub state_url: Option<String>,
}

/// Where batches and state live: local directories, or a bucket each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    Local,
    Bucket { data: url::Url, state: url::Url },
}

impl PathsConfig {
    /// Resolves the URLs: local ones become the directories, and a bucket
    /// for one of data and state needs a bucket for the other.
    pub fn storage(&self) -> Result<Storage, String> {
        use crate::remote::Location;
        let data = self
            .data_url
            .as_deref()
            .map(Location::parse)
            .transpose()
            .map_err(|e| format!("paths.data_url: {e}"))?;
        let state = self
            .state_url
            .as_deref()
            .map(Location::parse)
            .transpose()
            .map_err(|e| format!("paths.state_url: {e}"))?;
        match (data, state) {
            (Some(Location::Bucket(data)), Some(Location::Bucket(state))) => {
                if data == state {
                    return Err(format!(
                        "paths.data_url and paths.state_url are both {data}: give each its own prefix"
                    ));
                }
                Ok(Storage::Bucket { data, state })
            }
            (Some(Location::Bucket(url)), _) => Err(format!(
                "paths.data_url is the bucket {url}, so paths.state_url must be a bucket too: replicas share their state through it, never through a local disk"
            )),
            (_, Some(Location::Bucket(url))) => Err(format!(
                "paths.state_url is the bucket {url}, so paths.data_url must be a bucket too"
            )),
            _ => Ok(Storage::Local),
        }
    }

    /// `data_url` and `state_url` given as local paths move the directories.
    fn localize(&mut self) {
        use crate::remote::Location;
        for (url, dir) in [
            (&mut self.data_url, &mut self.data_dir),
            (&mut self.state_url, &mut self.state_dir),
        ] {
            if let Some(Ok(Location::Local(path))) = url.as_deref().map(Location::parse) {
                *dir = path;
                *url = None;
            }
        }
    }
}

/// The object store client's patience, with a bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectStoreConfig {
    /// Seconds one request may take before it is retried or fails.
    pub timeout_secs: u64,
    /// Retries of a failed request (with backoff) before the run fails.
    pub max_retries: usize,
}

impl Default for ObjectStoreConfig {
    fn default() -> Self {
        ObjectStoreConfig {
            timeout_secs: 30,
            max_retries: 3,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    pub lock_timeout_secs: u64,
}

/// How a batch is generated (not what: the output is the same for any
/// setting here, so none of it is in the config fingerprint).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationConfig {
    /// Threads that render encounters; 0 means one per available core.
    pub threads: usize,
}

impl GenerationConfig {
    /// The thread count to use: `threads`, or the machine's cores for 0.
    pub fn effective_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub max_encounters: u32,
    pub max_new_patients: u32,
    pub request_timeout_secs: u64,
    /// How long a client may take to send a request's head, and how long an
    /// idle keep-alive connection stays open.
    pub header_read_timeout_secs: u64,
    pub concurrency_limit: usize,
    /// Connections open at once; past that, new ones wait to be accepted.
    pub max_connections: usize,
    /// Missing days one `?catch_up=true` request may generate first.
    pub max_catch_up_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Bearer token required on mutating routes; `None` disables auth.
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volumes {
    pub raw: Volume,
    pub sample: Volume,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// Patients the facility already has when the mode's feed starts.
    pub population: u32,
    pub new_patients: u32,
    pub encounters: u32,
    pub weekend_factor: f64,
    pub jitter: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Population {
    pub age_brackets: Vec<AgeBracket>,
    pub sex_weights: BTreeMap<Sex, f64>,
    pub returning_share: f64,
    /// Share of emergency visits that send a patient of average propensity
    /// home who comes back within 72 hours.
    pub ed_return_rate: f64,
    pub postal_code_change_rate: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeBracket {
    pub min: u32,
    pub max: u32,
    pub weight: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingRates {
    pub heart_rate: f64,
    pub blood_pressure: f64,
    pub respiratory_rate: f64,
    pub temperature_c: f64,
    pub spo2: f64,
    /// Temperature on the triage set (the first of an emergency visit).
    pub triage_temperature_c: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub weight: f64,
    #[serde(default = "one")]
    pub weekend_factor: f64,
    #[serde(default = "one")]
    pub returning_affinity: f64,
    /// Days that must pass before a patient comes for this scenario again
    /// (an annual physical, a quarterly follow-up); 0 for no limit.
    #[serde(default)]
    pub min_gap_days: u32,
    pub encounter_type: EncounterType,
    pub department: String,
    pub chief_complaints: Vec<String>,
    pub eligible: Eligibility,
    pub duration: DurationModel,
    pub dispositions: BTreeMap<Disposition, f64>,
    /// For emergency scenarios: the Emergency Severity Index the complaint
    /// gets by protocol (chest pain 2), before the vitals and the nurse.
    #[serde(default)]
    pub triage_esi: Option<u8>,
    /// For emergency scenarios: the inpatient scenarios (by name, weighted)
    /// that a visit ending `admitted` continues as, e.g. chest pain to a
    /// cardiac admission.
    #[serde(default)]
    pub admits_to: BTreeMap<String, f64>,
    pub vitals: VitalsProfile,
    #[serde(default)]
    pub labs: LabsProfile,
}

/// What a scenario orders from the lab and how its results deviate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabsProfile {
    #[serde(default)]
    pub orders: Vec<LabOrder>,
    /// Admission deviation from the patient's baseline per test key (natural
    /// units), scaled by severity and fading with the encounter's course.
    /// `bun_ratio` shifts the BUN:creatinine ratio.
    #[serde(default)]
    pub deviation: BTreeMap<String, f64>,
    /// Added for encounters that end admitted, transferred or dead.
    #[serde(default)]
    pub escalated_deviation: BTreeMap<String, f64>,
    /// The share of those encounters that have it.
    #[serde(default = "one")]
    pub escalated_share: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabOrder {
    /// bmp, cbc, lactate or troponin.
    pub panel: String,
    /// Chance the panel is ordered at all for an encounter.
    #[serde(default = "one")]
    pub probability: f64,
    /// Repeat interval; 24 means every early morning. Absent: once on arrival.
    #[serde(default)]
    pub every_hours: Option<u32>,
    /// Stop repeating this many hours after arrival.
    #[serde(default)]
    pub for_hours: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eligibility {
    pub min_age: u32,
    pub max_age: u32,
    /// Empty means every sex.
    #[serde(default)]
    pub sexes: Vec<Sex>,
    /// Chronic conditions a patient must have: a follow-up clinic sees only
    /// the patients who have what it follows up.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Relative likelihood by age among the patients it admits (1 where no
    /// band covers an age): sepsis is mostly a disease of the old.
    #[serde(default)]
    pub age_weights: Vec<AgeWeight>,
}

/// A band of ages and its weight.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeWeight {
    pub min: u32,
    pub max: u32,
    pub weight: f64,
}

impl Eligibility {
    pub fn admits(&self, age: u32, sex: Sex, conditions: Conditions) -> bool {
        (self.min_age..=self.max_age).contains(&age)
            && (self.sexes.is_empty() || self.sexes.contains(&sex))
            && self.conditions.iter().all(|c| conditions.has(*c))
    }

    /// The chance of taking a patient of `age` the scenario admits: their
    /// age band's weight over the heaviest band's.
    pub fn age_acceptance(&self, age: u32) -> f64 {
        let heaviest = self
            .age_weights
            .iter()
            .map(|b| b.weight)
            .fold(1.0, f64::max);
        let weight = self
            .age_weights
            .iter()
            .find(|b| (b.min..=b.max).contains(&age))
            .map_or(1.0, |b| b.weight);
        (weight / heaviest).clamp(0.0, 1.0)
    }
}

/// Length of stay: lognormal around `median_minutes` with log-sd `sigma`,
/// clamped to `[min_minutes, max_minutes]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurationModel {
    pub median_minutes: f64,
    pub sigma: f64,
    pub min_minutes: u32,
    pub max_minutes: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitalsProfile {
    /// Minutes between charted sets; 0 means one set per encounter.
    pub interval_minutes: u32,
    #[serde(default)]
    pub stable_interval_minutes: Option<u32>,
    #[serde(default)]
    pub urgent_interval_minutes: Option<u32>,
    #[serde(default)]
    pub jitter_minutes: u32,
    #[serde(default = "one")]
    pub missing_scale: f64,
    #[serde(default = "default_half_life")]
    pub trend_half_life_hours: f64,
    /// Charting temperature only this often (an ICU's q4h), not every set.
    #[serde(default)]
    pub temperature_interval_minutes: Option<u32>,
    /// Share of patients whose temperature falls instead of rising (cold
    /// sepsis), half again as many past 75.
    #[serde(default)]
    pub hypothermia_share: f64,
    pub heart_rate: Signal,
    pub systolic_bp: Signal,
    pub diastolic_bp: Signal,
    pub respiratory_rate: Signal,
    pub temperature_c: Signal,
    pub spo2: Signal,
}

impl VitalsProfile {
    fn signals(&self) -> [(&'static str, &Signal); 6] {
        [
            ("heart_rate", &self.heart_rate),
            ("systolic_bp", &self.systolic_bp),
            ("diastolic_bp", &self.diastolic_bp),
            ("respiratory_rate", &self.respiratory_rate),
            ("temperature_c", &self.temperature_c),
            ("spo2", &self.spo2),
        ]
    }
}

/// One vital sign's model for a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    pub baseline: f64,
    pub spread: f64,
    pub noise: f64,
    #[serde(default)]
    pub deviation: f64,
}

fn one() -> f64 {
    1.0
}

fn default_half_life() -> f64 {
    24.0
}

/// Command-line values that override the loaded config.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub data_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub data_url: Option<String>,
    pub state_url: Option<String>,
    pub seed: Option<u64>,
    pub lock_timeout_secs: Option<u64>,
    pub bind: Option<String>,
    pub threads: Option<usize>,
}

/// Where the config comes from besides the embedded defaults.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// An explicit file (`--config`): it must exist.
    pub file: Option<PathBuf>,
    /// Environment variables to read `DATAGEN__*` keys from; `None` reads the
    /// process environment. Tests inject a map here instead of mutating it.
    pub env: Option<HashMap<String, String>>,
}

impl Config {
    /// Builds the effective config from its layers and checks it.
    pub fn load(sources: &ConfigSources) -> Result<Config, Error> {
        use config::{Environment, File, FileFormat};

        let mut builder = config::Config::builder()
            .add_source(File::from_str(EMBEDDED_DEFAULTS, FileFormat::Yaml));
        match &sources.file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigFile {
                    path: path.clone(),
                    reason: source.to_string(),
                })?;
                builder = builder.add_source(File::from_str(&text, FileFormat::Yaml));
            }
            None => {
                if Path::new(DEFAULT_CONFIG_FILE).is_file() {
                    builder = builder
                        .add_source(File::with_name(DEFAULT_CONFIG_FILE).format(FileFormat::Yaml));
                }
            }
        }
        let env = Environment::with_prefix("DATAGEN")
            .separator("__")
            .try_parsing(true)
            .source(sources.env.clone());
        builder = builder.add_source(env);

        let origin = sources
            .file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the embedded defaults, config/default.yaml or DATAGEN__*".into());
        let merged = builder.build().map_err(|e| Error::Config {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        let mut config: Config = merged.try_deserialize().map_err(|e| Error::Config {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        config.paths.localize();
        config
            .validate()
            .map_err(|reason| Error::Config { origin, reason })?;
        Ok(config)
    }

    /// Applies command-line overrides (the last layer) and checks the result
    /// again, so a bad flag fails as clearly as a bad file.
    pub fn apply(&mut self, cli: &CliOverrides) -> Result<(), Error> {
        if let Some(dir) = &cli.data_dir {
            self.paths.data_dir = dir.clone();
        }
        if let Some(dir) = &cli.state_dir {
            self.paths.state_dir = dir.clone();
        }
        if let Some(url) = &cli.data_url {
            self.paths.data_url = Some(url.clone());
        }
        if let Some(url) = &cli.state_url {
            self.paths.state_url = Some(url.clone());
        }
        self.paths.localize();
        if let Some(seed) = cli.seed {
            self.seed = seed;
        }
        if let Some(secs) = cli.lock_timeout_secs {
            self.state.lock_timeout_secs = secs;
        }
        if let Some(bind) = &cli.bind {
            self.server.bind = bind.clone();
        }
        if let Some(threads) = cli.threads {
            self.generation.threads = threads;
        }
        self.validate().map_err(|reason| Error::Config {
            origin: "command-line flags".into(),
            reason,
        })
    }

    pub fn volume(&self, mode: crate::model::Mode) -> &Volume {
        match mode {
            crate::model::Mode::Raw => &self.volumes.raw,
            crate::model::Mode::Sample => &self.volumes.sample,
        }
    }

    /// The day's encounters relative to a weekday's: each scenario's rate
    /// scaled by its own weekend factor on Saturdays and Sundays, so clinics
    /// close while the emergency department stays as busy.
    pub fn encounter_factor(&self, date: crate::model::BatchDate) -> f64 {
        if !date.is_weekend() {
            return 1.0;
        }
        let total: f64 = self.scenarios.iter().map(|s| s.weight).sum();
        if total <= 0.0 {
            return 1.0;
        }
        self.scenarios
            .iter()
            .map(|s| s.weight * s.weekend_factor)
            .sum::<f64>()
            / total
    }

    /// sha256 of everything that shapes the generated data (not where it is
    /// written), recorded in each manifest so a batch can be traced to its config.
    pub fn fingerprint(&self) -> String {
        #[derive(Serialize)]
        struct Shaping<'a> {
            seed: u64,
            facility: &'a Facility,
            volumes: &'a Volumes,
            population: &'a Population,
            missing: &'a MissingRates,
            scenarios: &'a [Scenario],
        }
        let shaping = Shaping {
            seed: self.seed,
            facility: &self.facility,
            volumes: &self.volumes,
            population: &self.population,
            missing: &self.missing,
            scenarios: &self.scenarios,
        };
        // Serializing plain structs, Vecs and BTreeMaps cannot fail and is
        // ordered, so the digest is stable.
        let bytes = serde_json::to_vec(&shaping).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    /// Semantic checks serde cannot express. The error names the key and why.
    fn validate(&self) -> Result<(), String> {
        self.paths.storage()?;
        if self.object_store.timeout_secs == 0 {
            return Err("object_store.timeout_secs: must be at least 1".into());
        }
        fn share(key: &str, v: f64) -> Result<(), String> {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{key}: must be between 0 and 1, got {v}"))
            }
        }
        fn positive(key: &str, v: f64) -> Result<(), String> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{key}: must be a positive number, got {v}"))
            }
        }
        fn non_negative(key: &str, v: f64) -> Result<(), String> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{key}: must be zero or more, got {v}"))
            }
        }

        crate::defects::Rates::check_custom(&self.defects.rates)?;
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "server.bind: {:?} is not an ADDRESS:PORT socket address",
                self.server.bind
            ));
        }
        for (key, value) in [
            (
                "server.concurrency_limit",
                self.server.concurrency_limit as u64,
            ),
            (
                "server.request_timeout_secs",
                self.server.request_timeout_secs,
            ),
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            ),
        ] {
            if value == 0 {
                return Err(format!("{key}: must be positive, got 0"));
            }
        }
        if self
            .auth
            .token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err("auth.token: must not be empty (use null to disable auth)".into());
        }
        for (name, v) in [("raw", &self.volumes.raw), ("sample", &self.volumes.sample)] {
            non_negative(&format!("volumes.{name}.weekend_factor"), v.weekend_factor)?;
            share(&format!("volumes.{name}.jitter"), v.jitter)?;
        }
        let p = &self.population;
        if p.age_brackets.is_empty() {
            return Err("population.age_brackets: must list at least one bracket".into());
        }
        for (i, b) in p.age_brackets.iter().enumerate() {
            if b.min < 18 || b.min > b.max || b.max > 110 {
                return Err(format!(
                    "population.age_brackets[{i}]: ages must satisfy 18 <= min <= max <= 110, got {}..{}",
                    b.min, b.max
                ));
            }
            positive(&format!("population.age_brackets[{i}].weight"), b.weight)?;
        }
        if p.sex_weights.values().any(|w| !w.is_finite() || *w < 0.0)
            || p.sex_weights.values().sum::<f64>() <= 0.0
        {
            return Err("population.sex_weights: weights must be >= 0 with a positive sum".into());
        }
        share("population.returning_share", p.returning_share)?;
        share("population.ed_return_rate", p.ed_return_rate)?;
        share(
            "population.postal_code_change_rate",
            p.postal_code_change_rate,
        )?;
        let m = &self.missing;
        for (key, v) in [
            ("heart_rate", m.heart_rate),
            ("blood_pressure", m.blood_pressure),
            ("respiratory_rate", m.respiratory_rate),
            ("temperature_c", m.temperature_c),
            ("spo2", m.spo2),
            ("triage_temperature_c", m.triage_temperature_c),
        ] {
            share(&format!("missing.{key}"), v)?;
        }

        if self.scenarios.is_empty() {
            return Err("scenarios: must list at least one scenario".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, s) in self.scenarios.iter().enumerate() {
            let key = format!("scenarios[{i}]");
            if s.name.is_empty()
                || !s
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(format!(
                    "{key}.name: must be snake_case ([a-z0-9_]+), got {:?}",
                    s.name
                ));
            }
            if !names.insert(s.name.as_str()) {
                return Err(format!("{key}.name: duplicate scenario name {:?}", s.name));
            }
            positive(&format!("{key}.weight"), s.weight)?;
            non_negative(&format!("{key}.weekend_factor"), s.weekend_factor)?;
            positive(&format!("{key}.returning_affinity"), s.returning_affinity)?;
            // The encounters schema's bounds for these columns.
            if s.department.trim().is_empty() || s.department.chars().count() > 128 {
                return Err(format!("{key}.department: must be 1 to 128 characters"));
            }
            if s.chief_complaints.iter().any(|c| c.chars().count() > 256) {
                return Err(format!(
                    "{key}.chief_complaints: each must be at most 256 characters"
                ));
            }
            if s.chief_complaints.is_empty()
                || s.chief_complaints.iter().any(|c| c.trim().is_empty())
            {
                return Err(format!(
                    "{key}.chief_complaints: must list at least one non-empty complaint"
                ));
            }
            if s.eligible.min_age > s.eligible.max_age {
                return Err(format!("{key}.eligible: min_age must not exceed max_age"));
            }
            let d = &s.duration;
            positive(&format!("{key}.duration.median_minutes"), d.median_minutes)?;
            non_negative(&format!("{key}.duration.sigma"), d.sigma)?;
            if d.min_minutes == 0 || d.min_minutes > d.max_minutes {
                return Err(format!(
                    "{key}.duration: need 0 < min_minutes <= max_minutes, got {}..{}",
                    d.min_minutes, d.max_minutes
                ));
            }
            if d.max_minutes > 90 * 24 * 60 {
                return Err(format!(
                    "{key}.duration.max_minutes: at most 90 days (129600)"
                ));
            }
            if s.dispositions.is_empty()
                || s.dispositions.values().any(|w| !w.is_finite() || *w < 0.0)
                || s.dispositions.values().sum::<f64>() <= 0.0
            {
                return Err(format!(
                    "{key}.dispositions: weights must be >= 0 with a positive sum"
                ));
            }
            let v = &s.vitals;
            let shortest = [
                Some(v.interval_minutes),
                v.stable_interval_minutes,
                v.urgent_interval_minutes,
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(0);
            if v.interval_minutes > 0 && shortest < 15 {
                return Err(format!(
                    "{key}.vitals: charting intervals must be at least 15 minutes"
                ));
            }
            if v.jitter_minutes >= shortest.max(1) && v.interval_minutes > 0 {
                return Err(format!(
                    "{key}.vitals.jitter_minutes: must be less than the shortest interval ({shortest})"
                ));
            }
            non_negative(&format!("{key}.vitals.missing_scale"), v.missing_scale)?;
            share(
                &format!("{key}.vitals.hypothermia_share"),
                v.hypothermia_share,
            )?;
            share(
                &format!("{key}.labs.escalated_share"),
                s.labs.escalated_share,
            )?;
            positive(
                &format!("{key}.vitals.trend_half_life_hours"),
                v.trend_half_life_hours,
            )?;
            for (signal, sig) in v.signals() {
                for (field, x) in [("baseline", sig.baseline), ("deviation", sig.deviation)] {
                    if !x.is_finite() {
                        return Err(format!("{key}.vitals.{signal}.{field}: must be a number"));
                    }
                }
                non_negative(&format!("{key}.vitals.{signal}.spread"), sig.spread)?;
                non_negative(&format!("{key}.vitals.{signal}.noise"), sig.noise)?;
            }
        }

        for (i, s) in self.scenarios.iter().enumerate() {
            let key = format!("scenarios[{i}].admits_to");
            let admits = s
                .dispositions
                .get(&Disposition::Admitted)
                .is_some_and(|w| *w > 0.0);
            if admits && s.encounter_type != EncounterType::Emergency {
                return Err(format!(
                    "scenarios[{i}].dispositions.admitted: only emergency scenarios admit (this one is {})",
                    s.encounter_type.as_str()
                ));
            }
            if admits && s.admits_to.is_empty() {
                return Err(format!(
                    "{key}: {} can end `admitted`, so it must name the inpatient scenarios it admits to",
                    s.name
                ));
            }
            for (name, weight) in &s.admits_to {
                positive(&format!("{key}.{name}"), *weight)?;
                let target = self.scenarios.iter().find(|t| &t.name == name);
                if target.is_none_or(|t| t.encounter_type != EncounterType::Inpatient) {
                    return Err(format!(
                        "{key}.{name}: not an inpatient scenario of this config"
                    ));
                }
            }
        }
        for (i, s) in self.scenarios.iter().enumerate() {
            let key = format!("scenarios[{i}].labs");
            for (j, order) in s.labs.orders.iter().enumerate() {
                if crate::catalog::panel(&order.panel).is_none() {
                    let known: Vec<&str> = crate::catalog::PANELS.iter().map(|p| p.key).collect();
                    return Err(format!(
                        "{key}.orders[{j}].panel: unknown panel {:?}, expected one of {}",
                        order.panel,
                        known.join(", ")
                    ));
                }
                share(&format!("{key}.orders[{j}].probability"), order.probability)?;
            }
            for (field, map) in [
                ("deviation", &s.labs.deviation),
                ("escalated_deviation", &s.labs.escalated_deviation),
            ] {
                for (test, value) in map {
                    let derived = matches!(test.as_str(), "bun" | "chloride");
                    if (crate::catalog::test(test).is_none() || derived) && test != "bun_ratio" {
                        return Err(format!(
                            "{key}.{field}.{test}: not a lab test key (chloride and bun follow from the others; use bun_ratio)"
                        ));
                    }
                    if !value.is_finite() {
                        return Err(format!("{key}.{field}.{test}: must be a number"));
                    }
                }
            }
        }

        // Every patient the population can produce must fit some scenario, or
        // encounter planning would have nothing to choose from.
        let min_age = p.age_brackets.iter().map(|b| b.min).min().unwrap_or(18);
        let max_age = p.age_brackets.iter().map(|b| b.max).max().unwrap_or(100);
        for sex in <Sex as strum::IntoEnumIterator>::iter() {
            for age in min_age..=max_age + 1 {
                // Whatever their conditions: someone with none must fit too.
                if !self
                    .scenarios
                    .iter()
                    .any(|s| s.eligible.admits(age, sex, Conditions::default()))
                {
                    return Err(format!(
                        "scenarios: no scenario is eligible for a {age}-year-old {} patient",
                        sex.as_str()
                    ));
                }
            }
        }
        Ok(())
    }
}
