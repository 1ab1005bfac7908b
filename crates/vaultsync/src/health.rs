//! `/live`, `/ready` and `/metrics` over plain HTTP for the kubelet and
//! Prometheus.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use vaultsync_controller::Context;
use vaultsync_webhook::listen::{self, Gate, Limits};

/// Well below the usual 1024 open files, so that a flood of connections
/// leaves descriptors for the operator's own work (Vault, the API server);
/// the kubelet and Prometheus need a handful.
const CONNECTIONS: Limits = Limits { total: 256, per_peer: 16 };
/// For a request's headers, and for a kept-alive connection between
/// requests: probes and scrapes send at once.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection is kept at all, so that a client that never
/// reads its answer lets go of it.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Binds `addr` and serves until the process ends. Binding happens before
/// this returns, so a port conflict fails the start-up.
pub async fn serve(addr: SocketAddr, ctx: Arc<Context>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let gate = Gate::new(CONNECTIONS);
    tokio::spawn(listen::accept(listener, gate.clone(), move |stream, _| {
        let (ctx, gate) = (ctx.clone(), gate.clone());
        async move {
            let service = service_fn(move |request| respond(request, ctx.clone(), gate.clone()));
            let connection = listen::http1(HEADER_TIMEOUT).serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
        }
    }));
    Ok(bound)
}

async fn respond(
    request: Request<hyper::body::Incoming>,
    ctx: Arc<Context>,
    gate: Gate,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body, content_type) = match request.uri().path() {
        // Answering at all means the runtime is not wedged.
        "/live" => (StatusCode::OK, "ok\n".to_owned(), "text/plain"),
        "/ready" if ctx.standing().is_ready() => (StatusCode::OK, "ready\n".to_owned(), "text/plain"),
        "/ready" => (StatusCode::SERVICE_UNAVAILABLE, "watches not synced yet\n".to_owned(), "text/plain"),
        "/metrics" => (
            StatusCode::OK,
            with_listener_metrics(ctx.metrics_text(), &gate),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        _ => (StatusCode::NOT_FOUND, "try /live, /ready or /metrics\n".to_owned(), "text/plain"),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    Ok(response)
}

/// The controller's exposition with this server's own counters added
/// before the closing `# EOF`, which OpenMetrics wants last.
fn with_listener_metrics(mut text: String, gate: &Gate) -> String {
    let ours = listen::metrics("health", gate, true);
    match text.rfind("# EOF") {
        Some(at) => text.insert_str(at, &ours),
        None => text.push_str(&ours),
    }
    text
}
