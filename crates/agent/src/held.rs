//! What the sidecar keeps between rounds: the answers it must not ask for
//! again at every poll.
//!
//! - A leased answer (a dynamic database credential, say): reading it again
//!   would issue a new credential on every poll, rewrite the file and
//!   signal the app each time, and pile up leases in Vault. So it is kept
//!   and its lease renewed at about two thirds of its TTL; only when Vault
//!   extends it by less than a full TTL (the max TTL is near), it cannot be
//!   renewed, or the lease is gone, is a new one asked for, while the old
//!   credential still has at least a third of a TTL. The old lease is left
//!   to end on its own, as the Vault agent leaves it, since the app may
//!   still hold connections made with it.
//! - A write's answer without a lease (`pki/issue/...`: a certificate): kept
//!   until about two thirds of its lifetime (the certificate's
//!   `expiration`, else the answer's `lease_duration`, else five minutes,
//!   consul-template's default), then written again.
//!
//! Reads without a lease (KV) are made every round, to see changes.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use vaultsync_inject::AgentConfig;
use vaultsync_template::VaultCall;
use vaultsync_vault::{Client, Lease};

use crate::{AgentError, call};

/// How long a write's answer without a lease or expiration is kept.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// A kept answer and when to act on it.
struct Held {
    response: serde_json::Value,
    /// Renewed when due; `None`: asked for again when due.
    lease: Option<Lease>,
    /// Renew (or ask again) from this instant on.
    act_at: Instant,
}

/// The sidecar's memory of answers, across rounds.
#[derive(Default)]
pub struct HeldSecrets {
    held: BTreeMap<String, Held>,
}

/// When to act on something that lives `ttl`: about two thirds through,
/// jittered (±5% of the TTL) so that many sidecars do not act at one
/// instant.
fn act_after(ttl: Duration) -> Duration {
    ttl.mul_f64(0.62 + 0.1 * rand::random::<f64>())
}

/// How long a write's answer without a lease lives: the certificate's
/// `expiration` (Unix seconds) when it has one, else `lease_duration`.
fn lifetime(response: &serde_json::Value) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let expiration = response.pointer("/data/expiration").and_then(serde_json::Value::as_u64);
    let leased = response.get("lease_duration").and_then(serde_json::Value::as_u64).filter(|d| *d > 0);
    match (expiration, leased) {
        (Some(at), _) => Duration::from_secs(at.saturating_sub(now)),
        (None, Some(seconds)) => Duration::from_secs(seconds),
        (None, None) => DEFAULT_LIFETIME,
    }
}

impl HeldSecrets {
    /// When the next held answer is due (a lease to renew, a certificate
    /// to issue anew): the sidecar wakes then even if its poll interval is
    /// longer, so that nothing lapses between polls.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.values().map(|held| held.act_at).min()
    }

    /// Each call's answer by [`VaultCall::key`]: held answers reused (and
    /// their leases renewed), everything else asked of Vault.
    pub async fn answers(
        &mut self,
        client: &Client,
        config: &AgentConfig,
        calls: &[VaultCall],
    ) -> Result<BTreeMap<String, serde_json::Value>, AgentError> {
        self.held.retain(|key, _| calls.iter().any(|c| &c.key() == key));
        let mut answers = BTreeMap::new();
        for one in calls {
            let key = one.key();
            if let Some(response) = self.keep_or_renew(client, &key, &one.path).await {
                answers.insert(key, response);
                continue;
            }
            let issued = call(client, config, one).await?;
            let path = &one.path;
            match issued.lease {
                Some(lease) if !lease.id.is_empty() => {
                    eprintln!(
                        "vaultsync agent: {path}: new lease {} for {:?}{}",
                        lease.id,
                        lease.ttl,
                        if lease.renewable { "" } else { " (not renewable)" }
                    );
                    let act_at = Instant::now() + act_after(lease.ttl);
                    self.held
                        .insert(key.clone(), Held { response: issued.response.clone(), lease: Some(lease), act_at });
                }
                _ if one.is_write() => {
                    let lives = lifetime(&issued.response);
                    eprintln!("vaultsync agent: {path}: written; its answer lives {lives:?}");
                    let act_at = Instant::now() + act_after(lives);
                    self.held.insert(key.clone(), Held { response: issued.response.clone(), lease: None, act_at });
                }
                _ => {
                    self.held.remove(&key);
                }
            }
            answers.insert(key, issued.response);
        }
        Ok(answers)
    }

    /// The held answer under `key` while it is good, renewing its lease
    /// when due; `None` when the call must be made (again).
    async fn keep_or_renew(&mut self, client: &Client, key: &str, path: &str) -> Option<serde_json::Value> {
        let held = self.held.get_mut(key)?;
        if Instant::now() < held.act_at {
            return Some(held.response.clone());
        }
        let Some(lease) = &held.lease else {
            eprintln!("vaultsync agent: {path}: two thirds of its answer's life are over; asking again");
            return None;
        };
        if !lease.renewable {
            eprintln!("vaultsync agent: {path}: lease {} cannot be renewed; asking for a new one", lease.id);
            return None;
        }
        match client.renew_lease(&lease.id, lease.ttl).await {
            // Less than asked: the max TTL is near. A new credential now,
            // while this one still has what Vault just granted (at least a
            // third of a TTL, since the last renewal granted a full one).
            Ok(granted) if !granted.renewable || granted.ttl < lease.ttl => {
                eprintln!(
                    "vaultsync agent: {path}: lease {} ends in {:?} (max TTL); asking for a new one",
                    lease.id, granted.ttl
                );
                None
            }
            Ok(granted) => {
                eprintln!("vaultsync agent: {path}: renewed lease {} for {:?}", lease.id, granted.ttl);
                held.act_at = Instant::now() + act_after(granted.ttl);
                Some(held.response.clone())
            }
            Err(e) => {
                // Gone (the token that held it ended, say) or refused: a new
                // credential is the way on; if Vault is away, that call fails
                // too and the files stay as they are.
                eprintln!("vaultsync agent: {path}: renewing lease {}: {e}; asking for a new one", lease.id);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_acted_on_about_two_thirds_through() {
        for _ in 0..100 {
            let after = act_after(Duration::from_secs(100));
            assert!(after >= Duration::from_secs(62) && after <= Duration::from_secs(72), "{after:?}");
        }
    }

    #[test]
    fn a_written_answer_lives_until_its_certificate_expires() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let certificate = serde_json::json!({"data": {"expiration": now + 60}, "lease_duration": 0});
        let lives = lifetime(&certificate);
        assert!(lives <= Duration::from_secs(60) && lives >= Duration::from_secs(58), "{lives:?}");
        assert_eq!(lifetime(&serde_json::json!({"lease_duration": 30})), Duration::from_secs(30));
        assert_eq!(lifetime(&serde_json::json!({"data": {}})), DEFAULT_LIFETIME);
    }
}
