//! `target.template`: turns the fetched data into the Secret's data, labels
//! and annotations with Go templates, the way ESO's template engine v2 does.
//!
//! Loading templates from ConfigMaps and Secrets is the only I/O here; the
//! rest is `shape`, a pure function. Errors name the template (its key and
//! where it came from) and a position, never a value: they reach status,
//! events and logs.

use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use serde::de::DeserializeOwned;
use vaultsync_api::{SecretTemplate, TemplateFrom, TemplateMergePolicy, TemplateRef, TemplateScope, TemplateTarget};
use vaultsync_template::{Decoding, decode, render_template};

use crate::error::kube_reason;
use crate::error::{Error, Result};
use crate::secret_data::SecretData;
use crate::secret_data::digest;

/// The Secret's content after templating.
#[derive(Debug, Default, PartialEq)]
pub struct Shaped {
    /// Key to bytes.
    pub data: BTreeMap<String, Vec<u8>>,
    /// Labels from the template (vaultsync adds its own when writing).
    pub labels: BTreeMap<String, String>,
    /// Annotations from the template (vaultsync adds its own when writing).
    pub annotations: BTreeMap<String, String>,
    /// Digest of everything a template rendered from (fetched data,
    /// template spec, templateFrom texts); `None` without a template. Some
    /// functions salt their output (`pemToPkcs12`), so equal inputs, not
    /// equal output, tell that a rewrite is needless.
    pub input_hash: Option<String>,
    /// The Secret's type when the template sets none (`kubernetes.io/tls`
    /// for a generator's certificate); `Opaque` when this is unset too.
    pub default_type: Option<String>,
}

/// One template from `templateFrom`, with the name errors show.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Source {
    /// For errors, e.g. `templateFrom[0] ConfigMap "tpl" key "config"`.
    pub name: String,
    /// The Secret key (or label, annotation) a `Values` template writes.
    pub key: String,
    pub text: String,
    pub scope: TemplateScope,
    pub target: TemplateTarget,
    /// `valuesDecodingStrategy` of its templateFrom entry: applied to each
    /// rendered value.
    pub decoding: Decoding,
}

/// Applies the ExternalSecret's template to the fetched data, reading
/// `templateFrom` ConfigMaps and Secrets from `namespace`.
pub(crate) async fn apply_template(
    client: &kube::Client,
    namespace: &str,
    template: Option<&SecretTemplate>,
    fetched: SecretData,
) -> Result<Shaped> {
    let Some(template) = template else {
        return Ok(Shaped { data: fetched, ..Shaped::default() });
    };
    let sources = load_sources(client, namespace, template).await?;
    // Rendering is CPU work bounded only by the template's own budget (about
    // a second): on the blocking pool it cannot hold up the async workers,
    // and so no other ExternalSecret's sync waits for it.
    let template = template.clone();
    tokio::task::spawn_blocking(move || shape(&template, &sources, fetched)).await.map_err(|e| {
        Error::Internal(if e.is_panic() {
            "rendering the template failed inside vaultsync (a bug; please report it)".into()
        } else {
            "rendering the template was cancelled (the operator is shutting down)".into()
        })
    })?
}

/// The templates `templateFrom` names, in order.
async fn load_sources(client: &kube::Client, namespace: &str, template: &SecretTemplate) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    for (index, from) in template.template_from.iter().enumerate() {
        if let Some(literal) = &from.literal {
            sources.push(Source {
                name: format!("templateFrom[{index}].literal"),
                key: String::new(),
                text: literal.clone(),
                scope: TemplateScope::KeysAndValues,
                target: from.target,
                decoding: crate::sync::remote::to_decoding(from.values_decoding_strategy),
            });
        }
        if let Some(reference) = &from.config_map {
            let data = fetch::<ConfigMap>(client, namespace, index, reference).await?.data.unwrap_or_default();
            collect(&mut sources, index, "ConfigMap", reference, from, |key| data.get(key).cloned())?;
        }
        if let Some(reference) = &from.secret {
            let data = fetch::<Secret>(client, namespace, index, reference).await?.data.unwrap_or_default();
            collect(&mut sources, index, "Secret", reference, from, |key| {
                data.get(key).and_then(|bytes| String::from_utf8(bytes.0.clone()).ok())
            })?;
        }
    }
    Ok(sources)
}

/// The ConfigMap or Secret a templateFrom entry names.
async fn fetch<K>(client: &kube::Client, namespace: &str, index: usize, reference: &TemplateRef) -> Result<K>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let kind = K::kind(&());
    Api::<K>::namespaced(client.clone(), namespace)
        .get_opt(&reference.name)
        .await
        .map_err(|e| source_error(index, &kind, reference, &kube_reason(&e)))?
        .ok_or_else(|| source_error(index, &kind, reference, "not found"))
}

fn collect(
    sources: &mut Vec<Source>,
    index: usize,
    kind: &str,
    reference: &TemplateRef,
    from: &TemplateFrom,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<()> {
    for item in &reference.items {
        let text = lookup(&item.key).ok_or_else(|| {
            source_error(index, kind, reference, &format!("has no text key {:?} to use as a template", item.key))
        })?;
        sources.push(Source {
            name: format!("templateFrom[{index}] {kind} {:?} key {:?}", reference.name, item.key),
            key: item.key.clone(),
            text,
            scope: item.template_as,
            target: from.target,
            decoding: crate::sync::remote::to_decoding(from.values_decoding_strategy),
        });
    }
    Ok(())
}

fn source_error(index: usize, kind: &str, reference: &TemplateRef, reason: &str) -> Error {
    Error::Template(format!("templateFrom[{index}]: {kind} {:?}: {reason}", reference.name))
}

/// Renders every template over `fetched`. Order, as in ESO: templateFrom
/// entries, then `data`, then metadata labels and annotations; a later
/// template wins a key.
pub(crate) fn shape(template: &SecretTemplate, sources: &[Source], fetched: SecretData) -> Result<Shaped> {
    let mut shaped = Shaped { input_hash: Some(input_hash(template, sources, &fetched)), ..Shaped::default() };
    let mut templated_data = false;
    for source in sources {
        templated_data |= source.target == TemplateTarget::Data;
        let output = render(&source.name, &source.text, &fetched)?;
        let entries = match source.scope {
            TemplateScope::Values => vec![(source.key.clone(), output)],
            TemplateScope::KeysAndValues => key_values(&source.name, &utf8(&source.name, output)?)?
                .into_iter()
                .map(|(key, value)| (key, value.into_bytes()))
                .collect(),
        };
        for (key, value) in entries {
            let value = decode(value, source.decoding)
                .map_err(|e| Error::Template(format!("{}: the rendered value of key {key:?}: {e}", source.name)))?;
            match source.target {
                TemplateTarget::Data => {
                    shaped.data.insert(key, value);
                }
                TemplateTarget::Labels => {
                    shaped.labels.insert(key, utf8(&source.name, value)?);
                }
                TemplateTarget::Annotations => {
                    shaped.annotations.insert(key, utf8(&source.name, value)?);
                }
            }
        }
    }
    for (key, text) in &template.data {
        templated_data = true;
        shaped.data.insert(key.clone(), render(&format!("data[{key}]"), text, &fetched)?);
    }
    let metadata = template.metadata.clone().unwrap_or_default();
    for (key, text) in &metadata.labels {
        let name = format!("metadata.labels[{key}]");
        shaped.labels.insert(key.clone(), utf8(&name, render(&name, text, &fetched)?)?);
    }
    for (key, text) in &metadata.annotations {
        let name = format!("metadata.annotations[{key}]");
        shaped.annotations.insert(key.clone(), utf8(&name, render(&name, text, &fetched)?)?);
    }
    // ESO keeps the fetched data only when template.data and templateFrom
    // are both empty, so a templateFrom that only writes labels empties the
    // Secret. We keep the fetched data whenever no template writes data.
    if !templated_data || template.merge_policy == TemplateMergePolicy::Merge {
        for (key, value) in fetched {
            shaped.data.entry(key).or_insert(value);
        }
    }
    check_keys(&shaped)?;
    Ok(shaped)
}

fn input_hash(template: &SecretTemplate, sources: &[Source], fetched: &SecretData) -> String {
    let spec = serde_json::to_vec(template).unwrap_or_default();
    let texts = sources.iter().flat_map(|source| [source.name.as_bytes(), source.text.as_bytes()]);
    let data = fetched.iter().flat_map(|(key, value)| [key.as_bytes(), value.as_slice()]);
    digest(std::iter::once(spec.as_slice()).chain(texts).chain(data))
}

fn render(name: &str, text: &str, data: &SecretData) -> Result<Vec<u8>> {
    render_template(name, text, data).map_err(|e| Error::Template(e.to_string()))
}

/// Labels, annotations and `KeysAndValues` output are text; a Secret value
/// may be binary.
fn utf8(name: &str, output: Vec<u8>) -> Result<String> {
    // Where the first invalid byte sits is not told: the output holds values.
    String::from_utf8(output).map_err(|_| {
        Error::Template(format!(
            "template {name:?}: its output is not UTF-8 text; labels, annotations and KeysAndValues output must be text"
        ))
    })
}

/// Reads a `KeysAndValues` output: a YAML map of keys to scalar values.
/// The output holds secret values, so a parse error reports neither the
/// text nor the place (a line and column would say where a value has a `:`
/// or a newline).
fn key_values(name: &str, output: &str) -> Result<BTreeMap<String, String>> {
    if output.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let parsed: BTreeMap<String, serde_json::Value> = serde_saphyr::from_str(output).map_err(|_| {
        Error::Template(format!(
            "template {name:?}: its output is not a YAML map of key: value; KeysAndValues templates must produce one"
        ))
    })?;
    parsed
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                    return Err(Error::Template(format!(
                        "template {name:?}: the value of key {key:?} in its output is a list or map; quote it or use toJson"
                    )));
                }
            };
            Ok((key, text))
        })
        .collect()
}

/// Rejects keys the API server would reject, here, because its message
/// would quote the offending label value (which may be a secret).
fn check_keys(shaped: &Shaped) -> Result<()> {
    for key in shaped.data.keys() {
        if key.is_empty() || key.len() > 253 || !key.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
            return Err(Error::Template(format!(
                "templates produced Secret key {key:?}, which is not valid: use letters, digits, '-', '_' and '.' (at most 253)"
            )));
        }
    }
    for (key, value) in &shaped.labels {
        check_qualified_name("label", key)?;
        if !is_label_value(value) {
            return Err(Error::Template(format!(
                "templates produced an invalid value for label {key:?}: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
            )));
        }
    }
    for key in shaped.annotations.keys() {
        check_qualified_name("annotation", key)?;
    }
    Ok(())
}

/// A label or annotation key: an optional DNS-subdomain prefix and `/`,
/// then a name of at most 63 characters.
fn check_qualified_name(what: &str, key: &str) -> Result<()> {
    let (prefix, name) = key.rsplit_once('/').map_or((None, key), |(p, n)| (Some(p), n));
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    if prefix_ok && !name.is_empty() && is_label_value(name) {
        return Ok(());
    }
    Err(Error::Template(format!("templates produced {what} key {key:?}, which is not a valid Kubernetes {what} key")))
}

fn is_label_value(value: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    value.len() <= 63
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && edge_ok(value.chars().next())
        && edge_ok(value.chars().last())
}

#[cfg(test)]
mod tests {
    use vaultsync_api::TemplateMetadata;

    use super::*;

    fn fetched() -> SecretData {
        SecretData::from([("user".into(), b"app".to_vec()), ("pass".into(), b"s3cr3t".to_vec())])
    }

    fn template(data: &[(&str, &str)]) -> SecretTemplate {
        SecretTemplate {
            data: data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..SecretTemplate::default()
        }
    }

    fn source(key: &str, text: &str, scope: TemplateScope, target: TemplateTarget) -> Source {
        Source {
            name: format!("test {key}"),
            key: key.into(),
            text: text.into(),
            scope,
            target,
            decoding: Decoding::None,
        }
    }

    fn text(shaped: &Shaped, key: &str) -> String {
        String::from_utf8(shaped.data[key].clone()).unwrap()
    }

    #[test]
    fn replace_writes_only_templated_keys() {
        let shaped = shape(&template(&[("dsn", "{{ .user }}:{{ .pass }}@db")]), &[], fetched()).unwrap();
        assert_eq!(shaped.data.keys().collect::<Vec<_>>(), ["dsn"]);
        assert_eq!(text(&shaped, "dsn"), "app:s3cr3t@db");
    }

    #[test]
    fn merge_keeps_fetched_keys_and_templates_win() {
        let mut tpl = template(&[("user", "{{ .user | upper }}"), ("dsn", "{{ .user }}@db")]);
        tpl.merge_policy = TemplateMergePolicy::Merge;
        let shaped = shape(&tpl, &[], fetched()).unwrap();
        assert_eq!(text(&shaped, "user"), "APP");
        assert_eq!(text(&shaped, "pass"), "s3cr3t");
        assert_eq!(text(&shaped, "dsn"), "app@db");
    }

    #[test]
    fn without_data_templates_the_fetched_data_is_written() {
        let mut tpl = template(&[]);
        tpl.metadata = Some(TemplateMetadata {
            labels: BTreeMap::from([("owner".into(), "{{ .user }}".into())]),
            annotations: BTreeMap::new(),
            ..TemplateMetadata::default()
        });
        let labels_only = [source("", "team: payments", TemplateScope::KeysAndValues, TemplateTarget::Labels)];
        let shaped = shape(&tpl, &labels_only, fetched()).unwrap();
        assert_eq!(shaped.data, fetched());
        assert_eq!(shaped.labels["owner"], "app");
        assert_eq!(shaped.labels["team"], "payments");
    }

    /// ESO's `valuesDecodingStrategy`: each rendered value is decoded; a
    /// value that does not decode names the key, never the value.
    #[test]
    fn values_decoding_strategy_decodes_each_rendered_value() {
        let fetched = SecretData::from([("one".to_owned(), b"c2VjcmV0".to_vec())]);
        let mut yaml = source("", "one: {{ .one }}", TemplateScope::KeysAndValues, TemplateTarget::Data);
        yaml.decoding = Decoding::Base64;
        let shaped = shape(&template(&[]), &[yaml.clone()], fetched.clone()).unwrap();
        assert_eq!(text(&shaped, "one"), "secret");
        let mut values = source("out", "{{ .one }}", TemplateScope::Values, TemplateTarget::Data);
        values.decoding = Decoding::Base64;
        assert_eq!(text(&shape(&template(&[]), &[values], fetched.clone()).unwrap(), "out"), "secret");
        let plain = SecretData::from([("one".to_owned(), b"not base64!".to_vec())]);
        let message = shape(&template(&[]), &[yaml], plain).unwrap_err().to_string();
        assert!(message.contains("\"one\"") && !message.contains("not base64"), "{message}");
    }

    #[test]
    fn keys_and_values_output_becomes_keys_and_data_wins_over_template_from() {
        let sources = [
            source(
                "",
                "{{ .user }}-url: postgres://{{ .user }}@db\nport: 5432",
                TemplateScope::KeysAndValues,
                TemplateTarget::Data,
            ),
            source("conf", "password={{ .pass }}", TemplateScope::Values, TemplateTarget::Data),
            source("env", "a", TemplateScope::Values, TemplateTarget::Annotations),
        ];
        let shaped = shape(&template(&[("conf", "override")]), &sources, fetched()).unwrap();
        assert_eq!(text(&shaped, "app-url"), "postgres://app@db");
        assert_eq!(text(&shaped, "port"), "5432");
        assert_eq!(text(&shaped, "conf"), "override");
        assert_eq!(shaped.annotations["env"], "a");
        assert!(!shaped.data.contains_key("user"));
    }

    #[test]
    fn errors_name_the_template_and_position_but_no_value() {
        let error = shape(&template(&[("dsn", "{{ .user }}\n{{ .pass | nosuchfunc }}")]), &[], fetched()).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("data[dsn]") && message.contains("2:"), "{message}");
        assert!(!message.contains("s3cr3t") && !message.contains("app"), "{message}");

        let bad_yaml = [source("", "{{ .pass }}: [unclosed", TemplateScope::KeysAndValues, TemplateTarget::Data)];
        let message = shape(&template(&[]), &bad_yaml, fetched()).unwrap_err().to_string();
        assert!(message.contains("not a YAML map"), "{message}");
        assert!(!message.contains("s3cr3t"), "{message}");
    }

    #[test]
    fn output_errors_do_not_say_where_in_a_value_they_are() {
        // A value with a `: ` at a chosen place: a column would give it away.
        let data = SecretData::from([("pass".into(), b"ab: c: d".to_vec()), ("bin".into(), vec![b'a', 0xff])]);
        let yaml = [source("", "k: {{ .pass }}", TemplateScope::KeysAndValues, TemplateTarget::Data)];
        let message = shape(&template(&[]), &yaml, data.clone()).unwrap_err().to_string();
        assert!(!message.contains("column") && !message.contains("line"), "{message}");

        let mut tpl = template(&[]);
        tpl.metadata = Some(TemplateMetadata {
            labels: BTreeMap::new(),
            annotations: BTreeMap::from([("a".into(), "{{ .bin }}".into())]),
            ..TemplateMetadata::default()
        });
        let message = shape(&tpl, &[], data).unwrap_err().to_string();
        assert!(message.contains("not UTF-8") && !message.contains("offset"), "{message}");
    }

    #[test]
    fn invalid_keys_and_label_values_are_refused_without_the_value() {
        let message = shape(&template(&[("bad key", "x")]), &[], fetched()).unwrap_err().to_string();
        assert!(message.contains("\"bad key\""), "{message}");

        let mut tpl = template(&[]);
        tpl.metadata = Some(TemplateMetadata {
            labels: BTreeMap::from([("pw".into(), "{{ .pass }}!".into())]),
            annotations: BTreeMap::new(),
            ..TemplateMetadata::default()
        });
        let message = shape(&tpl, &[], fetched()).unwrap_err().to_string();
        assert!(message.contains("label \"pw\"") && !message.contains("s3cr3t"), "{message}");

        assert!(check_qualified_name("label", "example.com/team").is_ok());
        assert!(check_qualified_name("label", "Example.com/team").is_err());
        assert!(check_qualified_name("label", "/team").is_err());
        assert!(
            is_label_value("")
                && is_label_value("a.b-c_d")
                && !is_label_value("-a")
                && !is_label_value(&"a".repeat(64))
        );
    }
}
