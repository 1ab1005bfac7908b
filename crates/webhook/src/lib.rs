//! The mutating admission webhook that injects the agent into Pods that
//! ask for it (see vaultsync_inject), over TLS with a certificate it makes
//! itself (or one given, e.g. by cert-manager); `vaultsync webhook` calls
//! [`run`]. This file holds the server: its options, the accept loop and
//! the answer to one review. Beside it: `review` (the bounded parse of a
//! review and its memory budget), `tls` (the CA, rotation, the shared TLS
//! Secret, caBundle publishing) and `metrics` (its series). Its connection
//! caps and `/live`, `/ready`, `/metrics` come from vaultsync_serve, as the
//! operator's do.
//!
//! Its own certificate: a CA and a serving certificate generated at start,
//! the CA written into the `caBundle` of the MutatingWebhookConfiguration
//! named by `--webhook-config` (so the API server trusts it), and both made
//! anew before the serving certificate is two thirds through its life.

#![forbid(unsafe_code)]

mod metrics;
mod review;
mod tls;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};
use vaultsync_inject::{Decision, InjectConfig, mutate};
use vaultsync_serve::admin::{Admin, Probe};
use vaultsync_serve::listen::{self, Gate, Limits};

use crate::metrics::Counters;
use crate::review::{OVER_BUDGET, REVIEW, REVIEW_BUDGET, REVIEW_HEAD, additions, clip, identify, parse_review};
use crate::tls::{SharedCert, rotate, server_config};

/// What `vaultsync webhook` was given on its command line.
pub struct WebhookOptions {
    pub listen: SocketAddr,
    pub inject: InjectConfig,
    /// Names the serving certificate is for (DNS names or IP addresses).
    pub hosts: Vec<String>,
    /// How long a generated serving certificate is valid.
    pub cert_lifetime: Duration,
    /// A certificate and key to serve instead (PEM files).
    pub cert_files: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// The MutatingWebhookConfiguration whose caBundle is kept current.
    pub webhook_config: Option<String>,
    /// A Secret (namespace, name) that holds the generated CA and
    /// certificate, so that every replica serves the same one.
    pub tls_secret: Option<(String, String)>,
}

/// Sets up TLS, binds `options.listen` and serves until the process ends;
/// it returns an error only when the start fails (certificate, Secret,
/// caBundle, port).
pub async fn run(options: WebhookOptions) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let counters = Arc::new(Counters::default());
    let (tls_tx, tls_rx) = match &options.tls_secret {
        Some(secret) if options.cert_files.is_none() => {
            let shared = SharedCert::new(secret, &options).await?;
            let config = shared.sync(&counters).await?.context("no certificate in the TLS Secret")?;
            let (tx, rx) = watch::channel(Arc::new(config));
            tokio::spawn(shared.keep_current(tx, counters.clone()));
            (None, rx)
        }
        _ => {
            let (tx, rx) = watch::channel(Arc::new(server_config(&options).await?));
            (Some(tx), rx)
        }
    };
    if let (None, Some(tls_tx)) = (&options.cert_files, tls_tx) {
        tokio::spawn(rotate(
            options.hosts.clone(),
            options.cert_lifetime,
            options.webhook_config.clone(),
            tls_tx,
            counters.clone(),
        ));
    }
    let listener = TcpListener::bind(options.listen).await.with_context(|| format!("binding {}", options.listen))?;
    info!("serving https://{}/mutate", listener.local_addr()?);
    let inject = Arc::new(options.inject);
    // Anything in the cluster can reach this port: a client that opens
    // connections and sends nothing, sends without end, or sends reviews
    // built to be expensive must hold neither the webhook's memory nor its
    // descriptors, nor crowd out the API server.
    let connections = Gate::new(CONNECTIONS);
    let reviews = Gate::new(REVIEWS);
    let admin = Admin::new(Arc::new(Serving), metrics::registry(&counters, &connections, &reviews));
    let server = Arc::new(Server { inject, counters, admin, reviews });
    listen::accept(listener, connections, move |stream, peer| {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls_rx.borrow().clone());
        let server = server.clone();
        async move {
            let Ok(Ok(stream)) = tokio::time::timeout(CLIENT_TIMEOUT, acceptor.accept(stream)).await else { return };
            let service = service_fn(move |request| respond(request, server.clone(), peer.ip()));
            let connection = listen::http1(CLIENT_TIMEOUT).serve_connection(TokioIo::new(stream), service);
            // The API server's admission calls take at most 30 s; a
            // connection kept alive for longer is closed after that.
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
        }
    })
    .await;
    Ok(())
}

/// What every connection's requests are served with.
struct Server {
    inject: Arc<InjectConfig>,
    counters: Arc<Counters>,
    admin: Admin,
    reviews: Gate,
}

/// The webhook's readiness: answering `/ready` at all means its HTTPS
/// port accepts and a certificate is served, which is what the API
/// server needs; its series are in the admin endpoints' registry.
struct Serving;

impl Probe for Serving {
    fn not_ready(&self) -> Option<String> {
        None
    }

    fn encode_metrics(&self, _: &mut String) {}
}

/// Connections served at once; more are closed at accept. Per peer: the
/// API server opens one connection per admission call in flight.
const CONNECTIONS: Limits = Limits { total: 256, per_peer: 32 };
/// Reviews read and answered at once, each with up to [`MAX_BODY`] read
/// and [`REVIEW_BUDGET`] parsed and added: this bounds the webhook's
/// memory (the chart's limit is 128Mi). One peer gets half, so a client
/// that sends slowly cannot take every place from the API server.
const REVIEWS: Limits = Limits { total: 4, per_peer: 2 };
/// How long a review waits for a place before it is answered 429. A
/// review takes milliseconds; the API server waits up to the webhook's
/// timeoutSeconds (the chart: 10 s).
const REVIEW_WAIT: Duration = Duration::from_secs(3);
/// For a TLS handshake, the request headers, the request body, and for a
/// kept-alive connection between requests.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection is kept, keep-alive included.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// The largest AdmissionReview read: about the largest object the API
/// server stores (etcd refuses requests over 1.5 MiB by default, and the
/// review of an update carries the object twice, new and old).
const MAX_BODY: usize = 3 << 20;

async fn respond(
    request: Request<hyper::body::Incoming>,
    server: Arc<Server>,
    peer: IpAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let counters = &server.counters;
    let path = request.uri().path().to_owned();
    let reply = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        Ok(response)
    };
    match path.as_str() {
        "/mutate" => {}
        _ => {
            return Ok(server.admin.answer(&path).unwrap_or_else(|| {
                let mut response = Response::new(Full::new(Bytes::from("not found\n")));
                *response.status_mut() = StatusCode::NOT_FOUND;
                response
            }));
        }
    }
    let too_large = || {
        counters.invalid.inc();
        reply(StatusCode::PAYLOAD_TOO_LARGE, format!("a request body is at most {MAX_BODY} bytes\n"))
    };
    let declared = request.body().size_hint().exact();
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return too_large();
    }
    // The place is taken before the body is read: a body waiting for one
    // stays in the kernel's buffers, not in the webhook's memory.
    let Ok(_place) = server.reviews.pass_within(peer, REVIEW_WAIT).await else {
        return reply(StatusCode::TOO_MANY_REQUESTS, "too many reviews at once; try again\n".into());
    };
    let body = match tokio::time::timeout(CLIENT_TIMEOUT, read_body(request.into_body(), declared)).await {
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => return too_large(),
        Ok(Err(BodyError::Unreadable)) | Err(_) => return reply(StatusCode::BAD_REQUEST, "unreadable body\n".into()),
    };
    let budget = std::cell::Cell::new(REVIEW_BUDGET);
    let review = match parse_review(&body, &REVIEW, &budget) {
        Ok(review) => review,
        Err(e) if e.to_string().contains(OVER_BUDGET) => {
            // Answered as a refusal the API server shows its user, when
            // the request is a review at all.
            let Ok(head) = parse_review(&body, &REVIEW_HEAD, &std::cell::Cell::new(REVIEW_BUDGET)) else {
                counters.invalid.inc();
                return reply(StatusCode::BAD_REQUEST, "not an AdmissionReview\n".into());
            };
            return reply(StatusCode::OK, too_large_pod(&head, counters));
        }
        Err(_) => {
            counters.invalid.inc();
            return reply(StatusCode::BAD_REQUEST, "not an AdmissionReview\n".into());
        }
    };
    drop(body);
    let object = review.pointer("/request/object").unwrap_or(&Value::Null);
    let parsed = REVIEW_BUDGET - budget.get();
    if additions(object, &server.inject, parsed) > budget.get() {
        return reply(StatusCode::OK, too_large_pod(&review, counters));
    }
    let (uid, namespace, pod_name) = identify(&review);
    let response = match mutate(object, &server.inject) {
        Ok(Decision::Untouched) => {
            counters.untouched.inc();
            json!({"uid": uid, "allowed": true})
        }
        Ok(Decision::AlreadyInjected) => {
            counters.already.inc();
            json!({"uid": uid, "allowed": true})
        }
        Ok(Decision::Patch(patch, mode, warnings)) => {
            counters.mutated.inc();
            info!(mode = ?mode, namespace = %namespace, pod = %pod_name, "injected");
            // Each form of the patch is let go as soon as the next is made
            // (see `additions`).
            let serialized = serde_json::to_vec(&patch).unwrap_or_default();
            drop(patch);
            let encoded = base64::engine::general_purpose::STANDARD.encode(serialized);
            let mut response = json!({"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": encoded});
            if !warnings.is_empty() {
                // Shown by kubectl and in the API server's answer.
                response["warnings"] = json!(warnings);
            }
            response
        }
        Err(refused) => {
            counters.refused.inc();
            warn!(namespace = %namespace, pod = %pod_name, reason = %clip(&refused.to_string(), 1024), "refused Pod");
            json!({"uid": uid, "allowed": false, "status": {"code": 400, "message": refused.to_string()}})
        }
    };
    reply(StatusCode::OK, answer(response))
}

/// The refusal of a Pod whose review, or what injection would add to it,
/// is over [`REVIEW_BUDGET`].
fn too_large_pod(review: &Value, counters: &Counters) -> String {
    counters.refused.inc();
    let (uid, namespace, pod_name) = identify(review);
    let message = format!(
        "the Pod is too large for the injection webhook (more than {} MiB to read and add): fewer or smaller \
         annotations or containers",
        REVIEW_BUDGET >> 20
    );
    warn!(namespace = %namespace, pod = %pod_name, reason = %message, "refused Pod");
    answer(json!({"uid": uid, "allowed": false, "status": {"code": 413, "message": message}}))
}

fn answer(response: Value) -> String {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}).to_string()
}

enum BodyError {
    TooLarge,
    Unreadable,
}

/// The body, at most [`MAX_BODY`] bytes, in one allocation of the
/// declared length where there is one.
async fn read_body(mut body: hyper::body::Incoming, declared: Option<u64>) -> Result<Vec<u8>, BodyError> {
    let mut bytes = Vec::with_capacity(declared.map_or(0, |length| length.min(MAX_BODY as u64) as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Unreadable)?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > MAX_BODY {
                return Err(BodyError::TooLarge);
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}
