//! `/live`, `/ready` and `/metrics`, answered the same way in every mode:
//! the operator serves them on its plain-HTTP health port ([`serve`]), the
//! injection webhook beside `/mutate` on its HTTPS port ([`Admin::answer`]).
//! A mode says what ready means and adds its own series through a
//! [`Probe`]; the listener's counters and the `process_*` series come with
//! every exposition, which is OpenMetrics text throughout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::listen::{self, Gate, Limits};
use crate::process_metrics;

/// What a mode tells its admin endpoints.
pub trait Probe: Send + Sync + 'static {
    /// `None` when the process should get traffic; otherwise why not, in
    /// words for the person reading a failed probe (never a value).
    fn not_ready(&self) -> Option<String>;
    /// Appends the mode's own series, as OpenMetrics text without the
    /// closing `# EOF`.
    fn encode_metrics(&self, out: &mut String);
}

const OPEN_METRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The admin endpoints of one process.
pub struct Admin {
    probe: Arc<dyn Probe>,
    /// Series of the listeners that serve these endpoints (their refusals).
    listeners: Registry,
}

impl Admin {
    pub fn new(probe: Arc<dyn Probe>, listeners: Registry) -> Self {
        Self { probe, listeners }
    }

    /// The answer to `path` when it is one of the admin endpoints.
    pub fn answer(&self, path: &str) -> Option<Response<Full<Bytes>>> {
        let (status, body, content_type) = match path {
            // Answering at all means the runtime is not wedged.
            "/live" => (StatusCode::OK, "ok\n".to_owned(), "text/plain"),
            "/ready" => match self.probe.not_ready() {
                None => (StatusCode::OK, "ready\n".to_owned(), "text/plain"),
                Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n"), "text/plain"),
            },
            "/metrics" => (StatusCode::OK, self.metrics_text(), OPEN_METRICS),
            _ => return None,
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
        }
        Some(response)
    }

    fn metrics_text(&self) -> String {
        let mut out = String::new();
        self.probe.encode_metrics(&mut out);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.listeners);
        out.push_str(&process_metrics::encode());
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }
}

/// Well below the usual 1024 open files, so that a flood of connections
/// leaves descriptors for the process's own work (Vault, the API server);
/// the kubelet and Prometheus need a handful.
const CONNECTIONS: Limits = Limits { total: 256, per_peer: 16 };
/// For a request's headers, and for a kept-alive connection between
/// requests: probes and scrapes send at once.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection is kept at all, so that a client that never
/// reads its answer lets go of it.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Binds `addr` and serves the admin endpoints over plain HTTP until the
/// process ends; its listener's series are `vaultsync_health_*`. Binding
/// happens before this returns, so a port conflict fails the start-up.
pub async fn serve(addr: SocketAddr, probe: Arc<dyn Probe>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let gate = Gate::new(CONNECTIONS);
    let mut registry = Registry::with_prefix("vaultsync_health");
    gate.register(
        &mut registry,
        "connections_refused",
        "Connections closed at accept: too many in all (total) or from one address (peer)",
        true,
    );
    let admin = Arc::new(Admin::new(probe, registry));
    tokio::spawn(listen::accept(listener, gate, move |stream, _| {
        let admin = admin.clone();
        async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(admin.answer(request.uri().path()).unwrap_or_else(not_found)) }
            });
            let connection = listen::http1(HEADER_TIMEOUT).serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
        }
    }));
    Ok(bound)
}

fn not_found() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from("try /live, /ready or /metrics\n")));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use http_body_util::BodyExt;

    use super::*;

    #[derive(Default)]
    struct Switch(AtomicBool);

    impl Probe for Switch {
        fn not_ready(&self) -> Option<String> {
            (!self.0.load(Ordering::Relaxed)).then(|| "caches not synced".to_owned())
        }
        fn encode_metrics(&self, out: &mut String) {
            out.push_str("# TYPE mode_series gauge\nmode_series 1\n");
        }
    }

    async fn body(response: Response<Full<Bytes>>) -> String {
        let bytes = response.into_body().collect().await.expect("full body").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn ready_follows_the_probe_and_says_why_not() {
        let probe = Arc::new(Switch::default());
        let admin = Admin::new(probe.clone(), Registry::default());
        let not_yet = admin.answer("/ready").expect("an admin path");
        assert_eq!(not_yet.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body(not_yet).await, "caches not synced\n");
        probe.0.store(true, Ordering::Relaxed);
        assert_eq!(admin.answer("/ready").expect("an admin path").status(), StatusCode::OK);
        assert_eq!(admin.answer("/live").expect("an admin path").status(), StatusCode::OK);
        assert!(admin.answer("/mutate").is_none(), "other paths are the mode's");
    }

    #[tokio::test]
    async fn metrics_hold_the_mode_the_listener_and_the_process_once() {
        let gate = Gate::new(Limits { total: 1, per_peer: 1 });
        let mut registry = Registry::with_prefix("vaultsync_test");
        gate.register(&mut registry, "connections_refused", "Refused", true);
        let peer = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let _held = gate.try_pass(peer).expect("a place");
        assert!(gate.try_pass(peer).is_err());
        let admin = Admin::new(Arc::new(Switch::default()), registry);
        let text = body(admin.answer("/metrics").expect("an admin path")).await;
        assert!(text.starts_with("# TYPE mode_series gauge\nmode_series 1\n"), "{text}");
        assert!(text.contains("vaultsync_test_connections_refused_total{reason=\"total\"} 1\n"), "{text}");
        assert!(text.contains("vaultsync_test_connections_refused_total{reason=\"peer\"} 0\n"), "{text}");
        assert!(text.contains("vaultsync_test_accept_errors_total 0\n"), "{text}");
        #[cfg(target_os = "linux")]
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
    }
}
