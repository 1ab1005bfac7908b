//! The HTTP layer under every call: the reqwest client (timeouts, the
//! trusted CA bundle), one request to `<address>/v1/<path>` with the token
//! and namespace headers, what the observer hears of it, and how a failed
//! or unexpected answer becomes an [`Error`] that names the server.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Client, ServerConfig};
use crate::error::vault_errors;
use crate::telemetry::Operation;
use crate::{Error, Result, Sensitive};

/// The HTTP client for `server`: its timeouts, and only its CA bundle's
/// roots when it names one.
pub(super) fn http_client(server: &ServerConfig, identity: Option<&Sensitive>) -> Result<reqwest::Client> {
    // reqwest is built without a default crypto provider; ring is the
    // one kube uses too.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder =
        reqwest::Client::builder().timeout(server.timeout).connect_timeout(server.timeout.min(Duration::from_secs(5)));
    if let Some(pem) = &server.ca_bundle_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::Tls(format!("CA bundle is not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Tls("CA bundle holds no certificate".into()));
        }
        builder = builder.tls_certs_only(certs);
    } else if !system_has_roots() {
        builder = builder.tls_certs_only(compiled_in_roots()?);
    }
    if !server.headers.is_empty() {
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &server.headers {
            // Neither the value nor why it is refused: it may be a credential.
            let bad = || Error::InvalidRequest(format!("header {name:?}: not a valid HTTP header name and value"));
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| bad())?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        builder = builder.default_headers(headers);
    }
    if let Some(pem) = identity {
        // Never the PEM's text in the error: it holds the private key.
        let identity = reqwest::Identity::from_pem(pem.expose().as_bytes()).map_err(|_| {
            Error::Tls("the client certificate and key are not a PEM certificate followed by its private key".into())
        })?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(|e| Error::Tls(format!("cannot build HTTP client: {}", with_causes(&e))))
}

/// Whether the system has CA certificates to trust. The operator's image
/// is an empty filesystem: there, reqwest's system verifier refuses to
/// start at all, which would fail every store without a `caBundle`, even
/// one on plain http. Looked up once; the files do not change under a
/// running process.
fn system_has_roots() -> bool {
    static HAS_ROOTS: OnceLock<bool> = OnceLock::new();
    *HAS_ROOTS.get_or_init(|| !rustls_native_certs::load_native_certs().certs.is_empty())
}

/// Mozilla's root set as compiled into this binary (webpki-root-certs),
/// for a system without CA certificates of its own.
fn compiled_in_roots() -> Result<Vec<reqwest::Certificate>> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| reqwest::Certificate::from_der(der))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Tls(format!("compiled-in CA roots: {}", with_causes(&e))))
}

/// An error and the causes under it: reqwest's own text ("builder error")
/// says nothing a person can act on.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

impl Client {
    /// One request, tried again as the store's retry settings say when it
    /// fails in a way that may pass.
    pub(super) async fn send(
        &self,
        operation: Operation,
        method: Method,
        api_path: &str,
        token: Option<&Sensitive>,
        body: Option<Value>,
    ) -> Result<(StatusCode, String)> {
        let retry = self.inner.retry;
        let mut attempt = 0;
        loop {
            let answer = self.send_once(operation, method.clone(), api_path, token, body.clone()).await;
            if attempt >= retry.max_retries || !may_pass(&answer) {
                return answer;
            }
            attempt += 1;
            tracing::debug!(address = %self.inner.address, attempt, "retrying a Vault request (retrySettings)");
            tokio::time::sleep(retry.interval).await;
        }
    }

    async fn send_once(
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
        // The token lives in the namespace it logged in to.
        let namespace = match operation {
            Operation::Login | Operation::LookupSelf | Operation::RenewSelf | Operation::RevokeSelf => {
                &self.inner.login_namespace
            }
            _ => &self.inner.namespace,
        };
        if let Some(namespace) = namespace {
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
}

/// A failure that may pass when tried again: no answer, a 5xx other than
/// 501 (Not Implemented), a 429.
fn may_pass(answer: &Result<(StatusCode, String)>) -> bool {
    match answer {
        Err(Error::Unreachable { .. }) => true,
        Ok((status, _)) => {
            (status.is_server_error() && *status != StatusCode::NOT_IMPLEMENTED)
                || *status == StatusCode::TOO_MANY_REQUESTS
        }
        Err(_) => false,
    }
}

impl Client {
    pub(super) fn observe(&self, operation: Operation, status: Option<u16>, started: Instant) {
        if let Some(observer) = &self.inner.observer {
            observer.request(operation, status, started.elapsed());
        }
    }

    pub(super) fn unreachable(&self, error: &reqwest::Error) -> Error {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_roots_make_a_client_without_any_system_file() {
        let roots = compiled_in_roots().expect("Mozilla's roots parse");
        assert!(roots.len() > 100, "only {} roots", roots.len());
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder().tls_certs_only(roots).build().expect("a client on the compiled-in roots");
    }

    #[test]
    fn an_error_names_its_causes() {
        let inner = std::io::Error::other("No CA certificates were loaded from the system");
        let outer = std::io::Error::new(std::io::ErrorKind::InvalidInput, inner);
        assert_eq!(with_causes(&outer), "No CA certificates were loaded from the system");
        #[derive(Debug)]
        struct Builder(std::io::Error);
        impl std::fmt::Display for Builder {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("builder error")
            }
        }
        impl std::error::Error for Builder {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let builder = Builder(std::io::Error::other("no roots"));
        assert_eq!(with_causes(&builder), "builder error: no roots");
    }
}
