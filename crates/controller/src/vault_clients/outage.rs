//! A Vault outage is the server's, not each ExternalSecret's. When a read
//! finds a server unreachable or sealed, the server is marked down and one
//! prober per server asks it (`sys/health`, which needs no login) with
//! capped, jittered backoff. Meanwhile the ExternalSecrets of stores on that
//! server do not try Vault: they report that they wait and leave their
//! Secrets alone. When the server answers again, every ExternalSecret that
//! waited is requeued at once, spread over a few seconds so that they do not
//! all hit Vault in the same instant.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::ObjectRef;
use tracing::{info, warn};
use vaultsync_api::ExternalSecret;
use vaultsync_vault::Client;

/// First pause between probes; doubles up to [`PROBE_CAP`].
const PROBE_START: Duration = Duration::from_secs(1);
/// Longest pause between two probes of a server that is down: with ±20%
/// jitter, an outage is seen over within 12s of the server answering. One
/// `sys/health` per server is cheap; waiting longer only delays recovery.
const PROBE_CAP: Duration = Duration::from_secs(10);
/// How often an ExternalSecret waiting for a server that is down looks
/// again by itself: a safety net behind the probe's requeue (for one that
/// failed for another reason meanwhile). It costs no Vault request.
pub(crate) const RECHECK_WHILE_DOWN: Duration = Duration::from_secs(20);
/// Over how long the waiting ExternalSecrets are requeued on recovery.
const SPREAD: Duration = Duration::from_secs(3);

#[derive(Default)]
pub(crate) struct Outages {
    down: Mutex<HashMap<String, Outage>>,
    requeue: Mutex<Option<UnboundedSender<ObjectRef<ExternalSecret>>>>,
}

struct Outage {
    since: Instant,
    /// What the last failed read or probe said.
    reason: String,
    sealed: bool,
    waiting: HashSet<ObjectRef<ExternalSecret>>,
}

/// What an ExternalSecret is told while its server is down.
pub(crate) struct Waiting {
    pub sealed: bool,
    pub reason: String,
}

impl Waiting {
    /// The error an ExternalSecret reports while it waits for `address`.
    pub(crate) fn into_error(self, address: &str) -> vaultsync_vault::Error {
        let address = address.to_owned();
        if self.sealed {
            vaultsync_vault::Error::Sealed { address }
        } else {
            vaultsync_vault::Error::Unreachable { address, reason: self.reason }
        }
    }
}

impl Outages {
    /// Where recovered ExternalSecrets are requeued: the ExternalSecret
    /// controller of the current run.
    pub(crate) fn set_requeue(&self, sender: UnboundedSender<ObjectRef<ExternalSecret>>) {
        *self.requeue.lock().expect("outage lock") = Some(sender);
    }

    /// When `server` is down: what to report; `es` then waits for it.
    pub(crate) fn wait_if_down(&self, server: &str, es: &ObjectRef<ExternalSecret>) -> Option<Waiting> {
        let mut down = self.down.lock().expect("outage lock");
        let outage = down.get_mut(server)?;
        outage.waiting.insert(es.clone());
        let reason = format!(
            "{}; down for {}s, waiting for it to answer (one probe per server asks it; the Secret is left as it is)",
            outage.reason,
            outage.since.elapsed().as_secs()
        );
        Some(Waiting { sealed: outage.sealed, reason })
    }

    /// A read through `client` failed with `error`. When that says the
    /// server is unreachable or sealed (anything else, a refusal or one
    /// store's TLS settings, is no outage), the server is marked down.
    /// Returns true when that starts an outage: the caller then runs
    /// [`Outages::probe`] for it.
    pub(crate) fn report_down(
        &self,
        client: &Client,
        error: &vaultsync_vault::Error,
        es: &ObjectRef<ExternalSecret>,
    ) -> bool {
        let (sealed, reason) = match error {
            vaultsync_vault::Error::Sealed { .. } => (true, "sealed".to_owned()),
            vaultsync_vault::Error::Unreachable { reason, .. } => (false, reason.clone()),
            _ => return false,
        };
        let mut down = self.down.lock().expect("outage lock");
        let server = client.address().to_owned();
        let new = !down.contains_key(&server);
        let outage = down.entry(server.clone()).or_insert_with(|| Outage {
            since: Instant::now(),
            reason: String::new(),
            sealed,
            waiting: HashSet::new(),
        });
        outage.reason = reason;
        outage.sealed = sealed;
        outage.waiting.insert(es.clone());
        if new {
            warn!(server = %server, sealed, "Vault is not answering; ExternalSecrets using it wait for one probe to see it back");
        }
        new
    }

    /// Asks the server of `client` until it answers, then ends the outage
    /// and requeues every ExternalSecret that waited for it.
    pub(crate) async fn probe(self: Arc<Self>, client: Client) {
        let server = client.address().to_owned();
        let mut pause = PROBE_START;
        loop {
            tokio::time::sleep(jittered(pause)).await;
            match client.probe().await {
                Ok(()) => break,
                Err(e) => {
                    if let Some(outage) = self.down.lock().expect("outage lock").get_mut(&server) {
                        outage.sealed = matches!(e, vaultsync_vault::Error::Sealed { .. });
                        outage.reason = match e {
                            vaultsync_vault::Error::Unreachable { reason, .. } => reason,
                            other => other.to_string(),
                        };
                    }
                }
            }
            pause = (pause * 2).min(PROBE_CAP);
        }
        let Some(outage) = self.down.lock().expect("outage lock").remove(&server) else { return };
        let waiting: Vec<_> = outage.waiting.into_iter().collect();
        info!(
            server = %server,
            down_for = ?outage.since.elapsed(),
            waiting = waiting.len(),
            "Vault answers again; syncing the ExternalSecrets that waited"
        );
        let Some(requeue) = self.requeue.lock().expect("outage lock").clone() else { return };
        let gap = SPREAD / u32::try_from(waiting.len().max(1)).unwrap_or(u32::MAX);
        for es in waiting {
            if requeue.unbounded_send(es).is_err() {
                return;
            }
            tokio::time::sleep(gap).await;
        }
    }

    /// Servers down now.
    pub(crate) fn down_count(&self) -> usize {
        self.down.lock().expect("outage lock").len()
    }
}

/// `pause` ± 20%, so that probes of several servers (and several replicas)
/// do not fall into step.
fn jittered(pause: Duration) -> Duration {
    pause.mul_f64(0.8 + 0.4 * rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..1000 {
            let j = jittered(Duration::from_secs(10));
            assert!(j >= Duration::from_secs(8) && j <= Duration::from_secs(12), "{j:?}");
        }
    }
}
