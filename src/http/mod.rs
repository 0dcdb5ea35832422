//! The HTTP service: shared state, the documented router, the middleware
//! stack, and `run`, which serves until its shutdown future resolves.
//!
//! Handlers only parse, call the [`Engine`] and map errors; the engine is
//! blocking, so it runs on tokio's blocking pool.

mod batches;
mod error;
mod extract;
mod meta;
mod metrics;
mod stream;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
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
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, Problem};

use crate::model::Mode;
use crate::pipeline::Engine;
use crate::state::StateStore;

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
    started: AtomicBool,
}

impl AppState {
    pub fn new(engine: Engine) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                engine,
                modes: [Arc::default(), Arc::default()],
                metrics: metrics::Metrics::new(),
                started: AtomicBool::new(false),
            }),
        }
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
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "datagen",
        description = "Synthetic clinical data as reproducible daily batches: patients, encounters and vitals, generated on demand and served as files.",
        license(name = "MIT")
    ),
    tags(
        (name = "batches", description = "Generate batches and fetch their files"),
        (name = "service", description = "Health, metrics, schemas and this document"),
    ),
    components(schemas(crate::schema::Dataset, Mode)),
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

/// Every documented route. The served app and the `openapi` command both
/// derive from this one router, so the spec cannot miss a route.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(batches::generate))
        .routes(routes!(batches::list))
        .routes(routes!(batches::manifest))
        .routes(routes!(batches::file))
        .routes(routes!(meta::schema))
        .routes(routes!(meta::healthz))
        .routes(routes!(meta::readyz))
        .routes(routes!(meta::metrics))
        .routes(routes!(meta::openapi))
}

/// The OpenAPI document, as served and committed in `openapi/openapi.json`.
pub fn openapi_json() -> &'static str {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut text = api_router()
            .into_openapi()
            .to_pretty_json()
            .unwrap_or_default();
        text.push('\n');
        text
    })
}

/// The whole application: routes, Swagger UI and the middleware stack.
pub fn app(state: AppState) -> Router {
    let (router, _) = api_router().split_for_parts();
    let server = &state.engine().config().server;
    let timeout = Duration::from_secs(server.request_timeout_secs);
    let concurrency = server.concurrency_limit;
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
                .layer(middleware::from_fn_with_state(state.clone(), count_in_flight))
                .layer(tower::limit::ConcurrencyLimitLayer::new(concurrency))
                // Streamed bodies are not cut off: the timeout covers the
                // response head only.
                .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
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
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

async fn count_in_flight(State(app): State<AppState>, request: Request, next: Next) -> Response {
    app.metrics().in_flight.inc();
    let response = next.run(request).await;
    app.metrics().in_flight.dec();
    response
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
/// resolves. In-flight requests, including a generation about to commit, are
/// allowed to finish.
pub async fn run(
    listener: TcpListener,
    engine: Engine,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::new(engine);
    let recovering = state.clone();
    tokio::task::spawn_blocking(move || {
        let engine = recovering.engine();
        let timeout = Duration::from_secs(engine.config().state.lock_timeout_secs);
        for mode in Mode::ALL {
            if let Err(e) = StateStore::open(engine.layout(), mode, timeout) {
                tracing::error!(%mode, error = %e, "start-up recovery failed");
            }
        }
        recovering.inner.started.store(true, Ordering::Release);
    });
    tracing::info!(address = %listener.local_addr()?, "datagen listening");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
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
