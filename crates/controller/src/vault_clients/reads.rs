//! The reads a sync makes of a store's Vault, as a trait: the operator
//! reads through the store's cached [`Client`], and the reconciler's tests
//! through an in-memory Vault that counts reads and can fail, so they can
//! say whether a reconcile read Vault at all without a server to run.

use futures::future::BoxFuture;
use vaultsync_vault::{Client, Freshness, KvSecret, KvVersion, Result};

/// Reading KV secrets: exactly what `sync::remote` asks of a client.
pub(crate) trait KvRead: Send + Sync {
    /// One secret's data (a version of it, on KV v2).
    fn read_kv<'a>(
        &'a self,
        mount: &'a str,
        path: &'a str,
        kv: KvVersion,
        version: Option<&'a str>,
        freshness: Freshness,
    ) -> BoxFuture<'a, Result<KvSecret>>;

    /// One KV v2 secret's custom metadata, as its data.
    fn read_custom_metadata<'a>(&'a self, mount: &'a str, path: &'a str) -> BoxFuture<'a, Result<KvSecret>>;

    /// The paths of the secrets under `prefix`.
    fn list_secrets<'a>(&'a self, mount: &'a str, prefix: &'a str, kv: KvVersion)
    -> BoxFuture<'a, Result<Vec<String>>>;
}

impl KvRead for Client {
    fn read_kv<'a>(
        &'a self,
        mount: &'a str,
        path: &'a str,
        kv: KvVersion,
        version: Option<&'a str>,
        freshness: Freshness,
    ) -> BoxFuture<'a, Result<KvSecret>> {
        Box::pin(Client::read_kv(self, mount, path, kv, version, freshness))
    }

    fn read_custom_metadata<'a>(&'a self, mount: &'a str, path: &'a str) -> BoxFuture<'a, Result<KvSecret>> {
        Box::pin(Client::read_custom_metadata(self, mount, path))
    }

    fn list_secrets<'a>(
        &'a self,
        mount: &'a str,
        prefix: &'a str,
        kv: KvVersion,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(Client::list_secrets(self, mount, prefix, kv))
    }
}
