//! The batch routes: generate (POST), list, read a manifest, fetch a file.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedMutexGuard, oneshot};
use tower::ServiceExt;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{Path, Query, negotiate};
use super::stream::{self, Event, Format};
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::model::{BatchDate, Mode};
use crate::pipeline::{Outcome, Overrides};
use crate::schema::Dataset;

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
    /// The dataset to stream back, required with `Accept: text/csv` (patients,
    /// encounters, vitals, labs) or `Accept: application/x-ndjson` (notes).
    pub dataset: Option<Dataset>,
    /// Exact number of encounters for this batch, for load tests (at most `server.max_encounters`).
    #[param(minimum = 0)]
    pub encounters: Option<u32>,
    /// Exact number of new patients for this batch (at most `server.max_new_patients`).
    #[param(minimum = 0)]
    pub new_patients: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ModeQuery {
    /// Volume mode (default raw).
    pub mode: Option<Mode>,
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

fn parse_date(s: &str) -> Result<BatchDate, ApiError> {
    s.parse::<BatchDate>().map_err(ApiError::from)
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
/// default), the whole batch as a tar stream, or one file with `?dataset=`
/// (CSV, or JSON Lines for notes).
#[utoipa::path(
    post,
    path = "/batches/{date}",
    tag = TAG,
    params(("date" = String, Path, description = "Run date, YYYY-MM-DD", format = Date), GenerateQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Batch generated and committed. The tar archive holds <date>/patients.csv, encounters.csv, vitals.csv, labs.csv, notes.jsonl and _manifest.json, in that order", headers(("Location" = String, description = "The batch's manifest URL")),
            content((Manifest = "application/json"), (String = "application/x-tar"), (String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 200, description = "Batch already committed; nothing regenerated (same bodies as 201)", headers(("Location" = String, description = "The batch's manifest URL")),
            content((Manifest = "application/json"), (String = "application/x-tar"), (String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 400, description = "Invalid date, mode, dataset, query parameter or volume", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Auth is on and the bearer token is missing or wrong", body = Problem, content_type = "application/problem+json"),
        (status = 406, description = "None of the Accept types can be produced", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Write failure; nothing was half-committed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The mode's state is locked by another process (see Retry-After), or the request timed out", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn generate(
    State(app): State<AppState>,
    Path(date): Path<String>,
    Query(query): Query<GenerateQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let date = parse_date(&date)?;
    let mode = query.mode.unwrap_or(Mode::Raw);
    let media = negotiate(&headers, &[JSON, TAR, CSV, NDJSON])?;
    let format = match (media, query.dataset) {
        (CSV, Some(d)) if d.is_csv() => Some(Format::File(d)),
        (NDJSON, Some(d)) if !d.is_csv() => Some(Format::File(d)),
        (CSV | NDJSON, Some(d)) => {
            return Err(ApiError::bad_request(
                "dataset-media-mismatch",
                format!(
                    "{} is served as {}, not {media}",
                    d.file_name(),
                    d.media_type()
                ),
            ));
        }
        (CSV, None) => {
            return Err(ApiError::bad_request(
                "dataset-required",
                "Accept: text/csv needs ?dataset=patients|encounters|vitals|labs",
            ));
        }
        (NDJSON, None) => {
            return Err(ApiError::bad_request(
                "dataset-required",
                "Accept: application/x-ndjson needs ?dataset=notes",
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::bad_request(
                "dataset-without-file-type",
                "?dataset= applies only with Accept: text/csv (or application/x-ndjson for notes)",
            ));
        }
        (TAR, None) => Some(Format::Tar),
        _ => None,
    };
    let server = &app.engine().config().server;
    let overrides = Overrides {
        encounters: bounded("encounters", query.encounters, server.max_encounters)?,
        new_patients: bounded("new_patients", query.new_patients, server.max_new_patients)?,
    };

    // Same-mode requests queue here (a tokio mutex: it is held across the
    // generation's await); the engine's file lock still guards against other
    // processes.
    let guard = app.mode_lock(mode).lock_owned().await;
    match format {
        None => {
            let engine = app.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                // Held until the commit, even if the client goes away meanwhile.
                let _queue = guard;
                run_generation(&engine, mode, date, &overrides, &mut |_| {})
            })
            .await
            .map_err(|e| ApiError::internal(&e))??;
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
        Some(format) => stream_generation(app, mode, date, overrides, format, guard).await,
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

/// Runs the engine and records the outcome in the metrics.
fn run_generation(
    app: &AppState,
    mode: Mode,
    date: BatchDate,
    overrides: &Overrides,
    on_file: &mut dyn FnMut(&std::path::Path),
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
    result.map_err(ApiError::from)
}

async fn stream_generation(
    app: AppState,
    mode: Mode,
    date: BatchDate,
    overrides: Overrides,
    format: Format,
    guard: OwnedMutexGuard<()>,
) -> Result<Response, ApiError> {
    let (events_tx, events_rx) = std::sync::mpsc::channel();
    let generator = app.clone();
    tokio::task::spawn_blocking(move || {
        let _queue = guard; // released when the batch is committed, not when the client is done
        let result = run_generation(&generator, mode, date, &overrides, &mut |path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let _ = events_tx.send(Event::File(name, std::fs::File::open(path)));
        });
        let _ = events_tx.send(Event::Done(Box::new(result)));
    });

    let (body_tx, body_rx) = tokio::sync::mpsc::channel(8);
    let (head_tx, head_rx) = oneshot::channel();
    let dir = app.engine().layout().batch_dir(mode, date);
    tokio::task::spawn_blocking(move || {
        stream::serve(events_rx, dir, date, format, head_tx, body_tx)
    });
    let created = head_rx.await.map_err(|e| ApiError::internal(&e))??;

    let (content_type, filename) = match format {
        Format::Tar => (TAR.to_string(), format!("{mode}-{date}.tar")),
        Format::File(d) => (
            d.media_type().to_string(),
            format!("{mode}-{date}-{}", d.file_name()),
        ),
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body_rx));
    Ok((
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static(TAR)),
            ),
            (header::LOCATION, location(date, mode)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response())
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
    )
)]
pub async fn list(
    State(app): State<AppState>,
    Query(query): Query<ModeQuery>,
) -> Result<Json<BatchList>, ApiError> {
    let mode = query.mode.unwrap_or(Mode::Raw);
    let engine = app.clone();
    let batches = tokio::task::spawn_blocking(move || -> Result<Vec<BatchSummary>, ApiError> {
        let engine = engine.engine();
        let mut entries = engine.batches(mode)?;
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
                        .map(|f| {
                            (
                                f.name.split('.').next().unwrap_or(&f.name).to_string(),
                                f.rows,
                            )
                        })
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
    params(("date" = String, Path, description = "Run date, YYYY-MM-DD", format = Date), ModeQuery),
    responses(
        (status = 200, description = "The manifest of the committed batch", body = Manifest),
        (status = 400, description = "Invalid date, mode or query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No committed batch for this date and mode", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The batch could not be read", body = Problem, content_type = "application/problem+json"),
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

async fn committed_manifest(
    app: &AppState,
    mode: Mode,
    date: BatchDate,
) -> Result<Manifest, ApiError> {
    let engine = app.clone();
    tokio::task::spawn_blocking(move || engine.engine().manifest(mode, date))
        .await
        .map_err(|e| ApiError::internal(&e))??
        .ok_or_else(|| ApiError::not_found(format!("no committed {mode} batch for {date}")))
}

/// Download one file of a batch.
///
/// Streams a committed file with `ETag` (its sha256) and `Last-Modified`,
/// answering conditional requests with 304, `Range` requests with 206, and
/// compressing with gzip when the client accepts it.
#[utoipa::path(
    get,
    path = "/batches/{date}/{dataset}",
    tag = TAG,
    params(
        ("date" = String, Path, description = "Run date, YYYY-MM-DD", format = Date),
        ("dataset" = Dataset, Path, description = "The file to fetch"),
        ModeQuery,
        ("Range" = Option<String>, Header, description = "A byte range, e.g. bytes=0-1023"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier response"),
    ),
    responses(
        (status = 200, description = "The file: CSV, or JSON Lines for notes",
            headers(("ETag" = String, description = "The file's sha256, quoted"), ("Last-Modified" = String, description = "When the file was written")),
            content((String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 206, description = "The requested byte range", content((String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 304, description = "Not modified since the given ETag or date"),
        (status = 400, description = "Invalid date, mode or query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown dataset, or no committed batch", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range is outside the file", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The file could not be read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn file(
    State(app): State<AppState>,
    Path((date, dataset)): Path<(String, String)>,
    Query(query): Query<ModeQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let date = parse_date(&date)?;
    let dataset = Dataset::parse(&dataset).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown dataset {dataset:?}: expected one of {}",
            Dataset::ALL.map(Dataset::name).join(", ")
        ))
    })?;
    let mode = query.mode.unwrap_or(Mode::Raw);
    let manifest = committed_manifest(&app, mode, date).await?;
    let entry = manifest.file(dataset.file_name()).ok_or_else(|| {
        ApiError::not_found(format!(
            "the {mode} batch for {date} has no {}",
            dataset.file_name()
        ))
    })?;
    let etag = format!("\"{}\"", entry.sha256);

    let matches = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == "*" || t.trim().trim_start_matches("W/") == etag)
        });
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }

    let path = app
        .engine()
        .layout()
        .batch_dir(mode, date)
        .join(dataset.file_name());
    let mime: mime::Mime = dataset.media_type().parse().unwrap_or(mime::TEXT_CSV_UTF_8);
    let served = tower_http::services::ServeFile::new_with_mime(&path, &mime)
        .oneshot(request)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let mut response = served.map(Body::new);
    if response.status().is_success() {
        response.headers_mut().insert(header::ETAG, etag_value);
    }
    Ok(response)
}
