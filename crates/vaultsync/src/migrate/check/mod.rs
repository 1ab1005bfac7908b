//! `vaultsync migrate check`: for every ESO object, what would change or
//! fail under vaultsync, each with its fix. An object is checked as
//! `vaultsync convert` would write it, so what convert rewrites is not a
//! problem. Secrets are never looked at, so no value can be printed.

mod advice;
mod finding;
mod provider;
mod references;
mod templates;

use serde_json::Value;
use vaultsync_api::{ClusterExternalSecret, ClusterSecretStore, ExternalSecret, SecretStore, VaultDynamicSecret};

use finding::Finding;
pub use finding::{ObjectReport, Severity, summary};
use references::Stores;

use super::convert::{Target, convert, list_items};
use super::groups::{Classified, Kind, classify, display_name};
use super::schema;

/// A report for each ESO object of `documents`, in their order; other
/// documents (Secrets, vaultsync's own kinds, anything else) are skipped.
pub fn check(documents: &[Value]) -> Vec<ObjectReport> {
    // The items of a `List` (`kubectl get -o yaml`) are objects of their own.
    let documents: Vec<Value> =
        documents.iter().flat_map(|doc| list_items(doc).cloned().unwrap_or_else(|| vec![doc.clone()])).collect();
    let stores = Stores::index(&documents);
    documents
        .iter()
        .filter_map(|doc| {
            let findings = match classify(doc) {
                Classified::Eso(kind) => check_object(kind, &convert(doc, Target::Vaultsync).value, &stores),
                Classified::EsoOnly(api_version, kind) => vec![eso_only(&api_version, &kind)],
                Classified::Vaultsync(_) | Classified::Other => return None,
            };
            Some(ObjectReport { name: display_name(doc), findings })
        })
        .collect()
}

fn eso_only(api_version: &str, kind: &str) -> Finding {
    match api_version.rsplit('/').next() {
        Some(version)
            if version != "v1"
                && api_version.starts_with("external-secrets.io/")
                && Kind::from_name(kind).is_some() =>
        {
            Finding::fail(
                format!("{api_version} is an older version of ESO's API"),
                "convert it to external-secrets.io/v1 first (ESO serves it under v1 too), then check again",
            )
        }
        _ => Finding::fail(
            format!("{kind} ({api_version}) has no counterpart in vaultsync"),
            "keep it with ESO (vaultsync serves ExternalSecret, ClusterExternalSecret, SecretStore, ClusterSecretStore and VaultDynamicSecret)",
        ),
    }
}

/// The findings of one object, in vaultsync's group (`doc` is converted).
fn check_object(kind: Kind, doc: &Value, stores: &Stores) -> Vec<Finding> {
    let spec = &doc["spec"];
    let mut found = Vec::new();
    match kind {
        Kind::SecretStore | Kind::ClusterSecretStore => {
            let others = provider::other_providers(&spec["provider"]);
            if !others.is_empty() {
                // Nothing else about it matters: it stays with ESO.
                return vec![provider::unsupported_provider(&others)];
            }
            found.extend(advice::findings(kind, &schema::violations(kind, doc)));
            found.extend(provider::store(spec));
            for name in ["vault", "openBao"] {
                if let Some(vault) = spec["provider"].get(name) {
                    found.extend(provider::vault(vault, &format!("spec.provider.{name}")));
                }
            }
        }
        Kind::ExternalSecret => {
            found.extend(advice::findings(kind, &schema::violations(kind, doc)));
            let namespace = doc["metadata"]["namespace"].as_str().unwrap_or("");
            found.extend(stores.check(spec, "spec", Some(namespace)));
            found.extend(templates::check(&spec["target"]["template"], "spec.target.template"));
            found.extend(generic_target(&spec["target"], "spec.target"));
        }
        Kind::ClusterExternalSecret => {
            found.extend(advice::findings(kind, &schema::violations(kind, doc)));
            let es = &spec["externalSecretSpec"];
            found.extend(stores.check(es, "spec.externalSecretSpec", None));
            found.extend(templates::check(&es["target"]["template"], "spec.externalSecretSpec.target.template"));
            found.extend(generic_target(&es["target"], "spec.externalSecretSpec.target"));
        }
        Kind::VaultDynamicSecret => {
            found.extend(advice::findings(kind, &schema::violations(kind, doc)));
            found.extend(provider::vault(&spec["provider"], "spec.provider"));
        }
    }
    if !found.iter().any(|f| f.severity == Severity::Fail)
        && let Err(reason) = parses(kind, doc)
    {
        // The schema walk sees what the API server sees; this catches what
        // only vaultsync's own reading of the object would refuse.
        found.push(Finding::fail(
            format!("vaultsync cannot read it as a {}: {reason}", kind.name()),
            "correct the field named",
        ));
    }
    found
}

/// `target.manifest` is served only for the kinds the operator was
/// started with, which the input cannot tell.
fn generic_target(target: &Value, at: &str) -> Option<Finding> {
    let manifest = target.get("manifest")?;
    let kind = format!(
        "{}/{}",
        manifest["apiVersion"].as_str().unwrap_or_default(),
        manifest["kind"].as_str().unwrap_or_default()
    );
    Some(Finding::warn(
        format!(
            "{at}.manifest writes a {kind} instead of a Secret, which vaultsync does only for the kinds it is started with"
        ),
        format!("run the operator with --generic-target {kind} (chart value genericTargets, which grants the RBAC)"),
    ))
}

fn parses(kind: Kind, doc: &Value) -> Result<(), serde_json::Error> {
    let doc = doc.clone();
    match kind {
        Kind::ExternalSecret => serde_json::from_value::<ExternalSecret>(doc).map(drop),
        Kind::SecretStore => serde_json::from_value::<SecretStore>(doc).map(drop),
        Kind::ClusterSecretStore => serde_json::from_value::<ClusterSecretStore>(doc).map(drop),
        Kind::ClusterExternalSecret => serde_json::from_value::<ClusterExternalSecret>(doc).map(drop),
        Kind::VaultDynamicSecret => serde_json::from_value::<VaultDynamicSecret>(doc).map(drop),
    }
}
