//! The Vault client: where the server is ([`ServerConfig`]), the shared
//! handle ([`Client`]) and what it counts. What the client does lives in
//! one submodule per job: HTTP ([`transport`]), the token ([`token`],
//! [`login`]), requests that carry it ([`authenticated`]), KV reads
//! ([`kv_read`]), the KV mount check ([`kv_mount`]) and read sharing
//! ([`coalesce`]).

mod agent_path;
mod authenticated;
mod coalesce;
mod kv_mount;
mod kv_read;
mod login;
mod token;
mod transport;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::sync::Mutex;

use crate::telemetry::{Observer, Operation};
use crate::{Auth, Error, Result};

pub use coalesce::Freshness;
use coalesce::SharedRead;
use token::TokenSlot;

/// Where the server is and how to reach it.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// e.g. `https://vault:8200`.
    pub address: String,
    /// Sent as `X-Vault-Namespace` on every request when set.
    pub namespace: Option<String>,
    /// The namespace to log in to (and keep the token in: its lookup,
    /// renewal and revocation), when not `namespace` (ESO's
    /// `auth.namespace`).
    pub login_namespace: Option<String>,
    /// PEM CA certificates; when set, only these roots are trusted.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// A client certificate followed by its private key (PEM), presented
    /// on every connection: for a server that requires mutual TLS (ESO's
    /// `tls`). Cert auth brings its own (see [`Auth::Cert`]).
    pub client_identity_pem: Option<crate::Sensitive>,
    /// Headers added to every request (ESO's `headers`); never Vault's own,
    /// which the store's checks refuse.
    pub headers: Vec<(String, String)>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How long one read's answer serves other readers of the same secret.
    pub read_window: Duration,
    /// Retries of a request that failed in a way that may pass (ESO's
    /// store `retrySettings`); none by default.
    pub retry: Retry,
}

/// How a request that failed in a way that may pass (no answer, a 5xx
/// other than 501, a 429) is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Attempts after the first.
    pub max_retries: u32,
    /// Pause before each.
    pub interval: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        // None: a failed read fails the sync, whose backoff (and, for a
        // server that is down, the outage probe) tries again.
        Self { max_retries: 0, interval: Duration::from_secs(1) }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            address: String::new(),
            namespace: None,
            login_namespace: None,
            ca_bundle_pem: None,
            client_identity_pem: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            read_window: Duration::from_secs(1),
            retry: Retry::default(),
        }
    }
}

/// An authenticated client. Cheap to clone; clones share one token, so
/// however many reconciles use it, it logs in once and renews.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    address: String,
    namespace: Option<String>,
    login_namespace: Option<String>,
    auth: Auth,
    // Held across a login, a renewal and a token check, so concurrent
    // callers share each one (single flight).
    token: Mutex<TokenSlot>,
    logins: AtomicU64,
    requests: AtomicU64,
    revocations: AtomicU64,
    /// Reads answered by another caller's request (in flight or within the
    /// read window) instead of one of their own.
    coalesced: AtomicU64,
    /// When the current token expires, as last seen (`None`: no token, or
    /// one that does not expire).
    expires: std::sync::Mutex<Option<Instant>>,
    observer: Option<Arc<dyn Observer>>,
    read_window: Duration,
    retry: Retry,
    reads: std::sync::Mutex<HashMap<String, Arc<SharedRead>>>,
    /// Mounts already checked to be KV (or that Vault would not describe).
    kv_mounts: std::sync::Mutex<HashMap<String, Result<()>>>,
    /// What a Vault agent template's path reads (see `agent_path`).
    agent_paths: std::sync::Mutex<HashMap<String, String>>,
    /// Set once a leased credential was issued through this client.
    pub(crate) issued_leases: std::sync::atomic::AtomicBool,
}

impl Client {
    /// Builds the HTTP client; logs in lazily, on first use.
    pub fn new(server: ServerConfig, auth: Auth) -> Result<Client> {
        Self::build(server, auth, None)
    }

    /// As [`Client::new`], reporting every request and login to `observer`.
    pub fn observed(server: ServerConfig, auth: Auth, observer: Arc<dyn Observer>) -> Result<Client> {
        Self::build(server, auth, Some(observer))
    }

    fn build(server: ServerConfig, auth: Auth, observer: Option<Arc<dyn Observer>>) -> Result<Client> {
        // Cert auth's certificate is its login; otherwise the store's mTLS
        // one, if any.
        let identity = match &auth {
            Auth::Cert { identity_pem, .. } => Some(identity_pem),
            _ => server.client_identity_pem.as_ref(),
        };
        let http = transport::http_client(&server, identity)?;
        let address = crate::origin::check_server(&server.address)?;
        let namespace = server.namespace.filter(|n| !n.is_empty());
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                address,
                login_namespace: server.login_namespace.filter(|n| !n.is_empty()).or_else(|| namespace.clone()),
                namespace,
                auth,
                token: Mutex::default(),
                logins: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                revocations: AtomicU64::new(0),
                coalesced: AtomicU64::new(0),
                expires: std::sync::Mutex::default(),
                observer,
                read_window: server.read_window,
                retry: server.retry,
                reads: std::sync::Mutex::default(),
                kv_mounts: std::sync::Mutex::default(),
                agent_paths: std::sync::Mutex::default(),
                issued_leases: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// The server this client talks to: an outage is the server's, not one
    /// store's or one ExternalSecret's.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// Whether the server serves: `GET sys/health`, which needs no token
    /// and so costs no login. [`Error::Sealed`] for 503 (sealed, or a
    /// proxy saying the same), [`Error::Unreachable`] when no answer comes;
    /// any other answer means it is there (a proxy that hides sys/health
    /// must not keep an outage open while reads would work).
    pub async fn probe(&self) -> Result<()> {
        let url = format!("{}/v1/sys/health?standbyok=true&perfstandbyok=true", self.inner.address);
        let started = Instant::now();
        let response = self.inner.http.get(&url).send().await;
        self.observe(Operation::Health, response.as_ref().ok().map(|r| r.status().as_u16()), started);
        let response = response.map_err(|e| self.unreachable(&e))?;
        match response.status() {
            StatusCode::SERVICE_UNAVAILABLE => Err(Error::Sealed { address: self.inner.address.clone() }),
            _ => Ok(()),
        }
    }

    /// Number of read and list requests sent so far.
    pub fn read_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Number of successful logins so far.
    pub fn login_count(&self) -> u64 {
        self.inner.logins.load(Ordering::Relaxed)
    }

    /// Number of reads answered by another caller's request.
    pub fn coalesced_count(&self) -> u64 {
        self.inner.coalesced.load(Ordering::Relaxed)
    }
    /// Number of tokens revoked by [`Client::close`] (0 or 1).
    pub fn revocation_count(&self) -> u64 {
        self.inner.revocations.load(Ordering::Relaxed)
    }
}
