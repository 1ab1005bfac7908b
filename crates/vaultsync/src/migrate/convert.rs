//! `vaultsync convert`: one document from ESO's groups to vaultsync's or
//! back. Only `apiVersion`s change (the object's, and a VaultDynamicSecret
//! `generatorRef`'s), so ESO → vaultsync → ESO gives back the same object.
//! Going to ESO, what only vaultsync has (see docs/design/eso-dropin.md §1)
//! is taken out and named, never dropped silently.

use serde_json::{Map, Value};

use super::groups::{
    Classified, ESO_GENERATORS_API_VERSION, Kind, VAULTSYNC_GENERATORS_API_VERSION, classify, display_name,
};

/// The direction of a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Vaultsync,
    Eso,
}

/// A converted document and what a person should know about it.
#[derive(Debug, Default)]
pub struct Converted {
    pub value: Value,
    /// Left as it was, or changed in a way that loses nothing.
    pub notes: Vec<String>,
    /// Fields taken out because the target group cannot express them.
    pub losses: Vec<String>,
}

/// Converts `doc` towards `target`; documents of other kinds pass through.
/// The items of a `List` (what `kubectl get -o yaml` prints) are converted
/// one by one.
pub fn convert(doc: &Value, target: Target) -> Converted {
    if let Some(items) = list_items(doc) {
        let mut out = Converted { value: doc.clone(), ..Converted::default() };
        let converted: Vec<Value> = items
            .iter()
            .map(|item| {
                let one = convert(item, target);
                out.notes.extend(one.notes);
                out.losses.extend(one.losses);
                one.value
            })
            .collect();
        out.value["items"] = Value::Array(converted);
        return out;
    }
    let mut out = Converted { value: doc.clone(), ..Converted::default() };
    match (classify(doc), target) {
        (Classified::Eso(kind), Target::Vaultsync) => {
            out.value["apiVersion"] = kind.vaultsync_api_version().into();
            rename_generator_refs(&mut out.value, kind, ESO_GENERATORS_API_VERSION, VAULTSYNC_GENERATORS_API_VERSION);
        }
        (Classified::Vaultsync(kind), Target::Eso) => {
            out.value["apiVersion"] = kind.eso_api_version().into();
            rename_generator_refs(&mut out.value, kind, VAULTSYNC_GENERATORS_API_VERSION, ESO_GENERATORS_API_VERSION);
            take_out_vaultsync_only(&mut out, kind);
        }
        (Classified::EsoOnly(api_version, kind), Target::Vaultsync) => out.notes.push(format!(
            "{}: {kind} ({api_version}) is not supported by vaultsync; left as it is, for ESO to serve",
            display_name(doc)
        )),
        _ => {}
    }
    out
}

/// The items of a `kind: List` document.
pub fn list_items(doc: &Value) -> Option<&Vec<Value>> {
    if doc["kind"] == "List" { doc["items"].as_array() } else { None }
}

/// The ExternalSecret specs inside a document: its own, or the one a
/// ClusterExternalSecret fans out.
pub fn external_secret_spec_mut(doc: &mut Value, kind: Kind) -> Option<&mut Map<String, Value>> {
    match kind {
        Kind::ExternalSecret => doc.get_mut("spec")?.as_object_mut(),
        Kind::ClusterExternalSecret => doc.get_mut("spec")?.get_mut("externalSecretSpec")?.as_object_mut(),
        _ => None,
    }
}

/// `generatorRef.apiVersion` of VaultDynamicSecret references, in `data`
/// and `dataFrom`. Other generator kinds exist only in ESO, so their
/// references keep ESO's group; an absent apiVersion stays absent (each
/// group defaults to its own).
fn rename_generator_refs(doc: &mut Value, kind: Kind, from: &str, to: &str) {
    let Some(spec) = external_secret_spec_mut(doc, kind) else { return };
    for list in ["data", "dataFrom"] {
        let Some(entries) = spec.get_mut(list).and_then(Value::as_array_mut) else { continue };
        for entry in entries {
            let Some(generator) = entry.pointer_mut("/sourceRef/generatorRef").and_then(Value::as_object_mut) else {
                continue;
            };
            let is_vds = generator.get("kind").and_then(Value::as_str) == Some(Kind::VaultDynamicSecret.name());
            if is_vds && generator.get("apiVersion").and_then(Value::as_str) == Some(from) {
                generator.insert("apiVersion".into(), to.into());
            }
        }
    }
}

/// Removes (and records) what ESO's group has no field for; an `openBao`
/// provider becomes `vault`, which is the same API.
fn take_out_vaultsync_only(out: &mut Converted, kind: Kind) {
    let name = display_name(&out.value);
    let lose = |out: &mut Converted, parent: &str, field: &str, why: &str| {
        let removed = out.value.pointer_mut(parent).and_then(Value::as_object_mut).and_then(|o| o.remove(field));
        if removed.is_some() {
            let path = format!("{}.{field}", parent.trim_start_matches('/').replace('/', "."));
            out.losses.push(format!("{name}: {path} is not expressible in ESO ({why}); left out"));
        }
    };
    match kind {
        Kind::SecretStore | Kind::ClusterSecretStore => {
            let provider = out.value.pointer_mut("/spec/provider").and_then(Value::as_object_mut);
            if let Some(provider) = provider
                && !provider.contains_key("vault")
                && let Some(bao) = provider.remove("openBao")
            {
                provider.insert("vault".into(), bao);
                out.notes.push(format!("{name}: spec.provider.openBao written as spec.provider.vault (the same API)"));
            }
            lose(out, "/spec/provider", "openBao", "a store has one provider in ESO");
            lose(out, "/spec/provider/vault", "allowInsecureHttp", "a vaultsync extension");
        }
        Kind::ExternalSecret => lose(out, "/spec", "rolloutRestartTargets", "a vaultsync extension"),
        Kind::ClusterExternalSecret => {
            lose(out, "/spec/externalSecretSpec", "rolloutRestartTargets", "a vaultsync extension");
        }
        Kind::VaultDynamicSecret => {
            lose(out, "/spec", "lease", "a vaultsync extension");
            lose(out, "/spec/provider", "allowInsecureHttp", "a vaultsync extension");
            if out.value.pointer("/spec/resultType").and_then(Value::as_str) == Some("Certificate") {
                lose(out, "/spec", "resultType", "resultType Certificate is a vaultsync extension");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn es(api_version: &str, generator_api_version: &str) -> Value {
        json!({
            "apiVersion": api_version, "kind": "ExternalSecret",
            "metadata": {"name": "db", "namespace": "app"},
            "spec": {"dataFrom": [
                {"sourceRef": {"generatorRef": {"apiVersion": generator_api_version, "kind": "VaultDynamicSecret", "name": "pg"}}},
                {"sourceRef": {"generatorRef": {"apiVersion": ESO_GENERATORS_API_VERSION, "kind": "Password", "name": "pw"}}},
            ]}
        })
    }

    #[test]
    fn an_external_secret_and_its_generator_ref_change_group_and_back() {
        let eso = es("external-secrets.io/v1", ESO_GENERATORS_API_VERSION);
        let ours = convert(&eso, Target::Vaultsync);
        assert_eq!(ours.value, es("vaultsync.dev/v1alpha1", VAULTSYNC_GENERATORS_API_VERSION));
        let back = convert(&ours.value, Target::Eso);
        assert_eq!(back.value, eso);
        assert!(back.losses.is_empty() && ours.notes.is_empty());
    }

    #[test]
    fn vaultsync_only_fields_are_named_when_left_out() {
        let store = json!({
            "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ClusterSecretStore", "metadata": {"name": "bao"},
            "spec": {"provider": {"openBao": {"server": "http://bao:8200", "allowInsecureHttp": true, "auth": {}}}}
        });
        let out = convert(&store, Target::Eso);
        assert_eq!(
            out.value,
            json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": "bao"},
                   "spec": {"provider": {"vault": {"server": "http://bao:8200", "auth": {}}}}})
        );
        assert_eq!(
            out.losses,
            [
                "ClusterSecretStore bao: spec.provider.vault.allowInsecureHttp is not expressible in ESO (a vaultsync extension); left out"
            ]
        );
        assert_eq!(out.notes.len(), 1);
    }

    #[test]
    fn the_items_of_a_list_are_converted() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [es("external-secrets.io/v1", ESO_GENERATORS_API_VERSION)]});
        let out = convert(&list, Target::Vaultsync);
        assert_eq!(out.value["items"][0], es("vaultsync.dev/v1alpha1", VAULTSYNC_GENERATORS_API_VERSION));
        assert_eq!(out.value["kind"], "List");
    }

    #[test]
    fn other_documents_pass_through() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "Yg=="}});
        assert_eq!(convert(&secret, Target::Vaultsync).value, secret);
        let push =
            json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret", "metadata": {"name": "p"}});
        let out = convert(&push, Target::Vaultsync);
        assert_eq!(out.value, push);
        assert!(out.notes[0].contains("not supported by vaultsync"), "{:?}", out.notes);
    }
}
