//! Every error response is RFC 9457 `application/problem+json`: one type
//! here, one status mapping from the library's errors, and a middleware that
//! rewrites the plain-text errors tower and axum produce on their own.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;
use crate::model::ParseError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `Retry-After` of answers that mean "not yet" (a locked state, a batch
/// still being generated).
pub const RETRY_AFTER_SECS: u64 = 5;

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI reference identifying the problem type.
    #[serde(rename = "type")]
    #[schema(example = "urn:datagen:problem:invalid-date")]
    pub kind: String,
    /// A short, human-readable summary of the problem type.
    #[schema(example = "Invalid date")]
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 400)]
    pub status: u16,
    /// What went wrong with this request, precisely.
    #[schema(example = "invalid date \"2026-02-30\": no such calendar date")]
    pub detail: String,
}

/// An error on its way to becoming a problem response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Extra response headers (`Retry-After`, `Content-Range`, ...); a Vec,
    /// not a `HeaderMap`, to keep every `Result<_, ApiError>` small.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            slug,
            title,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    /// When to try again, in seconds.
    pub fn retry_after(self, secs: u64) -> ApiError {
        self.with_header(header::RETRY_AFTER, HeaderValue::from(secs))
    }

    pub fn bad_request(slug: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, slug, "Bad request", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn not_acceptable(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not-acceptable",
            "Not acceptable",
            detail,
        )
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "this route needs an Authorization: Bearer <token> header with the configured token",
        )
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// The mode's state cannot be trusted: nothing runs for it until it is
    /// rebuilt (503: an operator must act, the service itself is fine).
    pub fn state_inconsistent(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "state-inconsistent",
            "State inconsistent",
            detail,
        )
    }

    /// An engine error, with the paths in its message made relative to the
    /// data and state folders: an answer names the file, never where the
    /// server keeps it.
    pub fn from_engine(e: Error, layout: &crate::layout::Layout) -> ApiError {
        match e {
            Error::CorruptState { .. } | Error::StateMismatch { .. } => {
                tracing::error!(error = %e, "the mode's state cannot be trusted");
                ApiError::state_inconsistent(e.relative_to(&[&layout.state_dir, &layout.data_dir]))
            }
            other => ApiError::from(other),
        }
    }

    /// A 500 whose cause is logged, not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "the server could not complete the request; nothing was half-committed, and the cause is in the server log",
        )
    }

    fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:datagen:problem:{}", self.slug),
            title: self.title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match &e {
            Error::Parse(ParseError::InvalidDate { .. }) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-date",
                "Invalid date",
                e.to_string(),
            ),
            Error::Parse(ParseError::UnknownMode(_)) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown-mode",
                "Unknown mode",
                e.to_string(),
            ),
            Error::InvalidInput(_) => ApiError::bad_request("invalid-request", e.to_string()),
            Error::NoPatients { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "no-patients",
                "No patients",
                e.to_string(),
            ),
            Error::Locked { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "state-locked",
                "State locked",
                format!("{e}; retry later"),
            )
            .retry_after(RETRY_AFTER_SECS),
            Error::Storage { .. } => {
                tracing::error!(error = %e, "object store request failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage-unavailable",
                    "Storage unavailable",
                    format!("{e}. Nothing was committed that a reader could see; retry later (a commit cut short is finished by the next request)"),
                )
                .retry_after(RETRY_AFTER_SECS)
            }
            Error::DateOrder { .. } | Error::CatchUpTooFar { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "date-order",
                "Date out of order",
                e.to_string(),
            ),
            Error::VolumeConflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "volume-conflict",
                "Volume conflict",
                e.to_string(),
            ),
            Error::DefectsNeedText { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "defects-need-text",
                "Defects need the text files",
                e.to_string(),
            ),
            Error::DefectsConflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "defects-conflict",
                "Defects profile conflict",
                e.to_string(),
            ),
            // Answered with paths relative to the data and state folders by
            // `ApiError::from_engine`; this is the fallback.
            Error::CorruptState { .. } | Error::StateMismatch { .. } => {
                ApiError::state_inconsistent(e.to_string())
            }
            // Only `state rebuild` (a CLI command) fails this way.
            Error::NotRebuilt { .. } => ApiError::internal(&e),
            Error::ConfigFile { .. }
            | Error::Config { .. }
            | Error::Io { .. }
            | Error::Server { .. }
            | Error::Invalid { .. } => ApiError::internal(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.problem())).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// Rewrites error responses made outside the handlers (unknown route, wrong
/// method, timeout, body too large) as problem+json.
pub async fn problem_for_plain_errors<B>(response: Response<B>) -> Response
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let response = response.map(Body::new);
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let detail = match String::from_utf8_lossy(&text).trim() {
        "" => status.canonical_reason().unwrap_or("error").to_lowercase(),
        t => t.to_string(),
    };
    let slug = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "error",
    };
    let title = status.canonical_reason().unwrap_or("Error");
    let mut rewritten = ApiError::new(status, slug, title, detail).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let (mut new_parts, body) = rewritten.into_parts();
    new_parts.extensions = parts.extensions;
    Response::from_parts(new_parts, Body::new(body))
}
