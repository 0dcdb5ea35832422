//! The `datagen` command line: argument parsing, logging set-up and the
//! human-facing output of each command. The work itself is the library's.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{CliOverrides, Config, ConfigSources};
use crate::error::Error;
use crate::model::{BatchDate, Mode, ParseError};
use crate::pipeline::{Engine, Outcome, Overrides};
use crate::validate::{TruthReport, validate_batch, validate_feed};

#[derive(Debug, Parser)]
#[command(
    name = "datagen",
    version,
    about = "Synthetic clinical data generator: reproducible daily batches for ETL pipelines"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file layered over the embedded defaults [default: config/default.yaml if present]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Where batches are written [default: from config, `data`]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where persistent state lives [default: from config, `state`]
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where batches go: a directory, file:///path, or s3://bucket/prefix;
    /// with a bucket, --data-dir is this machine's cache of it [default: from config]
    #[arg(long, global = true, value_name = "URL")]
    pub data_url: Option<String>,
    /// Where the state goes: a directory, file:///path, or s3://bucket/prefix
    /// (needed with an s3:// --data-url) [default: from config]
    #[arg(long, global = true, value_name = "URL")]
    pub state_url: Option<String>,
    /// Global seed [default: from config]
    #[arg(long, global = true)]
    pub seed: Option<u64>,
    /// Seconds to wait for another process holding the mode's state lock [default: from config]
    #[arg(long, global = true, value_name = "SECS")]
    pub lock_timeout: Option<u64>,
    /// Threads that generate a batch [default: from config; 0 = one per core]
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Log format on stderr (filter with RUST_LOG, default info)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate and commit the batch of one date, or of a date range in order
    Generate(GenerateArgs),
    /// Check a batch directory against the schemas, its manifest and itself
    Validate {
        /// A batch directory, e.g. data/sample/2026-02-08; with --feed, a
        /// mode's folder, e.g. data/sample
        dir: PathBuf,
        /// Check every batch of the folder, in date order, as one feed
        #[arg(long)]
        feed: bool,
    },
    /// Score a pipeline's rejected or flagged rows against the ground truth
    /// of defective batches: recall and precision per kind
    Score {
        /// A batch folder (data/raw/2026-03-02) or a mode's folder of
        /// batches (data/raw) generated with --defects
        #[arg(long, value_name = "DIR")]
        truth: PathBuf,
        /// The pipeline's flagged rows, JSON Lines: {"file": "vitals.csv",
        /// "line": 12} or {"file": ..., "key": "E0000000001-V003"}, with
        /// "batch": "YYYY-MM-DD" for a mode's folder (optional "kind")
        #[arg(long, value_name = "FILE")]
        found: PathBuf,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Run the HTTP service until SIGTERM or SIGINT
    Serve {
        /// Address to listen on [default: from config, 127.0.0.1:8080]
        #[arg(long, value_name = "ADDR:PORT")]
        bind: Option<String>,
    },
    /// Print the OpenAPI document of the HTTP service (with the config's volume limits)
    Openapi,
    /// Inspect or mend a mode's persistent state
    #[command(subcommand)]
    State(StateCommand),
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Check that the mode's state and its committed batches agree (exit 1 if not)
    Check {
        /// The mode whose state to check
        #[arg(long, value_enum)]
        mode: ModeArg,
    },
    /// Rebuild the mode's state (patient master, encounter counter, ledger)
    /// from its committed batches, verifying every file first; never reuses an ID
    Rebuild {
        /// The mode whose state to rebuild
        #[arg(long, value_enum)]
        mode: ModeArg,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("dates").required(true).args(["date", "from"])))]
pub struct GenerateArgs {
    /// The run date, YYYY-MM-DD
    #[arg(long, value_parser = parse_date, conflicts_with_all = ["from", "to"])]
    pub date: Option<BatchDate>,
    /// First date of a backfill range (inclusive), YYYY-MM-DD
    #[arg(long, value_parser = parse_date, requires = "to")]
    pub from: Option<BatchDate>,
    /// Last date of a backfill range (inclusive), YYYY-MM-DD
    #[arg(long, value_parser = parse_date, requires = "from")]
    pub to: Option<BatchDate>,
    /// Volume mode: raw (full volume) or sample (small)
    #[arg(long, value_enum, default_value_t = ModeArg::Raw)]
    pub mode: ModeArg,
    /// New patients registered per date, exactly (overrides the configured volume)
    #[arg(long, value_name = "N")]
    pub new_patients: Option<u32>,
    /// Encounters admitted per date, exactly (overrides the configured volume)
    #[arg(long, value_name = "N")]
    pub encounters: Option<u32>,
    /// Generate the days missing between the mode's last batch and the date
    /// first, in order (a mode's days run forward one at a time)
    #[arg(long)]
    pub catch_up: bool,
    /// Labelled mess: none, light (about 0.5% of rows), heavy (about 5%) or
    /// custom (the config's defects.rates) [default: from config, none]
    #[arg(long, value_name = "PROFILE", value_parser = parse_profile)]
    pub defects: Option<crate::defects::Profile>,
    /// The files to write: csv (CSV, and JSON Lines for notes), parquet, or
    /// both [default: from config, csv]
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub format: Option<crate::dataset::OutputFormat>,
}

fn parse_format(s: &str) -> Result<crate::dataset::OutputFormat, String> {
    s.parse()
        .map_err(|_| format!("unknown format {s:?}: expected csv, parquet or both"))
}

fn parse_profile(s: &str) -> Result<crate::defects::Profile, String> {
    s.parse().map_err(|_| {
        format!("unknown defects profile {s:?}: expected none, light, heavy or custom")
    })
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Raw,
    Sample,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Raw => Mode::Raw,
            ModeArg::Sample => Mode::Sample,
        }
    }
}

fn parse_date(s: &str) -> Result<BatchDate, String> {
    s.parse::<BatchDate>().map_err(|e| match e {
        ParseError::InvalidDate { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// Runs the parsed command line; the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    if let Err(usage) = cli.check() {
        // Printed like clap's own usage errors, with the same exit code (2).
        let _ = usage.print();
        return ExitCode::from(u8::try_from(usage.exit_code()).unwrap_or(2));
    }
    init_logging(cli.global.log_format);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("datagen: error: {e}");
            ExitCode::FAILURE
        }
    }
}

impl Cli {
    /// The usage rules that span arguments, which clap's derive cannot state.
    fn check(&self) -> Result<(), clap::Error> {
        use clap::CommandFactory;
        if let Command::Generate(GenerateArgs {
            from: Some(from),
            to: Some(to),
            ..
        }) = &self.command
            && from > to
        {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                format!("--from {from} is after --to {to}"),
            ));
        }
        Ok(())
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.compact().try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Loads the layered config with the command line as the last layer.
pub fn load_config(global: &GlobalArgs) -> Result<Config, Error> {
    let mut config = Config::load(&ConfigSources {
        file: global.config.clone(),
        env: None,
    })?;
    config.apply(&CliOverrides {
        data_dir: global.data_dir.clone(),
        state_dir: global.state_dir.clone(),
        data_url: global.data_url.clone(),
        state_url: global.state_url.clone(),
        seed: global.seed,
        lock_timeout_secs: global.lock_timeout,
        bind: None,
        threads: global.threads,
    })?;
    Ok(config)
}

fn dispatch(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Generate(args) => {
            let engine = Engine::new(load_config(&cli.global)?)?;
            generate(&engine, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { dir, feed } => Ok(validate(&dir, feed)),
        Command::Score { truth, found, json } => {
            let labels = crate::score::read_truth(&truth).map_err(Error::InvalidInput)?;
            let flagged = crate::score::read_flagged(&found).map_err(Error::InvalidInput)?;
            let single = truth.join(crate::manifest::MANIFEST_FILE).exists();
            let score = crate::score::score(&labels, &flagged, single);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&score).unwrap_or_default()
                );
            } else {
                print!("{}", score.table());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { bind } => {
            let mut config = load_config(&cli.global)?;
            if let Some(bind) = bind {
                config.apply(&CliOverrides {
                    bind: Some(bind),
                    ..Default::default()
                })?;
            }
            serve(config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::State(command) => {
            let engine = Engine::new(load_config(&cli.global)?)?;
            match command {
                StateCommand::Check { mode } => {
                    let mode = Mode::from(mode);
                    let timeout =
                        std::time::Duration::from_secs(engine.config().state.lock_timeout_secs);
                    engine.check(mode, timeout)?;
                    println!(
                        "consistent {}: the state agrees with the committed batches",
                        engine.layout().state_dir(mode).display()
                    );
                }
                StateCommand::Rebuild { mode } => {
                    let mode = Mode::from(mode);
                    let rebuilt = engine.rebuild_state(mode)?;
                    println!(
                        "rebuilt {} by replaying {} day{} ({} missing batch{} generated again): {} patients, encounter counter {}, {} encounters carried over",
                        engine.layout().state_dir(mode).display(),
                        rebuilt.batches,
                        if rebuilt.batches == 1 { "" } else { "s" },
                        rebuilt.restored,
                        if rebuilt.restored == 1 { "" } else { "es" },
                        rebuilt.patients,
                        rebuilt.encounter_counter,
                        rebuilt.census
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            let config = load_config(&cli.global)?;
            print!("{}", crate::http::openapi_json(&config.server));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve(config: Config) -> Result<(), Error> {
    let bind = config.server.bind.clone();
    let engine = Engine::new(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Server {
            what: "cannot start the async runtime".into(),
            source,
        })?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .map_err(|source| Error::Server {
                what: format!("cannot listen on {bind}"),
                source,
            })?;
        crate::http::run(listener, engine, crate::http::shutdown_signal())
            .await
            .map_err(|source| Error::Server {
                what: "the server stopped".into(),
                source,
            })
    })
}

fn generate(engine: &Engine, args: &GenerateArgs) -> Result<(), Error> {
    let mode = Mode::from(args.mode);
    let overrides = Overrides {
        new_patients: args.new_patients,
        encounters: args.encounters,
        catch_up: args.catch_up.then_some(u32::MAX),
        defects: args.defects,
        format: args.format,
    };
    let dates = match (args.date, args.from, args.to) {
        (Some(date), _, _) => vec![date],
        (None, Some(from), Some(to)) => date_range(from, to),
        // clap requires --date or both of --from and --to.
        _ => Vec::new(),
    };

    let progress = (dates.len() > 1 && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(dates.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    for (i, date) in dates.iter().enumerate() {
        if let Some(bar) = &progress {
            bar.set_message(date.to_string());
        }
        let outcome = engine.generate(mode, *date, &overrides)?;
        let line = outcome
            .caught_up
            .iter()
            .chain(std::iter::once(&outcome))
            .map(describe)
            .collect::<Vec<_>>()
            .join("\n");
        match &progress {
            Some(bar) => {
                bar.suspend(|| println!("{line}"));
                bar.inc(1);
            }
            None => {
                if dates.len() > 1 {
                    tracing::info!(%mode, %date, done = i + 1, of = dates.len(), "backfill progress");
                }
                println!("{line}");
            }
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(())
}

/// Every date from `from` to `to` inclusive (empty when `from` is later;
/// [`Cli::check`] refuses that first).
fn date_range(from: BatchDate, to: BatchDate) -> Vec<BatchDate> {
    if from > to {
        return Vec::new();
    }
    let mut dates = vec![from];
    while let Some(last) = dates.last().copied()
        && last < to
    {
        match last.succ() {
            Some(next) => dates.push(next),
            None => break,
        }
    }
    dates
}

/// Prints what a check of defective output found, against its labels;
/// success when they agree exactly.
fn report_truth(dir: &std::path::Path, feed: bool, truth: &TruthReport) -> ExitCode {
    for found in &truth.found {
        println!("{found}");
    }
    for label in &truth.missed {
        println!(
            "{} line {}: {} (labelled, NOT FOUND){}",
            label.file,
            label.line,
            label.kind,
            label
                .key
                .as_deref()
                .map(|k| format!(": {k}"))
                .unwrap_or_default()
        );
    }
    let mut kinds: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for found in &truth.found {
        *kinds
            .entry(found.kind.map_or("unclassified", |k| k.as_str()))
            .or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "{} {}: {} problems found ({}); {} of them labelled; {} of {} labels found{}",
        if feed { "feed" } else { "batch" },
        dir.display(),
        truth.found.len(),
        if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(", ")
        },
        truth.labelled(),
        truth.visible - truth.missed.len(),
        truth.visible,
        if truth.invisible > 0 {
            format!(
                "; {} late or corrected rows only a feed shows (validate --feed)",
                truth.invisible
            )
        } else {
            String::new()
        }
    );
    if truth.agrees() {
        println!("the labels agree with what was found");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "datagen: error: {} problems are not labelled and {} labels were not found",
            truth.found.iter().filter(|f| !f.labelled).count(),
            truth.missed.len()
        );
        ExitCode::FAILURE
    }
}

fn describe(outcome: &Outcome) -> String {
    let place = outcome
        .url
        .clone()
        .unwrap_or_else(|| outcome.dir.display().to_string());
    let rows: Vec<String> = outcome
        .manifest
        .files
        .iter()
        .map(|f| {
            let parquet = if f.name.ends_with(".parquet") {
                " (parquet)"
            } else {
                ""
            };
            format!("{} {}{parquet}", f.rows, f.dataset_name())
        })
        .collect();
    if outcome.created {
        format!(
            "created {}: {} ({:.2}s)",
            place,
            rows.join(", "),
            outcome.elapsed.as_secs_f64()
        )
    } else {
        format!(
            "exists {}: already committed, nothing changed ({})",
            place,
            rows.join(", ")
        )
    }
}

fn validate(dir: &std::path::Path, feed: bool) -> ExitCode {
    let checked = if feed {
        validate_feed(dir).map(|batches| {
            let rows: u64 = batches
                .iter()
                .flat_map(|b| b.manifest.files.iter().map(|f| f.rows))
                .sum();
            let mut truth: Option<TruthReport> = None;
            for b in &batches {
                if let Some(report) = &b.truth {
                    truth
                        .get_or_insert_with(TruthReport::default)
                        .merge(report.clone(), &b.manifest.date.to_string());
                }
            }
            let line = format!(
                "valid feed {}: {} batches, {rows} rows",
                dir.display(),
                batches.len()
            );
            (line, truth)
        })
    } else {
        validate_batch(dir).map(|summary| {
            let files: Vec<String> = summary
                .manifest
                .files
                .iter()
                .map(|f| format!("{} {} rows", f.name, f.rows))
                .collect();
            let line = format!("valid {}: {}", dir.display(), files.join(", "));
            (line, summary.truth)
        })
    };
    match checked {
        Ok((_, Some(truth))) => report_truth(dir, feed, &truth),
        Ok((line, None)) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("datagen: invalid: {}: {p}", dir.display());
            }
            eprintln!(
                "datagen: error: {} {} failed validation ({} problem{}{})",
                if feed { "feed" } else { "batch" },
                dir.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                if problems.len() >= 20 {
                    ", stopped at 20"
                } else {
                    ""
                }
            );
            ExitCode::FAILURE
        }
    }
}
