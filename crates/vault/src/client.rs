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
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    address: String,
    namespace: Option<String>,
    auth: Auth,
    // Held across a login so concurrent callers share it (single flight).
    token: Mutex<Option<TokenState>>,
    logins: AtomicU64,
    requests: AtomicU64,
    read_window: Duration,
    reads: std::sync::Mutex<HashMap<String, Arc<SharedRead>>>,
    /// Mounts already checked to be KV (or that Vault would not describe).
    kv_mounts: std::sync::Mutex<HashMap<String, Result<()>>>,
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

struct TokenState {
    token: Sensitive,
    obtained: Instant,
    /// `None`: the token does not expire (root tokens, TTL 0).
    ttl: Option<Duration>,
    renewable: bool,
}

impl TokenState {
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
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                address: server.address.trim_end_matches('/').to_owned(),
                namespace: server.namespace.filter(|n| !n.is_empty()),
                auth,
                token: Mutex::new(None),
                logins: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                read_window: server.read_window,
                reads: std::sync::Mutex::default(),
                kv_mounts: std::sync::Mutex::default(),
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
        let response = self.inner.http.get(&url).send().await.map_err(|e| self.unreachable(&e))?;
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
        let (_, answer) =
            cell.get_or_init(|| async { (Instant::now(), self.read_uncached(mount, path, kv, &api_path).await) }).await;
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
        let (status, body) = self.authenticated(Method::GET, &api_path, &shown).await?;
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
            let (status, body) = self.authenticated(Method::GET, &api_path, &shown).await?;
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

    /// Refuses a mount that Vault reports as something other than KV (a
    /// database, PKI or transit engine: reading those "as KV" issues
    /// credentials or exposes keys). Asked once per mount and client,
    /// through the endpoint Vault's own CLI uses to learn a mount's type,
    /// which needs no right beyond some access to the mount. When Vault
    /// will not say (403, older servers), the static checks of
    /// [`crate::locate`] are what protects.
    async fn check_kv_mount(&self, mount: &str) -> Result<()> {
        if let Some(known) = self.inner.kv_mounts.lock().expect("mount cache lock").get(mount) {
            return known.clone();
        }
        let token = self.token().await?;
        let api_path = format!("sys/internal/ui/mounts/{}", encode(mount));
        // Not `authenticated`: a 403 here is an answer, not a reason to
        // log in again.
        let (status, body) = self.send(Method::GET, &api_path, Some(&token), None).await?;
        let verdict = match status {
            StatusCode::OK => {
                let kind = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v["data"]["type"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                match kind.as_str() {
                    "kv" | "generic" | "" => Ok(()),
                    _ => Err(Error::NotKv { mount: mount.to_owned(), kind }),
                }
            }
            StatusCode::SERVICE_UNAVAILABLE => return Err(self.unexpected(status, &body, api_path)),
            _ => Ok(()),
        };
        self.inner.kv_mounts.lock().expect("mount cache lock").insert(mount.to_owned(), verdict.clone());
        verdict
    }

    async fn read_uncached(&self, mount: &str, path: &str, kv: KvVersion, api_path: &str) -> Result<KvSecret> {
        let display = format!("{mount}/{path}");
        let (status, body) = self.authenticated(Method::GET, api_path, &display).await?;
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

    /// A request with the current token. A 403 on a token obtained by login
    /// may mean it was revoked: log in again and retry once.
    async fn authenticated(&self, method: Method, api_path: &str, shown: &str) -> Result<(StatusCode, String)> {
        let token = self.token().await?;
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let (status, body) = self.send(method.clone(), api_path, Some(&token), None).await?;
        if status != StatusCode::FORBIDDEN || matches!(self.inner.auth, Auth::Token(_)) {
            return Ok((status, body));
        }
        debug!(path = %shown, "403 with a login token; logging in again once");
        {
            let mut state = self.inner.token.lock().await;
            if state.as_ref().is_some_and(|s| s.token == token) {
                *state = None;
            }
        }
        let token = self.token().await?;
        self.send(method, api_path, Some(&token), None).await
    }

    async fn token(&self) -> Result<Sensitive> {
        let mut state = self.inner.token.lock().await;
        if let Some(current) = state.as_ref() {
            if !current.needs_renewal() {
                return Ok(current.token.clone());
            }
            if current.renewable && !current.expired() {
                match self.renew(&current.token).await {
                    Ok(renewed) => {
                        let token = renewed.token.clone();
                        *state = Some(renewed);
                        return Ok(token);
                    }
                    Err(e) => debug!(error = %e, "token renewal failed; logging in again"),
                }
            } else if matches!(self.inner.auth, Auth::Token(_)) && !current.expired() {
                // A static, non-renewable token: use it until it expires.
                return Ok(current.token.clone());
            }
        }
        let fresh = self.login().await?;
        let token = fresh.token.clone();
        *state = Some(fresh);
        Ok(token)
    }

    async fn login(&self) -> Result<TokenState> {
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
                let (status, body) = self.send(Method::GET, "auth/token/lookup-self", Some(token), None).await?;
                if status != StatusCode::OK {
                    return Err(Error::Login { method, mount, status: status.as_u16(), detail: vault_errors(&body) });
                }
                let data =
                    serde_json::from_str::<Value>(&body).ok().and_then(|v| v.get("data").cloned()).unwrap_or_default();
                self.inner.logins.fetch_add(1, Ordering::Relaxed);
                return Ok(TokenState {
                    token: token.clone(),
                    obtained: Instant::now(),
                    ttl: ttl(data.get("ttl")),
                    renewable: data.get("renewable").and_then(Value::as_bool).unwrap_or(false),
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
        let (status, response) = self.send(Method::POST, &path, None, Some(body)).await?;
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
            ttl: ttl(auth_block.get("lease_duration")),
            renewable: auth_block.get("renewable").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    async fn renew(&self, token: &Sensitive) -> Result<TokenState> {
        let (status, body) = self.send(Method::POST, "auth/token/renew-self", Some(token), Some(json!({}))).await?;
        if status != StatusCode::OK {
            return Err(self.unexpected(status, &body, "auth/token/renew-self".into()));
        }
        let auth_block =
            serde_json::from_str::<Value>(&body).ok().and_then(|v| v.get("auth").cloned()).unwrap_or_default();
        debug!(method = self.inner.auth.method(), "token renewed");
        Ok(TokenState {
            token: token.clone(),
            obtained: Instant::now(),
            ttl: ttl(auth_block.get("lease_duration")),
            renewable: auth_block.get("renewable").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    async fn send(
        &self,
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
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(&e))?;
        Ok((status, text))
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
                format!("{reason} (set caBundle or caProvider to the CA that signed the server's certificate)")
            } else {
                reason
            }
        };
        Error::Unreachable { address: self.inner.address.clone(), reason }
    }

    fn unexpected(&self, status: StatusCode, body: &str, path: String) -> Error {
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
            ttl: ttl.map(Duration::from_secs),
            renewable: true,
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
}
