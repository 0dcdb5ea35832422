//! The connection layer under the router: the accept loop, per-connection
//! HTTP settings and graceful shutdown. `axum::serve` has no header-read
//! timeout, so this is its loop with hyper's timeouts switched on. It speaks
//! HTTP/1.1 only: sniffing for an HTTP/2 preface would wait on a silent
//! socket with no timeout at all.
//!
//! - A client must send a request's whole head within
//!   `server.header_read_timeout_secs`; hyper starts the same timer when a
//!   keep-alive connection goes idle, so it is also the idle timeout. A socket
//!   that trickles header lines, or sits silent, is closed when it expires.
//! - At most `server.max_connections` connections are open at once; past
//!   that the loop stops accepting (clients wait in the kernel's backlog)
//!   instead of running out of file descriptors.
//! - Accept errors (`EMFILE` when out of descriptors, say) back off instead of
//!   spinning, and are logged once per streak.
//! - On shutdown the listener closes, every connection finishes its in-flight
//!   request, then the loop returns.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Per-connection settings.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets every open
/// connection finish its in-flight request.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);

    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    let mut failing_since: Option<std::time::Instant> = None;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                if let Some(since) = failing_since.take() {
                    tracing::info!(
                        seconds = since.elapsed().as_secs_f64(),
                        "accepting connections again"
                    );
                }
                stream
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                if failing_since.is_none() {
                    tracing::error!(error = %e, "cannot accept connections; backing off until it clears");
                    failing_since = Some(std::time::Instant::now());
                }
                // Out of descriptors clears only when connections close:
                // retrying at once would spin a core and flood the log.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|request: hyper::Request<Incoming>| request.map(Body::new)),
        );
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
