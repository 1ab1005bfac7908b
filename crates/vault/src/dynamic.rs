//! Dynamic secrets: a request to an engine that issues a credential
//! (`database/creds/<role>`, `pki/issue/<role>`, `aws/creds/<role>`, ...),
//! and the lease calls that keep it (`sys/leases/renew`) or end it
//! (`sys/leases/revoke`, `<pki>/revoke`).
//!
//! Vault ends every lease a token created when that token ends, so a
//! client that issued one never revokes its own token on close (see
//! [`Client::close`]): that would end the credentials it handed out.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::path::{check_in_mount, encode};
use crate::telemetry::Operation;
use crate::{Client, Error, Result};

/// The HTTP verb of an issuing request, as ESO's `VaultDynamicSecret.method`
/// names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueMethod {
    Get,
    Post,
    Put,
    List,
    Delete,
}

/// What a dynamic secrets engine answered. Holds the credential: it has no
/// `Debug`, and nothing of it reaches an error string.
pub struct Issued {
    /// The whole response body (`data`, `auth`, `lease_id`, ...).
    pub response: Value,
    /// The lease, when the engine gave one.
    pub lease: Option<Lease>,
}

/// A lease as Vault reports it. Its id names the lease, not the
/// credential: it may be shown (vaultsync records it in status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub id: String,
    pub ttl: Duration,
    pub renewable: bool,
}

/// Characters escaped in a query-string key or value.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

impl Client {
    /// Asks the engine at `path` (relative to `/v1/`, a leading `/`
    /// allowed, as ESO's examples write it) for a credential. `query` is
    /// sent on GET only, `body` on POST and PUT only.
    pub async fn issue(
        &self,
        method: IssueMethod,
        path: &str,
        query: &BTreeMap<String, Vec<String>>,
        body: Option<&Value>,
    ) -> Result<Issued> {
        let path = path.trim_start_matches('/');
        crate::path::check_engine_path("path", path)?;
        let mut api_path = encode(path);
        let (http, body) = match method {
            IssueMethod::Get => {
                let pairs: Vec<String> = query
                    .iter()
                    .flat_map(|(key, values)| {
                        values.iter().map(move |value| {
                            format!("{}={}", utf8_percent_encode(key, QUERY), utf8_percent_encode(value, QUERY))
                        })
                    })
                    .collect();
                if !pairs.is_empty() {
                    api_path = format!("{api_path}?{}", pairs.join("&"));
                }
                (Method::GET, None)
            }
            IssueMethod::List => {
                api_path = format!("{api_path}?list=true");
                (Method::GET, None)
            }
            IssueMethod::Delete => (Method::DELETE, None),
            IssueMethod::Post => (Method::POST, Some(body.cloned().unwrap_or_else(|| json!({})))),
            IssueMethod::Put => (Method::PUT, Some(body.cloned().unwrap_or_else(|| json!({})))),
        };
        let (status, text) = self.authenticated_with(Operation::Issue, http, &api_path, path, body).await?;
        match status {
            StatusCode::OK => {}
            StatusCode::NO_CONTENT => return Ok(Issued { response: Value::Null, lease: None }),
            StatusCode::NOT_FOUND => {
                let (mount, rest) = path.split_once('/').unwrap_or((path, ""));
                return Err(Error::NotFound { mount: mount.to_owned(), path: rest.to_owned() });
            }
            StatusCode::FORBIDDEN => {
                return Err(Error::PermissionDenied { operation: "issue a credential at", path: path.to_owned() });
            }
            other => return Err(self.unexpected(other, &text, path.to_owned())),
        }
        let response: Value = serde_json::from_str(&text).map_err(|_| Error::BadResponse {
            path: path.to_owned(),
            status: 200,
            detail: "body is not JSON".into(),
        })?;
        let lease = lease_of(&response);
        if lease.is_some() {
            self.inner.issued_leases.store(true, Ordering::Relaxed);
        }
        Ok(Issued { response, lease })
    }

    /// Renews `lease_id` by `increment`; Vault may grant less (the role's
    /// max TTL). Returns the lease as it now stands.
    pub async fn renew_lease(&self, lease_id: &str, increment: Duration) -> Result<Lease> {
        let shown = "sys/leases/renew";
        let body = json!({"lease_id": lease_id, "increment": increment.as_secs()});
        let (status, text) =
            self.authenticated_with(Operation::RenewLease, Method::PUT, shown, shown, Some(body)).await?;
        match status {
            StatusCode::OK => {}
            StatusCode::FORBIDDEN => {
                return Err(Error::PermissionDenied { operation: "renew a lease at", path: shown.to_owned() });
            }
            other => return Err(self.unexpected(other, &text, format!("{shown} ({lease_id})"))),
        }
        let response: Value = serde_json::from_str(&text).unwrap_or_default();
        lease_of(&response).ok_or_else(|| Error::BadResponse {
            path: shown.to_owned(),
            status: 200,
            detail: "the answer names no lease".into(),
        })
    }

    /// Revokes `lease_id` at once (`sync=true`: the credential is gone when
    /// this returns). A lease Vault no longer knows counts as revoked.
    pub async fn revoke_lease(&self, lease_id: &str) -> Result<()> {
        let shown = "sys/leases/revoke";
        let body = json!({"lease_id": lease_id, "sync": true});
        let (status, text) = self.authenticated_with(Operation::Revoke, Method::PUT, shown, shown, Some(body)).await?;
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::BAD_REQUEST if text.contains("invalid lease") || text.contains("not found") => Ok(()),
            StatusCode::FORBIDDEN => {
                Err(Error::PermissionDenied { operation: "revoke a lease at", path: shown.to_owned() })
            }
            other => Err(self.unexpected(other, &text, format!("{shown} ({lease_id})"))),
        }
    }

    /// Revokes the certificate with `serial` in the PKI mount `mount`
    /// (`<mount>/revoke`): it joins the CRL. An expired one is left alone.
    pub async fn revoke_certificate(&self, mount: &str, serial: &str) -> Result<()> {
        let mount = mount.trim_matches('/');
        check_in_mount(mount, false)?;
        let shown = format!("{mount}/revoke");
        let api_path = format!("{}/revoke", encode(mount));
        let body = json!({"serial_number": serial});
        let (status, text) =
            self.authenticated_with(Operation::Revoke, Method::POST, &api_path, &shown, Some(body)).await?;
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::BAD_REQUEST if text.contains("expired") => Ok(()),
            StatusCode::FORBIDDEN => Err(Error::PermissionDenied { operation: "revoke a certificate at", path: shown }),
            other => Err(self.unexpected(other, &text, shown)),
        }
    }

    /// Whether this client issued a leased credential: closing it must not
    /// revoke its token, which would end those leases with it.
    pub fn issued_leases(&self) -> bool {
        self.inner.issued_leases.load(Ordering::Relaxed)
    }
}

/// The lease a response carries: `lease_id` with `lease_duration` (a
/// secret), or an `auth` block's token lease is not one we track.
fn lease_of(response: &Value) -> Option<Lease> {
    let id = response.get("lease_id").and_then(Value::as_str).filter(|id| !id.is_empty())?;
    let ttl = response.get("lease_duration").and_then(Value::as_u64).unwrap_or(0);
    Some(Lease {
        id: id.to_owned(),
        ttl: Duration::from_secs(ttl),
        renewable: response.get("renewable").and_then(Value::as_bool).unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_needs_an_id() {
        assert_eq!(lease_of(&json!({"lease_id": "", "lease_duration": 60})), None);
        assert_eq!(
            lease_of(&json!({"lease_id": "database/creds/app/x", "lease_duration": 60, "renewable": true})),
            Some(Lease { id: "database/creds/app/x".into(), ttl: Duration::from_secs(60), renewable: true })
        );
    }

    #[test]
    fn query_values_are_escaped() {
        let escaped = utf8_percent_encode("a b&c=d/é", QUERY).to_string();
        assert_eq!(escaped, "a%20b%26c%3Dd%2F%C3%A9");
    }
}
