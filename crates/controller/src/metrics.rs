//! Prometheus metrics. Labels carry outcomes and error kinds, never names
//! of secrets or values.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ErrorLabels {
    pub reason: &'static str,
}

pub struct Metrics {
    registry: Registry,
    syncs: Family<OutcomeLabels, Counter>,
    sync_errors: Family<ErrorLabels, Counter>,
    vault_logins: Counter,
    vault_reads: Counter,
    vault_clients: Gauge,
    leader: Gauge,
    // What the Vault clients had counted at the last scrape, so the
    // counters above only ever grow by the difference.
    exported: Mutex<(u64, u64)>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("vaultsync");
        let syncs = Family::<OutcomeLabels, Counter>::default();
        let sync_errors = Family::<ErrorLabels, Counter>::default();
        let (vault_logins, vault_reads, vault_clients) = (Counter::default(), Counter::default(), Gauge::default());
        registry.register(
            "syncs",
            "ExternalSecret syncs by outcome (created, updated, unchanged, current, deleted, skipped)",
            syncs.clone(),
        );
        registry.register("sync_errors", "Failed ExternalSecret syncs by reason", sync_errors.clone());
        registry.register("vault_logins", "Logins to Vault or OpenBao", vault_logins.clone());
        registry.register("vault_reads", "KV read requests sent to Vault or OpenBao", vault_reads.clone());
        registry.register("vault_clients", "Authenticated Vault clients in the cache", vault_clients.clone());
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica leads and syncs (always, without leader election), 0 on standby",
            leader.clone(),
        );
        Self { registry, syncs, sync_errors, vault_logins, vault_reads, vault_clients, leader, exported: Mutex::default() }
    }
}

impl Metrics {
    pub(crate) fn sync(&self, outcome: &'static str) {
        self.syncs.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub(crate) fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    pub(crate) fn sync_error(&self, reason: &'static str) {
        self.sync_errors.get_or_create(&ErrorLabels { reason }).inc();
    }

    /// The text exposition, with Vault request totals brought up to date.
    pub(crate) fn encode(&self, logins: u64, reads: u64, clients: usize) -> String {
        {
            let mut exported = self.exported.lock().expect("metrics lock");
            self.vault_logins.inc_by(logins.saturating_sub(exported.0));
            self.vault_reads.inc_by(reads.saturating_sub(exported.1));
            *exported = (logins.max(exported.0), reads.max(exported.1));
        }
        self.vault_clients.set(i64::try_from(clients).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
