//! `vaultsync render`: how a person debugs an ExternalSecret.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use base64::Engine;
use serde_json::{Value, json};
use vaultsync_api::{ClusterSecretStore, ExternalSecret, SecretStore};
use vaultsync_controller::{Shaped, StoreOverride, preview};

pub async fn run(
    file: &Path,
    store: Option<&Path>,
    namespace: Option<String>,
    show_values: bool,
) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let external_secrets = read_external_secrets(file)?;
    let client = kube::Client::try_default().await.context(
        "cannot reach the Kubernetes API (set KUBECONFIG); render reads stores and credentials from the cluster",
    )?;
    for es in &external_secrets {
        let store = store.map(read_store).transpose()?;
        let namespace = namespace
            .clone()
            .or_else(|| es.metadata.namespace.clone())
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let shaped = preview(client.clone(), es, &namespace, store).await?;
        print!("---\n{}", serde_saphyr::to_string(&secret_manifest(es, &namespace, &shaped, show_values))?);
    }
    Ok(())
}

/// Every ExternalSecret in a file of one or more YAML documents; other
/// kinds (the store, a Namespace) are skipped, so a whole example file can
/// be rendered as it is.
fn read_external_secrets(path: &Path) -> anyhow::Result<Vec<ExternalSecret>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&text).with_context(|| format!("{} is not valid YAML", path.display()))?;
    let found: Vec<ExternalSecret> = documents
        .into_iter()
        .filter(|doc| doc["kind"] == "ExternalSecret")
        .map(|doc| {
            let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            serde_json::from_value(doc)
                .with_context(|| format!("{}: ExternalSecret {name:?} is not valid", path.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    if found.is_empty() {
        bail!("{} holds no ExternalSecret", path.display());
    }
    Ok(found)
}

fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_saphyr::from_str(&text).with_context(|| format!("{} is not a valid manifest", path.display()))
}

fn read_store(path: &Path) -> anyhow::Result<StoreOverride> {
    let manifest: Value = read_yaml(path)?;
    match manifest["kind"].as_str() {
        Some("SecretStore") => {
            Ok(StoreOverride::Namespaced(Box::new(serde_json::from_value::<SecretStore>(manifest)?)))
        }
        Some("ClusterSecretStore") => {
            Ok(StoreOverride::Cluster(Box::new(serde_json::from_value::<ClusterSecretStore>(manifest)?)))
        }
        other => bail!("{}: expected kind SecretStore or ClusterSecretStore, found {other:?}", path.display()),
    }
}

/// The Secret as vaultsync would write it (without vaultsync's own labels
/// and annotations). Masked values show only their size; shown values go to
/// stringData when they are text.
fn secret_manifest(es: &ExternalSecret, namespace: &str, shaped: &Shaped, show_values: bool) -> Value {
    let secret_type = es.spec.target.template.as_ref().and_then(|t| t.type_.clone());
    let mut manifest = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": es.target_name(), "namespace": namespace},
        "type": secret_type.unwrap_or_else(|| "Opaque".to_owned()),
    });
    if !shaped.labels.is_empty() {
        manifest["metadata"]["labels"] = json!(shaped.labels);
    }
    if !shaped.annotations.is_empty() {
        manifest["metadata"]["annotations"] = json!(shaped.annotations);
    }
    let data = &shaped.data;
    if show_values {
        let (text, binary): (Vec<_>, Vec<_>) = data.iter().partition(|(_, v)| std::str::from_utf8(v).is_ok());
        let text: BTreeMap<_, _> =
            text.into_iter().map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned())).collect();
        let binary: BTreeMap<_, _> =
            binary.into_iter().map(|(k, v)| (k.clone(), base64::engine::general_purpose::STANDARD.encode(v))).collect();
        if !text.is_empty() {
            manifest["stringData"] = json!(text);
        }
        if !binary.is_empty() {
            manifest["data"] = json!(binary);
        }
    } else {
        let masked: BTreeMap<_, _> = data
            .iter()
            .map(|(k, v)| (k.clone(), format!("<masked: {} bytes; --show-values prints it>", v.len())))
            .collect();
        manifest["stringData"] = json!(masked);
    }
    manifest
}
