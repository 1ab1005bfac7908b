//! Test fixtures for the reconcilers: a fixture API server ([`api`]), an
//! in-memory Vault behind the reads trait ([`vault`]), builders of the
//! objects they hold, and a [`Harness`] wiring both into a `Context`.
//! Compiled for tests only.

pub(crate) mod api;
pub(crate) mod vault;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use vaultsync_api::{ExternalSecret, SecretStore};

use self::api::{FakeApi, path_of};
use self::vault::FakeVault;
use crate::context::{Config, Context};

pub(crate) const NAMESPACE: &str = "team-a";
/// The value the fake Vault holds at `secret/app/db`, property `password`:
/// no status, event or error may ever show it.
pub(crate) const SECRET_VALUE: &str = "hunter2-do-not-leak";

/// A fixture API server holding a working SecretStore `vault` and its
/// token, an in-memory Vault holding `secret/app/db`, and the `Context` a
/// reconcile runs with.
pub(crate) struct Harness {
    pub api: FakeApi,
    pub vault: Arc<FakeVault>,
    pub ctx: Arc<Context>,
}

impl Harness {
    /// No jitter, so requeue delays are exact.
    pub fn new() -> Self {
        Self::with_config(Config { jitter: 0.0, ..Config::default() })
    }

    pub fn with_config(config: Config) -> Self {
        let api = FakeApi::default();
        api.put(&secret_store("vault"));
        api.put(&secret("vault-token", &[("token", "root")], &[]));
        let vault = Arc::new(FakeVault::default());
        vault.put("secret/app/db", json!({"password": SECRET_VALUE, "user": "app"}));
        let mut ctx = Context::new(api.client(), config);
        Arc::get_mut(&mut ctx.vault).expect("the cache is not shared yet").read_through(vault.clone());
        Self { api, vault, ctx: Arc::new(ctx) }
    }

    /// The Secret `name` as the API server holds it now.
    pub fn secret(&self, name: &str) -> Option<Secret> {
        self.api.get(&path_of::<Secret>(NAMESPACE, name)).map(|v| serde_json::from_value(v).expect("a Secret"))
    }

    /// Requests that wrote (PATCH) or deleted the Secret `name`.
    pub fn secret_writes(&self, name: &str) -> Vec<api::Sent> {
        let path = path_of::<Secret>(NAMESPACE, name);
        self.api.sent().into_iter().filter(|s| s.path == path && s.method != "GET").collect()
    }

    /// The status bodies patched onto ExternalSecret `name`, in order.
    pub fn statuses(&self, name: &str) -> Vec<Value> {
        let path = format!("{}/status", path_of::<ExternalSecret>(NAMESPACE, name));
        self.api.sent_to("PATCH", &path).into_iter().map(|s| s.body["status"].clone()).collect()
    }

    /// The Ready condition of the last status patched onto `name`.
    pub fn ready(&self, name: &str) -> Value {
        let last = self.statuses(name).pop().expect("a status was written");
        last["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .cloned()
            .expect("a Ready condition")
    }

    /// Events posted, as sent.
    pub fn events(&self) -> Vec<Value> {
        self.api.sent().into_iter().filter(|s| s.path.contains("/events")).map(|s| s.body).collect()
    }
}

/// A Secret in [`NAMESPACE`] with string `data` and `annotations`.
pub(crate) fn secret(name: &str, data: &[(&str, &str)], annotations: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NAMESPACE.into()),
            annotations: Some(annotations.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
            ..ObjectMeta::default()
        },
        data: Some(data.iter().map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec()))).collect()),
        ..Secret::default()
    }
}

/// A SecretStore in [`NAMESPACE`] logging in with the token in Secret
/// `vault-token`; its server is never asked (reads go to the fake Vault).
pub(crate) fn secret_store(name: &str) -> SecretStore {
    serde_json::from_value(json!({
        "apiVersion": "vaultsync.dev/v1alpha1",
        "kind": "SecretStore",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"provider": {"vault": {
            "server": "http://127.0.0.1:1",
            "path": "secret",
            "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}},
        }}},
    }))
    .expect("a SecretStore")
}

/// An ExternalSecret `app` reading `password` from `secret/app/db` through
/// SecretStore `vault` every hour into Secret `app`; each setter changes
/// one thing.
pub(crate) struct ExternalSecretBuilder(Value);

impl ExternalSecretBuilder {
    pub fn new() -> Self {
        Self(json!({
            "apiVersion": "vaultsync.dev/v1alpha1",
            "kind": "ExternalSecret",
            "metadata": {"name": "app", "namespace": NAMESPACE, "uid": "uid-app", "generation": 1},
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                "target": {"name": "app"},
                "data": [{"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}}],
            },
        }))
    }

    pub fn refresh_interval(mut self, interval: &str) -> Self {
        self.0["spec"]["refreshInterval"] = interval.into();
        self
    }

    pub fn refresh_policy(mut self, policy: &str) -> Self {
        self.0["spec"]["refreshPolicy"] = policy.into();
        self
    }

    pub fn creation_policy(mut self, policy: &str) -> Self {
        self.0["spec"]["target"]["creationPolicy"] = policy.into();
        self
    }

    pub fn deletion_policy(mut self, policy: &str) -> Self {
        self.0["spec"]["target"]["deletionPolicy"] = policy.into();
        self
    }

    pub fn store(mut self, name: &str) -> Self {
        self.0["spec"]["secretStoreRef"]["name"] = name.into();
        self
    }

    /// Adds a key read from `key`'s `property`.
    pub fn data(mut self, secret_key: &str, key: &str, property: &str) -> Self {
        let item = json!({"secretKey": secret_key, "remoteRef": {"key": key, "property": property}});
        self.0["spec"]["data"].as_array_mut().expect("data is a list").push(item);
        self
    }

    /// Sets a field of the first `data` entry's `remoteRef`.
    pub fn remote_ref(mut self, field: &str, value: Value) -> Self {
        self.0["spec"]["data"][0]["remoteRef"][field] = value;
        self
    }

    /// Adds a `dataFrom` entry.
    pub fn data_from(mut self, entry: Value) -> Self {
        let list = self.0["spec"].as_object_mut().expect("spec").entry("dataFrom").or_insert_with(|| json!([]));
        list.as_array_mut().expect("dataFrom is a list").push(entry);
        self
    }

    pub fn generation(mut self, generation: i64) -> Self {
        self.0["metadata"]["generation"] = generation.into();
        self
    }

    pub fn force_sync(mut self, value: &str) -> Self {
        self.0["metadata"]["annotations"] = json!({ vaultsync_api::FORCE_SYNC_ANNOTATION: value });
        self
    }

    /// Being deleted, held by the lease finalizer, with `leases` in status.
    pub fn deleting_with_leases(mut self, leases: Value) -> Self {
        self.0["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        self.0["metadata"]["finalizers"] = json!([vaultsync_api::LEASE_FINALIZER]);
        self.0["status"] = json!({"leases": leases});
        self
    }

    pub fn build(self) -> Arc<ExternalSecret> {
        Arc::new(serde_json::from_value(self.0).expect("an ExternalSecret"))
    }
}

/// Annotations of a Secret that ExternalSecret `app` wrote.
pub(crate) fn ours() -> [(&'static str, &'static str); 1] {
    [(crate::EXTERNAL_SECRET_ANNOTATION, "app")]
}

/// How long `action` waits before the next reconcile, if it requeues.
pub(crate) fn requeue_after(action: &Action) -> Option<Duration> {
    // Action keeps its delay private; its Debug form shows it.
    let text = format!("{action:?}");
    let inner = text.split("Some(").nth(1)?.split(')').next()?;
    let (number, unit) = inner.split_at(inner.find(|c: char| c.is_alphabetic() || c == 'µ')?);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "µs" => number / 1e6,
        "ns" => number / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}
