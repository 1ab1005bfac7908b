//! The calls that get, keep and give back a token: a login by the store's
//! auth method (or a lookup of a token given as is), `renew-self`, and
//! `revoke-self` when the client is closed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tracing::debug;

use super::Client;
use super::token::TokenState;
use crate::error::vault_errors;
use crate::path::{check_auth_mount, encode};
use crate::telemetry::{LoginOutcome, Operation};
use crate::{Auth, Error, Result, Sensitive};

impl Client {
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

    pub(super) async fn login(&self) -> Result<TokenState> {
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
            Auth::Password { username, password, .. } => {
                (format!("auth/{}/login/{}", encode(&mount), encode(username)), json!({"password": password.expose()}))
            }
            // The certificate is the credential, presented on the
            // connection (see `transport::http_client`).
            Auth::Cert { role, .. } => {
                let body = role.as_ref().map_or_else(|| json!({}), |name| json!({"name": name}));
                (format!("auth/{}/login", encode(&mount)), body)
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

    pub(super) async fn renew(&self, current: &TokenState) -> Result<TokenState> {
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
}

fn ttl(value: Option<&Value>) -> Option<Duration> {
    value.and_then(Value::as_u64).filter(|s| *s > 0).map(Duration::from_secs)
}
