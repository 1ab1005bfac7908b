use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Mutex, OnceCell};
use tracing::debug;

use crate::error::vault_errors;
use crate::kv::{parse_read, read_path};
use crate::path::{check_auth_mount, check_in_mount, check_mount, encode};
use crate::telemetry::{LoginOutcome, Observer, Operation};
use crate::{Auth, Error, KvSecret, KvVersion, Result, Sensitive};

/// Where the server is and how to reach it.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// e.g. `https://vault:8200`.
    pub address: String,
    /// Sent as `X-Vault-Namespace` on every request when set.
    pub namespace: Option<String>,
    /// PEM CA certificates; when set, only these roots are trusted.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How long one read's answer serves other readers of the same secret.
    pub read_window: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            address: String::new(),
            namespace: None,
            ca_bundle_pem: None,
            timeout: Duration::from_secs(10),
            read_window: Duration::from_secs(1),
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
    reads: std::sync::Mutex<HashMap<String, Arc<SharedRead>>>,
    /// Mounts already checked to be KV (or that Vault would not describe).
    kv_mounts: std::sync::Mutex<HashMap<String, Result<()>>>,
    /// Set once a leased credential was issued through this client.
    pub(crate) issued_leases: std::sync::atomic::AtomicBool,
}

/// One read of a secret, shared by everyone asking within the window.
type SharedRead = OnceCell<(Instant, Result<KvSecret>)>;

/// Whether a read may be answered by one that is in flight or just done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Freshness {
    /// Share a read in flight, or one answered within the read window.
    #[default]
    Shared,
    /// Start a new read. For a caller asked to see Vault as it is now (a
    /// force-sync): a read that began before the request may predate the
    /// change the person is waiting for. Later callers share this one.
    Now,
}

/// The client's token, and what it remembers of failed logins.
#[derive(Default)]
struct TokenSlot {
    current: Option<TokenState>,
    /// The last failed login, not retried before its window ends: however
    /// many ExternalSecrets use the client, they share that one failure.
    failure: Option<LoginFailure>,
    /// Set by [`Client::close`]: no login happens any more.
    closed: bool,
}

struct LoginFailure {
    error: Error,
    until: Instant,
    /// Consecutive failures: each doubles the window.
    count: u32,
}

/// How long a failed login is remembered: 5s doubling to 60s, reset by a
/// successful login.
fn login_backoff(failures: u32) -> Duration {
    Duration::from_secs(5u64 << failures.saturating_sub(1).min(4)).min(Duration::from_secs(60))
}

/// How long a `lookup-self` that found the token valid answers for it: 403s
/// within it are the policies' refusals, with no new check.
const CONFIRMED_FOR: Duration = Duration::from_secs(10);

/// The least time between a login and a new one caused by that token being
/// found invalid. It bounds the logins when `lookup-self` itself is refused
/// to a valid token (a role with `token_no_default_policy`).
const RELOGIN_FLOOR: Duration = Duration::from_secs(30);

struct TokenState {
    token: Sensitive,
    /// When the current TTL started (login or renewal).
    obtained: Instant,
    /// When the login that produced the token happened.
    logged_in: Instant,
    /// `None`: the token does not expire (root tokens, TTL 0).
    ttl: Option<Duration>,
    renewable: bool,
    /// Obtained by a login of ours, so ours to revoke; a token given in a
    /// store's `tokenSecretRef` belongs to the user and is never revoked.
    owned: bool,
    /// When `lookup-self` last found the token valid.
    confirmed: Option<Instant>,
}

impl TokenState {
    /// Past its whole TTL: Vault no longer knows it.
    fn dead(&self) -> bool {
        self.ttl.is_some_and(|ttl| self.obtained.elapsed() >= ttl)
    }

    fn needs_renewal(&self) -> bool {
        self.ttl.is_some_and(|ttl| self.obtained.elapsed() >= ttl * 2 / 3)
    }

    fn expired(&self) -> bool {
        // A margin so a token is not used in its last moments; a tenth of
        // the TTL (at most 5s) keeps short-lived tokens renewable.
        self.ttl.is_some_and(|ttl| self.obtained.elapsed() + (ttl / 10).min(Duration::from_secs(5)) >= ttl)
    }
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
        // reqwest is built without a default crypto provider; ring is the
        // one kube uses too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(server.timeout)
            .connect_timeout(server.timeout.min(Duration::from_secs(5)));
        if let Some(pem) = &server.ca_bundle_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::Tls(format!("CA bundle is not valid PEM: {e}")))?;
            if certs.is_empty() {
                return Err(Error::Tls("CA bundle holds no certificate".into()));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|e| Error::Tls(format!("cannot build HTTP client: {e}")))?;
        let address = crate::origin::check_server(&server.address)?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                address,
                namespace: server.namespace.filter(|n| !n.is_empty()),
                auth,
                token: Mutex::default(),
                logins: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                revocations: AtomicU64::new(0),
                coalesced: AtomicU64::new(0),
                expires: std::sync::Mutex::default(),
                observer,
                read_window: server.read_window,
                reads: std::sync::Mutex::default(),
                kv_mounts: std::sync::Mutex::default(),
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

    /// How long the current token has left (zero once expired); `None`
    /// when there is no token yet or it does not expire. Never waits: while
    /// a login or renewal holds the token, the last value seen answers.
    pub fn token_ttl_remaining(&self) -> Option<Duration> {
        let mut expires = self.inner.expires.lock().expect("token expiry lock");
        if let Ok(slot) = self.inner.token.try_lock() {
            *expires = slot.current.as_ref().and_then(|s| s.ttl.map(|ttl| s.obtained + ttl));
        }
        expires.map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Number of tokens revoked by [`Client::close`] (0 or 1).
    pub fn revocation_count(&self) -> u64 {
        self.inner.revocations.load(Ordering::Relaxed)
    }

    /// Closes the client, as ESO does when it drops one: waits up to
    /// `grace` for the other holders of this client (syncs in flight) to
    /// finish, then revokes the token it logged in for
    /// (`auth/token/revoke-self`) and never logs in again; a caller still
    /// holding it gets [`Error::Closed`]. A token given by the user
    /// (`tokenSecretRef`) is left alone. Returns whether a token was revoked.
    /// The caller's own handle is not counted as another holder.
    pub async fn close(&self, grace: Duration) -> Result<bool> {
        let deadline = Instant::now() + grace;
        while Arc::strong_count(&self.inner) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let state = {
            let mut slot = self.inner.token.lock().await;
            slot.closed = true;
            slot.current.take()
        };
        let Some(state) = state.filter(|s| s.owned && !s.dead()) else {
            return Ok(false);
        };
        if self.issued_leases() {
            // Revoking the token would revoke every lease it issued: the
            // credentials handed out must live on (another replica renews
            // them). The token ends at its own TTL.
            debug!(method = self.inner.auth.method(), "token kept: it issued leases that must outlive it");
            return Ok(false);
        }
        let (status, body) = self
            .send(Operation::RevokeSelf, Method::POST, "auth/token/revoke-self", Some(&state.token), Some(json!({})))
            .await?;
        match status {
            s if s.is_success() => {
                self.inner.revocations.fetch_add(1, Ordering::Relaxed);
                debug!(method = self.inner.auth.method(), "token revoked");
                Ok(true)
            }
            // Already gone (revoked by someone else, or expired early).
            StatusCode::FORBIDDEN => Ok(false),
            other => Err(self.unexpected(other, &body, "auth/token/revoke-self".into())),
        }
    }

    /// Makes sure there is a valid token: logs in when there is none,
    /// renews after 2/3 of its TTL, logs in again when renewal fails or the
    /// token expired.
    pub async fn ensure_token(&self) -> Result<()> {
        self.token().await.map(|_| ())
    }

    /// Reads a KV secret at `path` in the KV mount `mount`.
    ///
    /// Reads of the same secret are coalesced: callers asking while a read
    /// is in flight, or within `ServerConfig::read_window` of its answer,
    /// share that one request and its answer (errors included), unless
    /// `freshness` is [`Freshness::Now`].
    pub async fn read_kv(
        &self,
        mount: &str,
        path: &str,
        kv: KvVersion,
        version: Option<&str>,
        freshness: Freshness,
    ) -> Result<KvSecret> {
        let mount = mount.trim_end_matches('/');
        check_mount("mount", mount)?;
        check_in_mount(path, false)?;
        self.check_kv_mount(mount).await?;
        let api_path = read_path(mount, path, kv, version)?;
        let window = self.inner.read_window;
        let cell = {
            let mut reads = self.inner.reads.lock().expect("read cache lock");
            // Answers older than the window are dropped, so memory holds
            // only what is being or was just read.
            reads.retain(|_, cell| cell.get().is_none_or(|(at, _)| at.elapsed() < window));
            match freshness {
                Freshness::Shared => reads.entry(api_path.clone()).or_default().clone(),
                Freshness::Now => {
                    let cell = Arc::new(SharedRead::new());
                    reads.insert(api_path.clone(), cell.clone());
                    cell
                }
            }
        };
        let mut asked = false;
        let (_, answer) = cell
            .get_or_init(|| async {
                asked = true;
                (Instant::now(), self.read_uncached(mount, path, kv, &api_path).await)
            })
            .await;
        if !asked {
            self.inner.coalesced.fetch_add(1, Ordering::Relaxed);
        }
        answer.clone()
    }

    /// The KV v2 `custom_metadata` of a secret, as a secret of its own.
    pub async fn read_custom_metadata(&self, mount: &str, path: &str) -> Result<KvSecret> {
        let mount = mount.trim_end_matches('/');
        check_mount("mount", mount)?;
        check_in_mount(path, false)?;
        self.check_kv_mount(mount).await?;
        let shown = format!("{mount}/metadata/{path}");
        let api_path = format!("{}/metadata/{}", encode(mount), encode(path));
        let (status, body) = self.authenticated(Operation::ReadMetadata, Method::GET, &api_path, &shown).await?;
        match status {
            StatusCode::OK => {
                let json: Value = serde_json::from_str(&body).map_err(|_| Error::BadResponse {
                    path: shown.clone(),
                    status: 200,
                    detail: "body is not JSON".into(),
                })?;
                let data = json["data"]["custom_metadata"].as_object().cloned().unwrap_or_default();
                Ok(KvSecret { data, version: json["data"]["current_version"].as_u64() })
            }
            StatusCode::NOT_FOUND => Err(Error::NotFound { mount: mount.to_owned(), path: path.to_owned() }),
            StatusCode::FORBIDDEN => Err(Error::PermissionDenied { operation: "read metadata of", path: shown }),
            other => Err(self.unexpected(other, &body, shown)),
        }
    }

    /// Paths (relative to the mount) of every secret under `prefix`,
    /// walking sub-folders. KV v2 lists metadata, which needs the `list`
    /// capability on `<mount>/metadata/<prefix>`.
    pub async fn list_secrets(&self, mount: &str, prefix: &str, kv: KvVersion) -> Result<Vec<String>> {
        // A bound on the walk, so a mount with millions of secrets fails
        // clearly instead of exhausting memory.
        const MAX_SECRETS: usize = 10_000;
        let mount = mount.trim_end_matches('/');
        check_mount("mount", mount)?;
        check_in_mount(prefix, true)?;
        self.check_kv_mount(mount).await?;
        let mut folders = vec![prefix.trim_end_matches('/').to_owned()];
        let mut found = Vec::new();
        while let Some(folder) = folders.pop() {
            let (shown, api_path) = match kv {
                KvVersion::V1 => (format!("{mount}/{folder}"), format!("{}/{}", encode(mount), encode(&folder))),
                KvVersion::V2 => {
                    (format!("{mount}/metadata/{folder}"), format!("{}/metadata/{}", encode(mount), encode(&folder)))
                }
            };
            let shown = shown.trim_end_matches('/').to_owned();
            let api_path = format!("{}?list=true", api_path.trim_end_matches('/'));
            let (status, body) = self.authenticated(Operation::List, Method::GET, &api_path, &shown).await?;
            let keys = match status {
                StatusCode::OK => serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v["data"]["keys"].as_array().cloned())
                    .unwrap_or_default(),
                // Vault answers 404 for a folder with nothing in it.
                StatusCode::NOT_FOUND => Vec::new(),
                StatusCode::FORBIDDEN => {
                    return Err(Error::PermissionDenied { operation: "list", path: shown });
                }
                other => return Err(self.unexpected(other, &body, shown)),
            };
            for key in keys.iter().filter_map(Value::as_str) {
                let full = if folder.is_empty() { key.to_owned() } else { format!("{folder}/{key}") };
                // Names come from Vault, but they become request paths too.
                check_in_mount(&full, true)?;
                match full.strip_suffix('/') {
                    Some(sub) => folders.push(sub.to_owned()),
                    None => found.push(full),
                }
            }
            if found.len() > MAX_SECRETS {
                return Err(Error::InvalidRequest(format!(
                    "more than {MAX_SECRETS} secrets under {mount}/{prefix}; narrow find.path"
                )));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Reads only from a mount Vault confirms is KV: a database, PKI or
    /// transit engine read "as KV" issues credentials or exposes keys, and
    /// behind a Vault namespace or a path rewrite the mount Vault serves
    /// may not be the one vaultsync thinks it names. Asked once per mount
    /// and client, through the endpoint Vault's own CLI uses to learn a
    /// mount's type (it needs no right beyond some access to the mount).
    /// Fails closed: only an answer that names exactly this mount with type
    /// `kv` (or `generic`, KV v1's old name) lets a read through; a 403, a
    /// missing type or another mount path refuses it. Refusals that a
    /// policy change can fix are not remembered, so the fix takes effect.
    async fn check_kv_mount(&self, mount: &str) -> Result<()> {
        if let Some(known) = self.inner.kv_mounts.lock().expect("mount cache lock").get(mount) {
            return known.clone();
        }
        let token = self.token().await?;
        let api_path = format!("sys/internal/ui/mounts/{}", encode(mount));
        // Not `authenticated`: a 403 here is an answer, not a reason to
        // log in again.
        let (status, body) = self.send(Operation::MountInfo, Method::GET, &api_path, Some(&token), None).await?;
        let unverified = |reason: String| Err(Error::UnverifiedMount { mount: mount.to_owned(), reason });
        let verdict = match status {
            StatusCode::OK => {
                let answer = serde_json::from_str::<Value>(&body).unwrap_or_default();
                let kind = answer["data"]["type"].as_str().unwrap_or_default().to_owned();
                let served = answer["data"]["path"].as_str().map(|p| p.trim_end_matches('/').to_owned());
                match (kind.as_str(), served) {
                    ("kv" | "generic", Some(served)) if served == mount => Ok(()),
                    ("kv" | "generic", Some(served)) => {
                        return unverified(format!(
                            "Vault serves it from mount {served:?}, so it is not a mount of its own (a Vault namespace belongs in provider.vault.namespace, not in the path)"
                        ));
                    }
                    ("kv" | "generic", None) => return unverified("Vault's answer names no mount path".into()),
                    ("", _) => return unverified("Vault's answer names no engine type".into()),
                    _ => Err(Error::NotKv { mount: mount.to_owned(), kind }),
                }
            }
            StatusCode::SERVICE_UNAVAILABLE => return Err(self.unexpected(status, &body, api_path)),
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => {
                return unverified(format!(
                    "Vault would not say what engine serves it (HTTP {}): no mount of that path exists, or the token has no capability inside it (a Vault namespace belongs in provider.vault.namespace, not in the path)",
                    status.as_u16()
                ));
            }
            other => return Err(self.unexpected(other, &body, api_path)),
        };
        self.inner.kv_mounts.lock().expect("mount cache lock").insert(mount.to_owned(), verdict.clone());
        verdict
    }

    async fn read_uncached(&self, mount: &str, path: &str, kv: KvVersion, api_path: &str) -> Result<KvSecret> {
        let display = format!("{mount}/{path}");
        let (status, body) = self.authenticated(Operation::Read, Method::GET, api_path, &display).await?;
        match status {
            StatusCode::OK => {
                let json: Value = serde_json::from_str(&body).map_err(|_| Error::BadResponse {
                    path: display.clone(),
                    status: 200,
                    detail: "body is not JSON".into(),
                })?;
                parse_read(&json, mount, path, kv)
            }
            StatusCode::NOT_FOUND => Err(Error::NotFound { mount: mount.to_owned(), path: path.to_owned() }),
            StatusCode::FORBIDDEN => Err(Error::PermissionDenied { operation: "read", path: display }),
            other => Err(self.unexpected(other, &body, display)),
        }
    }

    /// A request with the current token. Vault answers 403 "permission
    /// denied" both to a path the token's policies do not allow and to a
    /// token it no longer knows (revoked, or lost by a restarted dev
    /// server). Only the second calls for a new login, so a 403 on a token
    /// obtained by login is followed by one `lookup-self`: valid, the 403 is
    /// the policies' answer and is returned as such; invalid, the client
    /// logs in again (once, shared by every caller) and retries once.
    async fn authenticated(
        &self,
        operation: Operation,
        method: Method,
        api_path: &str,
        shown: &str,
    ) -> Result<(StatusCode, String)> {
        self.authenticated_with(operation, method, api_path, shown, None).await
    }

    /// [`Client::authenticated`] with a JSON body.
    pub(crate) async fn authenticated_with(
        &self,
        operation: Operation,
        method: Method,
        api_path: &str,
        shown: &str,
        request_body: Option<Value>,
    ) -> Result<(StatusCode, String)> {
        let token = self.token().await?;
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let (status, body) = self.send(operation, method.clone(), api_path, Some(&token), request_body.clone()).await?;
        if status != StatusCode::FORBIDDEN || matches!(self.inner.auth, Auth::Token(_)) {
            return Ok((status, body));
        }
        let Some(fresh) = self.replace_if_invalid(&token).await? else {
            return Ok((status, body));
        };
        debug!(path = %shown, "403 with a token Vault no longer knows; retrying once with a new login");
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        self.send(operation, method, api_path, Some(&fresh), request_body).await
    }

    /// After a 403 answered to `token`: `None` when the token is valid (or
    /// may not be replaced yet), else the token to retry with.
    async fn replace_if_invalid(&self, token: &Sensitive) -> Result<Option<Sensitive>> {
        let mut slot = self.inner.token.lock().await;
        if let Some(current) = slot.current.as_ref()
            && current.token == *token
        {
            if current.confirmed.is_some_and(|at| at.elapsed() < CONFIRMED_FOR) {
                return Ok(None);
            }
            let logged_in = current.logged_in;
            if self.token_valid(token).await? {
                if let Some(current) = slot.current.as_mut() {
                    current.confirmed = Some(Instant::now());
                }
                return Ok(None);
            }
            if logged_in.elapsed() < RELOGIN_FLOOR {
                debug!("403 with a token lookup-self refuses, logged in less than 30s ago; not logging in again yet");
                return Ok(None);
            }
            slot.current = None;
        }
        // Another caller already replaced the token, or it is gone: the
        // current one, or a login (unless one failed within its window).
        self.token_in(&mut slot).await.map(Some)
    }

    /// Whether Vault still knows `token`. `lookup-self` is granted to every
    /// token by Vault's `default` policy, so a 403 here means the token
    /// itself is not valid.
    async fn token_valid(&self, token: &Sensitive) -> Result<bool> {
        let (status, body) =
            self.send(Operation::LookupSelf, Method::GET, "auth/token/lookup-self", Some(token), None).await?;
        match status {
            StatusCode::OK => Ok(true),
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => Ok(false),
            other => Err(self.unexpected(other, &body, "auth/token/lookup-self".into())),
        }
    }

    async fn token(&self) -> Result<Sensitive> {
        let mut slot = self.inner.token.lock().await;
        self.token_in(&mut slot).await
    }

    /// A usable token: the current one, renewed after 2/3 of its TTL, or a
    /// new login. A failed login is remembered for its backoff window: the
    /// callers within it get its error (or the current token while it has
    /// not expired) without a new attempt.
    async fn token_in(&self, slot: &mut TokenSlot) -> Result<Sensitive> {
        if slot.closed {
            return Err(Error::Closed);
        }
        if let Some(current) = slot.current.as_ref()
            && !current.needs_renewal()
        {
            return Ok(current.token.clone());
        }
        if let Some(failure) = slot.failure.as_ref()
            && Instant::now() < failure.until
        {
            return match slot.current.as_ref() {
                Some(current) if !current.expired() => Ok(current.token.clone()),
                _ => Err(failure.error.clone()),
            };
        }
        if let Some(current) = slot.current.as_ref() {
            if current.renewable && !current.expired() {
                match self.renew(current).await {
                    Ok(renewed) => {
                        let token = renewed.token.clone();
                        slot.current = Some(renewed);
                        return Ok(token);
                    }
                    Err(e) => debug!(error = %e, "token renewal failed; logging in again"),
                }
            } else if matches!(self.inner.auth, Auth::Token(_)) && !current.expired() {
                // A static, non-renewable token: use it until it expires.
                return Ok(current.token.clone());
            }
        }
        match self.login().await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                slot.current = Some(fresh);
                slot.failure = None;
                Ok(token)
            }
            Err(error) => {
                let count = slot.failure.as_ref().map_or(0, |f| f.count).saturating_add(1);
                let until = Instant::now() + login_backoff(count);
                slot.failure = Some(LoginFailure { error: error.clone(), until, count });
                match slot.current.as_ref() {
                    // Renewal and login failed, but the token still works.
                    Some(current) if !current.expired() => Ok(current.token.clone()),
                    _ => Err(error),
                }
            }
        }
    }

    async fn login(&self) -> Result<TokenState> {
        let result = self.attempt_login().await;
        if let Some(observer) = &self.inner.observer {
            observer.login(self.inner.auth.method(), LoginOutcome::of(&result));
        }
        result
    }

    async fn attempt_login(&self) -> Result<TokenState> {
        let auth = &self.inner.auth;
        let method = auth.method();
        let mount = auth.mount().trim_end_matches('/').to_owned();
        if !matches!(auth, Auth::Token(_)) {
            check_auth_mount("auth mount path", &mount)?;
        }
        let (path, body) = match auth {
            Auth::Token(token) => {
                // Nothing to log in to; look the token up so a bad token is
                // reported now, and learn its TTL.
                let (status, body) =
                    self.send(Operation::LookupSelf, Method::GET, "auth/token/lookup-self", Some(token), None).await?;
                if status != StatusCode::OK {
                    return Err(Error::Login { method, mount, status: status.as_u16(), detail: vault_errors(&body) });
                }
                let data =
                    serde_json::from_str::<Value>(&body).ok().and_then(|v| v.get("data").cloned()).unwrap_or_default();
                self.inner.logins.fetch_add(1, Ordering::Relaxed);
                return Ok(TokenState {
                    token: token.clone(),
                    obtained: Instant::now(),
                    logged_in: Instant::now(),
                    ttl: ttl(data.get("ttl")),
                    renewable: data.get("renewable").and_then(Value::as_bool).unwrap_or(false),
                    owned: false,
                    confirmed: Some(Instant::now()),
                });
            }
            Auth::Kubernetes { role, jwt, .. } | Auth::Jwt { role, jwt, .. } => {
                let jwt = jwt().await.map_err(|reason| Error::Credential { method, mount: mount.clone(), reason })?;
                (format!("auth/{}/login", encode(&mount)), json!({"role": role, "jwt": jwt.expose()}))
            }
            Auth::AppRole { role_id, secret_id, .. } => {
                (format!("auth/{}/login", encode(&mount)), json!({"role_id": role_id, "secret_id": secret_id.expose()}))
            }
        };
        let (status, response) = self.send(Operation::Login, Method::POST, &path, None, Some(body)).await?;
        if status != StatusCode::OK {
            if status == StatusCode::SERVICE_UNAVAILABLE && vault_errors(&response).contains("sealed") {
                return Err(Error::Sealed { address: self.inner.address.clone() });
            }
            return Err(Error::Login { method, mount, status: status.as_u16(), detail: vault_errors(&response) });
        }
        let auth_block =
            serde_json::from_str::<Value>(&response).ok().and_then(|v| v.get("auth").cloned()).unwrap_or_default();
        let token = auth_block.get("client_token").and_then(Value::as_str).ok_or_else(|| Error::Login {
            method,
            mount: mount.clone(),
            status: 200,
            detail: "response holds no client_token".into(),
        })?;
        debug!(method, mount = %mount, "logged in");
        self.inner.logins.fetch_add(1, Ordering::Relaxed);
        Ok(TokenState {
            token: Sensitive::new(token),
            obtained: Instant::now(),
            logged_in: Instant::now(),
            ttl: ttl(auth_block.get("lease_duration")),
            renewable: auth_block.get("renewable").and_then(Value::as_bool).unwrap_or(false),
            owned: true,
            confirmed: None,
        })
    }

    async fn renew(&self, current: &TokenState) -> Result<TokenState> {
        let token = &current.token;
        let (status, body) = self
            .send(Operation::RenewSelf, Method::POST, "auth/token/renew-self", Some(token), Some(json!({})))
            .await?;
        if status != StatusCode::OK {
            return Err(self.unexpected(status, &body, "auth/token/renew-self".into()));
        }
        let auth_block =
            serde_json::from_str::<Value>(&body).ok().and_then(|v| v.get("auth").cloned()).unwrap_or_default();
        debug!(method = self.inner.auth.method(), "token renewed");
        Ok(TokenState {
            token: token.clone(),
            obtained: Instant::now(),
            logged_in: current.logged_in,
            ttl: ttl(auth_block.get("lease_duration")),
            renewable: auth_block.get("renewable").and_then(Value::as_bool).unwrap_or(false),
            owned: current.owned,
            confirmed: Some(Instant::now()),
        })
    }

    async fn send(
        &self,
        operation: Operation,
        method: Method,
        api_path: &str,
        token: Option<&Sensitive>,
        body: Option<Value>,
    ) -> Result<(StatusCode, String)> {
        let url = format!("{}/v1/{api_path}", self.inner.address);
        let mut request = self.inner.http.request(method, url);
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token.expose());
        }
        if let Some(namespace) = &self.inner.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let started = Instant::now();
        let answer = async {
            let response = request.send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        }
        .await;
        self.observe(operation, answer.as_ref().ok().map(|(status, _)| status.as_u16()), started);
        answer.map_err(|e| self.unreachable(&e))
    }

    fn observe(&self, operation: Operation, status: Option<u16>, started: Instant) {
        if let Some(observer) = &self.inner.observer {
            observer.request(operation, status, started.elapsed());
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> Error {
        let reason = if error.is_timeout() {
            "timed out".to_owned()
        } else {
            // The innermost cause ("Connection refused", a TLS verification
            // failure) is what a person can act on; it holds no secret.
            let mut source: &dyn std::error::Error = error;
            while let Some(next) = source.source() {
                source = next;
            }
            let reason = source.to_string();
            if reason.contains("certificate") {
                // This client's trust settings, not the server's health: a
                // store with the right CA reaches the same server fine.
                return Error::Tls(format!(
                    "Vault at {}: {reason} (set caBundle or caProvider to the CA that signed the server's certificate)",
                    self.inner.address
                ));
            }
            reason
        };
        Error::Unreachable { address: self.inner.address.clone(), reason }
    }

    pub(crate) fn unexpected(&self, status: StatusCode, body: &str, path: String) -> Error {
        let detail = vault_errors(body);
        if status == StatusCode::SERVICE_UNAVAILABLE && detail.contains("sealed") {
            return Error::Sealed { address: self.inner.address.clone() };
        }
        Error::BadResponse { path, status: status.as_u16(), detail }
    }
}

fn ttl(value: Option<&Value>) -> Option<Duration> {
    value.and_then(Value::as_u64).filter(|s| *s > 0).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(ttl: Option<u64>, age: u64) -> TokenState {
        TokenState {
            token: Sensitive::new("t"),
            obtained: Instant::now() - Duration::from_secs(age),
            logged_in: Instant::now() - Duration::from_secs(age),
            ttl: ttl.map(Duration::from_secs),
            renewable: true,
            owned: true,
            confirmed: None,
        }
    }

    #[test]
    fn renews_after_two_thirds_and_expires_before_the_end() {
        assert!(!state(Some(300), 100).needs_renewal());
        assert!(state(Some(300), 201).needs_renewal());
        assert!(!state(Some(300), 201).expired());
        assert!(state(Some(300), 296).expired());
        // Short TTLs stay renewable after their first 2/3.
        assert!(state(Some(6), 5).needs_renewal() && !state(Some(6), 5).expired());
        assert!(!state(None, 100_000).needs_renewal());
    }

    #[tokio::test]
    async fn unreachable_server_names_the_address() {
        let client = Client::new(
            ServerConfig { address: "http://127.0.0.1:1".into(), ..ServerConfig::default() },
            Auth::Token(Sensitive::new("secret-token")),
        )
        .unwrap();
        let err = client.read_kv("secret", "a", KvVersion::V2, None, Freshness::Shared).await.unwrap_err().to_string();
        assert!(err.contains("127.0.0.1:1") && err.contains("unreachable"), "{err}");
        assert!(!err.contains("secret-token"), "{err}");
    }

    #[test]
    fn rejects_a_bundle_without_certificates() {
        let result = Client::new(
            ServerConfig {
                address: "https://x".into(),
                ca_bundle_pem: Some(b"not pem".to_vec()),
                ..ServerConfig::default()
            },
            Auth::Token(Sensitive::new("t")),
        );
        assert!(matches!(result, Err(Error::Tls(_))));
    }

    /// A scripted Vault on loopback: `answer(method, path, token)` gives
    /// each response; every request is recorded as (method path, token).
    struct MockVault {
        addr: String,
        seen: Arc<std::sync::Mutex<Vec<(String, String)>>>,
    }

    type Answer = dyn Fn(&str, &str, &str) -> (u16, String) + Send + Sync;

    impl MockVault {
        async fn start(answer: impl Fn(&str, &str, &str) -> (u16, String) + Send + Sync + 'static) -> Self {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = format!("http://{}", listener.local_addr().unwrap());
            let seen: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::default();
            let answer: Arc<Answer> = Arc::new(answer);
            let recorded = seen.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((mut socket, _)) = listener.accept().await else { return };
                    let (answer, recorded) = (answer.clone(), recorded.clone());
                    tokio::spawn(async move {
                        let mut request = Vec::new();
                        let mut buf = [0u8; 4096];
                        // Head, then as much body as Content-Length says.
                        let head_end = loop {
                            let n = socket.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            request.extend_from_slice(&buf[..n]);
                            if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                        };
                        let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
                        let header = |name: &str| {
                            head.lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                                })
                                .unwrap_or_default()
                        };
                        let length: usize = header("content-length").parse().unwrap_or(0);
                        while request.len() < head_end + length {
                            let n = socket.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            request.extend_from_slice(&buf[..n]);
                        }
                        let mut words = head.split_whitespace();
                        let method = words.next().unwrap_or_default().to_owned();
                        let path = words.next().unwrap_or_default().trim_start_matches("/v1/").to_owned();
                        let token = header("x-vault-token");
                        recorded.lock().unwrap().push((format!("{method} {path}"), token.clone()));
                        let (status, body) = answer(&method, &path, &token);
                        let response = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(response.as_bytes()).await;
                    });
                }
            });
            Self { addr, seen }
        }

        fn count(&self, request: &str) -> usize {
            self.seen.lock().unwrap().iter().filter(|(r, _)| r == request).count()
        }

        fn tokens_of(&self, request: &str) -> Vec<String> {
            self.seen.lock().unwrap().iter().filter(|(r, _)| r == request).map(|(_, t)| t.clone()).collect()
        }

        fn approle_client(&self) -> Client {
            Client::new(
                ServerConfig { address: self.addr.clone(), ..ServerConfig::default() },
                Auth::AppRole { mount_path: "approle".into(), role_id: "r".into(), secret_id: Sensitive::new("s") },
            )
            .unwrap()
        }
    }

    const LOGIN: &str = "POST auth/approle/login";
    const LOOKUP: &str = "GET auth/token/lookup-self";
    const REVOKE: &str = "POST auth/token/revoke-self";
    const READ: &str = "GET secret/data/app";

    fn login_answer(token: &str) -> (u16, String) {
        (200, json!({"auth": {"client_token": token, "lease_duration": 3600, "renewable": true}}).to_string())
    }

    fn denied() -> (u16, String) {
        (403, r#"{"errors":["permission denied"]}"#.into())
    }

    /// The common answers: KV mount, one login token per login ("t1",
    /// "t2", ...), and `read` for the secret.
    async fn vault(
        valid: impl Fn(&str) -> bool + Send + Sync + 'static,
        read: impl Fn(&str) -> (u16, String) + Send + Sync + 'static,
    ) -> MockVault {
        let logins = std::sync::atomic::AtomicU64::new(0);
        MockVault::start(move |method, path, token| match (method, path) {
            ("GET", "sys/internal/ui/mounts/secret") => (200, r#"{"data":{"type":"kv","path":"secret/"}}"#.into()),
            ("POST", "auth/approle/login") => login_answer(&format!("t{}", logins.fetch_add(1, Ordering::SeqCst) + 1)),
            ("GET", "auth/token/lookup-self") if valid(token) => (200, json!({"data": {"ttl": 3600}}).to_string()),
            ("GET", "auth/token/lookup-self") => denied(),
            ("POST", "auth/token/revoke-self") if valid(token) => (204, String::new()),
            ("GET", "secret/data/app") => read(token),
            _ => (404, r#"{"errors":[]}"#.into()),
        })
        .await
    }

    async fn read(client: &Client) -> Result<KvSecret> {
        client.read_kv("secret", "app", KvVersion::V2, None, Freshness::Now).await
    }

    #[tokio::test]
    async fn a_path_the_policies_refuse_is_reported_without_a_new_login() {
        let vault = vault(|_| true, |_| denied()).await;
        let client = vault.approle_client();
        for _ in 0..5 {
            let err = read(&client).await.unwrap_err();
            assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
        }
        assert_eq!(vault.count(LOGIN), 1, "one login, however often the refused read is retried");
        assert_eq!(client.login_count(), 1);
        assert_eq!(vault.count(READ), 5);
        // One check of the token answers for the refusals that follow it.
        assert_eq!(vault.count(LOOKUP), 1);
    }

    #[tokio::test]
    async fn a_token_vault_no_longer_knows_is_replaced_by_one_login() {
        // t1 was revoked behind the client's back; t2 is good.
        let vault = vault(
            |token| token != "t1",
            |token| match token {
                "t2" => (200, json!({"data": {"data": {"v": "x"}, "metadata": {"version": 1}}}).to_string()),
                _ => denied(),
            },
        )
        .await;
        let client = vault.approle_client();
        client.ensure_token().await.unwrap();
        // Logged in long enough ago for a token found invalid to be replaced.
        client.inner.token.lock().await.current.as_mut().unwrap().logged_in -= RELOGIN_FLOOR;
        let (a, b, c) = tokio::join!(read(&client), read(&client), read(&client));
        for answer in [a, b, c] {
            assert_eq!(answer.unwrap().data["v"], "x");
        }
        assert_eq!(vault.count(LOGIN), 2, "the dead token is replaced once, for every caller");
        assert_eq!(vault.tokens_of(LOOKUP), ["t1"]);
    }

    #[tokio::test]
    async fn a_token_found_invalid_right_after_its_login_is_not_replaced_yet() {
        // lookup-self refused to every token (a role without the default
        // policy): the floor keeps this from a login per refused read.
        let vault = vault(|_| false, |_| denied()).await;
        let client = vault.approle_client();
        for _ in 0..3 {
            assert!(matches!(read(&client).await.unwrap_err(), Error::PermissionDenied { .. }));
        }
        assert_eq!(vault.count(LOGIN), 1);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_login_and_its_failure() {
        let vault = MockVault::start(|_, path, _| match path {
            "auth/approle/login" => (400, r#"{"errors":["invalid role or secret ID"]}"#.into()),
            _ => (404, "{}".into()),
        })
        .await;
        let client = vault.approle_client();
        let attempts = futures::future::join_all((0..8).map(|_| client.ensure_token())).await;
        for attempt in attempts {
            let err = attempt.unwrap_err().to_string();
            assert!(err.contains("invalid role or secret ID") && !err.contains("\"s\""), "{err}");
        }
        // Within the backoff window, the failure is the answer.
        assert!(client.ensure_token().await.is_err());
        assert_eq!(vault.count(LOGIN), 1, "one login attempt per backoff window");
    }

    #[test]
    fn login_backoff_doubles_to_a_minute() {
        let secs: Vec<u64> = (1..=7).map(|n| login_backoff(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60, 60]);
    }

    #[tokio::test]
    async fn close_revokes_the_login_token_and_logs_in_no_more() {
        let vault = vault(|_| true, |_| denied()).await;
        let client = vault.approle_client();
        client.ensure_token().await.unwrap();
        let holder = client.clone();
        let closing = tokio::spawn(async move { client.close(Duration::from_secs(10)).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(vault.count(REVOKE), 0, "a sync still holds the client");
        // That sync can still use it; once it lets go, the token is revoked.
        holder.ensure_token().await.unwrap();
        drop(holder);
        assert!(closing.await.unwrap().unwrap());
        assert_eq!(vault.tokens_of(REVOKE), ["t1"]);
        assert_eq!(vault.count(LOGIN), 1);
    }

    #[tokio::test]
    async fn a_closed_client_refuses_to_log_in() {
        let vault = vault(|_| true, |_| denied()).await;
        let client = vault.approle_client();
        let holder = client.clone();
        // Nothing logged in yet: nothing to revoke.
        assert!(!client.close(Duration::ZERO).await.unwrap());
        assert!(matches!(holder.ensure_token().await, Err(Error::Closed)));
        assert_eq!(vault.count(LOGIN) + vault.count(REVOKE), 0);
    }

    #[tokio::test]
    async fn a_token_given_by_the_user_is_never_revoked() {
        let vault = vault(|_| true, |_| denied()).await;
        let client = Client::new(
            ServerConfig { address: vault.addr.clone(), ..ServerConfig::default() },
            Auth::Token(Sensitive::new("users-token")),
        )
        .unwrap();
        client.ensure_token().await.unwrap();
        assert!(!client.close(Duration::ZERO).await.unwrap());
        assert_eq!(vault.count(REVOKE), 0);
    }
    /// Records what an [`Observer`] is told.
    #[derive(Default)]
    struct Recorder {
        requests: std::sync::Mutex<Vec<(&'static str, Option<u16>)>>,
        logins: std::sync::Mutex<Vec<(&'static str, LoginOutcome)>>,
    }

    impl Observer for Recorder {
        fn request(&self, operation: Operation, status: Option<u16>, _: Duration) {
            self.requests.lock().unwrap().push((operation.label(), status));
        }

        fn login(&self, method: &'static str, outcome: LoginOutcome) {
            self.logins.lock().unwrap().push((method, outcome));
        }
    }

    /// An AppRole client of the Vault at `address`, and what it reports.
    fn observed_approle_client(address: &str) -> (Client, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let client = Client::observed(
            ServerConfig { address: address.to_owned(), ..ServerConfig::default() },
            Auth::AppRole { mount_path: "approle".into(), role_id: "r".into(), secret_id: Sensitive::new("s") },
            recorder.clone(),
        )
        .unwrap();
        (client, recorder)
    }

    #[tokio::test]
    async fn the_observer_hears_every_request_and_login() {
        let vault = vault(|_| true, |_| (200, json!({"data": {"data": {"k": "v"}}}).to_string())).await;
        let (client, recorder) = observed_approle_client(&vault.addr);
        read(&client).await.unwrap();
        assert_eq!(*recorder.logins.lock().unwrap(), [("appRole", LoginOutcome::Success)]);
        assert_eq!(
            *recorder.requests.lock().unwrap(),
            [("login", Some(200)), ("mount_info", Some(200)), ("read", Some(200))]
        );
        let ttl = client.token_ttl_remaining().expect("the login token expires");
        assert!(ttl <= Duration::from_secs(3600) && ttl > Duration::from_secs(3500), "{ttl:?}");

        // No answer at all: a request without status, an unreachable login.
        let (client, recorder) = observed_approle_client("http://127.0.0.1:1");
        assert!(client.ensure_token().await.is_err());
        assert_eq!(*recorder.requests.lock().unwrap(), [("login", None)]);
        assert_eq!(*recorder.logins.lock().unwrap(), [("appRole", LoginOutcome::Unreachable)]);
        assert_eq!(client.token_ttl_remaining(), None);
    }

    #[tokio::test]
    async fn a_refused_login_is_reported_as_refused() {
        let vault = MockVault::start(|_, path, _| match path {
            "auth/approle/login" => (400, r#"{"errors":["invalid role or secret ID"]}"#.into()),
            _ => (404, "{}".into()),
        })
        .await;
        let (client, recorder) = observed_approle_client(&vault.addr);
        assert!(client.ensure_token().await.is_err());
        assert_eq!(*recorder.logins.lock().unwrap(), [("appRole", LoginOutcome::Refused)]);
        assert_eq!(*recorder.requests.lock().unwrap(), [("login", Some(400))]);
    }

    #[tokio::test]
    async fn reads_within_the_window_are_counted_as_coalesced() {
        let vault = vault(|_| true, |_| (200, json!({"data": {"data": {"k": "v"}}}).to_string())).await;
        let client = vault.approle_client();
        let shared = || client.read_kv("secret", "app", KvVersion::V2, None, Freshness::Shared);
        shared().await.unwrap();
        shared().await.unwrap();
        shared().await.unwrap();
        assert_eq!(vault.count(READ), 1);
        assert_eq!(client.coalesced_count(), 2);
        assert_eq!(client.read_count(), 1);
    }
}
