//! `vaultsync webhook` processes registered with the real API server
//! through a MutatingWebhookConfiguration whose clientConfig.url points at
//! them over TLS (each publishes its own CA into the configuration): what
//! the injection and the listener tests attack and rely on.

use std::time::Duration;

use anyhow::{Context as _, Result};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};

use crate::metrics::sample;
use crate::paths::vaultsync_binary;
use crate::pods::injected;
use crate::{TestEnv, eventually};

/// Webhook processes, and the MutatingWebhookConfiguration that sends them
/// the annotated Pods of one namespace.
pub struct Webhook {
    pub children: Vec<tokio::process::Child>,
    addrs: Vec<String>,
    /// The first replica's address.
    pub addr: String,
    config: String,
    client: kube::Client,
}

impl Webhook {
    /// `replicas` webhook processes; more than one share their certificate
    /// through a Secret of the test namespace, and each gets a webhook
    /// entry of its own (so every Pod goes through each of them).
    pub async fn start(env: &TestEnv, cert_lifetime: &str, replicas: usize) -> Result<Webhook> {
        let mut addrs = Vec::new();
        for _ in 0..replicas {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            addrs.push(format!("127.0.0.1:{port}"));
        }
        let addr = addrs[0].clone();
        let config = format!("vaultsync-inject-{}", env.prefix);
        let annotated = "has(object.metadata.annotations) && \
            (object.metadata.annotations.exists(k, k == 'vaultsync.dev/inject' && object.metadata.annotations[k] == 'true') || \
             object.metadata.annotations.exists(k, k == 'vault.hashicorp.com/agent-inject' && object.metadata.annotations[k] == 'true'))";
        let entries: Vec<Value> = addrs.iter().enumerate().map(|(i, addr)| json!({
                "name": format!("inject-{i}.vaultsync.dev"),
                "clientConfig": {"url": format!("https://{addr}/mutate")},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["pods"]}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": env.namespace}},
                "matchConditions": [{"name": "asks-for-injection", "expression": annotated}],
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 5,
            })).collect();
        let mwc: MutatingWebhookConfiguration =
            serde_json::from_value(json!({"metadata": {"name": config}, "webhooks": entries}))?;
        Api::<MutatingWebhookConfiguration>::all(env.client.clone()).create(&PostParams::default(), &mwc).await?;
        let state = std::env::var("VAULTSYNC_STATE")?;
        let mut children = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let log = std::fs::File::create(format!("{state}/logs/webhook-{}-{i}.log", env.prefix))?;
            let mut command = tokio::process::Command::new(vaultsync_binary());
            command
                .args(["webhook", "--listen", addr, "--hosts", "127.0.0.1", "--cert-lifetime", cert_lifetime])
                .args(["--vault-address", &env.bao.addr, "--agent-image", "registry.example.com/vaultsync:test"])
                .args(["--webhook-config", &config]);
            if replicas > 1 {
                command.args(["--tls-secret", "vaultsync-webhook-tls", "--tls-secret-namespace", &env.namespace]);
            }
            children.push(command.stderr(log).kill_on_drop(true).spawn()?);
        }
        let webhook = Webhook { children, addrs, addr, config, client: env.client.clone() };
        // Ready once its CA is in the configuration.
        let api = Api::<MutatingWebhookConfiguration>::all(env.client.clone());
        eventually(Duration::from_secs(30), || async {
            let current = api.get(&webhook.config).await?;
            Ok(current.webhooks.unwrap_or_default().iter().all(|w| w.client_config.ca_bundle.is_some()))
        })
        .await
        .context("the webhook publishes its CA")?;
        Ok(webhook)
    }

    /// Waits until the API server calls the webhook for `manifest` (a dry
    /// run): a new configuration takes the API server a moment, and until
    /// then a Pod would be stored unmutated.
    pub async fn wait_called(pods: &Api<Pod>, manifest: &Value) -> Result<()> {
        eventually(Duration::from_secs(30), || async { injected(pods, manifest.clone(), true).await })
            .await
            .context("the API server calls the webhook")
    }

    /// The first replica's `/metrics`.
    pub async fn scrape(&self) -> Result<String> {
        Self::scrape_at(&self.addr).await
    }

    async fn scrape_at(addr: &str) -> Result<String> {
        let http = reqwest::Client::builder().danger_accept_invalid_certs(true).build()?;
        Ok(http.get(format!("https://{addr}/metrics")).send().await?.text().await?)
    }

    /// `vaultsync_webhook_admissions_total{result}` of the first replica.
    pub async fn admissions(&self, result: &str) -> Result<u64> {
        let series = format!("vaultsync_webhook_admissions_total{{result=\"{result}\"}}");
        let value = sample(&self.scrape().await?, &series).with_context(|| format!("{series} in /metrics"))?;
        Ok(value as u64)
    }

    /// Certificate rotations made, summed over the replicas.
    pub async fn rotations(&self) -> Result<u64> {
        let series = "vaultsync_webhook_certificate_rotations_total";
        let mut total = 0;
        for addr in &self.addrs {
            let value =
                sample(&Self::scrape_at(addr).await?, series).with_context(|| format!("{series} in /metrics"))?;
            total += value as u64;
        }
        Ok(total)
    }

    /// Kills the processes and removes the configuration, so that the
    /// namespace's later Pods are no longer sent anywhere.
    pub async fn stop(mut self) {
        for child in &mut self.children {
            let _ = child.kill().await;
        }
        let _ = Api::<MutatingWebhookConfiguration>::all(self.client.clone())
            .delete(&self.config, &DeleteParams::default())
            .await;
    }
}
