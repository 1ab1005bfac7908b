//! Schema violations turned into findings a person can act on: ESO's
//! fields vaultsync does not have (with whether their value makes a
//! difference), and what to change for a refused value.

use serde_json::Value;

use super::finding::Finding;
use crate::migrate::groups::Kind;
use crate::migrate::schema::{Violation, What};

/// Advice on one ESO field vaultsync lacks, by its path in an
/// ExternalSecret or a store (see [`normalize`]).
struct Missing {
    pattern: &'static str,
    /// ESO's default: when the field holds it, leaving it out changes nothing.
    default: Option<Value>,
    /// Whether the field matters even when set to something else.
    fails: bool,
    why: &'static str,
    fix: &'static str,
}

const REMOVE: &str = "remove it";
const OTHER_AUTH: &str = "log in with kubernetes (serviceAccountRef), appRole, jwt, userPass, ldap, cert or tokenSecretRef, or keep this store and its ExternalSecrets with ESO";

fn table() -> Vec<Missing> {
    let m = |pattern, default: Option<Value>, fails, why, fix| Missing { pattern, default, fails, why, fix };
    vec![
        m(
            "spec.data[].sourceRef.generatorRef",
            None,
            true,
            "ESO's schema marks it deprecated and ESO does not implement it either",
            "issue generated values through dataFrom[].sourceRef.generatorRef",
        ),
        m("spec.provider.vault.auth.iam", None, true, "vaultsync has no iam login", OTHER_AUTH),
        m("spec.provider.vault.auth.gcp", None, true, "vaultsync has no gcp login", OTHER_AUTH),
        m(
            "spec.provider.vault.auth.jwt.kubernetesServiceAccountToken.expirationSeconds",
            None,
            false,
            "vaultsync requests tokens of its own short lifetime",
            REMOVE,
        ),
        m(
            "spec.provider.vault.checkAndSet",
            None,
            false,
            "only PushSecret writes use it, and vaultsync does not push",
            REMOVE,
        ),
        m(
            "spec.provider.vault.readYourWrites",
            Some(Value::Bool(false)),
            false,
            "reads are not pinned to the node that took a write",
            REMOVE,
        ),
        m(
            "spec.provider.vault.forwardInconsistent",
            Some(Value::Bool(false)),
            false,
            "inconsistent reads are not forwarded to the active node",
            REMOVE,
        ),
    ]
}

/// The path as it would be in an ExternalSecret or a store: a
/// ClusterExternalSecret's `spec.externalSecretSpec` is an ExternalSecret's
/// `spec`, and a generator's `spec.provider` a store's `provider.vault`.
fn normalize(kind: Kind, pattern: &str) -> String {
    match kind {
        Kind::ClusterExternalSecret => match pattern.strip_prefix("spec.externalSecretSpec.") {
            Some(rest) => format!("spec.{rest}"),
            None => pattern.to_owned(),
        },
        Kind::VaultDynamicSecret => match pattern.strip_prefix("spec.provider.") {
            Some(rest) => format!("spec.provider.vault.{rest}"),
            None => pattern.to_owned(),
        },
        _ => pattern.to_owned(),
    }
}

/// A finding for each violation. A rule or a required field of an object
/// that also has a field vaultsync lacks is left out: it fails because of
/// that field (`set exactly one auth method` next to `userPass`, `regexp`
/// missing next to `merge`), said once.
pub fn findings(kind: Kind, violations: &[Violation]) -> Vec<Finding> {
    let table = table();
    let unknown_parents: Vec<&str> = violations
        .iter()
        .filter(|v| v.what == What::Unknown)
        .filter_map(|v| v.path.rsplit_once('.').map(|(parent, _)| parent))
        .collect();
    violations
        .iter()
        .filter(|v| match v.what {
            What::Rule(_) => !unknown_parents.contains(&v.path.as_str()),
            // A reference to a generator kind vaultsync lacks is said by
            // its kind; its apiVersion is ESO's for that reason alone.
            What::Pattern { .. } if v.path.ends_with("generatorRef.apiVersion") => {
                let kind_path = v.path.replace("generatorRef.apiVersion", "generatorRef.kind");
                !violations.iter().any(|k| k.path == kind_path && matches!(k.what, What::NotOneOf { .. }))
            }
            What::Required => !v.path.rsplit_once('.').is_some_and(|(parent, _)| unknown_parents.contains(&parent)),
            _ => true,
        })
        .map(|v| finding(kind, v, &table))
        .collect()
}

fn finding(kind: Kind, v: &Violation, table: &[Missing]) -> Finding {
    let path = &v.path;
    let shown = match v.value.as_str() {
        Some(s) if s.chars().count() <= 120 => format!("{path} {s:?}"),
        _ => path.clone(),
    };
    match &v.what {
        What::Unknown => {
            let pattern = normalize(kind, &v.pattern);
            match table.iter().find(|m| m.pattern == pattern) {
                Some(m) if m.default.as_ref() == Some(&v.value) => Finding::warn(
                    format!(
                        "{path} is not supported yet ({}); it holds ESO's default, so leaving it out changes nothing",
                        m.why
                    ),
                    "remove it (kubectl apply refuses unknown fields)",
                ),
                Some(m) if m.fails => Finding::fail(format!("{path} is not supported yet ({})", m.why), m.fix),
                Some(m) => Finding::warn(
                    format!("{path} is not supported yet ({})", m.why),
                    format!("{} (kubectl apply refuses unknown fields)", m.fix),
                ),
                None => Finding::fail(
                    format!("{path} is not supported yet (vaultsync's schema has no such field)"),
                    "remove it, or keep this object with ESO",
                ),
            }
        }
        What::Rule(message) => Finding::fail(format!("{shown}: {message}"), rule_fix(message)),
        What::NotOneOf { value, allowed } => Finding::fail(
            format!("{path}: {value:?} is not one of {}", allowed.join(", ")),
            enum_fix(&normalize(kind, &v.pattern), value),
        ),
        What::Pattern { pattern, .. } => {
            Finding::fail(format!("{shown}: does not match {pattern}"), pattern_fix(&v.pattern))
        }
        What::Bound(bound) => Finding::fail(format!("{path}: {bound}"), bound_fix(&v.pattern)),
        What::Required => Finding::fail(format!("{path} is required"), "set it"),
    }
}

fn rule_fix(message: &str) -> &'static str {
    if message.starts_with("names a system mount") {
        "request a path of a secrets engine (database/creds/<role>, pki/issue/<role>, ...), or keep this generator with ESO"
    } else if message.contains("auth, sys, identity or cubbyhole") || message.contains("not auth/, sys/") {
        "keep KV secrets in a KV mount and name it (provider.vault.path); Vault's own mounts are never synced"
    } else if message.starts_with("must be a path") {
        "write the path relative to the mount: no leading or trailing '/', no '.' or '..' segments, no '?', '#' or '\\'"
    } else if message == "set exactly one of serviceAccountRef or secretRef" {
        // ESO then logs in with its own pod's token; vaultsync never
        // lends its own identity to a store.
        "name the ServiceAccount to log in as (serviceAccountRef, with audiences: [vault]) and bind it to the Vault role"
    } else if message.starts_with("server must be") {
        "give the server as scheme://host:port, with at most a plain path prefix"
    } else {
        "change the object so that it meets this rule"
    }
}

fn enum_fix(pattern: &str, value: &str) -> String {
    match (pattern, value) {
        ("spec.target.template.engineVersion", _) => {
            "rewrite the templates for engine v2 and set engineVersion: v2".into()
        }
        ("spec.dataFrom[].sourceRef.generatorRef.kind" | "spec.data[].sourceRef.generatorRef.kind", _) => {
            "vaultsync serves VaultDynamicSecret generators only: keep this ExternalSecret with ESO".into()
        }
        _ => "use one of those values".into(),
    }
}

fn pattern_fix(pattern: &str) -> &'static str {
    if pattern.ends_with("generatorRef.apiVersion") {
        "reference a VaultDynamicSecret of generators.vaultsync.dev/v1alpha1 (vaultsync convert rewrites ESO's)"
    } else {
        "change the value to match"
    }
}

fn bound_fix(pattern: &str) -> &'static str {
    match pattern.rsplit('.').next() {
        Some("data" | "dataFrom") => "split the entries over several ExternalSecrets",
        _ => "stay within the bound",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::migrate::check::finding::Severity;
    use crate::migrate::schema::violations;

    fn severities(kind: Kind, doc: Value) -> Vec<(Severity, String)> {
        findings(kind, &violations(kind, &doc)).into_iter().map(|f| (f.severity, f.problem)).collect()
    }

    #[test]
    fn a_default_value_is_harmless_and_another_value_is_named() {
        let store = |read_your_writes: bool| {
            json!({"spec": {"provider": {"vault": {"server": "https://v:8200", "readYourWrites": read_your_writes,
                "auth": {"tokenSecretRef": {"name": "t"}}}}}})
        };
        let harmless = severities(Kind::SecretStore, store(false));
        assert_eq!(harmless.len(), 1);
        assert_eq!(harmless[0].0, Severity::Warn, "{harmless:?}");
        assert!(harmless[0].1.contains("it holds ESO's default"), "{harmless:?}");
        let other = severities(Kind::SecretStore, store(true));
        assert_eq!(other.len(), 1);
        assert!(!other[0].1.contains("it holds ESO's default"), "{other:?}");
    }

    #[test]
    fn paths_inside_a_cluster_external_secret_and_a_generator_get_the_same_advice() {
        let ces = json!({"spec": {"namespaces": ["a"], "externalSecretSpec": {
            "secretStoreRef": {"name": "v", "kind": "ClusterSecretStore"},
            "dataFrom": [{"extract": {"key": "a/b"}}],
            "data": [{"secretKey": "k", "remoteRef": {"key": "a/b"}, "sourceRef": {"generatorRef": {"kind": "Password", "name": "p"}}}]}}});
        let found = severities(Kind::ClusterExternalSecret, ces);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].1.starts_with(
                "spec.externalSecretSpec.data[0].sourceRef.generatorRef is not supported yet (ESO's schema marks it deprecated"
            ),
            "{found:?}"
        );
        let generator = json!({"spec": {"path": "database/creds/app", "provider": {
            "server": "https://v:8200", "readYourWrites": false, "auth": {"tokenSecretRef": {"name": "t"}}}}});
        let found = severities(Kind::VaultDynamicSecret, generator);
        assert_eq!(found, [(Severity::Warn, found[0].1.clone())]);
        assert!(found[0].1.contains("it holds ESO's default"), "{found:?}");
    }

    #[test]
    fn a_rule_broken_by_an_unsupported_field_is_said_once() {
        let store = json!({"spec": {"provider": {"vault": {"server": "https://v:8200",
            "auth": {"iam": {"path": "aws", "region": "eu-west-1"}}}}}});
        let found = severities(Kind::SecretStore, store);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].1.starts_with("spec.provider.vault.auth.iam is not supported yet"));
    }
}
