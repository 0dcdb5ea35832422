//! The batch routes: generate (POST), list, read a manifest, fetch a file.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::conditional::{self, Answer, Validators};
use super::error::{ApiError, Problem, RETRY_AFTER_SECS};
use super::extract::{Path, Query, negotiate};
use super::stream::{self, Event, Format, Start};
use crate::dataset::Dataset;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::model::{BatchDate, Mode};
use crate::pipeline::{Outcome, Overrides};

pub const TAG: &str = "batches";

const JSON: &str = "application/json";
const TAR: &str = "application/x-tar";
const CSV: &str = "text/csv";
const NDJSON: &str = "application/x-ndjson";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GenerateQuery {
    /// Volume mode (default raw).
    pub mode: Option<Mode>,
    /// Stream back just this file, as text/csv (application/x-ndjson for
    /// notes): no Accept header is needed, but one that excludes that type
    /// gets 406.
    pub dataset: Option<Dataset>,
    /// Exact number of encounters for this batch, for load tests (at most `server.max_encounters`).
    #[param(minimum = 0)]
    pub encounters: Option<u32>,
    /// Exact number of new patients for this batch (at most `server.max_new_patients`).
    #[param(minimum = 0)]
    pub new_patients: Option<u32>,
    /// Generate the days missing between the mode's last batch and `date`
    /// first, in order, up to `server.max_catch_up_days` of them (a mode's
    /// days run forward one at a time; without it, a gap is a 409 naming the
    /// next date). The answer is `date`'s batch; the days caught up are
    /// listed by `GET /batches`.
    pub catch_up: Option<bool>,
    /// Labelled mess in the batch (default: the config's `defects.profile`,
    /// `none`): `light` touches about 0.5% of rows, `heavy` about 5%,
    /// `custom` uses the config's table. The ground truth is
    /// `_defects.jsonl` (`GET /batches/{date}/defects`). A mode's state keeps
    /// the profile it started with: asking for another is a 409.
    pub defects: Option<crate::defects::Profile>,
    /// The files to write (default: the config's `output.format`, `csv`):
    /// `csv` (CSV, and JSON Lines for notes), `parquet` (one `.parquet` per
    /// dataset), or `both`. With `?dataset=`, a `parquet` batch streams that
    /// dataset's Parquet file.
    pub format: Option<crate::dataset::OutputFormat>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ModeQuery {
    /// Volume mode (default raw).
    pub mode: Option<Mode>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// Volume mode (default raw).
    pub mode: Option<Mode>,
    /// Which of the dataset's files: `csv` (its text file: CSV, or JSON
    /// Lines for notes and defects; the default) or `parquet` (in a batch
    /// written with `format=parquet` or `both`).
    pub format: Option<FileChoice>,
}

/// Which of a dataset's files to fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileChoice {
    Csv,
    Parquet,
}

/// One committed batch.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchSummary {
    #[schema(example = "2026-02-08", format = Date)]
    pub date: String,
    pub mode: Mode,
    /// Row count per file.
    pub rows: BTreeMap<String, u64>,
    /// When the batch was committed (the manifest's modification time), RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchList {
    pub mode: Mode,
    /// Newest date first.
    pub batches: Vec<BatchSummary>,
}

/// The body of a 202: the batch is still being generated.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// Always `pending`.
    #[schema(example = "pending")]
    pub status: String,
    #[schema(value_type = BatchDate)]
    pub date: String,
    pub mode: Mode,
    /// Where the manifest will be once the batch is committed (also the `Location` header).
    #[schema(example = "/batches/2026-02-08?mode=raw")]
    pub location: String,
    pub detail: String,
}

fn parse_date(s: &str) -> Result<BatchDate, ApiError> {
    s.parse::<BatchDate>()
        .map_err(|e| ApiError::from(crate::error::Error::from(e)))
}

fn location(date: BatchDate, mode: Mode) -> HeaderValue {
    HeaderValue::from_str(&format!("/batches/{date}?mode={mode}"))
        .unwrap_or(HeaderValue::from_static("/batches"))
}

/// Generate a batch.
///
/// Generates and commits the batch of `date` for `mode`, or returns it unchanged
/// if it is already committed (200 instead of 201: nothing is regenerated).
/// Requests for the same mode queue; concurrent requests for the same date
/// generate it once. `Accept` chooses the answer: the manifest (JSON, the
/// default) or the whole batch as a tar stream; `?dataset=` streams one file
/// instead, as CSV (JSON Lines for notes), whatever the `Accept` header says
/// as long as it admits that type (406 otherwise). If the answer is not ready
/// within `server.request_timeout_secs`, the request gets 202 Accepted: the
/// generation goes on and commits, and its `Location` answers 200 once it has.
#[utoipa::path(
    post,
    path = "/batches/{date}",
    tag = TAG,
    params(("date" = BatchDate, Path, description = "Run date, YYYY-MM-DD, from 1900-01-01 to 2199-12-31"), GenerateQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Batch generated and committed. The tar archive holds <date>/patients.csv, encounters.csv, vitals.csv, labs.csv, notes.jsonl, _defects.jsonl (with a defects profile) and _manifest.json, in that order", headers(("Location" = String, description = "The batch's manifest URL")),
            content((Manifest = "application/json"), (String = "application/x-tar"), (String = "text/csv"), (String = "application/x-ndjson"), (String = "application/vnd.apache.parquet"))),
        (status = 200, description = "Batch already committed; nothing regenerated (same bodies as 201)", headers(("Location" = String, description = "The batch's manifest URL")),
            content((Manifest = "application/json"), (String = "application/x-tar"), (String = "text/csv"), (String = "application/x-ndjson"), (String = "application/vnd.apache.parquet"))),
        (status = 202, description = "Still generating after server.request_timeout_secs. The batch commits in the background: GET the Location (404 with Retry-After while pending, then 200), or repeat the POST, which waits for it", body = Accepted,
            headers(("Location" = String, description = "The batch's manifest URL"), ("Retry-After" = u64, description = "Seconds to wait before polling"))),
        (status = 400, description = "Invalid date, mode, dataset, query parameter or volume", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Auth is on and the bearer token is missing or wrong", body = Problem, content_type = "application/problem+json"),
        (status = 406, description = "None of the Accept types can be produced (with ?dataset=, the Accept header excludes that file's type)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The date is not the mode's next one (urn:datagen:problem:date-order: the detail names the next date; ask with catch_up=true to generate the days missing first, up to server.max_catch_up_days), the date is already committed with other volumes than the ones asked for (urn:datagen:problem:volume-conflict; nothing is regenerated), encounters were asked for on a date on which nobody can be seen (urn:datagen:problem:no-patients), the mode's state was started with another defects profile (urn:datagen:problem:defects-conflict), ?dataset=defects was asked for a batch without a defects profile (urn:datagen:problem:no-defects), or a defects profile with format=parquet or both (urn:datagen:problem:defects-need-text)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Write failure; nothing was half-committed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The mode's state is locked by another process (urn:datagen:problem:state-locked, see Retry-After), or cannot be trusted (urn:datagen:problem:state-inconsistent: it disagrees with the committed batches or is damaged; the detail names the file and the way out), or the object store that holds batches and state cannot be reached (urn:datagen:problem:storage-unavailable, see Retry-After; nothing was committed)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn generate(
    State(app): State<AppState>,
    Path(date): Path<String>,
    Query(query): Query<GenerateQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(app.engine().config().server.request_timeout_secs);
    let date = parse_date(&date)?;
    let mode = query.mode.unwrap_or(Mode::Raw);
    let parquet_only = query.format.unwrap_or(app.engine().config().output.format)
        == crate::dataset::OutputFormat::Parquet;
    let format = answer_format(&headers, query.dataset, parquet_only)?;
    let server = &app.engine().config().server;
    let overrides = Overrides {
        encounters: bounded("encounters", query.encounters, server.max_encounters)?,
        new_patients: bounded("new_patients", query.new_patients, server.max_new_patients)?,
        catch_up: query
            .catch_up
            .unwrap_or(false)
            .then_some(server.max_catch_up_days),
        defects: query.defects,
        format: query.format,
    };
    if query.dataset == Some(Dataset::Defects)
        && app
            .engine()
            .config()
            .defects
            .rates(query.defects)
            .is_clean()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no-defects",
            "No defects",
            "?dataset=defects needs a defects profile other than none (?defects=light, heavy or custom): a clean batch has no _defects.jsonl",
        ));
    }
    let job = Job {
        app: app.clone(),
        mode,
        date,
        overrides,
    };
    match format {
        None => {
            let generation = job.start(|_| {});
            match tokio::time::timeout_at(deadline, generation).await {
                Err(_) => Ok(accepted(mode, date)),
                Ok(joined) => {
                    let outcome = joined.map_err(|e| ApiError::internal(&e))??;
                    let status = if outcome.created {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    };
                    Ok((
                        status,
                        [(header::LOCATION, location(date, mode))],
                        Json(outcome.manifest),
                    )
                        .into_response())
                }
            }
        }
        Some(format) => {
            let dir = app.engine().layout().batch_dir(mode, date);
            let mut events = job.events();
            // The head waits for the first file (or the existing batch),
            // holding no thread meanwhile.
            let first = match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => return Ok(accepted(mode, date)),
                Ok(None) => {
                    return Err(ApiError::internal(
                        &"the generator stopped without a result",
                    ));
                }
                Ok(Some(first)) => first,
            };
            let start = match first {
                Event::Done(done) => {
                    (*done)?;
                    materialize(&app, mode, date, format.file_name()).await?;
                    Start::Committed
                }
                file @ Event::File(..) => Start::Live(file),
            };
            let created = matches!(start, Start::Live(_));
            let (body_tx, body_rx) = tokio::sync::mpsc::channel(8);
            app.blocking(move || stream::serve(start, events, dir, date, format, body_tx));
            let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body_rx));
            Ok(streamed(mode, date, format, created, body))
        }
    }
}

/// What the answer to a POST is: the manifest (`None`), the tar stream, or
/// one file. With `?dataset=`, the file's media type is the answer, and an
/// `Accept` header must admit it.
fn answer_format(
    headers: &HeaderMap,
    dataset: Option<Dataset>,
    parquet: bool,
) -> Result<Option<Format>, ApiError> {
    if let Some(d) = dataset {
        let format = Format::File(d, parquet && d != Dataset::Defects);
        return negotiate(headers, &[format.media_essence()])
            .map(|_| Some(format))
            .map_err(|e| ApiError {
                detail: format!(
                    "{} is served as {}, which the Accept header excludes: {}",
                    format.file_name().unwrap_or_default(),
                    format.media_essence(),
                    e.detail
                ),
                ..e
            });
    }
    match negotiate(headers, &[JSON, TAR, CSV, NDJSON])? {
        TAR => Ok(Some(Format::Tar)),
        CSV => Err(ApiError::bad_request(
            "dataset-required",
            "Accept: text/csv needs ?dataset=patients|encounters|vitals|labs",
        )),
        NDJSON => Err(ApiError::bad_request(
            "dataset-required",
            "Accept: application/x-ndjson needs ?dataset=notes",
        )),
        _ => Ok(None),
    }
}

fn bounded(name: &str, value: Option<u32>, max: u32) -> Result<Option<u32>, ApiError> {
    match value {
        Some(v) if v > max => Err(ApiError::bad_request(
            "volume-too-large",
            format!("{name}={v} is over the configured maximum of {max}"),
        )),
        other => Ok(other),
    }
}

/// 202: the generation outlasted the request's deadline and goes on.
fn accepted(mode: Mode, date: BatchDate) -> Response {
    let location = location(date, mode);
    let body = Accepted {
        status: "pending".into(),
        date: date.to_string(),
        mode,
        location: location.to_str().unwrap_or_default().to_string(),
        detail: format!(
            "the {mode} batch for {date} is still being generated and will be committed; \
             GET its location, or repeat this POST, after Retry-After seconds"
        ),
    };
    (
        StatusCode::ACCEPTED,
        [
            (header::LOCATION, location),
            (header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS)),
        ],
        Json(body),
    )
        .into_response()
}

/// One generation, run to its commit whether or not its request is still
/// waiting for it.
struct Job {
    app: AppState,
    mode: Mode,
    date: BatchDate,
    overrides: Overrides,
}

impl Job {
    /// Queues behind the mode's other generations, then generates on the
    /// blocking pool, calling `on_file` with each completed file.
    fn start(
        self,
        mut on_file: impl FnMut(&std::path::Path) + Send + 'static,
    ) -> tokio::task::JoinHandle<Result<Outcome, ApiError>> {
        let Job {
            app,
            mode,
            date,
            overrides,
        } = self;
        app.clone().spawn(async move {
            let _pending = app.pending(mode, date);
            // Same-mode requests queue here (a tokio mutex: it is held across
            // the generation's await); the engine's file lock still guards
            // against other processes.
            let queue = app.mode_lock(mode).lock_owned().await;
            let generator = app.clone();
            app.blocking(move || {
                let _queue = queue; // released when the batch is committed, not when the client is done
                run_generation(&generator, mode, date, &overrides, &mut on_file)
            })
            .await
            .map_err(|e| ApiError::internal(&e))?
        })
    }

    /// Starts the generation, reporting each completed file and then the
    /// outcome as events, in order.
    fn events(self) -> stream::Events {
        let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let app = self.app.clone();
        let files = events_tx.clone();
        let generation = self.start(move |path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let _ = files.send(Event::File(name, std::fs::File::open(path)));
        });
        app.spawn(async move {
            let result = generation
                .await
                .unwrap_or_else(|e| Err(ApiError::internal(&e)));
            let _ = events_tx.send(Event::Done(Box::new(result)));
        });
        events
    }
}

/// Runs the engine and records the outcome in the metrics.
fn run_generation(
    app: &AppState,
    mode: Mode,
    date: BatchDate,
    overrides: &Overrides,
    on_file: &mut (dyn FnMut(&std::path::Path) + Send),
) -> Result<Outcome, ApiError> {
    let started = Instant::now();
    let result = app.engine().generate_with(mode, date, overrides, on_file);
    let metrics = app.metrics();
    match &result {
        Ok(outcome) if outcome.created => {
            metrics.batch(mode, "created");
            metrics.generated(mode, started.elapsed().as_secs_f64(), &outcome.manifest);
        }
        Ok(_) => metrics.batch(mode, "existing"),
        Err(_) => metrics.batch(mode, "failed"),
    }
    result.map_err(|e| ApiError::from_engine(e, app.engine().layout()))
}

fn streamed(mode: Mode, date: BatchDate, format: Format, created: bool, body: Body) -> Response {
    let (content_type, filename) = match format {
        Format::Tar => (TAR, format!("{mode}-{date}.tar")),
        Format::File(..) => (
            format.media_type(),
            format!("{mode}-{date}-{}", format.file_name().unwrap_or_default()),
        ),
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::LOCATION, location(date, mode)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response()
}

/// List committed batches.
///
/// The committed batches of a mode, newest date first, with row counts.
#[utoipa::path(
    get,
    path = "/batches",
    tag = TAG,
    params(ModeQuery),
    responses(
        (status = 200, description = "Committed batches", body = BatchList),
        (status = 400, description = "Invalid mode or query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "State could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The mode's state disagrees with its committed batches (urn:datagen:problem:state-inconsistent; the detail names the file and the way out), or the object store that holds them cannot be reached (urn:datagen:problem:storage-unavailable, see Retry-After)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    Query(query): Query<ModeQuery>,
) -> Result<Json<BatchList>, ApiError> {
    let mode = query.mode.unwrap_or(Mode::Raw);
    let reader = app.clone();
    let batches = app
        .blocking(move || -> Result<Vec<BatchSummary>, ApiError> {
            let engine = reader.engine();
            let mut entries = engine
                .batches(mode)
                .map_err(|e| ApiError::from_engine(e, engine.layout()))?;
            entries.sort_by_key(|e| std::cmp::Reverse(e.date));
            entries
                .into_iter()
                .filter_map(|entry| {
                    let dir = engine.layout().batch_dir(mode, entry.date);
                    let manifest = Manifest::read(&dir).ok()?;
                    let created_at = std::fs::metadata(dir.join(MANIFEST_FILE))
                        .and_then(|m| m.modified())
                        .map(|t| {
                            chrono::DateTime::<chrono::Utc>::from(t)
                                .format("%Y-%m-%dT%H:%M:%SZ")
                                .to_string()
                        })
                        .unwrap_or_default();
                    Some(Ok(BatchSummary {
                        date: entry.date.to_string(),
                        mode,
                        rows: manifest
                            .files
                            .iter()
                            .map(|f| (f.dataset_name().to_string(), f.rows))
                            .collect(),
                        created_at,
                    }))
                })
                .collect()
        })
        .await
        .map_err(|e| ApiError::internal(&e))??;
    Ok(Json(BatchList { mode, batches }))
}

/// Get a batch's manifest.
#[utoipa::path(
    get,
    path = "/batches/{date}",
    tag = TAG,
    params(("date" = BatchDate, Path, description = "Run date, YYYY-MM-DD, from 1900-01-01 to 2199-12-31"), ModeQuery),
    responses(
        (status = 200, description = "The manifest of the committed batch", body = Manifest),
        (status = 400, description = "Invalid date, mode or query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No committed batch for this date and mode; while one is being generated (after a 202), the type is urn:datagen:problem:batch-pending, with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The batch could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The mode's state disagrees with its committed batches (urn:datagen:problem:state-inconsistent; the detail names the file and the way out), or the object store that holds them cannot be reached (urn:datagen:problem:storage-unavailable, see Retry-After)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn manifest(
    State(app): State<AppState>,
    Path(date): Path<String>,
    Query(query): Query<ModeQuery>,
) -> Result<Json<Manifest>, ApiError> {
    let date = parse_date(&date)?;
    let mode = query.mode.unwrap_or(Mode::Raw);
    committed_manifest(&app, mode, date).await.map(Json)
}

/// Makes sure a committed batch's files (or one of them) are on this
/// machine before they are sent: with a bucket, the cache may lack them.
async fn materialize(
    app: &AppState,
    mode: Mode,
    date: BatchDate,
    file: Option<String>,
) -> Result<(), ApiError> {
    let fetcher = app.clone();
    app.blocking(move || fetcher.engine().materialize(mode, date, file.as_deref()))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::from_engine(e, app.engine().layout()))
}

async fn committed_manifest(
    app: &AppState,
    mode: Mode,
    date: BatchDate,
) -> Result<Manifest, ApiError> {
    let reader = app.clone();
    let manifest = app
        .blocking(move || reader.engine().manifest(mode, date))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::from_engine(e, app.engine().layout()))?;
    manifest.ok_or_else(|| {
        if app.is_pending(mode, date) {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "batch-pending",
                "Batch pending",
                format!("the {mode} batch for {date} is being generated; retry after {RETRY_AFTER_SECS} s"),
            )
            .retry_after(RETRY_AFTER_SECS)
        } else {
            ApiError::not_found(format!("no committed {mode} batch for {date}"))
        }
    })
}

/// Download one file of a batch.
///
/// Streams a committed file with `ETag` (its sha256, quoted) and
/// `Last-Modified`, and gzip when the client accepts it. Conditional and
/// range requests follow RFC 9110: `If-Match` and `If-Unmodified-Since`
/// (412 when they fail), `If-None-Match` and `If-Modified-Since` (304),
/// `If-Range`, and `Range`. A single byte range gets 206; a `Range` that does
/// not parse, names another unit than `bytes` or asks for several ranges is
/// ignored and the whole file is sent (200, never `multipart/byteranges`); a
/// range that starts past the end gets 416 with `Content-Range: bytes */LEN`.
/// HEAD answers with the same headers and no body.
#[utoipa::path(
    get,
    path = "/batches/{date}/{dataset}",
    tag = TAG,
    params(
        ("date" = BatchDate, Path, description = "Run date, YYYY-MM-DD, from 1900-01-01 to 2199-12-31"),
        ("dataset" = Dataset, Path, description = "The file to fetch"),
        FileQuery,
        ("Range" = Option<String>, Header, description = "One byte range: bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX. Anything else is ignored"),
        ("If-Range" = Option<String>, Header, description = "Apply the Range only if the file still has this ETag (or Last-Modified date)"),
        ("If-None-Match" = Option<String>, Header, description = "ETags from earlier responses: 304 if one is current"),
        ("If-Modified-Since" = Option<String>, Header, description = "An HTTP date: 304 if the file is not newer"),
    ),
    responses(
        (status = 200, description = "The file: CSV, or JSON Lines for notes",
            headers(("ETag" = String, description = "The file's sha256, quoted (weak when gzip-encoded)"), ("Last-Modified" = String, description = "When the file was written"), ("Accept-Ranges" = String, description = "bytes")),
            content((String = "text/csv"), (String = "application/x-ndjson"), (String = "application/vnd.apache.parquet"))),
        (status = 206, description = "The requested byte range",
            headers(("Content-Range" = String, description = "bytes FIRST-LAST/LEN"), ("ETag" = String, description = "The file's sha256, quoted")),
            content((String = "text/csv"), (String = "application/x-ndjson"), (String = "application/vnd.apache.parquet"))),
        (status = 304, description = "Not modified: If-None-Match names the current ETag, or If-Modified-Since is not older than the file",
            headers(("ETag" = String, description = "The file's sha256, quoted"))),
        (status = 400, description = "Invalid date, mode or query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown dataset, no committed batch (urn:datagen:problem:batch-pending while it is being generated), or `defects` of a batch without a defects profile", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names no current ETag, or the file changed after If-Unmodified-Since", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range starts past the end of the file",
            headers(("Content-Range" = String, description = "bytes */LEN")),
            body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The file could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The mode's state disagrees with its committed batches (urn:datagen:problem:state-inconsistent; the detail names the file and the way out), or the object store that holds them cannot be reached (urn:datagen:problem:storage-unavailable, see Retry-After)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn file(
    State(app): State<AppState>,
    Path((date, dataset)): Path<(String, String)>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let date = parse_date(&date)?;
    let dataset = Dataset::parse(&dataset).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown dataset {dataset:?}: expected one of {}",
            crate::dataset::REGISTRY.map(|s| s.name).join(", ")
        ))
    })?;
    let mode = query.mode.unwrap_or(Mode::Raw);
    let format = Format::File(dataset, query.format == Some(FileChoice::Parquet));
    let name = format.file_name().unwrap_or_default();
    let manifest = committed_manifest(&app, mode, date).await?;
    let entry = manifest
        .file(&name)
        .ok_or_else(|| ApiError::not_found(format!("the {mode} batch for {date} has no {name}")))?;
    materialize(&app, mode, date, Some(name.clone())).await?;
    let path = app.engine().layout().batch_dir(mode, date).join(&name);
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::internal(&format!("cannot open {}: {e}", path.display())))?;
    let meta = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal(&format!("cannot read {}: {e}", path.display())))?;
    // HTTP dates have whole seconds; compare and send the same value.
    let last_modified = meta.modified().ok().and_then(|t| {
        let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
        Some(std::time::UNIX_EPOCH + Duration::from_secs(secs))
    });
    let validators = Validators {
        etag: &entry.sha256,
        last_modified,
        len: meta.len(),
    };
    let etag = HeaderValue::from_str(&format!("\"{}\"", entry.sha256))
        .unwrap_or(HeaderValue::from_static("\"\""));
    let mut common = HeaderMap::new();
    common.insert(header::ETAG, etag);
    if let Some(at) = last_modified
        && let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(at))
    {
        common.insert(header::LAST_MODIFIED, value);
    }

    let (status, range) = match conditional::evaluate(&headers, &validators) {
        Answer::NotModified => return Ok((StatusCode::NOT_MODIFIED, common).into_response()),
        Answer::PreconditionFailed => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
                format!(
                    "{} of the {mode} batch for {date} has ETag \"{}\"; If-Match or If-Unmodified-Since does not hold",
                    name, entry.sha256
                ),
            ));
        }
        Answer::Unsatisfiable => {
            return Err(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range-not-satisfiable",
                "Range not satisfiable",
                format!(
                    "{} is {} bytes; the range starts past its end",
                    name,
                    meta.len()
                ),
            )
            .with_header(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{}", meta.len()))
                    .unwrap_or(HeaderValue::from_static("bytes */0")),
            ));
        }
        Answer::Full => (StatusCode::OK, 0..=meta.len().saturating_sub(1)),
        Answer::Partial(range) => (StatusCode::PARTIAL_CONTENT, range),
    };
    let length = if meta.len() == 0 {
        0
    } else {
        range.end() - range.start() + 1
    };
    if *range.start() > 0 {
        file.seek(std::io::SeekFrom::Start(*range.start()))
            .await
            .map_err(|e| ApiError::internal(&format!("cannot seek {}: {e}", path.display())))?;
    }
    let mut response = Response::new(Body::from_stream(ReaderStream::with_capacity(
        file.take(length),
        64 * 1024,
    )));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.extend(common);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(value) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            range.start(),
            range.end(),
            meta.len()
        ))
    {
        headers.insert(header::CONTENT_RANGE, value);
    }
    Ok(response)
}
