//! The HTTP layer under every call: the reqwest client (timeouts, the
//! trusted CA bundle), one request to `<address>/v1/<path>` with the token
//! and namespace headers, what the observer hears of it, and how a failed
//! or unexpected answer becomes an [`Error`] that names the server.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Client, ServerConfig};
use crate::error::vault_errors;
use crate::telemetry::Operation;
use crate::{Error, Result, Sensitive};

/// The HTTP client for `server`: its timeouts, and only its CA bundle's
/// roots when it names one.
pub(super) fn http_client(server: &ServerConfig) -> Result<reqwest::Client> {
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
    }
    builder.build().map_err(|e| Error::Tls(format!("cannot build HTTP client: {e}")))
}

impl Client {
    pub(super) async fn send(
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
