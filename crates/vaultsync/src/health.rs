//! `/live`, `/ready` and `/metrics` over plain HTTP for the kubelet and
//! Prometheus.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use vaultsync_controller::Context;

/// Binds `addr` and serves until the process ends. Binding happens before
/// this returns, so a port conflict fails the start-up.
pub async fn serve(addr: SocketAddr, ctx: Arc<Context>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| respond(request, ctx.clone()));
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(bound)
}

async fn respond(
    request: Request<hyper::body::Incoming>,
    ctx: Arc<Context>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body, content_type) = match request.uri().path() {
        // Answering at all means the runtime is not wedged.
        "/live" => (StatusCode::OK, "ok\n".to_owned(), "text/plain"),
        "/ready" if ctx.is_ready() => (StatusCode::OK, "ready\n".to_owned(), "text/plain"),
        "/ready" => (StatusCode::SERVICE_UNAVAILABLE, "watches not synced yet\n".to_owned(), "text/plain"),
        "/metrics" => {
            (StatusCode::OK, ctx.metrics_text(), "application/openmetrics-text; version=1.0.0; charset=utf-8")
        }
        _ => (StatusCode::NOT_FOUND, "try /live, /ready or /metrics\n".to_owned(), "text/plain"),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    Ok(response)
}
