//! What the sidecar keeps between rounds: each path's last response and,
//! for a leased one (a dynamic database credential, say), its lease.
//!
//! Reading a leased path again would issue a new credential on every poll,
//! rewrite the file and signal the app each time, and pile up leases in
//! Vault. So a leased response is kept and its lease renewed at about two
//! thirds of its TTL; only when Vault stops extending it (the max TTL is
//! near, or it is not renewable) or the lease is gone is the path read
//! again, while the old credential still has a third of its time left. The
//! old lease is left to end on its own, as the Vault agent leaves it, since
//! the app may still hold connections made with it.
//!
//! Paths without a lease (KV) are read every round, to see changes.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;
use vaultsync_inject::AgentConfig;
use vaultsync_vault::{Client, IssueMethod, Lease};

use crate::AgentError;

/// A leased response and when to act on its lease.
struct HeldLease {
    response: serde_json::Value,
    lease: Lease,
    /// Renew (or, when not renewable, read anew) from this instant on.
    act_at: Instant,
}

/// The sidecar's memory of leased responses, across rounds.
#[derive(Default)]
pub struct HeldSecrets {
    leased: BTreeMap<String, HeldLease>,
}

/// When to act on a lease of `ttl`: about two thirds through, jittered
/// (±5% of the TTL) so that many sidecars do not renew at one instant.
fn act_after(ttl: Duration) -> Duration {
    ttl.mul_f64(0.62 + 0.1 * rand::random::<f64>())
}

impl HeldSecrets {
    /// Each of `paths` with its response: held leases reused or renewed,
    /// everything else read from Vault.
    pub async fn read(
        &mut self,
        client: &Client,
        config: &AgentConfig,
        paths: &[String],
    ) -> Result<BTreeMap<String, serde_json::Value>, AgentError> {
        self.leased.retain(|path, _| paths.contains(path));
        let mut read = BTreeMap::new();
        for path in paths {
            if let Some(response) = self.keep_or_renew(client, path).await {
                read.insert(path.clone(), response);
                continue;
            }
            let issued = client.issue(IssueMethod::Get, path, &BTreeMap::new(), None).await.map_err(|source| {
                AgentError::Read { path: path.clone(), role: config.role.clone(), source: Box::new(source) }
            })?;
            match issued.lease {
                Some(lease) if !lease.id.is_empty() => {
                    let held = HeldLease {
                        response: issued.response.clone(),
                        act_at: Instant::now() + act_after(lease.ttl),
                        lease,
                    };
                    eprintln!(
                        "vaultsync agent: {path}: new lease {} for {:?}{}",
                        held.lease.id,
                        held.lease.ttl,
                        if held.lease.renewable { "" } else { " (not renewable)" }
                    );
                    self.leased.insert(path.clone(), held);
                }
                _ => {
                    self.leased.remove(path);
                }
            }
            read.insert(path.clone(), issued.response);
        }
        Ok(read)
    }

    /// The held response of `path` while its lease is good, renewing the
    /// lease when due; `None` when the path must be read (again).
    async fn keep_or_renew(&mut self, client: &Client, path: &str) -> Option<serde_json::Value> {
        let held = self.leased.get_mut(path)?;
        if Instant::now() < held.act_at {
            return Some(held.response.clone());
        }
        if !held.lease.renewable {
            eprintln!("vaultsync agent: {path}: lease {} cannot be renewed; reading a new credential", held.lease.id);
            return None;
        }
        match client.renew_lease(&held.lease.id, held.lease.ttl).await {
            // Less than asked: the max TTL is near. A new credential now,
            // while this one still has what Vault just granted (at least a
            // third of a TTL, since the last renewal granted a full one).
            Ok(granted) if !granted.renewable || granted.ttl < held.lease.ttl => {
                eprintln!(
                    "vaultsync agent: {path}: lease {} ends in {:?} (max TTL); reading a new credential",
                    held.lease.id, granted.ttl
                );
                None
            }
            Ok(granted) => {
                held.act_at = Instant::now() + act_after(granted.ttl);
                eprintln!("vaultsync agent: {path}: renewed lease {} for {:?}", held.lease.id, granted.ttl);
                Some(held.response.clone())
            }
            Err(e) => {
                // Gone (the token that held it ended, say) or refused: a new
                // credential is the way on; if Vault is away, that read fails
                // too and the files stay as they are.
                eprintln!("vaultsync agent: {path}: renewing lease {}: {e}; reading a new credential", held.lease.id);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_acted_on_about_two_thirds_through() {
        for _ in 0..100 {
            let after = act_after(Duration::from_secs(100));
            assert!(after >= Duration::from_secs(62) && after <= Duration::from_secs(72), "{after:?}");
        }
    }
}
