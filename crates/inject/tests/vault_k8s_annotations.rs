//! Every annotation of the Vault agent injector is answered: applied (the
//! mutated Pod shows it), or admitted with a warning naming it, or refused
//! naming it. Walks tests/vault-k8s-annotations.tsv (the injector's
//! annotation names, each with a value to try and what must happen), and
//! checks that list against vaultsync's table both ways.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use vaultsync_inject::{Decision, InjectConfig, mutate, vault_annotations};

const AGENT: &str = "vault.hashicorp.com/";

fn config() -> InjectConfig {
    InjectConfig {
        vault_address: "https://vault:8200".into(),
        vault_ca_pem: None,
        agent_image: "vaultsync:dev".into(),
        auth_path: "kubernetes".into(),
        audience: "vault".into(),
    }
}

/// A Pod of two containers (the first running as user 1000) and an init
/// container of its own, asking for the secret `DB`.
fn pod(extra: Option<(&str, &str)>) -> Value {
    let mut annotations = json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "app",
        "vault.hashicorp.com/agent-inject-secret-DB": "secret/data/app",
    });
    if let Some((key, value)) = extra {
        annotations[format!("{AGENT}{key}")] = json!(value);
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "team", "annotations": annotations},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "app:1"}],
            "containers": [
                {"name": "app", "image": "app:1", "securityContext": {"runAsUser": 1000}},
                {"name": "other", "image": "other:1"},
            ],
        },
    })
}

fn mutated(pod: &Value, decision: &Decision) -> Value {
    let mut out = pod.clone();
    if let Decision::Patch(patch, _, _) = decision {
        json_patch::patch(&mut out, patch).expect("the patch applies");
    }
    // The status annotations differ by nothing the test is about.
    out["metadata"]["annotations"] = json!(null);
    out
}

fn cases() -> Vec<(String, String, String)> {
    include_str!("vault-k8s-annotations.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "{line:?}");
            (fields[0].to_owned(), fields[1].to_owned(), fields[2].to_owned())
        })
        .collect()
}

#[test]
fn every_injector_annotation_is_applied_warned_or_refused_by_name() {
    let base_pod = pod(None);
    let base = match mutate(&base_pod, &config()).expect("the base Pod is injected") {
        decision @ Decision::Patch(_, _, _) => mutated(&base_pod, &decision),
        other => panic!("base: {other:?}"),
    };
    let mut failures = Vec::new();
    let cases = cases();
    for (name, value, expected) in &cases {
        let key = format!("{AGENT}{name}");
        let pod = pod(Some((name, value)));
        let decision = mutate(&pod, &config());
        let ok = match (expected.as_str(), &decision) {
            ("refuse", Err(refused)) => refused.0.contains(&key),
            ("warn", Ok(Decision::Patch(_, _, warnings))) => warnings.iter().any(|w| w.contains(&key)),
            ("spec", Ok(decision @ Decision::Patch(_, _, warnings))) => {
                warnings.is_empty() && mutated(&pod, decision) != base
            }
            ("first", Ok(decision @ Decision::Patch(_, _, warnings))) => {
                let spec = mutated(&pod, decision);
                warnings.is_empty() && spec["spec"]["initContainers"][0]["name"] == "vaultsync-agent-init"
            }
            ("already", Ok(Decision::AlreadyInjected)) | ("untouched", Ok(Decision::Untouched)) => true,
            _ => false,
        };
        if !ok {
            let got = match &decision {
                Err(refused) => format!("refused: {}", refused.0),
                Ok(Decision::Patch(_, _, warnings)) if !warnings.is_empty() => format!("warnings: {warnings:?}"),
                Ok(decision @ Decision::Patch(_, _, _)) if mutated(&pod, decision) == base => "no change".to_owned(),
                Ok(other) => format!("{other:?}").chars().take(200).collect(),
            };
            failures.push(format!("{key}={value:?}: expected {expected}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{} of {}:\n{}", failures.len(), cases.len(), failures.join("\n"));
    println!("annotations: {} of the Vault agent injector's answered", cases.len());
}

#[test]
fn the_table_and_the_injectors_list_name_the_same_annotations() {
    let listed: BTreeSet<String> = cases()
        .into_iter()
        .map(|(name, _, _)| {
            vault_annotations::lookup(&format!("{AGENT}{name}"))
                .unwrap_or_else(|| panic!("{name} is not in vaultsync's table"))
                .name
                .to_owned()
        })
        .collect();
    let table: BTreeSet<String> = vault_annotations::ANNOTATIONS.iter().map(|k| k.name.to_owned()).collect();
    assert_eq!(listed, table);
}

#[test]
fn applied_annotations_land_where_the_injector_puts_them() {
    let with = |pairs: &[(&str, &str)]| {
        let mut pod = pod(None);
        for (key, value) in pairs {
            pod["metadata"]["annotations"][format!("{AGENT}{key}")] = json!(value);
        }
        let decision = mutate(&pod, &config()).expect("injected");
        mutated(&pod, &decision)
    };
    let spec = with(&[
        ("agent-limits-mem", "128Mi"),
        ("agent-run-as-same-user", "true"),
        ("agent-share-process-namespace", "true"),
        ("agent-inject-containers", "app"),
        ("secret-volume-path", "/etc/secrets"),
        ("log-level", "debug"),
    ]);
    let init = &spec["spec"]["initContainers"][0];
    assert_eq!(init["resources"]["limits"]["memory"], "128Mi");
    assert_eq!(init["securityContext"]["runAsUser"], 1000, "the app's user");
    assert_eq!(spec["spec"]["shareProcessNamespace"], true);
    let mounts = |i: usize| spec["spec"]["containers"][i]["volumeMounts"].clone();
    assert_eq!(mounts(0)[0]["mountPath"], "/etc/secrets");
    assert_eq!(mounts(1), Value::Null, "only the containers named get the secrets");
    let env = init["env"].as_array().cloned().unwrap_or_default();
    assert!(env.iter().any(|e| e["name"] == "VAULTSYNC_LOG_LEVEL" && e["value"] == "debug"));
    let agent: Value = serde_json::from_str(
        env.iter().find(|e| e["name"] == "VAULTSYNC_AGENT_CONFIG").unwrap()["value"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(agent["files"][0]["file"], "db", "the injector lowercases a secret's name");

    let spec = with(&[("preserve-secret-case", "true"), ("agent-inject-perms-DB", "400")]);
    let env = spec["spec"]["initContainers"][0]["env"].as_array().cloned().unwrap_or_default();
    let agent: Value = serde_json::from_str(
        env.iter().find(|e| e["name"] == "VAULTSYNC_AGENT_CONFIG").unwrap()["value"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!((agent["files"][0]["file"].as_str(), agent["files"][0]["mode"].as_str()), (Some("DB"), Some("0400")));

    let mut with_shell = pod(Some(("agent-inject-command-DB", "kill -HUP 1")));
    with_shell["metadata"]["annotations"]["vaultsync.dev/agent-image"] = json!("registry.example.com/agent-sh:1");
    let spec = mutated(&with_shell, &mutate(&with_shell, &config()).expect("injected"));
    let env = spec["spec"]["initContainers"][0]["env"].as_array().cloned().unwrap_or_default();
    let agent: Value = serde_json::from_str(
        env.iter().find(|e| e["name"] == "VAULTSYNC_AGENT_CONFIG").unwrap()["value"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(agent["files"][0]["command"], "kill -HUP 1");

    // As vault-k8s' own config tests have them: a template without a
    // secret annotation, a file name with a leading `/` (joined to the
    // volume), other delimiters, the json default template.
    let spec = with(&[
        ("agent-inject-template-just-template", "{{ with secret \"kv/x\" }}{{ .Data.v }}{{ end }}"),
        ("agent-inject-file-just-template", "/special/volume/foofile"),
        ("agent-inject-perms-just-template", "0600"),
        ("agent-template-left-delim-DB", "[["),
        ("agent-template-right-delim-DB", "]]"),
        ("agent-inject-default-template", "json"),
    ]);
    let env = spec["spec"]["initContainers"][0]["env"].as_array().cloned().unwrap_or_default();
    let agent: Value = serde_json::from_str(
        env.iter().find(|e| e["name"] == "VAULTSYNC_AGENT_CONFIG").unwrap()["value"].as_str().unwrap(),
    )
    .unwrap();
    let files = agent["files"].as_array().unwrap();
    let file = |name: &str| files.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name}: {files:?}"));
    assert_eq!(file("db")["template"], "{{ with secret \"secret/data/app\" }}{{ .Data | toJSON }}\n{{ end }}");
    assert_eq!(file("db")["delimiters"], json!(["[[", "]]"]));
    let only = file("just-template");
    assert_eq!((only["file"].as_str(), only["mode"].as_str()), (Some("special/volume/foofile"), Some("0600")));
    assert_eq!(only["path"], "");
    let odd = mutate(&pod(Some(("agent-inject-default-template", "yaml"))), &config()).unwrap_err().0;
    assert!(odd.contains("agent-inject-default-template"), "{odd}");

    let mut root = pod(Some(("agent-run-as-same-user", "true")));
    root["spec"]["containers"][0]["securityContext"]["runAsUser"] = json!(0);
    let refused = mutate(&root, &config()).unwrap_err().0;
    assert!(refused.contains("agent-run-as-same-user") && refused.contains("root"), "{refused}");
    let writable = mutate(&pod(Some(("agent-inject-perms-DB", "0666"))), &config()).unwrap_err().0;
    assert!(writable.contains("agent-inject-perms-DB"), "{writable}");
}
