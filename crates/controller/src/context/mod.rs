//! The state every reconcile shares: configuration, watch caches, what the
//! last sync of each ExternalSecret did, backoffs, and the parts that hold
//! clients, outages, metrics and leases.

pub(crate) mod due;
pub(crate) mod lease_books;
pub(crate) mod target_kinds;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use vaultsync_api::{ClusterSecretStore, ExternalSecret, SecretStore};

use self::due::DueTracker;
use crate::observe::metrics::Metrics;
use crate::process::Standing;
use crate::served::Group;
use crate::vault_clients::audiences::ApiAudiences;
use crate::vault_clients::cache::VaultCache;
use crate::vault_clients::outage::Outages;

/// Settings of a controller process.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest extra delay added to each refresh, as a fraction of the
    /// interval, so objects created together do not all hit Vault together.
    pub jitter: f64,
    /// Audience of ServiceAccount tokens when a store names none.
    pub default_audience: String,
    /// Lifetime asked for ServiceAccount tokens used to log in.
    pub token_expiration: Duration,
    /// How often a healthy store's login is checked again.
    pub store_recheck: Duration,
    /// How long one Vault read serves other readers of the same secret.
    pub read_window: Duration,
    /// How many ExternalSecrets are reconciled at once.
    pub concurrency: u16,
    /// The shortest refreshInterval honoured (a shorter one, other than 0,
    /// counts as this): one object must not hammer a store's identity that
    /// many share.
    pub min_refresh_interval: Duration,
    /// Set for a namespace-scoped install: only this namespace is watched,
    /// and cluster-scoped kinds are not served (the install's RBAC grants
    /// nothing outside it).
    pub namespace: Option<String>,
    /// When set, ServiceAccount tokens are requested only for
    /// ServiceAccounts in namespaces whose labels match.
    pub token_namespace_selector: Option<LabelSelector>,
    /// The stores served: those whose `spec.controller` is unset or this.
    pub controller_class: String,
    /// Serve ESO's API group (`external-secrets.io`) too: its stores whose
    /// `spec.controller` is `controller_class`, and the ExternalSecrets
    /// using them.
    pub eso_api: bool,
    /// With `eso_api`, also serve ESO-group stores with no
    /// `spec.controller`: for a cluster whose ESO controller is gone (while
    /// ESO runs, it serves those itself).
    pub eso_claim_unclassed: bool,
    /// The kinds `target.manifest` may write, as `apiVersion/Kind`
    /// (`--generic-target`); none by default.
    pub generic_targets: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            jitter: 0.1,
            default_audience: "vault".into(),
            token_expiration: Duration::from_secs(600),
            store_recheck: Duration::from_secs(300),
            read_window: Duration::from_secs(1),
            concurrency: 16,
            min_refresh_interval: Duration::from_secs(1),
            namespace: None,
            token_namespace_selector: None,
            controller_class: vaultsync_api::DEFAULT_CONTROLLER_CLASS.to_owned(),
            eso_api: false,
            eso_claim_unclassed: false,
            generic_targets: Vec::new(),
        }
    }
}

/// What the last successful sync of one ExternalSecret was, so a reconcile
/// triggered by our own write (or a status change) does not read Vault again.
#[derive(Clone, Debug)]
pub(crate) struct SyncMemo {
    pub generation: Option<i64>,
    /// Value of the force-sync annotation this sync saw.
    pub force_sync: Option<String>,
    pub store_fingerprint: String,
    pub data_hash: String,
    pub keys: Vec<String>,
    pub next_refresh: Option<Instant>,
    /// When Vault was last read successfully (RFC 3339).
    pub refresh_time: String,
    /// resourceVersion of the Secret as last written or found.
    pub resource_version: Option<String>,
    /// Set by a failed sync: the next reconcile reads Vault again.
    pub stale: bool,
}

/// Watch caches a reconcile reads before asking the API server. `run` fills
/// them, anew for each term of leadership (the previous term's watches are
/// gone); `vaultsync render` has none and always asks. A cache that does
/// not have an object yet (start-up, watch lag) is never trusted for
/// absence: the reconcile then asks the API server.
#[derive(Default)]
pub(crate) struct Caches {
    /// Metadata of the Secrets vaultsync manages.
    pub managed_secrets: CacheSlot<PartialObjectMeta<Secret>>,
    pub secret_stores: CacheSlot<SecretStore>,
    pub cluster_stores: CacheSlot<ClusterSecretStore>,
    pub generators: CacheSlot<vaultsync_api::VaultDynamicSecret>,
}

/// The current watch cache of one kind, if any.
pub(crate) struct CacheSlot<K: kube::Resource + Clone + 'static>(RwLock<Option<Store<K>>>)
where
    K::DynamicType: std::hash::Hash + Eq + Clone;

impl<K: kube::Resource + Clone + 'static> Default for CacheSlot<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    fn default() -> Self {
        Self(RwLock::new(None))
    }
}

impl<K: kube::Resource + Clone + 'static> CacheSlot<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    pub fn set(&self, store: Store<K>) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(store);
    }

    pub fn get(&self) -> Option<Store<K>> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Senders into the store controllers' reconcile queues, one set per run.
pub(crate) struct StoreRecheck {
    pub stores: futures::channel::mpsc::UnboundedSender<ObjectRef<SecretStore>>,
    pub cluster_stores: Option<futures::channel::mpsc::UnboundedSender<ObjectRef<ClusterSecretStore>>>,
}

/// Shared state of every reconcile.
pub struct Context {
    pub client: kube::Client,
    pub config: Config,
    /// The API group this context's controllers serve; each group has a
    /// context of its own (see [`Context::for_group`]).
    pub(crate) group: Group,
    pub(crate) recorder: Recorder,
    pub(crate) vault: Arc<VaultCache>,
    pub(crate) outages: Arc<Outages>,
    pub(crate) metrics: Arc<Metrics>,
    /// ExternalSecrets with a reconcile due and not started.
    pub(crate) due: DueTracker<ObjectRef<ExternalSecret>>,
    pub(crate) caches: Caches,
    pub(crate) api_audiences: Arc<ApiAudiences>,
    /// Readiness and leadership of the process; the health server and the
    /// term loop hold it too.
    standing: Arc<Standing>,
    /// Where to ask for a store to be checked again: an ExternalSecret that
    /// just synced through a store reported not Ready proves it works.
    recheck: Mutex<Option<StoreRecheck>>,
    memos: Mutex<HashMap<ObjectRef<ExternalSecret>, SyncMemo>>,
    failures: Mutex<HashMap<String, u32>>,
    /// Leases of credentials generators issued, by ExternalSecret.
    pub(crate) leases: lease_books::LeaseBooks,
    /// The `target.manifest` kinds resolved so far.
    pub(crate) target_kinds: Arc<target_kinds::TargetKinds>,
}

impl Context {
    pub fn new(client: kube::Client, config: Config) -> Self {
        let reporter = Reporter { controller: "vaultsync".into(), instance: std::env::var("POD_NAME").ok() };
        let metrics = Metrics::default();
        // Without leader election the one replica leads.
        metrics.set_leader(true);
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            config,
            group: Group::Vaultsync,
            vault: Arc::new(VaultCache::observed(metrics.vault_observer())),
            outages: Arc::default(),
            metrics: Arc::new(metrics),
            due: DueTracker::default(),
            caches: Caches::default(),
            api_audiences: Arc::default(),
            standing: Arc::default(),
            recheck: Mutex::default(),
            memos: Mutex::default(),
            failures: Mutex::default(),
            leases: Default::default(),
            target_kinds: Arc::default(),
        }
    }

    /// A context for the controllers of `group`, sharing this one's API
    /// client, Vault clients, metrics, audiences and standing, with
    /// everything kept per ExternalSecret (memos, backoffs, leases, caches,
    /// outage waiters) of its own: the two groups' objects may share
    /// names. Made anew for each term of leadership, so it starts as
    /// [`Context::begin_term`] leaves this one.
    pub(crate) fn for_group(&self, group: Group) -> Context {
        Context {
            client: self.client.clone(),
            config: self.config.clone(),
            group,
            recorder: self.recorder.clone(),
            vault: self.vault.clone(),
            outages: Arc::default(),
            metrics: self.metrics.clone(),
            due: DueTracker::default(),
            caches: Caches::default(),
            api_audiences: self.api_audiences.clone(),
            standing: self.standing.clone(),
            recheck: Mutex::default(),
            memos: Mutex::default(),
            failures: Mutex::default(),
            leases: Default::default(),
            target_kinds: self.target_kinds.clone(),
        }
    }

    /// Where this process stands: for `/ready`, the Lease loop and the
    /// run's cache sync.
    pub fn standing(&self) -> &Arc<Standing> {
        &self.standing
    }

    /// Leader election is on; this replica starts as a standby.
    pub fn enable_leader_election(&self) {
        self.standing.enable_election();
        self.metrics.set_leader(false);
    }

    /// A term of leadership begins. It starts as a restarted process
    /// would: caches not yet synced, nothing remembered of syncs another
    /// leader may have redone since.
    pub fn begin_term(&self) {
        self.memos.lock().expect("memo lock").clear();
        self.failures.lock().expect("failure lock").clear();
        // Another leader may have renewed or replaced leases meanwhile:
        // the status (and the values Secret) say what lives now.
        self.leases.clear();
        self.due.clear();
        self.standing.set_leading(true);
        self.metrics.set_leader(true);
    }

    /// A term of leadership ends: nothing is due on a standby.
    pub fn end_term(&self) {
        self.due.clear();
        self.standing.set_leading(false);
        self.metrics.set_leader(false);
    }

    /// Closes every Vault client and revokes the tokens it logged in for
    /// (tokens given in a store's `tokenSecretRef` are the user's, left
    /// alone), waiting at most `timeout`. For the shutdown path, once the
    /// controllers have stopped, and the end of a term of leadership.
    pub async fn revoke_vault_tokens(&self, timeout: Duration) {
        self.vault.revoke_all(timeout).await;
    }

    pub(crate) fn set_store_recheck(&self, recheck: StoreRecheck) {
        *self.recheck.lock().expect("recheck lock") = Some(recheck);
    }

    /// `es` just synced through its stores: if a store's cached status
    /// still says it does not work, have the store controller look again
    /// now instead of at its next backoff.
    pub(crate) fn store_proven(&self, es: &ExternalSecret) {
        let failing = |status: Option<&vaultsync_api::SecretStoreStatus>| {
            status.is_some_and(|s| {
                s.conditions.iter().any(|c| c.type_ == "Ready" && c.status != vaultsync_api::ConditionStatus::True)
            })
        };
        let recheck = self.recheck.lock().expect("recheck lock");
        let Some(recheck) = recheck.as_ref() else { return };
        for store_ref in es.spec.store_refs() {
            match store_ref.kind {
                vaultsync_api::StoreKind::SecretStore => {
                    let Some(namespace) = es.metadata.namespace.as_deref() else { continue };
                    let key = ObjectRef::new(&store_ref.name).within(namespace);
                    let cached = self.caches.secret_stores.get().and_then(|c| c.get(&key));
                    if cached.is_some_and(|store| failing(store.status.as_ref())) {
                        let _ = recheck.stores.unbounded_send(key);
                    }
                }
                vaultsync_api::StoreKind::ClusterSecretStore => {
                    let key = ObjectRef::new(&store_ref.name);
                    let cached = self.caches.cluster_stores.get().and_then(|c| c.get(&key));
                    if let (Some(sender), true) =
                        (&recheck.cluster_stores, cached.is_some_and(|s| failing(s.status.as_ref())))
                    {
                        let _ = sender.unbounded_send(key);
                    }
                }
            }
        }
    }

    /// Appends the operator's series (OpenMetrics text, without `# EOF`).
    pub fn encode_metrics(&self, out: &mut String) {
        let (totals, clients) = self.vault.totals();
        self.metrics.set_servers_down(self.outages.down_count());
        self.metrics.set_due("ExternalSecret", self.due.depth());
        self.metrics.set_token_ttls(self.vault.token_ttls().iter().map(|(owner, ttl)| (owner, *ttl)));
        self.metrics.encode(totals, clients, out);
    }

    pub(crate) fn memo(&self, key: &ObjectRef<ExternalSecret>) -> Option<SyncMemo> {
        self.memos.lock().expect("memo lock").get(key).cloned()
    }

    pub(crate) fn remember(&self, key: ObjectRef<ExternalSecret>, memo: SyncMemo) {
        self.memos.lock().expect("memo lock").insert(key, memo);
    }

    pub(crate) fn forget(&self, key: &ObjectRef<ExternalSecret>) {
        self.memos.lock().expect("memo lock").remove(key);
        self.due.forget(key);
    }

    /// ExternalSecrets a watched change calls for, counted as due.
    pub(crate) fn triggered(&self, keys: Vec<ObjectRef<ExternalSecret>>) -> Vec<ObjectRef<ExternalSecret>> {
        for key in &keys {
            self.due.triggered(key.clone());
        }
        keys
    }

    /// Asks for `key` to be reconciled again after `after`, and counts it
    /// as due from then on.
    pub(crate) fn requeue(&self, key: &ObjectRef<ExternalSecret>, after: Duration) -> Action {
        self.due.requeued(key.clone(), after);
        Action::requeue(after)
    }

    /// After a failure the next reconcile must read Vault again, while what
    /// the last success recorded (refresh time) stays reportable.
    pub(crate) fn mark_stale(&self, key: &ObjectRef<ExternalSecret>) {
        if let Some(memo) = self.memos.lock().expect("memo lock").get_mut(key) {
            memo.stale = true;
        }
    }

    /// Delay before retrying an object that failed (`key`: [`backoff_key`]): 5s doubling to 5m, so a
    /// broken store does not hammer Vault, and a fixed one recovers fast.
    pub(crate) fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().expect("failure lock");
        let count = failures.entry(key.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        let secs = 5u64.saturating_mul(1 << (*count - 1).min(6));
        Duration::from_secs(secs.min(300))
    }

    pub(crate) fn reset_backoff(&self, key: &str) {
        self.failures.lock().expect("failure lock").remove(key);
    }

    /// `interval` plus up to `config.jitter` of it.
    pub(crate) fn jittered(&self, interval: Duration) -> Duration {
        let extra = interval.mul_f64(self.config.jitter * rand::random::<f64>());
        interval + extra
    }
}

/// The key of an object's backoff: kind, namespace and name, so that a
/// SecretStore, a ClusterSecretStore and an ExternalSecret that share a name
/// (or a namespace that shares a kind's name) never share a backoff.
pub(crate) fn backoff_key<K: kube::Resource<DynamicType = ()>>(object: &K) -> String {
    let meta = object.meta();
    format!(
        "{}/{}/{}",
        K::kind(&()),
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// How logs name an object: namespace/name, or the name of a cluster-scoped one.
pub(crate) fn object_ref<K: kube::Resource>(object: &K) -> String {
    let meta = object.meta();
    match &meta.namespace {
        Some(namespace) => format!("{namespace}/{}", meta.name.as_deref().unwrap_or_default()),
        None => meta.name.clone().unwrap_or_default(),
    }
}
