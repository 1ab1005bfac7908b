//! `vaultsync webhook`: the mutating admission webhook that injects the
//! agent into Pods that ask for it (see vaultsync_inject), over TLS with a
//! certificate it makes itself (or one given, e.g. by cert-manager).
//!
//! Its own certificate: a CA and a serving certificate generated at start,
//! the CA written into the `caBundle` of the MutatingWebhookConfiguration
//! named by `--webhook-config` (so the API server trusts it), and both made
//! anew before the serving certificate is two thirds through its life.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use vaultsync_inject::{Decision, InjectConfig, mutate};

use crate::listen::{self, Gate, Limits};

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

#[derive(Default)]
struct Counters {
    mutated: AtomicU64,
    untouched: AtomicU64,
    already: AtomicU64,
    refused: AtomicU64,
    invalid: AtomicU64,
    rotations: AtomicU64,
}

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
    eprintln!("vaultsync webhook: serving https://{}/mutate", listener.local_addr()?);
    let inject = Arc::new(options.inject);
    // Anything in the cluster can reach this port: a client that opens
    // connections and sends nothing, sends without end, or sends reviews
    // built to be expensive must hold neither the webhook's memory nor its
    // descriptors, nor crowd out the API server.
    let connections = Gate::new(CONNECTIONS);
    let reviews = Gate::new(REVIEWS);
    let server = Arc::new(Server { inject, counters, connections: connections.clone(), reviews });
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
    connections: Gate,
    reviews: Gate,
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

/// The TLS configuration to start with: the given files, or a generated
/// certificate whose CA is published.
async fn server_config(options: &WebhookOptions) -> anyhow::Result<rustls::ServerConfig> {
    if let Some((cert, key)) = &options.cert_files {
        use rustls::pki_types::pem::PemObject;
        let certs =
            CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>().context("reading the certificate")?;
        let key = PrivateKeyDer::from_pem_file(key).context("reading the key")?;
        return Ok(rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key)?);
    }
    let generated = generate(&options.hosts, options.cert_lifetime)?;
    if let Some(name) = &options.webhook_config {
        publish_ca(name, &generated.ca_pem).await?;
    }
    generated.config()
}

struct Generated {
    ca_pem: String,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl Generated {
    fn config(&self) -> anyhow::Result<rustls::ServerConfig> {
        Ok(rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], PrivateKeyDer::Pkcs8(self.key.clone_key()))?)
    }
}

fn generate(hosts: &[String], lifetime: Duration) -> anyhow::Result<Generated> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let now = time_now();
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(DnType::CommonName, "vaultsync webhook CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - Duration::from_secs(60);
    ca_params.not_after = now + lifetime * 2;
    let ca_key = KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?;
    let mut params = CertificateParams::new(hosts.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, hosts.first().cloned().unwrap_or_default());
    params.not_before = now - Duration::from_secs(60);
    params.not_after = now + lifetime;
    let key = KeyPair::generate()?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Generated {
        ca_pem: ca.pem(),
        cert: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Makes a new CA and certificate at two thirds of the certificate's life:
/// the CA is published first, then the server switches, so the API server
/// trusts the new certificate before it is served.
async fn rotate(
    hosts: Vec<String>,
    lifetime: Duration,
    webhook_config: Option<String>,
    tls: watch::Sender<Arc<rustls::ServerConfig>>,
    counters: Arc<Counters>,
) {
    let mut previous_ca: Option<String> = None;
    loop {
        tokio::time::sleep(lifetime * 2 / 3).await;
        let generated = match generate(&hosts, lifetime) {
            Ok(generated) => generated,
            Err(e) => {
                eprintln!("vaultsync webhook: generating a certificate failed: {e}");
                continue;
            }
        };
        if let Some(name) = &webhook_config {
            // Both CAs are trusted while the old certificate may still be
            // in use by a connection being set up.
            let bundle = format!("{}{}", generated.ca_pem, previous_ca.clone().unwrap_or_default());
            if let Err(e) = publish_ca(name, &bundle).await {
                eprintln!("vaultsync webhook: publishing the new CA failed, keeping the old certificate: {e:#}");
                continue;
            }
        }
        match generated.config() {
            Ok(config) => {
                let _ = tls.send(Arc::new(config));
                counters.rotations.fetch_add(1, Ordering::Relaxed);
                eprintln!("vaultsync webhook: certificate rotated");
            }
            Err(e) => eprintln!("vaultsync webhook: {e}"),
        }
        previous_ca = Some(generated.ca_pem);
    }
}

/// The generated CA and certificate kept in a Secret that every replica
/// reads: one of them makes a new pair when the Secret says it is due
/// (`vaultsync.dev/rotate-after`), writing it with the resourceVersion it
/// read so that two replicas never both rotate; each replica reloads what
/// the Secret holds and publishes its CA bundle (the new CA and the one
/// before it).
struct SharedCert {
    api: kube::Api<k8s_openapi::api::core::v1::Secret>,
    name: String,
    hosts: Vec<String>,
    lifetime: Duration,
    webhook_config: Option<String>,
    served: std::sync::Mutex<Option<String>>,
}

const ROTATE_AFTER: &str = "vaultsync.dev/rotate-after";

impl SharedCert {
    async fn new((namespace, name): &(String, String), options: &WebhookOptions) -> anyhow::Result<SharedCert> {
        let client = kube::Client::try_default().await.context("Kubernetes client")?;
        Ok(SharedCert {
            api: kube::Api::namespaced(client, namespace),
            name: name.clone(),
            hosts: options.hosts.clone(),
            lifetime: options.cert_lifetime,
            webhook_config: options.webhook_config.clone(),
            served: std::sync::Mutex::default(),
        })
    }

    /// Rotates when due (or when there is nothing yet); returns a new TLS
    /// configuration when the Secret holds a certificate other than the
    /// one served.
    async fn sync(&self, counters: &Counters) -> anyhow::Result<Option<rustls::ServerConfig>> {
        use k8s_openapi::api::core::v1::Secret;
        use kube::api::PostParams;
        let current = self.api.get_opt(&self.name).await.with_context(|| format!("reading Secret {}", self.name))?;
        let field = |s: &Secret, k: &str| {
            s.data.as_ref().and_then(|d| d.get(k)).map(|b| String::from_utf8_lossy(&b.0).into_owned())
        };
        let due = current.as_ref().is_none_or(|s| {
            let after = s.metadata.annotations.as_ref().and_then(|a| a.get(ROTATE_AFTER));
            after.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).is_none_or(|t| t <= chrono::Utc::now())
                || field(s, "tls.crt").is_none()
        });
        if due {
            let generated = generate(&self.hosts, self.lifetime)?;
            let previous_ca = current.as_ref().and_then(|s| field(s, "ca.crt")).and_then(|b| first_pem(&b));
            let bundle = format!("{}{}", generated.ca_pem, previous_ca.unwrap_or_default());
            let rotate_after = chrono::Utc::now() + self.lifetime * 2 / 3;
            let secret: Secret = serde_json::from_value(json!({
                "metadata": {
                    "name": self.name,
                    "resourceVersion": current.as_ref().and_then(|s| s.metadata.resource_version.clone()),
                    "annotations": {ROTATE_AFTER: rotate_after.to_rfc3339()},
                },
                "type": "kubernetes.io/tls",
                "stringData": {"ca.crt": bundle, "tls.crt": generated.cert_pem, "tls.key": generated.key_pem},
            }))?;
            let written = match &current {
                None => self.api.create(&PostParams::default(), &secret).await,
                Some(_) => self.api.replace(&self.name, &PostParams::default(), &secret).await,
            };
            match written {
                Ok(_) => {
                    if current.is_some() {
                        counters.rotations.fetch_add(1, Ordering::Relaxed);
                    }
                    eprintln!("vaultsync webhook: wrote a new certificate to Secret {}", self.name);
                }
                // Another replica was first: use what it wrote.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e).context("writing the TLS Secret"),
            }
        }
        let Some(secret) = self.api.get_opt(&self.name).await? else { return Ok(None) };
        let (Some(ca), Some(cert), Some(key)) =
            (field(&secret, "ca.crt"), field(&secret, "tls.crt"), field(&secret, "tls.key"))
        else {
            return Ok(None);
        };
        if self.served.lock().expect("served lock").as_deref() == Some(cert.as_str()) {
            return Ok(None);
        }
        if let Some(name) = &self.webhook_config {
            publish_ca(name, &ca).await?;
        }
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes())?;
        let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key)?;
        *self.served.lock().expect("served lock") = Some(cert);
        Ok(Some(config))
    }

    async fn keep_current(self, tls: watch::Sender<Arc<rustls::ServerConfig>>, counters: Arc<Counters>) {
        let pause = (self.lifetime / 6).clamp(Duration::from_secs(1), Duration::from_secs(30));
        loop {
            tokio::time::sleep(pause).await;
            match self.sync(&counters).await {
                Ok(Some(config)) => {
                    let _ = tls.send(Arc::new(config));
                    eprintln!("vaultsync webhook: serving the certificate of Secret {}", self.name);
                }
                Ok(None) => {}
                Err(e) => eprintln!("vaultsync webhook: {e:#}"),
            }
        }
    }
}

/// The first PEM block of `bundle`.
fn first_pem(bundle: &str) -> Option<String> {
    let end = "-----END CERTIFICATE-----";
    bundle.find(end).map(|at| format!("{}\n", &bundle[..at + end.len()]))
}

/// Writes `ca_pem` into every webhook of MutatingWebhookConfiguration `name`.
async fn publish_ca(name: &str, ca_pem: &str) -> anyhow::Result<()> {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use kube::api::{Api, Patch, PatchParams};
    let client = kube::Client::try_default().await.context("Kubernetes client")?;
    let api = Api::<MutatingWebhookConfiguration>::all(client);
    let current = api.get(name).await.with_context(|| format!("MutatingWebhookConfiguration {name}"))?;
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let webhooks: Vec<Value> = current
        .webhooks
        .unwrap_or_default()
        .iter()
        .map(|w| json!({"name": w.name, "clientConfig": {"caBundle": bundle}}))
        .collect();
    // A strategic merge: webhooks merge by name, so only caBundle changes.
    let patch = json!({"webhooks": webhooks});
    api.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .with_context(|| format!("patching {name}"))?;
    Ok(())
}

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
        "/live" | "/ready" => return reply(StatusCode::OK, "ok\n".into()),
        "/metrics" => return reply(StatusCode::OK, metrics(&server)),
        "/mutate" => {}
        _ => return reply(StatusCode::NOT_FOUND, "not found\n".into()),
    }
    let too_large = || {
        counters.invalid.fetch_add(1, Ordering::Relaxed);
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
                counters.invalid.fetch_add(1, Ordering::Relaxed);
                return reply(StatusCode::BAD_REQUEST, "not an AdmissionReview\n".into());
            };
            return reply(StatusCode::OK, too_large_pod(&head, counters));
        }
        Err(_) => {
            counters.invalid.fetch_add(1, Ordering::Relaxed);
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
            counters.untouched.fetch_add(1, Ordering::Relaxed);
            json!({"uid": uid, "allowed": true})
        }
        Ok(Decision::AlreadyInjected) => {
            counters.already.fetch_add(1, Ordering::Relaxed);
            json!({"uid": uid, "allowed": true})
        }
        Ok(Decision::Patch(patch, mode)) => {
            counters.mutated.fetch_add(1, Ordering::Relaxed);
            eprintln!("vaultsync webhook: injected {mode:?} into Pod {namespace}/{pod_name}");
            // Each form of the patch is let go as soon as the next is made
            // (see `additions`).
            let serialized = serde_json::to_vec(&patch).unwrap_or_default();
            drop(patch);
            let encoded = base64::engine::general_purpose::STANDARD.encode(serialized);
            json!({"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": encoded})
        }
        Err(refused) => {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            eprintln!("vaultsync webhook: refused Pod {namespace}/{pod_name}: {}", clip(&refused.to_string(), 1024));
            json!({"uid": uid, "allowed": false, "status": {"code": 400, "message": refused.to_string()}})
        }
    };
    reply(StatusCode::OK, answer(response))
}

/// The refusal of a Pod whose review, or what injection would add to it,
/// is over [`REVIEW_BUDGET`].
fn too_large_pod(review: &Value, counters: &Counters) -> String {
    counters.refused.fetch_add(1, Ordering::Relaxed);
    let (uid, namespace, pod_name) = identify(review);
    let message = format!(
        "the Pod is too large for the injection webhook (more than {} MiB to read and add): fewer or smaller \
         annotations or containers",
        REVIEW_BUDGET >> 20
    );
    eprintln!("vaultsync webhook: refused Pod {namespace}/{pod_name}: {message}");
    answer(json!({"uid": uid, "allowed": false, "status": {"code": 413, "message": message}}))
}

/// An upper bound on the memory injection takes for `pod` beyond the
/// parsed review, in bytes, to be charged before it runs; 0 when it will
/// not get past the annotations. The agent's configuration (the Vault CA
/// and what the annotations ask for, templates included) goes into each
/// agent container, and in exec mode into every container; the patch
/// carries it as JSON inside a JSON string, so escaped twice (a `"` takes
/// four bytes), and the answer holds the patch serialized and then in
/// base64 (three forms at most at once). The mutation's copy of the Pod,
/// and the Pod's own init containers repeated in the patch when the agent
/// is put before them, take no more than `parsed` again.
fn additions(pod: &Value, inject: &InjectConfig, parsed: usize) -> usize {
    use vaultsync_inject::annotations::{asks, done, read};
    let annotations: std::collections::BTreeMap<String, String> =
        pod.pointer("/metadata/annotations").and_then(|a| serde_json::from_value(a.clone()).ok()).unwrap_or_default();
    if !asks(&annotations) || done(&annotations) {
        return 0;
    }
    // Refused on its annotations: nothing is added.
    let Ok(request) = read(&annotations, inject) else { return 0 };
    let mut config = Escaped(1024);
    let _ = serde_json::to_writer(&mut config, &(&annotations, &inject.vault_ca_pem));
    let count = |path: &str| pod.pointer(path).and_then(Value::as_array).map_or(0, Vec::len);
    let (containers, inits) = (count("/spec/containers"), count("/spec/initContainers"));
    let copies = match request.mode {
        vaultsync_inject::Mode::Exec => containers + 1,
        vaultsync_inject::Mode::Init | vaultsync_inject::Mode::Sidecar => 2,
    };
    3 * (copies * config.0 + (containers + inits) * 512) + parsed
}

/// Counts the bytes written as they would be once escaped in a JSON
/// string.
struct Escaped(usize);

impl std::io::Write for Escaped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for byte in bytes {
            self.0 += match byte {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
                0..0x20 => 6,
                _ => 1,
            };
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn answer(response: Value) -> String {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}).to_string()
}

/// The review's uid (echoed in the answer), and the Pod's namespace and
/// name for the log, cut to the length Kubernetes allows a name: a
/// client other than the API server may send anything there.
fn identify(review: &Value) -> (Value, String, String) {
    let uid = review.pointer("/request/uid").cloned().unwrap_or(Value::Null);
    let object = review.pointer("/request/object").unwrap_or(&Value::Null);
    let pod_name = object
        .pointer("/metadata/name")
        .or_else(|| object.pointer("/metadata/generateName"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = review.pointer("/request/namespace").and_then(Value::as_str).unwrap_or("");
    (uid, clip(namespace, 253), clip(pod_name, 253))
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
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

fn metrics(server: &Server) -> String {
    let counters = &server.counters;
    let mut text = String::from(
        "# HELP vaultsync_webhook_admissions_total Pods the injection webhook was asked about, by what it did.\n# TYPE vaultsync_webhook_admissions_total counter\n",
    );
    for (result, value) in [
        ("mutated", &counters.mutated),
        ("untouched", &counters.untouched),
        ("already_injected", &counters.already),
        ("refused", &counters.refused),
        ("invalid", &counters.invalid),
    ] {
        text.push_str(&format!(
            "vaultsync_webhook_admissions_total{{result=\"{result}\"}} {}\n",
            value.load(Ordering::Relaxed)
        ));
    }
    text.push_str("# HELP vaultsync_webhook_certificate_rotations_total Serving certificates replaced since start.\n# TYPE vaultsync_webhook_certificate_rotations_total counter\n");
    text.push_str(&format!(
        "vaultsync_webhook_certificate_rotations_total {}\n",
        counters.rotations.load(Ordering::Relaxed)
    ));
    text.push_str(&listen::metrics("webhook", &server.connections, false));
    let (total, peer) = server.reviews.refused();
    text.push_str(&format!(
        "# HELP vaultsync_webhook_reviews_refused_total Reviews answered 429: too many at once in all (total) or from one address (peer).\n\
         # TYPE vaultsync_webhook_reviews_refused_total counter\n\
         vaultsync_webhook_reviews_refused_total{{reason=\"total\"}} {total}\n\
         vaultsync_webhook_reviews_refused_total{{reason=\"peer\"}} {peer}\n"
    ));
    text
}

/// Which parts of a JSON document are kept: all of it, or only the named
/// fields of an object (each with its own shape); the rest is skipped by
/// the parser without being stored.
enum Shape {
    Whole,
    Only(&'static [(&'static str, Shape)]),
}

/// What the mutation reads of a Pod, and what the answer and the log need
/// of the review. Nothing else is kept: not the old object of an update,
/// not managedFields (whose fieldsV1 is free-form JSON), not the status.
/// The patch is computed on this much of the Pod, which is the same patch
/// as on all of it: the mutation changes only these fields, and keeps each
/// of them whole.
const REVIEW: Shape = Shape::Only(&[(
    "request",
    Shape::Only(&[
        ("uid", Shape::Whole),
        ("namespace", Shape::Whole),
        (
            "object",
            Shape::Only(&[
                (
                    "metadata",
                    Shape::Only(&[
                        ("name", Shape::Whole),
                        ("generateName", Shape::Whole),
                        ("annotations", Shape::Whole),
                    ]),
                ),
                (
                    "spec",
                    Shape::Only(&[
                        ("volumes", Shape::Whole),
                        ("containers", Shape::Whole),
                        ("initContainers", Shape::Whole),
                    ]),
                ),
            ]),
        ),
    ]),
)]);

/// Enough of a review to answer it and to name the Pod in the log.
const REVIEW_HEAD: Shape = Shape::Only(&[(
    "request",
    Shape::Only(&[
        ("uid", Shape::Whole),
        ("namespace", Shape::Whole),
        (
            "object",
            Shape::Only(&[("metadata", Shape::Only(&[("name", Shape::Whole), ("generateName", Shape::Whole)]))]),
        ),
    ]),
)]);

/// What one review may take in memory: parsed (by the estimate of
/// [`Cost`]) and then added by injection (by [`additions`]). A Pod as
/// large as the API server stores fits unless it is built of very many
/// tiny objects or asks for exec mode in very many containers; the
/// amplifications of a hostile body (a huge array of zeros, or of
/// `{"a":0}`) are cut off here instead of growing the heap tenfold.
const REVIEW_BUDGET: usize = 8 << 20;
const OVER_BUDGET: &str = "over the webhook's parse budget";

/// The parts of `body` that `shape` keeps, as JSON, within `budget` (what
/// is left of it stays there).
fn parse_review(
    body: &[u8],
    shape: &'static Shape,
    budget: &std::cell::Cell<usize>,
) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed as _;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = Shaped { shape, budget }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Estimates, in bytes, of what serde_json's `Value` allocates: every
/// value's slot in its array (32 bytes, doubled for the array's growth) or
/// map, a string's bytes, a map's first B-tree node (11 entries of key and
/// value) and each entry's share of the nodes after it. They err on the
/// high side, so that the budget bounds the real heap.
struct Cost;

impl Cost {
    const VALUE: usize = 64;
    const MAP: usize = 640;
    const ENTRY: usize = 96;
}

#[derive(Clone, Copy)]
struct Shaped<'a> {
    shape: &'static Shape,
    budget: &'a std::cell::Cell<usize>,
}

impl Shaped<'_> {
    fn charge<E: serde::de::Error>(&self, cost: usize) -> Result<(), E> {
        let left = self.budget.get();
        if cost > left {
            return Err(E::custom(OVER_BUDGET));
        }
        self.budget.set(left - cost);
        Ok(())
    }

    fn whole(self) -> Self {
        Shaped { shape: &Shape::Whole, ..self }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Shaped<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Shaped<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.charge(Cost::VALUE)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.charge(Cost::VALUE)?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.charge(Cost::VALUE)?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.charge(Cost::VALUE)?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.charge(Cost::VALUE + v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.charge(Cost::VALUE + v.len())?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.charge(Cost::VALUE)?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, deserializer)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.charge(Cost::VALUE)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.whole())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.charge(Cost::VALUE)?;
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let shape = match self.shape {
                Shape::Whole => &Shape::Whole,
                Shape::Only(fields) => match fields.iter().find(|(name, _)| *name == key) {
                    Some((_, shape)) => shape,
                    None => {
                        map.next_value::<serde::de::IgnoredAny>()?;
                        continue;
                    }
                },
            };
            self.charge(Cost::ENTRY + key.len() + if object.is_empty() { Cost::MAP } else { 0 })?;
            let value = map.next_value_seed(Shaped { shape, ..self })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> InjectConfig {
        InjectConfig {
            vault_address: "https://vault:8200".into(),
            vault_ca_pem: None,
            agent_image: "vaultsync:test".into(),
            auth_path: "kubernetes".into(),
            audience: "vault".into(),
        }
    }

    /// A Pod as the API server sends it: defaults filled in, managedFields,
    /// a status, an init container of its own.
    fn full_pod(mode: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web", "namespace": "team-a", "uid": "1234", "labels": {"app": "web"},
                "annotations": {"vaultsync.dev/inject": "true", "vaultsync.dev/role": "web", "vaultsync.dev/mode": mode,
                                "vaultsync.dev/secret-db": "secret/data/db"},
                "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "9"}],
            },
            "spec": {
                "serviceAccountName": "web",
                "initContainers": [{"name": "migrate", "image": "app:1", "command": ["migrate"],
                                    "terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "IfNotPresent",
                                    "resources": {}, "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets"}]}],
                "containers": [{"name": "app", "image": "app:1", "command": ["/app"], "args": ["--serve"],
                                "env": [{"name": "DB", "value": "vault:secret/data/db#password"}, {"name": "X", "value": "1"}],
                                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets"}]}],
                "volumes": [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}],
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}],
                "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
            },
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        })
    }

    fn review(object: Value, old: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "namespace": "team-a", "operation": "CREATE", "object": object, "oldObject": old,
                        "userInfo": {"username": "someone", "groups": ["system:authenticated"]}},
        }))
        .expect("json")
    }

    fn budget() -> std::cell::Cell<usize> {
        std::cell::Cell::new(REVIEW_BUDGET)
    }

    #[test]
    fn the_patch_from_the_kept_fields_is_the_patch_from_the_whole_pod() {
        for mode in ["init", "sidecar", "exec"] {
            let pod = full_pod(mode);
            let whole = mutate(&pod, &config()).expect("accepted");
            let body = review(pod.clone(), Value::Null);
            let kept = parse_review(&body, &REVIEW, &budget()).expect("parsed");
            let object = kept.pointer("/request/object").expect("object");
            assert!(object.pointer("/metadata/managedFields").is_none() && object.get("status").is_none());
            let shaped = mutate(object, &config()).expect("accepted");
            match (whole, shaped) {
                (Decision::Patch(whole, _), Decision::Patch(shaped, _)) => {
                    assert_eq!(serde_json::to_value(&whole).unwrap(), serde_json::to_value(&shaped).unwrap(), "{mode}");
                    // And it applies to the whole Pod as the API server holds it.
                    let mut patched = pod.clone();
                    json_patch::patch(&mut patched, &shaped).expect("applies");
                    assert_eq!(patched["status"], pod["status"]);
                    assert_eq!(
                        patched["spec"]["initContainers"].as_array().map(Vec::len),
                        Some(if mode == "sidecar" { 3 } else { 2 })
                    );
                }
                other => panic!("{mode}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_answer_names_the_review_and_the_pod() {
        let kept = parse_review(&review(full_pod("init"), Value::Null), &REVIEW, &budget()).expect("parsed");
        let (uid, namespace, name) = identify(&kept);
        assert_eq!((uid, namespace.as_str(), name.as_str()), (json!("u-1"), "team-a", "web"));
        let long = "n".repeat(10_000);
        let mut pod = full_pod("init");
        pod["metadata"]["name"] = json!(long);
        let kept = parse_review(&review(pod, Value::Null), &REVIEW_HEAD, &budget()).expect("parsed");
        assert_eq!(identify(&kept).2.len(), 253, "a name for the log is cut to a name's length");
    }

    /// `[0,0,...]` of nearly `size` bytes.
    fn zeros(size: usize) -> Value {
        serde_json::from_str(&format!("[{}0]", "0,".repeat(size / 2))).expect("zeros")
    }

    #[test]
    fn what_the_mutation_does_not_read_is_skipped_however_large() {
        let mut pod = full_pod("init");
        pod["metadata"]["managedFields"][0]["fieldsV1"] = json!({"f:x": zeros(1 << 20)});
        pod["spec"]["nodeSelector"] = json!({"x": zeros(1 << 20)});
        let budget = 64 << 10;
        let kept = parse_review(&review(pod, zeros(1 << 20)), &REVIEW, &std::cell::Cell::new(budget))
            .expect("within a small budget");
        assert!(kept.to_string().len() < 4096, "{kept}");
    }

    #[test]
    fn an_amplifying_review_is_cut_off_at_the_budget() {
        for at in ["/metadata/annotations", "/spec/containers"] {
            let mut pod = full_pod("init");
            *pod.pointer_mut(at).expect("field") = zeros(2 << 20);
            let error = parse_review(&review(pod.clone(), Value::Null), &REVIEW, &budget()).expect_err(at);
            assert!(error.to_string().contains(OVER_BUDGET), "{error}");
            // Enough of it to answer, all the same.
            let head = parse_review(&review(pod, Value::Null), &REVIEW_HEAD, &budget()).expect("head");
            assert_eq!(identify(&head).0, json!("u-1"));
        }
        let objects: Vec<Value> = (0..300_000).map(|_| json!({"a": 0})).collect();
        let mut pod = full_pod("init");
        pod["spec"]["volumes"] = Value::Array(objects);
        let error = parse_review(&review(pod, Value::Null), &REVIEW, &budget()).expect_err("tiny objects");
        assert!(error.to_string().contains(OVER_BUDGET), "{error}");
    }

    #[test]
    fn what_injection_would_add_is_charged_before_it_runs() {
        let mut config = config();
        let mut pod = full_pod("exec");
        let one = additions(&pod, &config, 0);
        assert!(one > 0 && one < 64 << 10, "{one}");
        // Exec mode copies the agent's configuration (with the CA, and the
        // annotations escaped twice) into every container.
        config.vault_ca_pem = Some("-----BEGIN CERTIFICATE-----\n".repeat(200));
        let container = pod["spec"]["containers"][0].clone();
        pod["spec"]["containers"] = Value::Array(vec![container; 1000]);
        pod["metadata"]["annotations"]["vaultsync.dev/template-db"] = json!("{{ \"\" }}".repeat(1000));
        assert!(additions(&pod, &config, 0) > REVIEW_BUDGET, "{}", additions(&pod, &config, 0));
        // Not in init mode, where two agent containers carry it.
        pod["metadata"]["annotations"]["vaultsync.dev/mode"] = json!("init");
        assert!(additions(&pod, &config, 0) < REVIEW_BUDGET / 4, "{}", additions(&pod, &config, 0));
        // Nothing when the Pod was injected already, or does not ask.
        pod["metadata"]["annotations"]["vaultsync.dev/mode"] = json!("exec");
        pod["metadata"]["annotations"]["vaultsync.dev/inject-status"] = json!("injected");
        assert_eq!(additions(&pod, &config, 0), 0);
    }

    #[test]
    fn a_large_real_pod_fits_the_budget() {
        // Ten containers of 100 variables and 20 mounts each, and 150 kB of
        // annotations: far beyond what Pods that ask for injection carry.
        let env: Vec<Value> =
            (0..100).map(|i| json!({"name": format!("VARIABLE_{i}"), "value": format!("value-{i}")})).collect();
        let mounts: Vec<Value> = (0..20)
            .map(|i| json!({"name": format!("v{i}"), "mountPath": format!("/mnt/{i}"), "readOnly": true}))
            .collect();
        let mut pod = full_pod("init");
        let container = json!({"name": "c", "image": "app:1", "env": env, "volumeMounts": mounts,
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            "securityContext": {"runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}}});
        pod["spec"]["containers"] = Value::Array(
            (0..10)
                .map(|i| {
                    let mut c = container.clone();
                    c["name"] = json!(format!("c{i}"));
                    c
                })
                .collect(),
        );
        for i in 0..150 {
            pod["metadata"]["annotations"][format!("example.com/note-{i}")] = json!("x".repeat(1000));
        }
        let body = review(pod, Value::Null);
        let left = budget();
        let kept = parse_review(&body, &REVIEW, &left).expect("fits");
        let used = REVIEW_BUDGET - left.get();
        let added = additions(kept.pointer("/request/object").expect("object"), &config(), used);
        assert!(added > 0, "the Pod asks for injection");
        assert!(
            used + added < REVIEW_BUDGET,
            "a large Pod: {used} parsed + {added} added (body: {} bytes)",
            body.len()
        );
    }
}
