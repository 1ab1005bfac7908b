//! The client's one token: its state (TTL, when to renew, when it is too
//! close to its end to use), the slot every caller shares it through, and
//! the rule that picks the current token, a renewal or a new login, with a
//! failed login remembered for a backoff window.

use std::time::{Duration, Instant};

use tracing::debug;

use super::Client;
use crate::lease_timing::end_margin;
use crate::{Auth, Error, Result, Sensitive};

/// The client's token, and what it remembers of failed logins.
#[derive(Default)]
pub(super) struct TokenSlot {
    pub(super) current: Option<TokenState>,
    /// The last failed login, not retried before its window ends: however
    /// many ExternalSecrets use the client, they share that one failure.
    pub(super) failure: Option<LoginFailure>,
    /// Set by [`Client::close`]: no login happens any more.
    pub(super) closed: bool,
}

pub(super) struct LoginFailure {
    pub(super) error: Error,
    pub(super) until: Instant,
    /// Consecutive failures: each doubles the window.
    pub(super) count: u32,
}

/// How long a failed login is remembered: 5s doubling to 60s, reset by a
/// successful login.
fn login_backoff(failures: u32) -> Duration {
    Duration::from_secs(5u64 << failures.saturating_sub(1).min(4)).min(Duration::from_secs(60))
}

/// How long a `lookup-self` that found the token valid answers for it: 403s
/// within it are the policies' refusals, with no new check.
pub(super) const CONFIRMED_FOR: Duration = Duration::from_secs(10);

/// The least time between a login and a new one caused by that token being
/// found invalid. It bounds the logins when `lookup-self` itself is refused
/// to a valid token (a role with `token_no_default_policy`).
pub(super) const RELOGIN_FLOOR: Duration = Duration::from_secs(30);

pub(super) struct TokenState {
    pub(super) token: Sensitive,
    /// When the current TTL started (login or renewal).
    pub(super) obtained: Instant,
    /// When the login that produced the token happened.
    pub(super) logged_in: Instant,
    /// `None`: the token does not expire (root tokens, TTL 0).
    pub(super) ttl: Option<Duration>,
    pub(super) renewable: bool,
    /// Obtained by a login of ours, so ours to revoke; a token given in a
    /// store's `tokenSecretRef` belongs to the user and is never revoked.
    pub(super) owned: bool,
    /// When `lookup-self` last found the token valid.
    pub(super) confirmed: Option<Instant>,
}

impl TokenState {
    /// Past its whole TTL: Vault no longer knows it.
    pub(super) fn dead(&self) -> bool {
        self.ttl.is_some_and(|ttl| self.obtained.elapsed() >= ttl)
    }

    pub(super) fn needs_renewal(&self) -> bool {
        self.ttl.is_some_and(|ttl| self.obtained.elapsed() >= ttl * 2 / 3)
    }

    pub(super) fn expired(&self) -> bool {
        // A margin so a token is not used in its last moments; a tenth of
        // the TTL (at most 5s) keeps short-lived tokens renewable.
        self.ttl.is_some_and(|ttl| self.obtained.elapsed() + end_margin(ttl) >= ttl)
    }
}

impl Client {
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

    /// Makes sure there is a valid token: logs in when there is none,
    /// renews after 2/3 of its TTL, logs in again when renewal fails or the
    /// token expired.
    pub async fn ensure_token(&self) -> Result<()> {
        self.token().await.map(|_| ())
    }

    pub(super) async fn token(&self) -> Result<Sensitive> {
        let mut slot = self.inner.token.lock().await;
        self.token_in(&mut slot).await
    }

    /// A usable token: the current one, renewed after 2/3 of its TTL, or a
    /// new login. A failed login is remembered for its backoff window: the
    /// callers within it get its error (or the current token while it has
    /// not expired) without a new attempt.
    pub(super) async fn token_in(&self, slot: &mut TokenSlot) -> Result<Sensitive> {
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

    #[test]
    fn login_backoff_doubles_to_a_minute() {
        let secs: Vec<u64> = (1..=7).map(|n| login_backoff(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60, 60]);
    }
}
