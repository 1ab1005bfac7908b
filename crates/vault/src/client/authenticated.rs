//! Requests that carry the client's token, and what a 403 on them means:
//! a path the policies refuse (answered as is), or a token Vault no longer
//! knows (replaced by one shared login, and the request retried once).

use std::sync::atomic::Ordering;
use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tracing::debug;

use super::Client;
use super::token::{CONFIRMED_FOR, RELOGIN_FLOOR};
use crate::telemetry::Operation;
use crate::{Auth, Result, Sensitive};

impl Client {
    /// A request with the current token. Vault answers 403 "permission
    /// denied" both to a path the token's policies do not allow and to a
    /// token it no longer knows (revoked, or lost by a restarted dev
    /// server). Only the second calls for a new login, so a 403 on a token
    /// obtained by login is followed by one `lookup-self`: valid, the 403 is
    /// the policies' answer and is returned as such; invalid, the client
    /// logs in again (once, shared by every caller) and retries once.
    pub(super) async fn authenticated(
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
}
