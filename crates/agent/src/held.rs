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
//!
//! In sidecar mode the init container saves what it holds to a directory
//! only the agent containers mount ([`HeldSecrets::save`]), and the
//! sidecar starts from it ([`HeldSecrets::load`]): it renews the lease the
//! init container was issued instead of issuing a second credential (and
//! orphaning the first) at every Pod start. The file holds the answers, so
//! it is written with mode 0600 to an in-memory volume.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use tokio::time::Instant;
use tracing::{info, warn};
use vaultsync_inject::AgentConfig;
use vaultsync_template::VaultCall;
use vaultsync_vault::{Client, Lease, lease_timing};

use crate::{AgentError, call, write_atomically};

/// The file in the state directory.
const STATE_FILE: &str = "held.json";

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

/// Where in a lifetime the sidecar acts: about two thirds through,
/// jittered (±5% of the TTL) so that many sidecars do not act at one
/// instant.
const ACT_WINDOW: (f64, f64) = (0.62, 0.72);

/// When to act on something that lives `ttl` (the rule:
/// [`lease_timing::renew_after`]).
fn act_after(ttl: Duration) -> Duration {
    let (low, high) = ACT_WINDOW;
    lease_timing::renew_after(ttl, lease_timing::fraction_between(low, high, rand::random::<f64>()))
}

/// How long a write's answer without a lease lives: the certificate's
/// `expiration` (Unix seconds) when it has one, else `lease_duration`.
fn lifetime(response: &serde_json::Value) -> Duration {
    let now = unix_now();
    let expiration = response.pointer("/data/expiration").and_then(serde_json::Value::as_u64);
    let leased = response.get("lease_duration").and_then(serde_json::Value::as_u64).filter(|d| *d > 0);
    match (expiration, leased) {
        (Some(at), _) => Duration::from_secs(at.saturating_sub(now)),
        (None, Some(seconds)) => Duration::from_secs(seconds),
        (None, None) => DEFAULT_LIFETIME,
    }
}

/// A held answer as saved: instants as Unix seconds.
#[derive(Serialize, Deserialize)]
struct Saved {
    response: serde_json::Value,
    #[serde(default)]
    lease: Option<SavedLease>,
    act_at: u64,
}

#[derive(Serialize, Deserialize)]
struct SavedLease {
    id: String,
    ttl_seconds: u64,
    renewable: bool,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

impl HeldSecrets {
    /// What the init container saved in `dir`; nothing if it saved nothing
    /// (or the file cannot be read: then the sidecar asks again, as it
    /// would without it).
    pub fn load(dir: &Path) -> HeldSecrets {
        let path = dir.join(STATE_FILE);
        let Ok(text) = std::fs::read(&path) else { return HeldSecrets::default() };
        let saved: BTreeMap<String, Saved> = match serde_json::from_slice(&text) {
            Ok(saved) => saved,
            Err(e) => {
                warn!(file = %path.display(), error = %e, "held answers not readable; asking Vault again");
                return HeldSecrets::default();
            }
        };
        let now = unix_now();
        let held = saved
            .into_iter()
            .map(|(key, saved)| {
                let lease = saved.lease.map(|l| Lease {
                    id: l.id,
                    ttl: Duration::from_secs(l.ttl_seconds),
                    renewable: l.renewable,
                });
                let act_at = Instant::now() + Duration::from_secs(saved.act_at.saturating_sub(now));
                (key, Held { response: saved.response, lease, act_at })
            })
            .collect();
        HeldSecrets { held }
    }

    /// Saves what is held to `dir` (mode 0600, replaced whole).
    pub fn save(&self, dir: &Path) -> Result<(), AgentError> {
        let now = Instant::now();
        let unix = unix_now();
        let saved: BTreeMap<&String, Saved> = self
            .held
            .iter()
            .map(|(key, held)| {
                let lease = held.lease.as_ref().map(|l| SavedLease {
                    id: l.id.clone(),
                    ttl_seconds: l.ttl.as_secs(),
                    renewable: l.renewable,
                });
                let act_at = unix + held.act_at.saturating_duration_since(now).as_secs();
                (key, Saved { response: held.response.clone(), lease, act_at })
            })
            .collect();
        let text = serde_json::to_vec(&saved)
            .map_err(|e| AgentError::Write { file: STATE_FILE.to_owned(), reason: e.to_string() })?;
        write_atomically(dir, STATE_FILE, &text, "0600")
    }

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
                    info!(path = %path, lease_id = %lease.id, ttl = ?lease.ttl, renewable = lease.renewable, "new lease");
                    let act_at = Instant::now() + act_after(lease.ttl);
                    self.held
                        .insert(key.clone(), Held { response: issued.response.clone(), lease: Some(lease), act_at });
                }
                _ if one.is_write() => {
                    let lives = lifetime(&issued.response);
                    info!(path = %path, lives = ?lives, "written; its answer lives");
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
            info!(path = %path, "two thirds of its answer's life are over; asking again");
            return None;
        };
        if !lease.renewable {
            info!(path = %path, lease_id = %lease.id, "lease cannot be renewed; asking for a new one");
            return None;
        }
        match client.renew_lease(&lease.id, lease.ttl).await {
            // Less than asked: the max TTL is near. A new credential now,
            // while this one still has what Vault just granted (at least a
            // third of a TTL, since the last renewal granted a full one).
            Ok(granted) if lease_timing::renewal_falls_short(lease.ttl, granted.ttl, granted.renewable) => {
                info!(path = %path, lease_id = %lease.id, ends_in = ?granted.ttl, "lease near its max TTL; asking for a new one");
                None
            }
            Ok(granted) => {
                info!(path = %path, lease_id = %lease.id, ttl = ?granted.ttl, "renewed lease");
                held.act_at = Instant::now() + act_after(granted.ttl);
                Some(held.response.clone())
            }
            Err(e) => {
                // Gone (the token that held it ended, say) or refused: a new
                // credential is the way on; if Vault is away, that call fails
                // too and the files stay as they are.
                warn!(path = %path, lease_id = %lease.id, error = %e, "renewing a lease failed; asking for a new one");
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

    #[tokio::test]
    async fn what_is_held_survives_a_save_and_a_load() {
        let dir = tempfile::tempdir().unwrap();
        let mut held = HeldSecrets::default();
        let lease = Lease { id: "database/creds/app/abc".into(), ttl: Duration::from_secs(60), renewable: true };
        let act_at = Instant::now() + Duration::from_secs(40);
        let response = serde_json::json!({"data": {"username": "u"}, "lease_id": lease.id});
        held.held.insert("database/creds/app".into(), Held { response: response.clone(), lease: Some(lease), act_at });
        held.save(dir.path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(STATE_FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = HeldSecrets::load(dir.path());
        let again = &loaded.held["database/creds/app"];
        assert_eq!(again.response, response);
        assert_eq!(again.lease.as_ref().unwrap().id, "database/creds/app/abc");
        let due_in = again.act_at.saturating_duration_since(Instant::now());
        assert!(due_in > Duration::from_secs(38) && due_in <= Duration::from_secs(40), "{due_in:?}");
        assert!(HeldSecrets::load(&dir.path().join("absent")).held.is_empty());
        std::fs::write(dir.path().join(STATE_FILE), b"not json").unwrap();
        assert!(HeldSecrets::load(dir.path()).held.is_empty(), "unreadable: asked again");
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
