//! Everything about the service rather than the batches: liveness,
//! readiness, metrics, the JSON Schemas and the OpenAPI document.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::Path;
use crate::dataset::Dataset;
use crate::error::Error;
use crate::model::Mode;
use crate::state::StateLock;

pub const TAG: &str = "service";

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// Liveness.
///
/// 200 while the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = TAG, responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness.
///
/// 200 when the config is loaded, the data and state directories are
/// writable and no crash recovery is pending; 503 with the reason otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = TAG,
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready; the detail says why", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<Health>, ApiError> {
    let probe = app.clone();
    let problems = app
        .blocking(move || readiness(&probe))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if problems.is_empty() {
        Ok(Json(Health {
            status: "ready".into(),
        }))
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "Not ready",
            problems.join("; "),
        ))
    }
}

fn readiness(app: &AppState) -> Vec<String> {
    let mut problems = Vec::new();
    if !app.started() {
        problems.push("start-up recovery has not finished".to_string());
    }
    let engine = app.engine();
    let layout = engine.layout();
    for (name, dir) in [("data", &layout.data_dir), ("state", &layout.state_dir)] {
        let probe = dir.join(format!(".datagen-ready-{}", std::process::id()));
        match std::fs::File::create_new(&probe) {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(e) => problems.push(format!("the {name} directory is not writable: {e}")),
        }
    }
    for mode in Mode::ALL {
        // A run in this process or another holds the mode: its state is in
        // flux, and that run checks it first anyway.
        if app.mode_lock(mode).try_lock().is_err() {
            continue;
        }
        let journal = layout.state_dir(mode).join(".txn");
        let staging = layout.staging_root(mode);
        if journal.exists() || staging.exists() {
            // Leftovers with nobody holding the lock are a crashed run's:
            // recovery is pending until the next write to that mode.
            if StateLock::acquire(&layout.state_dir(mode), mode, Duration::ZERO).is_ok() {
                problems.push(format!("{mode}: an interrupted batch awaits recovery"));
            }
            continue;
        }
        match engine.check(mode, Duration::ZERO) {
            Ok(()) | Err(Error::Locked { .. }) => {}
            Err(e) => problems.push(format!(
                "{mode}: {}",
                e.relative_to(&[&layout.state_dir, &layout.data_dir])
            )),
        }
    }
    problems
}

/// Metrics.
///
/// Prometheus text format: batches by mode and outcome, rows written by
/// dataset, generation duration, and requests in flight (those whose
/// response is not yet fully sent; the scrape itself counts, so an idle
/// server reads 1).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = TAG,
    responses((status = 200, description = "Prometheus metrics", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        app.metrics().render(app.in_flight()),
    )
        .into_response()
}

/// A dataset's JSON Schema.
///
/// The JSON Schema (2020-12) that every row of the dataset's file conforms
/// to; the order of `properties` is the column order.
#[utoipa::path(
    get,
    path = "/schemas/{dataset}",
    tag = TAG,
    params(("dataset" = Dataset, Path, description = "The dataset")),
    responses(
        (status = 200, description = "The JSON Schema", body = Object, content_type = "application/schema+json"),
        (status = 404, description = "Unknown dataset", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn schema(Path(dataset): Path<String>) -> Result<Response, ApiError> {
    let dataset = Dataset::parse(&dataset).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown dataset {dataset:?}: expected one of {}",
            crate::dataset::REGISTRY.map(|s| s.name).join(", ")
        ))
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/schema+json"),
        )],
        dataset.spec().schema_text,
    )
        .into_response())
}

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = TAG,
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object))
)]
pub async fn openapi(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        app.inner.openapi.clone(),
    )
        .into_response()
}
