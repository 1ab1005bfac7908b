//! Shared helpers of the e2e tests. The environment (kube-apiserver, etcd,
//! kube-controller-manager, OpenBao, the operator) is started by
//! `scripts/e2e.sh`; each test gets its own namespace and its own OpenBao
//! paths, so tests run in parallel.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::{Event, Namespace, Secret, ServiceAccount};
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde_json::{Value, json};
use vaultsync_api::{ClusterSecretStore, ExternalSecret, SecretStore};

mod bao;
pub mod certs;
mod events;
mod force_sync;
mod ldap;
mod metrics;
mod paths;
mod pods;
mod postgres;
mod private_bao;
mod relay;
mod webhook;
pub use bao::Bao;
pub use events::{Seen, events_about};
pub use ldap::Ldap;
pub use metrics::sample;
pub use paths::{repo_root, vaultsync_binary};
pub use pods::{injected, pod};
pub use postgres::Postgres;
pub use private_bao::PrivateBao;
pub use relay::TcpRelay;
pub use webhook::Webhook;

/// One test's slice of the shared environment.
pub struct TestEnv {
    pub client: Client,
    pub bao: Bao,
    /// A namespace of this test's own, deleted when the test ends.
    pub namespace: String,
    /// A prefix of OpenBao paths of this test's own.
    pub prefix: String,
    state: PathBuf,
    namespaces: Vec<String>,
}

impl TestEnv {
    /// Connects to the environment and creates the test's namespace.
    pub async fn new(test: &str) -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let state = PathBuf::from(
            std::env::var("VAULTSYNC_STATE")
                .context("VAULTSYNC_STATE is not set: run the e2e suite with `make e2e`")?,
        );
        let client = Client::try_default().await.context("kube client")?;
        let suffix: u32 = rand::random::<u32>() % 100_000;
        let namespace = format!("{}-{suffix}", test.replace('_', "-"));
        let mut env = Self {
            client,
            bao: Bao::from_env()?,
            prefix: format!("{test}-{suffix}"),
            namespace: namespace.clone(),
            state,
            namespaces: Vec::new(),
        };
        env.create_namespace(&namespace).await?;
        Ok(env)
    }

    /// An OpenBao policy that may read this test's own KV v2 paths.
    pub fn read_policy(&self) -> String {
        format!("path \"secret/data/{}/*\" {{ capabilities = [\"read\"] }}", self.prefix)
    }

    /// Writes [`Self::read_policy`] as the policy named after the test.
    pub async fn write_read_policy(&self) -> Result<()> {
        self.bao.write(&format!("sys/policies/acl/{}", self.prefix), json!({"policy": self.read_policy()})).await?;
        Ok(())
    }

    /// A Kubernetes auth role named after the test: ServiceAccount `app` of
    /// `namespaces`, audience `vault`, the test's read policy.
    pub async fn write_kubernetes_role(&self, namespaces: &[&str]) -> Result<()> {
        self.bao
            .write(
                &format!("auth/kubernetes/role/{}", self.prefix),
                json!({
                    "bound_service_account_names": ["app"],
                    "bound_service_account_namespaces": namespaces,
                    "audience": "vault",
                    "token_policies": [self.prefix],
                    "token_ttl": "10m",
                }),
            )
            .await?;
        Ok(())
    }

    /// A database role issuing credentials that live `ttl` and at most `max`,
    /// and a token (in Secret `vault-token`) whose policy may issue, renew and
    /// revoke them.
    pub async fn database_role(&self, ttl: &str, max: &str) -> Result<()> {
        self.bao
            .write(
                &format!("database/roles/{}", self.prefix),
                json!({
                    "db_name": "postgres",
                    "default_ttl": ttl,
                    "max_ttl": max,
                    "creation_statements": [
                        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
                        "GRANT CONNECT ON DATABASE app TO \"{{name}}\";",
                    ],
                }),
            )
            .await?;
        let policy = format!(
            "path \"database/creds/{p}\" {{ capabilities = [\"read\"] }}\n\
             path \"database/static-creds/static-app\" {{ capabilities = [\"read\"] }}\n\
             path \"pki/issue/example-dot-com\" {{ capabilities = [\"update\"] }}\n\
             path \"sys/leases/renew\" {{ capabilities = [\"update\"] }}\n\
             path \"sys/leases/revoke\" {{ capabilities = [\"update\"] }}",
            p = self.prefix
        );
        self.bao.write(&format!("sys/policies/acl/{}", self.prefix), json!({"policy": policy})).await?;
        // Vault ends a token's leases with the token: this one outlives the test.
        let token = self.bao.write("auth/token/create", json!({"policies": [self.prefix], "ttl": "2h"})).await?;
        let token = token["auth"]["client_token"].as_str().context("client_token")?.to_owned();
        self.create_secret("vault-token", &[("token", &token)]).await?;
        Ok(())
    }

    /// A VaultDynamicSecret `provider` that logs in with the token of
    /// [`Self::database_role`].
    pub fn generator_provider(&self) -> Value {
        json!({
            "server": self.bao.addr,
            "allowInsecureHttp": true,
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}},
        })
    }

    /// A view of the same test in another of its namespaces.
    pub fn in_namespace(&self, namespace: &str) -> TestEnv {
        TestEnv {
            client: self.client.clone(),
            bao: self.bao.clone(),
            namespace: namespace.to_owned(),
            prefix: self.prefix.clone(),
            state: self.state.clone(),
            namespaces: Vec::new(),
        }
    }

    /// Creates one more namespace, removed with the test's.
    pub async fn create_namespace(&mut self, name: &str) -> Result<()> {
        self.create_labelled_namespace(name, json!({})).await
    }

    /// Creates one more namespace with labels, removed with the test's.
    pub async fn create_labelled_namespace(&mut self, name: &str, labels: Value) -> Result<()> {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))?;
        Api::<Namespace>::all(self.client.clone()).create(&PostParams::default(), &ns).await?;
        self.namespaces.push(name.to_owned());
        // Kubernetes auth needs the namespace's ServiceAccounts; wait until
        // the controller manager is done with it.
        let sa = Api::<ServiceAccount>::namespaced(self.client.clone(), name);
        eventually(Duration::from_secs(30), || async { Ok(sa.get_opt("default").await?.is_some()) })
            .await
            .context("default ServiceAccount")?;
        Ok(())
    }

    /// A value to store in OpenBao. Recorded so the suite can check that it
    /// never reaches the operator's output.
    pub fn secret_value(&self, label: &str) -> String {
        let value = format!("{label}-{:016x}", rand::random::<u64>());
        self.record_secret(&value);
        value
    }

    /// Records a fixed value (a line of a test key, say) for the same check.
    pub fn record_secret(&self, value: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state.join("seeded-values"))
            .expect("seeded-values file");
        writeln!(file, "{value}").expect("record seeded value");
    }

    /// Server-side applies a manifest (a JSON object) in the test namespace
    /// unless it names one.
    pub async fn apply(&self, mut manifest: Value) -> Result<DynamicObject> {
        let kind = manifest["kind"].as_str().unwrap_or_default();
        let ar = match manifest["apiVersion"].as_str().unwrap_or_default().split_once('/') {
            // ESO's group (the CRDs of e2e/eso/crds): served with --eso-api.
            Some(("external-secrets.io", version)) => eso_resource(kind, version),
            Some(("generators.external-secrets.io", version)) => ApiResource::from_gvk_with_plural(
                &kube::core::GroupVersionKind::gvk("generators.external-secrets.io", version, kind),
                &format!("{}s", kind.to_lowercase()),
            ),
            _ => api_resource(kind)?,
        };
        let namespaced = !["ClusterSecretStore", "ClusterExternalSecret", "Namespace"]
            .contains(&manifest["kind"].as_str().unwrap_or_default());
        if namespaced && manifest["metadata"]["namespace"].is_null() {
            manifest["metadata"]["namespace"] = json!(self.namespace);
        }
        let name = manifest["metadata"]["name"].as_str().context("metadata.name")?.to_owned();
        let api: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(
                self.client.clone(),
                manifest["metadata"]["namespace"].as_str().unwrap_or_default(),
                &ar,
            )
        } else {
            Api::all_with(self.client.clone(), &ar)
        };
        Ok(api.patch(&name, &PatchParams::apply("e2e").force(), &Patch::Apply(&manifest)).await?)
    }

    /// Applies every document of a YAML file under the repository root.
    pub async fn apply_file(&self, path: &str, edit: impl Fn(&mut Value)) -> Result<()> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join(path)).with_context(|| path.to_owned())?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).with_context(|| format!("{path} is not YAML"))?;
        for mut doc in docs.into_iter().filter(|d| !d.is_null()) {
            edit(&mut doc);
            self.apply(doc).await.with_context(|| format!("applying {path}"))?;
        }
        Ok(())
    }

    /// A Secret in the test namespace holding `data`.
    pub async fn create_secret(&self, name: &str, data: &[(&str, &str)]) -> Result<()> {
        let data: BTreeMap<&str, &str> = data.iter().copied().collect();
        self.apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}))
            .await?;
        Ok(())
    }

    /// A SecretStore in the test namespace that logs in with a token.
    pub async fn token_store(&self, name: &str, token: &str, extra: Value) -> Result<()> {
        self.create_secret(&format!("{name}-token"), &[("token", token)]).await?;
        let mut vault = json!({
            "server": self.bao.addr,
            "path": "secret",
            "auth": {"tokenSecretRef": {"name": format!("{name}-token"), "key": "token"}},
        });
        merge(&mut vault, extra);
        self.apply(vault_store(name, vault)).await?;
        Ok(())
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn external_secrets(&self) -> Api<ExternalSecret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn stores(&self) -> Api<SecretStore> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn cluster_stores(&self) -> Api<ClusterSecretStore> {
        Api::all(self.client.clone())
    }

    /// The data of a Secret as strings, once it exists.
    pub async fn wait_secret(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let api = self.secrets();
        eventually(Duration::from_secs(60), || async { Ok(api.get_opt(name).await?.is_some()) })
            .await
            .with_context(|| format!("Secret {name} never appeared"))?;
        self.secret_data(name).await
    }

    pub async fn secret_data(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let secret = self.secrets().get(name).await?;
        Ok(secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect())
    }

    /// Waits until the ExternalSecret's Ready condition has `status` and
    /// returns its (reason, message).
    pub async fn wait_ready(&self, name: &str, status: &str) -> Result<(String, String)> {
        let api = self.external_secrets();
        wait_condition(&format!("ExternalSecret {name}"), status, || async {
            Ok(ready_condition(api.get(name).await?.status.as_ref().map(|s| s.conditions.as_slice())))
        })
        .await
    }

    /// The ExternalSecret's Ready status now ("True", "False", "Unknown"),
    /// or "" before it has one.
    pub async fn ready_status(&self, name: &str) -> Result<String> {
        let es = self.external_secrets().get(name).await?;
        Ok(ready_condition(es.status.as_ref().map(|s| s.conditions.as_slice())).map(|c| c.0).unwrap_or_default())
    }

    /// Same as [`Self::wait_ready`] for a SecretStore.
    pub async fn wait_store_ready(&self, name: &str, status: &str) -> Result<(String, String)> {
        let api = self.stores();
        wait_condition(&format!("SecretStore {name}"), status, || async {
            Ok(ready_condition(api.get(name).await?.status.as_ref().map(|s| s.conditions.as_slice())))
        })
        .await
    }

    /// Waits for a Warning event on the named ExternalSecret and returns the
    /// messages of all of them.
    pub async fn wait_warning(&self, es_name: &str) -> Result<String> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let fields = format!("involvedObject.name={es_name},type=Warning");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let events = api.list(&ListParams::default().fields(&fields)).await?;
            let message = events.items.iter().filter_map(|e| e.message.clone()).collect::<Vec<_>>().join("\n");
            if !message.is_empty() {
                return Ok(message);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        bail!("no Warning event for {es_name}")
    }

    /// Deletes what the test created (namespaces and OpenBao paths are
    /// unique per test, so a failed test leaves nothing in another's way).
    /// The Ready condition of an ESO-group object (served by vaultsync
    /// with `--eso-api`) of `kind` in the test namespace (cluster-wide for
    /// a ClusterSecretStore): (status, reason, message), if it has one.
    /// ESO-group objects of namespaced `kind` in the test namespace.
    pub fn eso_api(&self, kind: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &eso_resource(kind, "v1"))
    }

    /// The ESO-group object `name` of namespaced `kind`.
    pub async fn eso_object(&self, kind: &str, name: &str) -> Result<DynamicObject> {
        Ok(self.eso_api(kind).get(name).await?)
    }

    pub async fn eso_ready(&self, kind: &str, name: &str) -> Result<Option<(String, String, String)>> {
        let ar = eso_resource(kind, "v1");
        let api: Api<DynamicObject> = match kind {
            "ClusterSecretStore" | "ClusterExternalSecret" => Api::all_with(self.client.clone(), &ar),
            _ => Api::namespaced_with(self.client.clone(), &self.namespace, &ar),
        };
        let object = api.get(name).await?;
        let conditions = object.data["status"]["conditions"].as_array().cloned().unwrap_or_default();
        Ok(conditions.iter().find(|c| c["type"] == "Ready").map(|c| {
            let text = |key: &str| c[key].as_str().unwrap_or_default().to_owned();
            (text("status"), text("reason"), text("message"))
        }))
    }

    /// Waits until [`TestEnv::eso_ready`] has `status`; returns (reason, message).
    pub async fn wait_eso_ready(&self, kind: &str, name: &str, status: &str) -> Result<(String, String)> {
        wait_condition(&format!("{kind} {name} (external-secrets.io)"), status, || self.eso_ready(kind, name)).await
    }

    pub async fn cleanup(self) {
        let api = Api::<Namespace>::all(self.client.clone());
        for ns in &self.namespaces {
            let _ = api.delete(ns, &DeleteParams::default()).await;
        }
    }
}

/// Polls a Ready condition until it has `status`; returns (reason, message).
async fn wait_condition<F, Fut>(what: &str, status: &str, mut read: F) -> Result<(String, String)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<(String, String, String)>>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(Some(condition)) = read().await {
            if condition.0 == status {
                return Ok((condition.1, condition.2));
            }
            last = Some(condition);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("{what} never became Ready={status}; last condition: {last:?}")
}

fn ready_condition(conditions: Option<&[vaultsync_api::Condition]>) -> Option<(String, String, String)> {
    let c = conditions?.iter().find(|c| c.type_ == "Ready")?;
    let status = serde_json::to_value(c.status).ok()?.as_str()?.to_owned();
    Some((status, c.reason.clone().unwrap_or_default(), c.message.clone().unwrap_or_default()))
}

fn api_resource(kind: &str) -> Result<ApiResource> {
    Ok(match kind {
        "Secret" => ApiResource::erase::<Secret>(&()),
        "ConfigMap" => ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
        "ServiceAccount" => ApiResource::erase::<ServiceAccount>(&()),
        "Pod" => ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
        "RoleBinding" => ApiResource::erase::<k8s_openapi::api::rbac::v1::RoleBinding>(&()),
        "Namespace" => ApiResource::erase::<Namespace>(&()),
        "SecretStore" => ApiResource::erase::<SecretStore>(&()),
        "ClusterSecretStore" => ApiResource::erase::<ClusterSecretStore>(&()),
        "ExternalSecret" => ApiResource::erase::<ExternalSecret>(&()),
        "ClusterExternalSecret" => ApiResource::erase::<vaultsync_api::ClusterExternalSecret>(&()),
        "VaultDynamicSecret" => ApiResource::erase::<vaultsync_api::VaultDynamicSecret>(&()),
        "Deployment" => ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
        "StatefulSet" => ApiResource::erase::<k8s_openapi::api::apps::v1::StatefulSet>(&()),
        "DaemonSet" => ApiResource::erase::<k8s_openapi::api::apps::v1::DaemonSet>(&()),
        // The stand-in CRD of e2e/crds/argoproj.io.yaml.
        "Rollout" => vaultsync_api::argo_rollout_resource(),
        other => bail!("the e2e helpers do not know kind {other:?}"),
    })
}

/// A kind of ESO's group (`external-secrets.io`), whose plurals are the
/// lowercased kind plus `s`, as vaultsync's.
pub fn eso_resource(kind: &str, version: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("external-secrets.io", version, kind),
        &format!("{}s", kind.to_lowercase()),
    )
}

/// Deep-merges `extra` into `base`.
pub fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(base), Value::Object(extra)) => {
            for (k, v) in extra {
                merge(base.entry(k).or_insert(Value::Null), v);
            }
        }
        (base, extra) => *base = extra,
    }
}

/// Prints a measured figure and keeps it in `$VAULTSYNC_STATE/figures.txt`,
/// which `scripts/e2e.sh` shows at the end of the run (test output is
/// captured unless a test fails).
pub fn report(line: &str) {
    println!("{line}");
    if let Ok(state) = std::env::var("VAULTSYNC_STATE") {
        let path = std::path::Path::new(&state).join("figures.txt");
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(file, "{line}");
        }
    }
}

/// Polls `check` every 250ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    while Instant::now() < deadline {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_error = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    match last_error {
        Some(e) => Err(e.context(format!("condition not met within {timeout:?}"))),
        None => bail!("condition not met within {timeout:?}"),
    }
}

/// The owner references of an object, as (kind, name) pairs.
pub fn owners<K: Resource>(obj: &K) -> Vec<(String, String)> {
    obj.meta().owner_references.iter().flatten().map(|o| (o.kind.clone(), o.name.clone())).collect()
}

/// The ExternalSecret manifest most tests start from.
/// A vaultsync.dev SecretStore `name` of the test's namespace, its
/// `provider.vault` being `vault`.
pub fn vault_store(name: &str, vault: Value) -> Value {
    json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": name},
        "spec": {"provider": {"vault": vault}},
    })
}

pub fn external_secret(name: &str, store: &str, spec: Value) -> Value {
    let mut manifest = json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {"secretStoreRef": {"name": store}, "refreshInterval": "1h"},
    });
    merge(&mut manifest["spec"], spec);
    manifest
}

/// `vaultsync run` as an operator of the test's own, with the release's
/// rights (its ServiceAccount's kubeconfig), a free health port and `env`
/// (`VAULTSYNC_*` settings); its log goes to
/// `$VAULTSYNC_STATE/logs/{name}-operator.log`, where the suite's leak
/// check reads it. Stopped when the returned child is dropped.
pub fn spawn_operator(name: &str, env: &[(&str, &str)]) -> Result<tokio::process::Child> {
    let state = std::env::var("VAULTSYNC_STATE")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = std::fs::File::create(format!("{state}/logs/{name}-operator.log"))?;
    let mut command = tokio::process::Command::new(vaultsync_binary());
    command
        .arg("run")
        .env_clear()
        .env("KUBECONFIG", format!("{state}/operator.kubeconfig"))
        .env("VAULTSYNC_HEALTH_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stderr(log)
        .kill_on_drop(true);
    Ok(command.spawn()?)
}
