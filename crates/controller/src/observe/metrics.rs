//! Prometheus metrics. Labels carry outcomes and error kinds, never values;
//! the status gauge names ExternalSecrets (namespace and name), as ESO's
//! `externalsecret_status_condition` does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use vaultsync_vault::{LoginOutcome, Observer, Operation};

use crate::vault_clients::cache::VaultTotals;
use crate::vault_clients::identity::ClientOwner;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ErrorLabels {
    pub reason: &'static str,
}

/// Which controller a reconcile belongs to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ControllerLabels {
    pub controller: &'static str,
}

/// One series of `externalsecret_status_condition`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabels {
    pub namespace: String,
    pub name: String,
    pub condition: &'static str,
    pub status: &'static str,
}

/// One series of `vault_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub operation: &'static str,
    /// The HTTP status, or `none` when no answer came.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OperationLabels {
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LoginLabels {
    pub method: &'static str,
    pub outcome: &'static str,
}

/// Whose token a `vault_token_ttl_seconds` series is: the store, and for a
/// ClusterSecretStore with per-namespace credentials, the namespace.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TokenLabels {
    pub store_kind: &'static str,
    pub store_namespace: String,
    pub store_name: String,
    pub namespace: String,
}

impl From<&ClientOwner> for TokenLabels {
    fn from(owner: &ClientOwner) -> Self {
        Self {
            store_kind: match (&owner.store.namespace, owner.store.generator) {
                (Some(_), true) => "VaultDynamicSecret",
                (Some(_), false) => "SecretStore",
                (None, _) => "ClusterSecretStore",
            },
            store_namespace: owner.store.namespace.clone().unwrap_or_default(),
            store_name: owner.store.name.clone(),
            namespace: owner.namespace.clone().unwrap_or_default(),
        }
    }
}

/// The Vault traffic families: every Vault client reports to them as it
/// goes (see [`Metrics::vault_observer`]).
struct VaultTraffic {
    requests: Family<RequestLabels, Counter>,
    durations: Family<OperationLabels, Histogram>,
    logins: Family<LoginLabels, Counter>,
}

impl Observer for VaultTraffic {
    fn request(&self, operation: Operation, status: Option<u16>, elapsed: Duration) {
        let status = status.map_or_else(|| "none".to_owned(), |code| code.to_string());
        self.requests.get_or_create(&RequestLabels { operation: operation.label(), status }).inc();
        self.durations.get_or_create(&OperationLabels { operation: operation.label() }).observe(elapsed.as_secs_f64());
    }

    fn login(&self, method: &'static str, outcome: LoginOutcome) {
        self.logins.get_or_create(&LoginLabels { method, outcome: outcome.label() }).inc();
    }
}

pub struct Metrics {
    registry: Registry,
    syncs: Family<OutcomeLabels, Counter>,
    sync_errors: Family<ErrorLabels, Counter>,
    vault_logins: Counter,
    vault_reads: Counter,
    vault_revocations: Counter,
    vault_clients: Gauge,
    leader: Gauge,
    status_condition: Family<StatusLabels, Gauge>,
    reconcile_duration: Family<ControllerLabels, Histogram>,
    reconciles_in_flight: Family<ControllerLabels, Gauge>,
    servers_down: Gauge,
    vault_traffic: Arc<VaultTraffic>,
    vault_coalesced: Counter,
    token_ttl: Family<TokenLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    due: Family<ControllerLabels, Gauge>,
    // What the Vault clients had counted at the last scrape, so the
    // counters above only ever grow by the difference.
    exported: Mutex<VaultTotals>,
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
        let vault_revocations = Counter::default();
        registry.register(
            "vault_token_revocations",
            "Vault tokens revoked by vaultsync (store deleted or changed, shutdown)",
            vault_revocations.clone(),
        );
        registry.register("vault_clients", "Authenticated Vault clients in the cache", vault_clients.clone());
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica leads and syncs (always, without leader election), 0 on standby",
            leader.clone(),
        );
        let status_condition = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "externalsecret_status_condition",
            "Condition of each ExternalSecret: 1 on the series of its current status, 0 on the other",
            status_condition.clone(),
        );
        // 5 ms to ~82 s: a cached no-op to a template at its time budget
        // behind a slow Vault.
        let reconcile_duration = Family::<ControllerLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.005, 2.0, 15))) as fn() -> Histogram,
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, by controller (ExternalSecret, SecretStore, ClusterSecretStore, ClusterExternalSecret)",
            reconcile_duration.clone(),
        );
        let reconciles_in_flight = Family::<ControllerLabels, Gauge>::default();
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now, by controller (at most --concurrency for ExternalSecrets)",
            reconciles_in_flight.clone(),
        );
        let servers_down = Gauge::default();
        registry.register(
            "vault_servers_down",
            "Vault servers found unreachable or sealed and not answering since (their ExternalSecrets wait)",
            servers_down.clone(),
        );
        let vault_traffic = Arc::new(VaultTraffic {
            requests: Family::default(),
            // 1 ms to ~33 s: a loopback answer to a request at its timeout.
            durations: Family::new_with_constructor(
                (|| Histogram::new(exponential_buckets(0.001, 2.0, 16))) as fn() -> Histogram,
            ),
            logins: Family::default(),
        });
        registry.register(
            "vault_requests",
            "HTTP requests sent to Vault or OpenBao, by operation and HTTP status (none: no answer)",
            vault_traffic.requests.clone(),
        );
        registry.register(
            "vault_request_duration_seconds",
            "Time a request to Vault or OpenBao took until its answer (or failure), by operation",
            vault_traffic.durations.clone(),
        );
        registry.register(
            "vault_login_attempts",
            "Login attempts to Vault or OpenBao, by auth method and outcome",
            vault_traffic.logins.clone(),
        );
        let vault_coalesced = Counter::default();
        registry.register(
            "vault_coalesced_reads",
            "Secret reads answered by another sync's request for the same secret (in flight or within the read window)",
            vault_coalesced.clone(),
        );
        let token_ttl = Family::<TokenLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "vault_token_ttl_seconds",
            "Time left on each cached client's Vault token (no series for tokens that do not expire)",
            token_ttl.clone(),
        );
        let due = Family::<ControllerLabels, Gauge>::default();
        registry.register(
            "reconciles_due",
            "Objects whose reconcile is due (changed, retrying or refreshing) and not yet started: the work queue's depth",
            due.clone(),
        );
        Self {
            registry,
            syncs,
            sync_errors,
            vault_logins,
            vault_reads,
            vault_revocations,
            vault_clients,
            leader,
            status_condition,
            reconcile_duration,
            reconciles_in_flight,
            servers_down,
            vault_traffic,
            vault_coalesced,
            token_ttl,
            due,
            exported: Mutex::default(),
        }
    }
}

impl Metrics {
    /// What every Vault client reports its requests and logins to.
    pub(crate) fn vault_observer(&self) -> Arc<dyn Observer> {
        self.vault_traffic.clone()
    }

    /// The TTL left on each cached client's token; clients with no
    /// expiring token have no series.
    pub(crate) fn set_token_ttls<'a>(&self, ttls: impl IntoIterator<Item = (&'a ClientOwner, Duration)>) {
        self.token_ttl.clear();
        for (owner, ttl) in ttls {
            self.token_ttl.get_or_create(&TokenLabels::from(owner)).set(ttl.as_secs_f64());
        }
    }

    /// The depth of a controller's work queue.
    pub(crate) fn set_due(&self, controller: &'static str, count: usize) {
        self.due.get_or_create(&ControllerLabels { controller }).set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub(crate) fn sync(&self, outcome: &'static str) {
        self.syncs.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub(crate) fn set_servers_down(&self, count: usize) {
        self.servers_down.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A standby reports no ExternalSecret status: the leader does, and a
    /// former leader's last values would go stale.
    pub(crate) fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
        if !leading {
            self.status_condition.clear();
        }
    }

    pub(crate) fn sync_error(&self, reason: &'static str) {
        self.sync_errors.get_or_create(&ErrorLabels { reason }).inc();
    }

    /// Counts a reconcile of `controller` as running until the returned
    /// guard is dropped, then records how long it took.
    pub(crate) fn reconcile_started(&self, controller: &'static str) -> ReconcileTimer<'_> {
        let labels = ControllerLabels { controller };
        self.reconciles_in_flight.get_or_create(&labels).inc();
        ReconcileTimer { metrics: self, labels, started: std::time::Instant::now() }
    }

    /// Records the Ready condition of an ExternalSecret: its current status
    /// series is 1, the other 0.
    pub(crate) fn ready(&self, namespace: &str, name: &str, ready: bool) {
        for (status, current) in [("True", ready), ("False", !ready)] {
            self.status_condition.get_or_create(&status_labels(namespace, name, status)).set(i64::from(current));
        }
    }

    /// Drops the status series of an ExternalSecret that is gone.
    pub(crate) fn forget(&self, namespace: &str, name: &str) {
        for status in ["True", "False"] {
            self.status_condition.remove(&status_labels(namespace, name, status));
        }
    }

    /// Appends the text exposition (without `# EOF`: the admin server
    /// closes it), with Vault request totals brought up to date.
    pub(crate) fn encode(&self, totals: VaultTotals, clients: usize, out: &mut String) {
        {
            // A client being closed is counted nowhere for a moment: the
            // exported values only ever grow.
            let mut exported = self.exported.lock().expect("metrics lock");
            self.vault_logins.inc_by(totals.logins.saturating_sub(exported.logins));
            self.vault_reads.inc_by(totals.reads.saturating_sub(exported.reads));
            self.vault_revocations.inc_by(totals.revocations.saturating_sub(exported.revocations));
            self.vault_coalesced.inc_by(totals.coalesced.saturating_sub(exported.coalesced));
            *exported = VaultTotals {
                logins: totals.logins.max(exported.logins),
                reads: totals.reads.max(exported.reads),
                revocations: totals.revocations.max(exported.revocations),
                coalesced: totals.coalesced.max(exported.coalesced),
            };
        }
        self.vault_clients.set(i64::try_from(clients).unwrap_or(i64::MAX));
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
    }
}

/// See [`Metrics::reconcile_started`].
pub(crate) struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    labels: ControllerLabels,
    started: std::time::Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics.reconcile_duration.get_or_create(&self.labels).observe(self.started.elapsed().as_secs_f64());
        self.metrics.reconciles_in_flight.get_or_create(&self.labels).dec();
    }
}

fn status_labels(namespace: &str, name: &str, status: &'static str) -> StatusLabels {
    StatusLabels { namespace: namespace.to_owned(), name: name.to_owned(), condition: "Ready", status }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(metrics: &Metrics, totals: VaultTotals, clients: usize) -> String {
        let mut out = String::new();
        metrics.encode(totals, clients, &mut out);
        out
    }

    const TRUE: &str =
        r#"vaultsync_externalsecret_status_condition{namespace="team-a",name="db",condition="Ready",status="True"}"#;
    const FALSE: &str =
        r#"vaultsync_externalsecret_status_condition{namespace="team-a",name="db",condition="Ready",status="False"}"#;

    fn totals(logins: u64, reads: u64, revocations: u64) -> VaultTotals {
        VaultTotals { logins, reads, revocations, coalesced: 0 }
    }

    #[test]
    fn vault_counters_never_shrink() {
        let metrics = Metrics::default();
        encoded(&metrics, totals(3, 10, 0), 2);
        // A client being closed is counted nowhere for a moment.
        encoded(&metrics, totals(2, 7, 0), 1);
        let text = encoded(&metrics, totals(4, 11, 1), 1);
        for series in [
            "vaultsync_vault_logins_total 4",
            "vaultsync_vault_reads_total 11",
            "vaultsync_vault_token_revocations_total 1",
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
    }

    #[test]
    fn status_condition_is_one_on_the_current_status() {
        let metrics = Metrics::default();
        metrics.ready("team-a", "db", true);
        let text = encoded(&metrics, VaultTotals::default(), 0);
        assert!(text.contains("# TYPE vaultsync_externalsecret_status_condition gauge"), "{text}");
        assert!(text.contains(&format!("{TRUE} 1\n")), "{text}");
        assert!(text.contains(&format!("{FALSE} 0\n")), "{text}");

        metrics.ready("team-a", "db", false);
        let text = encoded(&metrics, VaultTotals::default(), 0);
        assert!(text.contains(&format!("{TRUE} 0\n")), "{text}");
        assert!(text.contains(&format!("{FALSE} 1\n")), "{text}");
    }

    #[test]
    fn forget_removes_both_series() {
        let metrics = Metrics::default();
        metrics.ready("team-a", "db", false);
        metrics.ready("team-a", "other", true);
        metrics.forget("team-a", "db");
        let text = encoded(&metrics, VaultTotals::default(), 0);
        assert!(!text.contains(r#"name="db""#), "{text}");
        assert!(text.contains(r#"name="other""#), "{text}");
        // prometheus-client leaves a family with no series out of the
        // exposition altogether, TYPE line included.
        metrics.forget("team-a", "other");
        let text = encoded(&metrics, VaultTotals::default(), 0);
        assert!(!text.contains("vaultsync_externalsecret_status_condition"), "{text}");
    }

    #[test]
    fn existing_families_keep_their_names() {
        let metrics = Metrics::default();
        metrics.sync("created");
        metrics.sync_error("sealed");
        let text = encoded(&metrics, totals(1, 2, 4), 3);
        for series in [
            r#"vaultsync_syncs_total{outcome="created"} 1"#,
            r#"vaultsync_sync_errors_total{reason="sealed"} 1"#,
            "vaultsync_vault_logins_total 1",
            "vaultsync_vault_reads_total 2",
            "vaultsync_vault_clients 3",
            "vaultsync_vault_token_revocations_total 4",
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
    }

    /// e2e/monitoring/metrics-sample.txt stands in for a scrape when
    /// scripts/monitoring-check.sh checks the dashboard's and the alert
    /// rules' metric names: it must declare what the operator declares.
    #[test]
    fn monitoring_sample_declares_the_exported_families() {
        let types = |text: &str| {
            let mut lines: Vec<String> = text.lines().filter(|l| l.starts_with("# TYPE ")).map(str::to_owned).collect();
            lines.sort();
            lines
        };
        let sample = include_str!("../../../../e2e/monitoring/metrics-sample.txt");
        // Families with no series yet are not exported: give each one.
        let metrics = Metrics::default();
        metrics.sync("created");
        metrics.sync_error("sealed");
        metrics.ready("team-a", "db", true);
        drop(metrics.reconcile_started("ExternalSecret"));
        metrics.vault_observer().request(Operation::Read, Some(200), Duration::from_millis(3));
        metrics.vault_observer().login("kubernetes", LoginOutcome::Success);
        let owner = ClientOwner {
            store: crate::vault_clients::identity::StoreId::secret_store("team-a", "vault"),
            namespace: None,
        };
        metrics.set_token_ttls([(&owner, Duration::from_secs(600))]);
        metrics.set_due("ExternalSecret", 0);
        let text = encoded(&metrics, totals(1, 1, 1), 1);
        if std::env::var_os("PRINT_METRICS").is_some() {
            println!("{text}");
        }
        // The admin server adds the process_* families (vaultsync_serve
        // checks those against the same sample).
        let operators: Vec<String> = types(sample).into_iter().filter(|t| !t.starts_with("# TYPE process_")).collect();
        assert_eq!(operators, types(&text));
    }
}
