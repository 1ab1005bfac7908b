//! One authenticated Vault client per store identity, so a reconcile never
//! logs in by itself: the client logs in once and renews its token.
//!
//! A client leaves the cache when its store is deleted, when the store's
//! settings or credentials change (the new client replaces it), when the
//! last ExternalSecret of a namespace using a ClusterSecretStore with
//! per-namespace credentials goes, and on shutdown. Leaving, it is closed:
//! once the syncs still holding it are done, the token it logged in for is
//! revoked, as ESO does when it closes a client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tracing::{debug, info};
use vaultsync_vault::{Client, Observer};

use crate::vault_clients::identity::{ClientOwner, Credentials, StoreId};
use crate::vault_clients::reads::KvRead;

/// How long a closed client waits for the syncs still using it.
const CLOSE_GRACE: Duration = Duration::from_secs(30);

struct Entry {
    owner: ClientOwner,
    fingerprint: String,
    client: Client,
    created: Instant,
}

/// Logins, read requests and token revocations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct VaultTotals {
    pub logins: u64,
    pub reads: u64,
    pub revocations: u64,
    pub coalesced: u64,
}

impl VaultTotals {
    fn add(&mut self, client: &Client) {
        self.logins += client.login_count();
        self.reads += client.read_count();
        self.revocations += client.revocation_count();
        self.coalesced += client.coalesced_count();
    }
}

#[derive(Default)]
pub(crate) struct VaultCache {
    clients: Mutex<HashMap<String, Entry>>,
    /// Told of every request and login of every client.
    observer: Option<Arc<dyn Observer>>,
    /// Totals of clients closed since, so totals never shrink.
    retired: Arc<Mutex<VaultTotals>>,
    /// Clients being closed.
    closing: Mutex<JoinSet<()>>,
    /// Where reads go instead of the clients' Vault servers: set by tests
    /// only, `None` in the operator.
    stand_in: Option<Arc<dyn KvRead>>,
}

impl VaultCache {
    /// A cache whose clients report their traffic to `observer`.
    pub fn observed(observer: Arc<dyn Observer>) -> Self {
        Self { observer: Some(observer), ..Self::default() }
    }

    /// The cached client for these credentials, or a new one when there is
    /// none or the store's settings or credential material changed (the
    /// old one is then closed).
    pub fn client(&self, credentials: Credentials) -> Result<Client, vaultsync_vault::Error> {
        let mut clients = self.clients.lock().expect("vault cache lock");
        let key = credentials.owner.to_string();
        if let Some(entry) = clients.get(&key)
            && entry.fingerprint == credentials.fingerprint
        {
            return Ok(entry.client.clone());
        }
        let client = match &self.observer {
            Some(observer) => Client::observed(credentials.server, credentials.auth, observer.clone())?,
            None => Client::new(credentials.server, credentials.auth)?,
        };
        let entry = Entry {
            owner: credentials.owner,
            fingerprint: credentials.fingerprint,
            client: client.clone(),
            created: Instant::now(),
        };
        if let Some(old) = clients.insert(key, entry) {
            self.close(old, "its store's settings or credentials changed");
        }
        Ok(client)
    }

    /// What a sync reads `client`'s secrets through: the client itself, or
    /// the tests' stand-in.
    pub fn reads<'a>(&'a self, client: &'a Client) -> &'a dyn KvRead {
        match &self.stand_in {
            Some(stand_in) => stand_in.as_ref(),
            None => client,
        }
    }

    /// Sends every read to `stand_in`; clients are still built (and report
    /// outages) as in the operator, but never asked for a secret.
    #[cfg(test)]
    pub fn read_through(&mut self, stand_in: Arc<dyn KvRead>) {
        self.stand_in = Some(stand_in);
    }

    /// Closes the clients of a deleted store.
    pub fn drop_store(&self, store: &StoreId) {
        self.drop_where(|owner| owner.store == *store, "its store was deleted");
    }

    /// Closes the client a ClusterSecretStore built from `namespace`'s
    /// objects, once no ExternalSecret of that namespace uses it.
    pub fn drop_namespace_client(&self, store: &StoreId, namespace: &str) {
        self.drop_where(
            |owner| owner.store == *store && owner.namespace.as_deref() == Some(namespace),
            "no ExternalSecret of its namespace uses it any more",
        );
    }

    /// Closes the clients whose owner `gone` says is gone.
    pub fn drop_where(&self, gone: impl Fn(&ClientOwner) -> bool, why: &'static str) {
        self.drop_older_where(Duration::ZERO, gone, why);
    }

    /// Closes the clients older than `age` whose owner `gone` says is gone.
    pub fn drop_older_where(&self, age: Duration, gone: impl Fn(&ClientOwner) -> bool, why: &'static str) {
        let removed: Vec<Entry> = {
            let mut clients = self.clients.lock().expect("vault cache lock");
            let keys: Vec<String> = clients
                .iter()
                .filter(|(_, e)| e.created.elapsed() >= age && gone(&e.owner))
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| clients.remove(k)).collect()
        };
        for entry in removed {
            self.close(entry, why);
        }
    }

    /// Closes every client and waits (at most `timeout`) until their
    /// tokens are revoked: for the shutdown path, and the end of a term
    /// of leadership.
    pub async fn revoke_all(&self, timeout: Duration) {
        self.drop_where(|_| true, "the operator is stopping");
        let mut closing = std::mem::take(&mut *self.closing.lock().expect("vault cache lock"));
        let all_done = async { while closing.join_next().await.is_some() {} };
        if tokio::time::timeout(timeout, all_done).await.is_err() {
            info!("Vault tokens not all revoked in time; the rest expire with their TTL");
        }
    }

    fn close(&self, entry: Entry, why: &'static str) {
        let Entry { owner, client, .. } = entry;
        let retired = self.retired.clone();
        let task = async move {
            match client.close(CLOSE_GRACE).await {
                Ok(true) => info!(client = %owner, why, "Vault client closed, its token revoked"),
                Ok(false) => debug!(client = %owner, why, "Vault client closed, no token of ours to revoke"),
                Err(error) => info!(client = %owner, why, %error, "Vault client closed; revoking its token failed"),
            }
            retired.lock().expect("vault cache lock").add(&client);
        };
        let mut closing = self.closing.lock().expect("vault cache lock");
        // Reap the closes already done, so the set holds only those under way.
        while closing.try_join_next().is_some() {}
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                closing.spawn_on(task, &handle);
            }
            // No runtime (never in the operator): nothing can be revoked.
            Err(_) => drop(task),
        }
    }

    /// The TTL left on each cached client's token, where it has one that
    /// expires.
    pub fn token_ttls(&self) -> Vec<(ClientOwner, Duration)> {
        let clients = self.clients.lock().expect("vault cache lock");
        clients.values().filter_map(|e| Some((e.owner.clone(), e.client.token_ttl_remaining()?))).collect()
    }

    /// Totals of every client, and the number of cached clients.
    pub fn totals(&self) -> (VaultTotals, usize) {
        let clients = self.clients.lock().expect("vault cache lock");
        let mut totals = *self.retired.lock().expect("vault cache lock");
        for entry in clients.values() {
            totals.add(&entry.client);
        }
        (totals, clients.len())
    }
}

#[cfg(test)]
mod tests {
    use vaultsync_vault::{Auth, Sensitive, ServerConfig};

    use super::*;

    fn credentials(store: StoreId, namespace: Option<&str>, fingerprint: &str) -> Credentials {
        Credentials {
            // Nothing listens there; these clients never log in.
            server: ServerConfig { address: "http://127.0.0.1:1".into(), ..ServerConfig::default() },
            auth: Auth::Token(Sensitive::new("t")),
            fingerprint: fingerprint.into(),
            owner: ClientOwner { store, namespace: namespace.map(str::to_owned) },
        }
    }

    fn clients(cache: &VaultCache) -> usize {
        cache.totals().1
    }

    #[tokio::test]
    async fn one_client_per_owner_replaced_when_credentials_change() {
        let cache = VaultCache::default();
        let store = StoreId::secret_store("team-a", "vault");
        cache.client(credentials(store.clone(), None, "f1")).unwrap();
        cache.client(credentials(store.clone(), None, "f1")).unwrap();
        assert_eq!(clients(&cache), 1);
        // New settings or credentials: the new client replaces the old.
        cache.client(credentials(store.clone(), None, "f2")).unwrap();
        assert_eq!(clients(&cache), 1);
        cache.client(credentials(StoreId::secret_store("team-b", "vault"), None, "f1")).unwrap();
        assert_eq!(clients(&cache), 2);
    }

    #[tokio::test]
    async fn deleted_stores_and_unused_namespace_clients_are_dropped() {
        let cache = VaultCache::default();
        let cluster = StoreId::cluster_store("shared");
        let namespaced = StoreId::secret_store("team-a", "shared");
        cache.client(credentials(cluster.clone(), Some("team-a"), "f")).unwrap();
        cache.client(credentials(cluster.clone(), Some("team-b"), "f")).unwrap();
        cache.client(credentials(namespaced.clone(), None, "f")).unwrap();
        assert_eq!(clients(&cache), 3);
        cache.drop_namespace_client(&cluster, "team-a");
        assert_eq!(clients(&cache), 2);
        // A SecretStore of the same name is another store.
        cache.drop_store(&cluster);
        assert_eq!(clients(&cache), 1);
        cache.drop_store(&namespaced);
        assert_eq!(clients(&cache), 0);
        cache.client(credentials(namespaced, None, "f")).unwrap();
        cache.revoke_all(Duration::from_secs(5)).await;
        assert_eq!(clients(&cache), 0);
        assert!(cache.closing.lock().unwrap().is_empty(), "revoke_all waits for every close");
    }

    #[tokio::test]
    async fn the_sweep_spares_young_clients() {
        let cache = VaultCache::default();
        cache.client(credentials(StoreId::secret_store("team-a", "vault"), None, "f")).unwrap();
        cache.drop_older_where(Duration::from_secs(60), |_| true, "test");
        assert_eq!(clients(&cache), 1);
        cache.drop_older_where(Duration::ZERO, |_| true, "test");
        assert_eq!(clients(&cache), 0);
    }
}
