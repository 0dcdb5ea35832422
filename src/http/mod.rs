//! The HTTP service: shared state, the documented router, the middleware
//! stack, and `run`, which serves until its shutdown future resolves.
//!
//! Handlers only parse, call the [`Engine`] and map errors; the engine is
//! blocking, so it runs on tokio's blocking pool through
//! [`AppState::blocking`], which keeps the request's tracing span.

mod batches;
mod conditional;
mod error;
mod extract;
mod meta;
mod metrics;
mod server;
mod stream;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::metrics::InFlightRequestsLayer;
use tower_http::metrics::in_flight_requests::InFlightRequestsCounter;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, Problem};

use crate::config::ServerConfig;
use crate::model::{BatchDate, Mode};
use crate::pipeline::Engine;

/// What every handler shares: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    /// One queue per mode. A tokio mutex because a request holds it across
    /// the await on its blocking generation.
    modes: [Arc<tokio::sync::Mutex<()>>; 2],
    metrics: metrics::Metrics,
    in_flight: InFlightRequestsCounter,
    in_flight_layer: InFlightRequestsLayer,
    started: AtomicBool,
    /// Generations and other blocking work, including those that outlive
    /// their request (a 202 answer): shutdown waits for them to commit.
    tasks: tokio_util::task::TaskTracker,
    /// Batches being generated, by how many requests: a GET of one answers
    /// "pending" rather than a bare 404. A std mutex: only held to count.
    pending: Mutex<HashMap<(Mode, BatchDate), usize>>,
    /// This server's OpenAPI document, rendered once.
    openapi: String,
}

impl AppState {
    pub fn new(engine: Engine) -> AppState {
        let (in_flight_layer, in_flight) = InFlightRequestsLayer::pair();
        let openapi = openapi_json(&engine.config().server);
        AppState {
            inner: Arc::new(Inner {
                engine,
                modes: [Arc::default(), Arc::default()],
                metrics: metrics::Metrics::new(),
                in_flight,
                in_flight_layer,
                started: AtomicBool::new(false),
                tasks: tokio_util::task::TaskTracker::new(),
                pending: Mutex::default(),
                openapi,
            }),
        }
    }

    /// Runs blocking work on the blocking pool inside the caller's tracing
    /// span, so every log line it writes carries the request's id. Every
    /// handler's blocking work goes through here; shutdown waits for it.
    pub(crate) fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let span = tracing::Span::current();
        self.inner.tasks.spawn_blocking(move || span.in_scope(work))
    }

    /// Spawns async work that may outlive its request, in the caller's span.
    pub(crate) fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner
            .tasks
            .spawn(work.instrument(tracing::Span::current()))
    }

    /// Marks `date`'s batch as being generated until the guard drops.
    fn pending(&self, mode: Mode, date: BatchDate) -> PendingGuard {
        let key = (mode, date);
        if let Ok(mut pending) = self.inner.pending.lock() {
            *pending.entry(key).or_default() += 1;
        }
        PendingGuard {
            app: self.clone(),
            key,
        }
    }

    fn is_pending(&self, mode: Mode, date: BatchDate) -> bool {
        self.inner
            .pending
            .lock()
            .is_ok_and(|pending| pending.contains_key(&(mode, date)))
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    fn mode_lock(&self, mode: Mode) -> Arc<tokio::sync::Mutex<()>> {
        self.inner.modes[match mode {
            Mode::Raw => 0,
            Mode::Sample => 1,
        }]
        .clone()
    }

    fn started(&self) -> bool {
        self.inner.started.load(Ordering::Acquire)
    }

    /// Requests whose response has not been fully sent or dropped yet.
    fn in_flight(&self) -> usize {
        self.inner.in_flight.get()
    }
}

struct PendingGuard {
    app: AppState,
    key: (Mode, BatchDate),
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.app.inner.pending.lock()
            && let Some(count) = pending.get_mut(&self.key)
        {
            *count -= 1;
            if *count == 0 {
                pending.remove(&self.key);
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "datagen",
        description = "Synthetic clinical data as reproducible daily batches: patients, encounters, vitals, labs and clinical notes, generated on demand and served as files. Run dates go from 1900-01-01 to 2199-12-31.",
        license(name = "MIT")
    ),
    tags(
        (name = "batches", description = "Generate batches and fetch their files"),
        (name = "service", description = "Health, metrics, schemas and this document"),
    ),
    components(schemas(crate::dataset::Dataset, crate::dataset::OutputFormat, batches::FileChoice, crate::defects::Profile, Mode, BatchDate)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every documented route, in three groups: the probes (`/healthz`,
/// `/metrics`), which answer whatever else is going on; the routes whose
/// response head must come within `server.request_timeout_secs` (503
/// otherwise); and the generation route, which keeps its own deadline and
/// answers 202 instead. The served app and the `openapi` command both derive
/// from these, so the spec cannot miss a route.
struct ApiRoutes {
    probes: OpenApiRouter<AppState>,
    bounded: OpenApiRouter<AppState>,
    generation: OpenApiRouter<AppState>,
}

fn api_routes() -> ApiRoutes {
    ApiRoutes {
        probes: OpenApiRouter::with_openapi(ApiDoc::openapi())
            .routes(routes!(meta::healthz))
            .routes(routes!(meta::metrics)),
        bounded: OpenApiRouter::new()
            .routes(routes!(batches::list))
            .routes(routes!(batches::manifest))
            .routes(routes!(batches::file))
            .routes(routes!(meta::schema))
            .routes(routes!(meta::readyz))
            .routes(routes!(meta::openapi)),
        generation: OpenApiRouter::new().routes(routes!(batches::generate)),
    }
}

/// The OpenAPI document of a server with these settings: the volume limits
/// of `POST /batches/{date}` are published as the parameters' `maximum`, so a
/// client generating requests from the spec stays inside them. With the
/// embedded defaults, this is the committed `openapi/openapi.json`.
pub fn openapi_json(server: &ServerConfig) -> String {
    let routes = api_routes();
    let mut doc = routes
        .probes
        .merge(routes.bounded)
        .merge(routes.generation)
        .into_openapi();
    publish_volume_limits(&mut doc, server);
    let mut text = doc.to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

fn publish_volume_limits(doc: &mut utoipa::openapi::OpenApi, server: &ServerConfig) {
    use utoipa::openapi::{RefOr, Schema};
    let Some(post) = doc
        .paths
        .paths
        .get_mut("/batches/{date}")
        .and_then(|path| path.post.as_mut())
    else {
        return;
    };
    for parameter in post.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else {
            continue;
        };
        let (max, key) = match parameter.name.as_str() {
            "encounters" => (server.max_encounters, "server.max_encounters"),
            "new_patients" => (server.max_new_patients, "server.max_new_patients"),
            _ => continue,
        };
        if let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() {
            schema.maximum = Some(f64::from(max).into());
        }
        if let Some(description) = parameter.description.as_mut() {
            description.push_str(&format!(" This server's `{key}` is {max}."));
        }
    }
}

/// The whole application: routes, Swagger UI and the middleware stack.
pub fn app(state: AppState) -> Router {
    let server = &state.engine().config().server;
    let timeout = Duration::from_secs(server.request_timeout_secs);
    // One semaphore for the whole service (each route's layer is a clone of
    // it); the probes stay outside it.
    let limit = tower::limit::GlobalConcurrencyLimitLayer::new(server.concurrency_limit);
    let routes = api_routes();
    let (router, _) = routes
        .bounded
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(limit.clone())
        .merge(routes.generation.layer(limit))
        .merge(routes.probes)
        .split_for_parts();
    let swagger = utoipa_swagger_ui::SwaggerUi::new("/docs")
        .config(utoipa_swagger_ui::Config::new(["/openapi.json"]));

    router
        .merge(swagger)
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        // Outermost last: compress_only_gets edits the request before
        // compression sees it, and weaken_etag_if_encoded sees its result.
        .layer(CompressionLayer::new())
        .layer(middleware::map_response(weaken_etag_if_encoded))
        .layer(middleware::from_fn(compress_only_gets))
        .layer(
            ServiceBuilder::new()
                // Outermost: counts until the response body is sent or
                // dropped, so a client that hangs up is never left counted.
                .layer(state.inner.in_flight_layer.clone())
                .layer(SetRequestIdLayer::x_request_id(Counter::default()))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(middleware::map_response(error::problem_for_plain_errors))
                .layer(RequestBodyLimitLayer::new(16 * 1024)),
        )
        .with_state(state)
}

/// gzip for GETs only (a POST's tar stream is already what the client asked
/// for): the compression layer decides by the request's Accept-Encoding, so
/// other methods lose it before they reach that layer.
async fn compress_only_gets(mut request: Request, next: Next) -> Response {
    if request.method() != axum::http::Method::GET {
        request.headers_mut().remove(header::ACCEPT_ENCODING);
    }
    next.run(request).await
}

/// A compressed body is another representation: its ETag must be weak.
async fn weaken_etag_if_encoded(mut response: Response) -> Response {
    if response.headers().contains_key(header::CONTENT_ENCODING)
        && let Some(tag) = response
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
        && !tag.starts_with("W/")
        && let Ok(weak) = HeaderValue::from_str(&format!("W/{tag}"))
    {
        response.headers_mut().insert(header::ETAG, weak);
    }
    response
}

/// With `auth.token` set, mutating routes need `Authorization: Bearer <token>`.
async fn require_token(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let token = app.engine().config().auth.token.as_deref();
    if let Some(token) = token
        && request.method() != axum::http::Method::GET
        && request.method() != axum::http::Method::HEAD
    {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            // The auth scheme is case-insensitive (RFC 9110 section 11.1).
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, credentials)| credentials.trim_start());
        if given != Some(token) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

/// Request ids: a process-wide counter, enough to correlate log lines.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        HeaderValue::from_str(&format!("{n:08x}"))
            .ok()
            .map(RequestId::new)
    }
}

/// Recovers every mode's state, then serves on `listener` until `shutdown`
/// resolves. In-flight requests are allowed to finish, and generations still
/// running (a 202 answer's, say) to commit.
pub async fn run(
    listener: TcpListener,
    engine: Engine,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::new(engine);
    let recovering = state.clone();
    let _recovery = state.blocking(move || {
        let engine = recovering.engine();
        let timeout = Duration::from_secs(engine.config().state.lock_timeout_secs);
        for mode in Mode::ALL {
            // Recovery (under the lock), then whether the state can be
            // trusted; /readyz keeps reporting it until it is mended.
            if let Err(e) = engine.check(mode, timeout) {
                tracing::error!(%mode, error = %e, "the mode's state cannot be used");
            }
        }
        recovering.inner.started.store(true, Ordering::Release);
    });
    tracing::info!(address = %listener.local_addr()?, "datagen listening");
    let config = &state.engine().config().server;
    let limits = server::ConnectionLimits {
        header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
        max_connections: config.max_connections,
    };
    server::serve(listener, app(state.clone()), limits, shutdown).await;
    state.inner.tasks.close();
    if !state.inner.tasks.is_empty() {
        tracing::info!(
            tasks = state.inner.tasks.len(),
            "waiting for running generations to commit"
        );
    }
    state.inner.tasks.wait().await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
