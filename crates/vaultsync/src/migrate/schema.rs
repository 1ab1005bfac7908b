//! What the API server would say about an object under vaultsync's CRDs:
//! fields the schema does not have, values outside an enum, pattern or
//! bound, missing required fields, and the CEL rules [`super::cel`]
//! understands. The schema is the one vaultsync generates, so this stays
//! exact as the CRDs change.

use std::sync::OnceLock;

use serde_json::Value;

use super::cel;
use super::groups::Kind;

/// One thing the schema refuses, at a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, with list indices: `spec.data[2].remoteRef.key`.
    pub path: String,
    /// The same with `[]` for every index, to look up advice by.
    pub pattern: String,
    /// The value found there (`null` for a missing field).
    pub value: Value,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// A field vaultsync's schema does not have.
    Unknown,
    /// A CEL rule's message.
    Rule(String),
    /// A value outside the enum.
    NotOneOf { value: String, allowed: Vec<String> },
    /// A string that does not match the schema's pattern.
    Pattern { pattern: String },
    /// Longer or shorter than allowed, in characters or items.
    Bound(String),
    /// A required field is missing.
    Required,
}

/// The `openAPIV3Schema` of each kind, from the generated CRDs.
fn schemas() -> &'static Vec<(String, String, Value)> {
    static SCHEMAS: OnceLock<Vec<(String, String, Value)>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        vaultsync_api::crds()
            .into_iter()
            .filter_map(|crd| {
                let group = crd.spec.group.clone();
                let kind = crd.spec.names.kind.clone();
                let value = serde_json::to_value(&crd).ok()?;
                let schema = value.pointer("/spec/versions/0/schema/openAPIV3Schema")?.clone();
                Some((group, kind, schema))
            })
            .collect()
    })
}

/// The schema of `kind` in vaultsync's group.
fn schema_of(kind: Kind) -> &'static Value {
    let group = kind.vaultsync_api_version().split('/').next().unwrap_or_default();
    schemas()
        .iter()
        .find(|(g, k, _)| g == group && k == kind.name())
        .map(|(_, _, s)| s)
        .expect("vaultsync has a CRD for every Kind")
}

/// Everything the schema of `kind` refuses in `doc`'s `spec`.
pub fn violations(kind: Kind, doc: &Value) -> Vec<Violation> {
    violations_against(schema_of(kind), doc)
}

/// Everything an `openAPIV3Schema` refuses in `doc`'s `spec`.
fn violations_against(schema: &Value, doc: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    if let (Some(spec), Some(schema)) = (doc.get("spec"), schema.pointer("/properties/spec")) {
        walk(spec, schema, "spec", "spec", &mut out);
    }
    out
}

fn walk(value: &Value, schema: &Value, path: &str, pattern: &str, out: &mut Vec<Violation>) {
    let mut push =
        |what| out.push(Violation { path: path.to_owned(), pattern: pattern.to_owned(), value: value.clone(), what });
    for rule in schema["x-kubernetes-validations"].as_array().into_iter().flatten() {
        let compiled = rule["rule"].as_str().and_then(cel::compile);
        if compiled.and_then(|r| r.holds(value)) == Some(false) {
            push(What::Rule(rule["message"].as_str().unwrap_or("refused by a CEL rule").to_owned()));
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let allowed = allowed.iter().map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_owned)).collect();
        push(What::NotOneOf { value: scalar(value), allowed });
    }
    match value {
        Value::String(s) => {
            let chars = s.chars().count() as u64;
            if let Some(max) = schema["maxLength"].as_u64().filter(|m| chars > *m) {
                push(What::Bound(format!("longer than {max} characters")));
            }
            if let Some(min) = schema["minLength"].as_u64().filter(|m| chars < *m) {
                push(What::Bound(format!("shorter than {min} characters")));
            }
            if let Some(re) = schema["pattern"].as_str()
                && regex::Regex::new(re).is_ok_and(|r| !r.is_match(s))
            {
                push(What::Pattern { pattern: re.to_owned() });
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema["maxItems"].as_u64().filter(|m| items.len() as u64 > *m) {
                push(What::Bound(format!("more than {max} entries")));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), &format!("{pattern}[]"), out);
                }
            }
        }
        Value::Object(fields) => {
            for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                // The API server fills in a default before it validates.
                let defaulted = schema["properties"][required].get("default").is_some();
                if fields.get(required).is_none_or(Value::is_null) && !defaulted {
                    out.push(Violation {
                        path: format!("{path}.{required}"),
                        pattern: format!("{pattern}.{required}"),
                        value: Value::Null,
                        what: What::Required,
                    });
                }
            }
            let properties = schema["properties"].as_object();
            let open = schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true);
            for (name, child) in fields {
                let (child_path, child_pattern) = (format!("{path}.{name}"), format!("{pattern}.{name}"));
                match (properties.and_then(|p| p.get(name)), &schema["additionalProperties"]) {
                    (Some(child_schema), _) => walk(child, child_schema, &child_path, &child_pattern, out),
                    (None, extra @ Value::Object(_)) => {
                        walk(child, extra, &child_path, &format!("{pattern}{{}}"), out);
                    }
                    _ if open || properties.is_none() => {}
                    _ => out.push(Violation {
                        path: child_path,
                        pattern: child_pattern,
                        value: child.clone(),
                        what: What::Unknown,
                    }),
                }
            }
        }
        _ => {}
    }
}

/// A scalar as a person writes it (strings without quotes).
fn scalar(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn es(spec: Value) -> Value {
        json!({"apiVersion": "vaultsync.dev/v1alpha1", "kind": "ExternalSecret", "metadata": {"name": "x"}, "spec": spec})
    }

    /// The fixtures of `migrate check` are ESO objects ESO itself accepts:
    /// checked against ESO v2.9.0's CRDs (e2e/eso/crds/), so that every
    /// problem the check finds is one a real ESO user can have.
    #[test]
    fn the_fixtures_are_valid_eso_objects() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut eso = Vec::new();
        for entry in std::fs::read_dir(root.join("e2e/eso/crds")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let crd: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                eso.push(crd);
            }
        }
        let schema_for = |doc: &Value| {
            let (group, version) = doc["apiVersion"].as_str()?.split_once('/')?;
            let crd = eso.iter().find(|c| c["spec"]["group"] == group && c["spec"]["names"]["kind"] == doc["kind"])?;
            let versions = crd["spec"]["versions"].as_array()?;
            versions.iter().find(|v| v["name"] == version).map(|v| &v["schema"]["openAPIV3Schema"])
        };
        let mut checked = 0;
        let files = std::fs::read_dir(root.join("e2e/eso/migration")).unwrap();
        for file in files {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            for doc in crate::migrate::documents::parse("fixture", &text).unwrap() {
                let Some(schema) = schema_for(&doc) else { continue };
                let found = violations_against(schema, &doc);
                assert!(found.is_empty(), "{} {}: {found:?}", doc["kind"], doc["metadata"]["name"]);
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} fixture objects had an ESO CRD");
    }

    #[test]
    fn a_plain_external_secret_passes() {
        let doc = es(json!({
            "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
            "refreshInterval": "1h0m0s",
            "target": {"template": {"data": {"url": "{{ .user }}"}, "metadata": {"labels": {"a": "b"}}}},
            "data": [{"secretKey": "user", "remoteRef": {"key": "app/db", "property": "user"}}],
        }));
        assert_eq!(violations(Kind::ExternalSecret, &doc), []);
    }

    #[test]
    fn unknown_fields_enums_rules_and_required_fields_are_found() {
        let doc = es(json!({
            "secretStoreRef": {"name": "vault"},
            "target": {"creationPolicy": "CreateIfAbsent", "unknownField": {"apiVersion": "v1", "kind": "ConfigMap"}},
            "data": [{"secretKey": "k", "remoteRef": {"key": "sys/policy"}}, {"remoteRef": {"key": "a"}}],
        }));
        let found: Vec<_> = violations(Kind::ExternalSecret, &doc).into_iter().map(|v| (v.path, v.what)).collect();
        // (the value is kept too, for the advice on defaults)
        assert!(found.contains(&("spec.target.unknownField".into(), What::Unknown)), "{found:?}");
        assert!(found.iter().any(|(p, w)| p == "spec.target.creationPolicy" && matches!(w, What::NotOneOf { .. })));
        assert!(found.iter().any(|(p, w)| p == "spec.data[0].remoteRef.key" && matches!(w, What::Rule(_))));
        assert!(found.contains(&("spec.data[1].secretKey".into(), What::Required)), "{found:?}");
    }
}
