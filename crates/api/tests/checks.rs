//! `vaultsync_api::checks` refuses what the API server refuses for the CRDs.
//!
//! Each rule has a case that passes and one that is refused, with the path
//! and message expected. Every case starts from a valid spec of its kind and
//! changes it with a JSON merge patch (RFC 7386: objects merge, `null`
//! removes a field, anything else replaces), so a case shows only what it
//! is about. The last tests compare the rules' messages and the schema
//! patterns with the generated CRDs, both ways.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};
use vaultsync_api::checks::{self, MESSAGES, PATTERNS, Refusal};

#[derive(Clone, Copy, Debug)]
enum Kind {
    ExternalSecret,
    SecretStore,
    ClusterSecretStore,
    ClusterExternalSecret,
    VaultDynamicSecret,
}

fn external_secret_base() -> Value {
    json!({
        "secretStoreRef": {"name": "vault"},
        "data": [{"secretKey": "password", "remoteRef": {"key": "app/db"}}]
    })
}

fn vault_provider_base() -> Value {
    json!({
        "server": "https://vault.example.com:8200",
        "path": "secret",
        "auth": {"kubernetes": {"role": "app", "serviceAccountRef": {"name": "app"}}}
    })
}

fn base(kind: Kind) -> Value {
    match kind {
        Kind::ExternalSecret => external_secret_base(),
        Kind::SecretStore | Kind::ClusterSecretStore => json!({"provider": {"vault": vault_provider_base()}}),
        Kind::ClusterExternalSecret => json!({"externalSecretSpec": external_secret_base(), "namespaces": ["team-a"]}),
        Kind::VaultDynamicSecret => json!({
            "path": "database/creds/app",
            "provider": {"server": "https://vault.example.com:8200", "auth": {"tokenSecretRef": {"name": "token"}}}
        }),
    }
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(&key);
                } else {
                    merge(target.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch,
    }
}

fn check(kind: Kind, patch: &Value) -> Result<(), Refusal> {
    let mut spec = base(kind);
    merge(&mut spec, patch.clone());
    match kind {
        Kind::ExternalSecret => checks::external_secret(&decode(kind, spec)),
        Kind::SecretStore => checks::store(&decode(kind, spec), false),
        Kind::ClusterSecretStore => checks::store(&decode(kind, spec), true),
        Kind::ClusterExternalSecret => checks::cluster_external_secret(&decode(kind, spec)),
        Kind::VaultDynamicSecret => checks::vault_dynamic_secret(&decode(kind, spec)),
    }
}

fn decode<T: serde::de::DeserializeOwned>(kind: Kind, spec: Value) -> T {
    serde_json::from_value(spec.clone()).unwrap_or_else(|e| panic!("{kind:?} {spec} does not decode: {e}"))
}

/// The CEL message that starts with `start` (so the tests do not restate
/// the long messages; the coverage test pins them to the CRDs).
fn cel(start: &str) -> String {
    let found: Vec<&&str> = MESSAGES.iter().filter(|m| m.starts_with(start)).collect();
    assert_eq!(found.len(), 1, "messages starting with {start:?}: {found:?}");
    found[0].to_string()
}

#[derive(Clone)]
struct Case {
    kind: Kind,
    patch: Value,
    /// `None`: the spec passes.
    refused: Option<(String, String)>,
}

fn passes(kind: Kind, patch: Value) -> Case {
    Case { kind, patch, refused: None }
}

fn refused(kind: Kind, patch: Value, path: &str, message: impl Into<String>) -> Case {
    Case { kind, patch, refused: Some((path.to_owned(), message.into())) }
}

fn long(n: usize) -> String {
    "a".repeat(n)
}

fn data_entries(n: usize) -> Value {
    (0..n).map(|i| json!({"secretKey": format!("k{i}"), "remoteRef": {"key": "app/db"}})).collect()
}

fn external_secret_cases() -> Vec<Case> {
    use Kind::ExternalSecret as ES;
    let generator = json!({"sourceRef": {"generatorRef": {"kind": "VaultDynamicSecret", "name": "db"}}});
    let key = cel("must be a path inside the store's mount");
    let folder = cel("must be a path inside Vault:");
    let reserved = cel("must not have a segment named auth");
    let duration = "must match '^(0|([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$'";
    vec![
        passes(ES, json!({})),
        // secretStoreRef is required unless only generators are used.
        passes(ES, json!({"secretStoreRef": null, "data": null, "dataFrom": [generator]})),
        refused(ES, json!({"secretStoreRef": null}), "spec", cel("secretStoreRef is required")),
        refused(
            ES,
            json!({"secretStoreRef": null, "dataFrom": [generator]}),
            "spec",
            cel("secretStoreRef is required"),
        ),
        // ... or every entry names its own store.
        passes(
            ES,
            json!({"secretStoreRef": null, "data": [
                {"secretKey": "k", "remoteRef": {"key": "app/db"}, "sourceRef": {"storeRef": {"name": "other"}}}
            ], "dataFrom": [{"extract": {"key": "app/db"}, "sourceRef": {"storeRef": {"name": "other"}}}, generator]}),
        ),
        refused(
            ES,
            json!({"secretStoreRef": null, "data": [
                {"secretKey": "k", "remoteRef": {"key": "app/db"}, "sourceRef": {"storeRef": {"name": "other"}}},
                {"secretKey": "j", "remoteRef": {"key": "app/db"}}
            ]}),
            "spec",
            cel("secretStoreRef is required"),
        ),
        refused(
            ES,
            json!({"data": [{"secretKey": "k", "remoteRef": {"key": "app/db"}, "sourceRef": {"storeRef": {"name": ""}}}]}),
            "spec.data[0].sourceRef.storeRef.name",
            "must not be empty",
        ),
        // dataFrom[].sourceRef: a store for extract or find, or a generator.
        passes(
            ES,
            json!({"dataFrom": [{"find": {"path": "app"}, "sourceRef": {"storeRef": {"name": "other", "kind": "ClusterSecretStore"}}}]}),
        ),
        refused(
            ES,
            json!({"dataFrom": [{"sourceRef": {"storeRef": {"name": "other"}}}]}),
            "spec.dataFrom[0]",
            cel("each dataFrom entry needs"),
        ),
        refused(
            ES,
            json!({"dataFrom": [{"extract": {"key": "app/db"}, "sourceRef": {"generatorRef": {"kind": "VaultDynamicSecret", "name": "db"}}}]}),
            "spec.dataFrom[0]",
            cel("each dataFrom entry needs"),
        ),
        refused(
            ES,
            json!({"dataFrom": [{"extract": {"key": "app/db"}, "sourceRef": {}}]}),
            "spec.dataFrom[0].sourceRef",
            cel("sourceRef needs exactly one"),
        ),
        refused(
            ES,
            json!({"dataFrom": [{"extract": {"key": "app/db"}, "sourceRef": {"storeRef": {"name": ""}}}]}),
            "spec.dataFrom[0].sourceRef.storeRef.name",
            "must not be empty",
        ),
        // Something to write.
        passes(ES, json!({"data": null, "target": {"template": {"data": {"url": "x"}}}})),
        passes(ES, json!({"data": null, "target": {"template": {"templateFrom": [{"literal": "a: b"}]}}})),
        refused(ES, json!({"data": null}), "spec", cel("set at least one entry")),
        refused(ES, json!({"data": null, "target": {"template": {"type": "Opaque"}}}), "spec", cel("set at least one")),
        // syncWindows
        passes(
            ES,
            json!({"syncWindows": {"kind": "deny", "windows": [{"schedule": "0 22 * * 1-5", "duration": "8h"}]}}),
        ),
        passes(ES, json!({"syncWindows": {"kind": "allow", "windows": [{"schedule": "@every 1h", "duration": "5m"}]}})),
        refused(
            ES,
            json!({"syncWindows": {"kind": "allow", "windows": []}}),
            "spec.syncWindows.windows",
            "must have at least 1 item",
        ),
        refused(
            ES,
            json!({"syncWindows": {"kind": "allow", "windows": [{"schedule": "0 22 * *", "duration": "8h"}]}}),
            "spec.syncWindows.windows[0].schedule",
            format!("must match '{}'", vaultsync_api::SYNC_WINDOW_SCHEDULE_PATTERN),
        ),
        refused(
            ES,
            json!({"syncWindows": {"kind": "deny", "windows": [{"schedule": "@daily", "duration": "1d"}]}}),
            "spec.syncWindows.windows[0].duration",
            "must match '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$'",
        ),
        // refreshInterval
        passes(ES, json!({"refreshInterval": "1h30m"})),
        passes(ES, json!({"refreshInterval": "0"})),
        refused(ES, json!({"refreshInterval": "1d"}), "spec.refreshInterval", duration),
        // secretStoreRef.name
        refused(ES, json!({"secretStoreRef": {"name": ""}}), "spec.secretStoreRef.name", "must not be empty"),
        passes(ES, json!({"secretStoreRef": {"name": long(253)}})),
        refused(
            ES,
            json!({"secretStoreRef": {"name": long(254)}}),
            "spec.secretStoreRef.name",
            "must be at most 253 characters",
        ),
        // data
        passes(ES, json!({"data": data_entries(1000)})),
        refused(ES, json!({"data": data_entries(1001)}), "spec.data", "must have at most 1000 items"),
        passes(ES, json!({"data": [{"secretKey": "tls.crt-1_A", "remoteRef": {"key": "app/db"}}]})),
        refused(
            ES,
            json!({"data": [{"secretKey": "a/b", "remoteRef": {"key": "app/db"}}]}),
            "spec.data[0].secretKey",
            "must match '^[-._a-zA-Z0-9]+$'",
        ),
        refused(
            ES,
            json!({"data": [{"secretKey": long(254), "remoteRef": {"key": "app/db"}}]}),
            "spec.data[0].secretKey",
            "must be at most 253 characters",
        ),
        refused(
            ES,
            json!({"data": [{"secretKey": "", "remoteRef": {"key": "app/db"}}]}),
            "spec.data[0].secretKey",
            "must not be empty",
        ),
        // remoteRef.key: the path rule.
        passes(ES, json!({"data": [{"secretKey": "k", "remoteRef": {"key": "app/db.v2/..x/%41"}}]})),
        refused(ES, remote_key("/app/db"), "spec.data[0].remoteRef.key", key.clone()),
        refused(ES, remote_key("app/db/"), "spec.data[0].remoteRef.key", key.clone()),
        refused(ES, remote_key("app//db"), "spec.data[0].remoteRef.key", key.clone()),
        refused(ES, remote_key("app/../db"), "spec.data[0].remoteRef.key", key.clone()),
        refused(ES, remote_key("app/%2E%2e/db"), "spec.data[0].remoteRef.key", key.clone()),
        refused(ES, remote_key("app/%252e/db"), "spec.data[0].remoteRef.key", key.clone()),
        refused(ES, remote_key("app%2fdb"), "spec.data[0].remoteRef.key", key.clone()),
        refused(ES, remote_key("app/db?version=1"), "spec.data[0].remoteRef.key", key.clone()),
        refused(ES, remote_key("app\\db"), "spec.data[0].remoteRef.key", key.clone()),
        refused(ES, remote_key("app/d\u{7f}b"), "spec.data[0].remoteRef.key", key.clone()),
        refused(ES, remote_key("app/d%0ab"), "spec.data[0].remoteRef.key", key.clone()),
        // remoteRef.key: no system mount at any segment.
        passes(ES, remote_key("app/system/authority")),
        refused(ES, remote_key("team/SYS/db"), "spec.data[0].remoteRef.key", reserved.clone()),
        refused(ES, remote_key("cubbyhole"), "spec.data[0].remoteRef.key", reserved.clone()),
        // remoteRef.key: length.
        refused(ES, remote_key(""), "spec.data[0].remoteRef.key", "must not be empty"),
        passes(ES, remote_key(&long(512))),
        refused(ES, remote_key(&long(513)), "spec.data[0].remoteRef.key", "must be at most 512 characters"),
        // remoteRef.version
        passes(ES, json!({"data": [{"secretKey": "k", "remoteRef": {"key": "app/db", "version": "3"}}]})),
        refused(
            ES,
            json!({"data": [{"secretKey": "k", "remoteRef": {"key": "app/db", "version": "v3"}}]}),
            "spec.data[0].remoteRef.version",
            "must match '^[0-9]+$'",
        ),
        // dataFrom: exactly one source.
        passes(ES, json!({"dataFrom": [{"extract": {"key": "app/all"}}]})),
        refused(
            ES,
            json!({"dataFrom": [{"extract": {"key": "app"}, "find": {"path": "app"}}]}),
            "spec.dataFrom[0]",
            cel("each dataFrom entry"),
        ),
        refused(ES, json!({"dataFrom": [{"rewrite": []}]}), "spec.dataFrom[0]", cel("each dataFrom entry")),
        refused(
            ES,
            json!({"dataFrom": (0..101).map(|_| json!({"extract": {"key": "app"}})).collect::<Value>()}),
            "spec.dataFrom",
            "must have at most 100 items",
        ),
        refused(
            ES,
            json!({"dataFrom": [{"extract": {"key": "sys/x"}}]}),
            "spec.dataFrom[0].extract.key",
            reserved.clone(),
        ),
        // dataFrom.find
        passes(ES, json!({"dataFrom": [{"find": {"name": {"regexp": "^db"}}}]})),
        passes(ES, json!({"dataFrom": [{"find": {"path": "team/app/"}}]})),
        refused(ES, json!({"dataFrom": [{"find": {}}]}), "spec.dataFrom[0].find", cel("find needs a path")),
        passes(ES, json!({"dataFrom": [{"find": {"tags": {"team": "a"}}}]})),
        refused(ES, find_path("/team"), "spec.dataFrom[0].find.path", folder.clone()),
        refused(ES, find_path("team/./app"), "spec.dataFrom[0].find.path", folder.clone()),
        refused(ES, find_path("team/identity/"), "spec.dataFrom[0].find.path", reserved.clone()),
        refused(ES, find_path(&long(513)), "spec.dataFrom[0].find.path", "must be at most 512 characters"),
        refused(
            ES,
            json!({"dataFrom": [{"find": {"name": {"regexp": ""}}}]}),
            "spec.dataFrom[0].find.name.regexp",
            "must not be empty",
        ),
        // dataFrom.rewrite
        passes(
            ES,
            json!({"dataFrom": [{"extract": {"key": "app"}, "rewrite": [{"regexp": {"source": "-", "target": "_"}}]}]}),
        ),
        refused(
            ES,
            json!({"dataFrom": [{"extract": {"key": "app"}, "rewrite": [{"regexp": {"source": "", "target": "_"}}]}]}),
            "spec.dataFrom[0].rewrite[0].regexp.source",
            "must not be empty",
        ),
        passes(
            ES,
            json!({"dataFrom": [{"extract": {"key": "app"}, "rewrite": [
                {"transform": {"template": "{{ .value | upper }}"}},
                {"merge": {}},
                {"merge": {"into": "all", "priority": ["b"], "priorityPolicy": "IgnoreNotFound",
                           "conflictPolicy": "Ignore", "strategy": "JSON"}},
            ]}]}),
        ),
        refused(
            ES,
            json!({"dataFrom": [{"extract": {"key": "app"},
                "rewrite": (0..101).map(|_| json!({"regexp": {"source": "-", "target": "_"}})).collect::<Value>()}]}),
            "spec.dataFrom[0].rewrite",
            "must have at most 100 items",
        ),
        refused(
            ES,
            json!({"dataFrom": [{"extract": {"key": "app"}, "rewrite": [{}]}]}),
            "spec.dataFrom[0].rewrite[0]",
            cel("each rewrite entry"),
        ),
        refused(
            ES,
            json!({"dataFrom": [{"extract": {"key": "app"}, "rewrite": [
                {"regexp": {"source": "-", "target": "_"}, "transform": {"template": "x"}}]}]}),
            "spec.dataFrom[0].rewrite[0]",
            cel("each rewrite entry"),
        ),
        // dataFrom.sourceRef.generatorRef
        refused(
            ES,
            json!({"dataFrom": [{"sourceRef": {"generatorRef": {
                "apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "VaultDynamicSecret", "name": "db"}}}]}),
            "spec.dataFrom[0].sourceRef.generatorRef.apiVersion",
            "must match '^generators\\.vaultsync\\.dev/v1alpha1$'",
        ),
        refused(
            ES,
            json!({"dataFrom": [{"sourceRef": {"generatorRef": {"kind": "VaultDynamicSecret", "name": ""}}}]}),
            "spec.dataFrom[0].sourceRef.generatorRef.name",
            "must not be empty",
        ),
        // target.template: never a ServiceAccount token Secret.
        passes(ES, template(json!({"type": "kubernetes.io/tls"}))),
        refused(
            ES,
            template(json!({"type": "kubernetes.io/service-account-token"})),
            "spec.target.template",
            cel("type kubernetes.io/service-account-token"),
        ),
        passes(ES, template(json!({"metadata": {"annotations": {"kubernetes.io/description": "x"}}}))),
        refused(
            ES,
            template(json!({"metadata": {"annotations": {"kubernetes.io/service-account.uid": "x"}}})),
            "spec.target.template",
            cel("annotations kubernetes.io/service-account.name"),
        ),
        refused(
            ES,
            template(json!({"metadata": {"annotations": {"kubernetes.io/service-account.name": "default"}}})),
            "spec.target.template",
            cel("annotations kubernetes.io/service-account.name"),
        ),
        // target.template.data keys
        passes(ES, template(json!({"data": {"tls.crt": "x", "user_name-1": "y"}}))),
        refused(ES, template(json!({"data": {"a b": "x"}})), "spec.target.template.data", cel("template.data keys")),
        // target.template.metadata.finalizers
        refused(
            ES,
            template(json!({"metadata": {"finalizers": (0..33).map(|i| format!("f/{i}")).collect::<Vec<_>>()}})),
            "spec.target.template.metadata.finalizers",
            "must have at most 32 items",
        ),
        // target.template.templateFrom
        passes(ES, template(json!({"templateFrom": [{"secret": {"name": "tpl", "items": [{"key": "k"}]}}]}))),
        refused(
            ES,
            template(
                json!({"templateFrom": [{"literal": "a: b", "configMap": {"name": "tpl", "items": [{"key": "k"}]}}]}),
            ),
            "spec.target.template.templateFrom[0]",
            cel("each templateFrom entry"),
        ),
        refused(
            ES,
            template(json!({"templateFrom": [{"target": "Labels"}]})),
            "spec.target.template.templateFrom[0]",
            cel("each templateFrom entry"),
        ),
        refused(
            ES,
            template(json!({"templateFrom": [{"configMap": {"name": "tpl", "items": []}}]})),
            "spec.target.template.templateFrom[0].configMap.items",
            "must not be empty",
        ),
        refused(
            ES,
            template(json!({"templateFrom": [{"secret": {"name": long(254), "items": [{"key": "k"}]}}]})),
            "spec.target.template.templateFrom[0].secret.name",
            "must be at most 253 characters",
        ),
        refused(
            ES,
            template(json!({"templateFrom": [{"secret": {"name": "tpl", "items": [{"key": ""}]}}]})),
            "spec.target.template.templateFrom[0].secret.items[0].key",
            "must not be empty",
        ),
        // rolloutRestartTargets
        passes(ES, json!({"rolloutRestartTargets": [{"kind": "Deployment", "name": "web.v1-2"}]})),
        refused(
            ES,
            json!({"rolloutRestartTargets": [{"kind": "Deployment", "name": "Web"}]}),
            "spec.rolloutRestartTargets[0].name",
            cel("name must be a Kubernetes object name"),
        ),
        refused(
            ES,
            json!({"rolloutRestartTargets": [{"kind": "Deployment", "name": "web-"}]}),
            "spec.rolloutRestartTargets[0].name",
            cel("name must be a Kubernetes object name"),
        ),
        refused(
            ES,
            json!({"rolloutRestartTargets": [{"kind": "DaemonSet", "name": long(254)}]}),
            "spec.rolloutRestartTargets[0].name",
            "must be at most 253 characters",
        ),
        refused(
            ES,
            json!({"rolloutRestartTargets": (0..17).map(|i| json!({"kind": "Deployment", "name": format!("w{i}")})).collect::<Value>()}),
            "spec.rolloutRestartTargets",
            "must have at most 16 items",
        ),
    ]
}

fn remote_key(key: &str) -> Value {
    json!({"data": [{"secretKey": "k", "remoteRef": {"key": key}}]})
}

fn find_path(path: &str) -> Value {
    json!({"dataFrom": [{"find": {"path": path}}]})
}

fn template(template: Value) -> Value {
    json!({"target": {"template": template}})
}

fn cluster_external_secret_cases() -> Vec<Case> {
    use Kind::ClusterExternalSecret as CES;
    vec![
        passes(CES, json!({})),
        passes(CES, json!({"namespaces": null, "namespaceSelector": {"matchLabels": {"team": "a"}}})),
        passes(CES, json!({"namespaces": null, "namespaceSelectors": []})),
        refused(CES, json!({"namespaces": null}), "spec", cel("select namespaces")),
        // The embedded ExternalSecret spec, under its own path.
        refused(
            CES,
            json!({"externalSecretSpec": {"data": [{"secretKey": "k", "remoteRef": {"key": "sys/x"}}]}}),
            "spec.externalSecretSpec.data[0].remoteRef.key",
            cel("must not have a segment named auth"),
        ),
        refused(
            CES,
            json!({"externalSecretSpec": {"secretStoreRef": null}}),
            "spec.externalSecretSpec",
            cel("secretStoreRef is required"),
        ),
        passes(CES, json!({"refreshTime": "1m"})),
        refused(
            CES,
            json!({"refreshTime": "1 m"}),
            "spec.refreshTime",
            "must match '^(0|([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$'",
        ),
    ]
}

fn vault(patch: Value) -> Value {
    json!({"provider": {"vault": patch}})
}

fn auth(patch: Value) -> Value {
    vault(json!({"auth": patch}))
}

fn store_cases() -> Vec<Case> {
    use Kind::{ClusterSecretStore as CSS, SecretStore as SS};
    let server = cel("server must be scheme");
    let folder = cel("must be a path inside Vault:");
    let no_kubernetes = json!({"kubernetes": null});
    let without_kubernetes = |patch: Value| {
        let mut auth = no_kubernetes.clone();
        merge(&mut auth, patch);
        self::auth(auth)
    };
    vec![
        passes(SS, json!({})),
        passes(CSS, json!({})),
        // retrySettings, as on a generator.
        passes(SS, json!({"retrySettings": {"maxRetries": 3, "retryInterval": "500ms"}})),
        refused(
            CSS,
            json!({"retrySettings": {"maxRetries": 11}}),
            "spec.retrySettings.maxRetries",
            "must be between 0 and 10",
        ),
        refused(
            SS,
            json!({"retrySettings": {"retryInterval": "1d"}}),
            "spec.retrySettings.retryInterval",
            "must match '^([0-9]+(\\.[0-9]+)?(ms|s|m))+$'",
        ),
        // conditions
        passes(CSS, json!({"conditions": [{"namespaces": ["a"]}]})),
        refused(SS, json!({"conditions": []}), "spec", cel("spec.conditions is only allowed")),
        // controller
        passes(SS, json!({"controller": long(253)})),
        refused(SS, json!({"controller": long(254)}), "spec.controller", "must be at most 253 characters"),
        // provider: exactly one.
        passes(SS, json!({"provider": {"vault": null, "openBao": vault_provider_base()}})),
        refused(
            SS,
            json!({"provider": {"openBao": vault_provider_base()}}),
            "spec.provider",
            cel("set exactly one of provider"),
        ),
        refused(SS, json!({"provider": {"vault": null}}), "spec.provider", cel("set exactly one of provider")),
        // caBundle or caProvider
        passes(SS, vault(json!({"caBundle": "LS0t"}))),
        refused(
            SS,
            vault(json!({"caBundle": "LS0t", "caProvider": {"type": "Secret", "name": "ca", "key": "ca.crt"}})),
            "spec.provider.vault",
            cel("set at most one of caBundle"),
        ),
        // server
        passes(SS, vault(json!({"server": "http://vault:8200/prefix/v-1_.~/"}))),
        refused(SS, vault(json!({"server": "vault:8200"})), "spec.provider.vault.server", server.clone()),
        refused(SS, vault(json!({"server": "https://vault/?x=1"})), "spec.provider.vault.server", server.clone()),
        refused(SS, vault(json!({"server": "https://user@vault"})), "spec.provider.vault.server", server.clone()),
        refused(SS, vault(json!({"server": "https://vault/a%2fb"})), "spec.provider.vault.server", server.clone()),
        refused(SS, vault(json!({"server": "https://vault\\x"})), "spec.provider.vault.server", server.clone()),
        refused(SS, vault(json!({"server": "https://va ult"})), "spec.provider.vault.server", server.clone()),
        // Allowed by the first rule, refused by the second.
        refused(SS, vault(json!({"server": "https://vault/a/../b"})), "spec.provider.vault.server", server.clone()),
        refused(SS, vault(json!({"server": "https://vault/."})), "spec.provider.vault.server", server.clone()),
        refused(
            SS,
            vault(json!({"server": format!("https://{}", long(505))})),
            "spec.provider.vault.server",
            "must be at most 512 characters",
        ),
        refused(
            SS,
            json!({"provider": {"vault": null, "openBao": {"server": "ftp://bao", "auth": {"tokenSecretRef": {"name": "t"}}}}}),
            "spec.provider.openBao.server",
            server.clone(),
        ),
        // path: a KV mount.
        passes(SS, vault(json!({"path": "kv/team/"}))),
        refused(SS, vault(json!({"path": "kv//team"})), "spec.provider.vault.path", folder.clone()),
        refused(SS, vault(json!({"path": "/kv"})), "spec.provider.vault.path", folder.clone()),
        refused(
            SS,
            vault(json!({"path": "ns1/Auth/"})),
            "spec.provider.vault.path",
            cel("must name a KV secrets engine"),
        ),
        refused(SS, vault(json!({"path": long(513)})), "spec.provider.vault.path", "must be at most 512 characters"),
        // auth: exactly one method.
        refused(
            SS,
            auth(json!({"tokenSecretRef": {"name": "token"}})),
            "spec.provider.vault.auth",
            cel("set exactly one auth method"),
        ),
        refused(SS, auth(no_kubernetes.clone()), "spec.provider.vault.auth", cel("set exactly one auth method")),
        passes(SS, without_kubernetes(json!({"tokenSecretRef": {"name": "token", "key": "token"}}))),
        refused(
            SS,
            without_kubernetes(json!({"tokenSecretRef": {"name": ""}})),
            "spec.provider.vault.auth.tokenSecretRef.name",
            "must not be empty",
        ),
        // kubernetes
        passes(SS, auth(json!({"kubernetes": {"serviceAccountRef": null, "secretRef": {"name": "jwt"}}}))),
        refused(
            SS,
            auth(json!({"kubernetes": {"secretRef": {"name": "jwt"}}})),
            "spec.provider.vault.auth.kubernetes",
            cel("set exactly one of serviceAccountRef"),
        ),
        refused(
            SS,
            auth(json!({"kubernetes": {"serviceAccountRef": null}})),
            "spec.provider.vault.auth.kubernetes",
            cel("set exactly one of serviceAccountRef"),
        ),
        passes(SS, auth(json!({"kubernetes": {"mountPath": "clusters/prod-1/"}}))),
        refused(
            SS,
            auth(json!({"kubernetes": {"mountPath": "clusters/../kubernetes"}})),
            "spec.provider.vault.auth.kubernetes.mountPath",
            folder.clone(),
        ),
        refused(
            SS,
            auth(json!({"kubernetes": {"mountPath": long(513)}})),
            "spec.provider.vault.auth.kubernetes.mountPath",
            "must be at most 512 characters",
        ),
        refused(
            SS,
            auth(json!({"kubernetes": {"role": ""}})),
            "spec.provider.vault.auth.kubernetes.role",
            "must not be empty",
        ),
        refused(
            SS,
            auth(json!({"kubernetes": {"serviceAccountRef": {"name": ""}}})),
            "spec.provider.vault.auth.kubernetes.serviceAccountRef.name",
            "must not be empty",
        ),
        refused(
            SS,
            auth(json!({"kubernetes": {"serviceAccountRef": null, "secretRef": {"name": long(254)}}})),
            "spec.provider.vault.auth.kubernetes.secretRef.name",
            "must be at most 253 characters",
        ),
        // appRole
        passes(SS, without_kubernetes(json!({"appRole": {"roleId": "r", "secretRef": {"name": "s"}}}))),
        passes(SS, without_kubernetes(json!({"appRole": {"roleRef": {"name": "r"}, "secretRef": {"name": "s"}}}))),
        refused(
            SS,
            without_kubernetes(json!({"appRole": {"secretRef": {"name": "s"}}})),
            "spec.provider.vault.auth.appRole",
            cel("set exactly one of roleId"),
        ),
        refused(
            SS,
            without_kubernetes(
                json!({"appRole": {"roleId": "r", "roleRef": {"name": "r"}, "secretRef": {"name": "s"}}}),
            ),
            "spec.provider.vault.auth.appRole",
            cel("set exactly one of roleId"),
        ),
        refused(
            SS,
            without_kubernetes(json!({"appRole": {"path": "app%2frole", "roleId": "r", "secretRef": {"name": "s"}}})),
            "spec.provider.vault.auth.appRole.path",
            folder.clone(),
        ),
        refused(
            SS,
            without_kubernetes(json!({"appRole": {"roleRef": {"name": ""}, "secretRef": {"name": "s"}}})),
            "spec.provider.vault.auth.appRole.roleRef.name",
            "must not be empty",
        ),
        refused(
            SS,
            without_kubernetes(json!({"appRole": {"roleId": "r", "secretRef": {"name": ""}}})),
            "spec.provider.vault.auth.appRole.secretRef.name",
            "must not be empty",
        ),
        // userPass, ldap, cert and auth.namespace
        passes(SS, without_kubernetes(json!({"userPass": {"username": "app", "secretRef": {"name": "pw"}}}))),
        passes(
            CSS,
            without_kubernetes(
                json!({"namespace": "team-a", "ldap": {"path": "ldap", "username": "app", "secretRef": {"name": "pw"}}}),
            ),
        ),
        passes(
            SS,
            without_kubernetes(
                json!({"cert": {"vaultRole": "app", "clientCert": {"name": "tls"}, "secretRef": {"name": "tls"}}}),
            ),
        ),
        refused(
            SS,
            json!({"provider": {"vault": {"auth": {"userPass": {"username": "app", "secretRef": {"name": "pw"}}}}}}),
            "spec.provider.vault.auth",
            cel("set exactly one auth method"),
        ),
        refused(
            SS,
            without_kubernetes(json!({"ldap": {"username": "", "secretRef": {"name": "pw"}}})),
            "spec.provider.vault.auth.ldap.username",
            "must not be empty",
        ),
        // tls and headers
        passes(
            SS,
            json!({"provider": {"vault": {"tls": {"certSecretRef": {"name": "c"}, "keySecretRef": {"name": "c"}},
                "headers": {"X-Team": "a", "x-request-source": "vaultsync"}}}}),
        ),
        refused(
            SS,
            json!({"provider": {"vault": {"tls": {"certSecretRef": {"name": "c"}}}}}),
            "spec.provider.vault.tls",
            cel("tls: set both certSecretRef and keySecretRef"),
        ),
        refused(
            CSS,
            json!({"provider": {"vault": {"headers": {"X-Vault-Token": "t"}}}}),
            "spec.provider.vault.headers",
            cel("headers: names of"),
        ),
        refused(
            SS,
            json!({"provider": {"vault": {"headers": {"Authorization": "Bearer x"}}}}),
            "spec.provider.vault.headers",
            cel("headers: names of"),
        ),
        // jwt
        passes(
            SS,
            without_kubernetes(
                json!({"jwt": {"kubernetesServiceAccountToken": {"serviceAccountRef": {"name": "app"}}}}),
            ),
        ),
        passes(SS, without_kubernetes(json!({"jwt": {"role": "app", "secretRef": {"name": "jwt"}}}))),
        refused(
            SS,
            without_kubernetes(json!({"jwt": {"role": "app"}})),
            "spec.provider.vault.auth.jwt",
            cel("set exactly one of kubernetesServiceAccountToken"),
        ),
        refused(
            SS,
            without_kubernetes(json!({"jwt": {"path": "jwt?x", "secretRef": {"name": "jwt"}}})),
            "spec.provider.vault.auth.jwt.path",
            folder.clone(),
        ),
        refused(
            SS,
            without_kubernetes(json!({"jwt": {"kubernetesServiceAccountToken": {"serviceAccountRef": {"name": ""}}}})),
            "spec.provider.vault.auth.jwt.kubernetesServiceAccountToken.serviceAccountRef.name",
            "must not be empty",
        ),
        refused(
            SS,
            without_kubernetes(json!({"jwt": {"secretRef": {"name": ""}}})),
            "spec.provider.vault.auth.jwt.secretRef.name",
            "must not be empty",
        ),
    ]
}

fn vault_dynamic_secret_cases() -> Vec<Case> {
    use Kind::VaultDynamicSecret as VDS;
    let path = cel("must be a Vault path");
    vec![
        passes(VDS, json!({})),
        // Certificates are issued by a write.
        passes(VDS, json!({"resultType": "Certificate", "method": "PUT", "path": "pki/issue/web"})),
        passes(VDS, json!({"resultType": "Certificate", "method": "POST", "path": "pki/issue/web"})),
        refused(
            VDS,
            json!({"resultType": "Certificate", "path": "pki/issue/web"}),
            "spec",
            cel("resultType Certificate"),
        ),
        // path
        passes(VDS, json!({"path": "/database/creds/app"})),
        refused(VDS, json!({"path": "//database/creds/app"}), "spec.path", path.clone()),
        refused(VDS, json!({"path": "database/creds/app/"}), "spec.path", path.clone()),
        refused(VDS, json!({"path": "database/creds/%2e%2E"}), "spec.path", path.clone()),
        refused(VDS, json!({"path": "database/creds/app#x"}), "spec.path", path.clone()),
        refused(VDS, json!({"path": "/auth/token/create"}), "spec.path", cel("names a system mount")),
        refused(VDS, json!({"path": "ns/sys/leases"}), "spec.path", cel("names a system mount")),
        refused(VDS, json!({"path": ""}), "spec.path", "must not be empty"),
        refused(VDS, json!({"path": long(513)}), "spec.path", "must be at most 512 characters"),
        // provider: the store's rules.
        refused(VDS, json!({"provider": {"server": "https://vault/#"}}), "spec.provider.server", cel("server must be")),
        refused(
            VDS,
            json!({"provider": {"auth": {"tokenSecretRef": null}}}),
            "spec.provider.auth",
            cel("set exactly one auth method"),
        ),
        // retrySettings
        passes(VDS, json!({"retrySettings": {"maxRetries": 10, "retryInterval": "1.5s"}})),
        passes(VDS, json!({"retrySettings": {"maxRetries": 0, "retryInterval": "500ms"}})),
        refused(
            VDS,
            json!({"retrySettings": {"maxRetries": 11}}),
            "spec.retrySettings.maxRetries",
            "must be between 0 and 10",
        ),
        refused(
            VDS,
            json!({"retrySettings": {"maxRetries": -1}}),
            "spec.retrySettings.maxRetries",
            "must be between 0 and 10",
        ),
        refused(
            VDS,
            json!({"retrySettings": {"retryInterval": "1h"}}),
            "spec.retrySettings.retryInterval",
            "must match '^([0-9]+(\\.[0-9]+)?(ms|s|m))+$'",
        ),
        // lease
        passes(VDS, json!({"lease": {"renewAtPercent": 10, "rotationGracePeriod": "0"}})),
        passes(VDS, json!({"lease": {"renewAtPercent": 90, "rotationGracePeriod": "1h30m"}})),
        refused(VDS, json!({"lease": {"renewAtPercent": 9}}), "spec.lease.renewAtPercent", "must be between 10 and 90"),
        refused(
            VDS,
            json!({"lease": {"renewAtPercent": 91}}),
            "spec.lease.renewAtPercent",
            "must be between 10 and 90",
        ),
        refused(
            VDS,
            json!({"lease": {"rotationGracePeriod": "5 m"}}),
            "spec.lease.rotationGracePeriod",
            "must match '^(0|([0-9]+(\\.[0-9]+)?(ms|s|m|h))+)$'",
        ),
    ]
}

fn all_cases() -> Vec<Case> {
    [external_secret_cases(), cluster_external_secret_cases(), store_cases(), vault_dynamic_secret_cases()].concat()
}

fn run(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in cases {
        let got = check(case.kind, &case.patch).map_err(|r| (r.path, r.message));
        let want = case.refused.map_or(Ok(()), Err);
        if got != want {
            failures.push(format!("{:?} {}\n  want {want:?}\n  got  {got:?}", case.kind, case.patch));
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn external_secret_rules() {
    run(external_secret_cases());
}

#[test]
fn cluster_external_secret_rules() {
    run(cluster_external_secret_cases());
}

#[test]
fn store_rules() {
    run(store_cases());
}

#[test]
fn vault_dynamic_secret_rules() {
    run(vault_dynamic_secret_cases());
}

#[test]
fn a_refusal_reads_path_then_message() {
    let refusal = check(Kind::ExternalSecret, &json!({"refreshInterval": "soon"})).unwrap_err();
    assert_eq!(refusal.to_string(), format!("spec.refreshInterval: {}", refusal.message));
    let _: &dyn std::error::Error = &refusal;
}

/// Every CEL message is the expected refusal of at least one case, so no
/// rule goes untested.
#[test]
fn every_cel_message_has_a_refused_case() {
    let tested: BTreeSet<String> = all_cases().into_iter().filter_map(|c| c.refused.map(|(_, m)| m)).collect();
    let untested: Vec<&&str> = MESSAGES.iter().filter(|m| !tested.contains(**m)).collect();
    assert!(untested.is_empty(), "CEL messages without a refused case: {untested:#?}");
}

/// Every schema node of the generated CRDs, as JSON.
fn crd_schemas() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds");
    let mut schemas = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("CRD readable");
            let crd: Value =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
            schemas.push((path.display().to_string(), crd));
        }
    }
    assert_eq!(schemas.len(), 5, "CRDs in {}", dir.display());
    schemas
}

/// Walks every node of `value`, calling `visit` on each object.
fn walk(value: &Value, visit: &mut impl FnMut(&serde_json::Map<String, Value>)) {
    match value {
        Value::Object(object) => {
            visit(object);
            object.values().for_each(|v| walk(v, visit));
        }
        Value::Array(items) => items.iter().for_each(|v| walk(v, visit)),
        _ => {}
    }
}

fn assert_same(what: &str, in_crds: BTreeSet<String>, in_checks: &[&str]) {
    let in_checks: BTreeSet<String> = in_checks.iter().map(|s| s.to_string()).collect();
    let unchecked: Vec<&String> = in_crds.difference(&in_checks).collect();
    let stale: Vec<&String> = in_checks.difference(&in_crds).collect();
    assert!(
        unchecked.is_empty() && stale.is_empty(),
        "{what} in the CRDs that checks does not enforce: {unchecked:#?}\n\
         {what} checks lists that no CRD has: {stale:#?}"
    );
}

/// A CEL rule added to a type without a check in code, or a check left
/// behind by a removed rule, fails here.
#[test]
fn checks_give_exactly_the_messages_of_the_crds_cel_rules() {
    let mut messages = BTreeSet::new();
    for (file, crd) in crd_schemas() {
        walk(&crd, &mut |node| {
            for rule in node.get("x-kubernetes-validations").and_then(Value::as_array).into_iter().flatten() {
                let message = rule.get("message").and_then(Value::as_str);
                messages
                    .insert(message.unwrap_or_else(|| panic!("{file}: a rule without a message: {rule}")).to_owned());
            }
        });
    }
    assert_eq!(MESSAGES.len(), MESSAGES.iter().collect::<BTreeSet<_>>().len(), "MESSAGES lists one twice");
    assert_same("CEL messages", messages, MESSAGES);
}

/// The same for the schema `pattern`s, which the types spell out in
/// attributes that cannot share a constant with the checks.
#[test]
fn checks_enforce_exactly_the_crds_patterns() {
    let mut patterns = BTreeSet::new();
    for (_, crd) in crd_schemas() {
        walk(&crd, &mut |node| {
            if let Some(pattern) = node.get("pattern").and_then(Value::as_str) {
                patterns.insert(pattern.to_owned());
            }
        });
    }
    assert_same("patterns", patterns, PATTERNS);
}
