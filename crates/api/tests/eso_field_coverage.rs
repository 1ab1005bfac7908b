//! How much of ESO's API vaultsync's CRDs cover, field path by field path.
//!
//! ESO's CRDs (v2.9.0, unmodified: `e2e/eso/crds/`) and vaultsync's
//! generated ones (`crds/`) are walked the way
//! `docs/design/eso-field-diff.py` walks them: every schema node under
//! `spec` and `status` is one path, `a.b`, `a[]` for list items, `a{}` for
//! map values; a node with `x-kubernetes-preserve-unknown-fields` covers
//! everything below it; of a store's providers only ESO's
//! `spec.provider.vault` counts. Each ESO path vaultsync lacks, and each
//! ESO printer column or selectable field vaultsync does not declare, must be
//! listed with a reason in `tests/eso_gaps.txt`; an entry that is no longer
//! missing fails too, so the table stays true.
//!
//! The counts (`fields: N of M` per kind):
//! `cargo test -p vaultsync-api --test eso_field_coverage -- --nocapture`.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

struct Pair {
    kind: &'static str,
    eso_file: &'static str,
    eso_version: &'static str,
    vaultsync_file: &'static str,
    /// `spec.provider` holds one key per provider (stores): keep these only.
    providers: Option<(&'static [&'static str], &'static [&'static str])>,
}

const STORE_PROVIDERS: (&[&str], &[&str]) = (&["vault"], &["vault", "openBao"]);

const PAIRS: &[Pair] = &[
    Pair {
        kind: "ExternalSecret",
        eso_file: "externalsecrets.external-secrets.io.yaml",
        eso_version: "v1",
        vaultsync_file: "externalsecrets.vaultsync.dev.yaml",
        providers: None,
    },
    Pair {
        kind: "SecretStore",
        eso_file: "secretstores.external-secrets.io.yaml",
        eso_version: "v1",
        vaultsync_file: "secretstores.vaultsync.dev.yaml",
        providers: Some(STORE_PROVIDERS),
    },
    Pair {
        kind: "ClusterSecretStore",
        eso_file: "clustersecretstores.external-secrets.io.yaml",
        eso_version: "v1",
        vaultsync_file: "clustersecretstores.vaultsync.dev.yaml",
        providers: Some(STORE_PROVIDERS),
    },
    Pair {
        kind: "ClusterExternalSecret",
        eso_file: "clusterexternalsecrets.external-secrets.io.yaml",
        eso_version: "v1",
        vaultsync_file: "clusterexternalsecrets.vaultsync.dev.yaml",
        providers: None,
    },
    // The generator's spec.provider *is* the Vault provider.
    Pair {
        kind: "VaultDynamicSecret",
        eso_file: "vaultdynamicsecrets.generators.external-secrets.io.yaml",
        eso_version: "v1alpha1",
        vaultsync_file: "vaultdynamicsecrets.generators.vaultsync.dev.yaml",
        providers: None,
    },
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// The CRD version named `name`, or the first one.
fn version<'a>(crd: &'a Value, name: Option<&str>) -> &'a Value {
    let versions = crd["spec"]["versions"].as_array().expect("spec.versions");
    match name {
        Some(n) => versions.iter().find(|v| v["name"] == n).unwrap_or_else(|| panic!("no version {n}")),
        None => &versions[0],
    }
}

/// Path -> does the node preserve unknown fields.
type Paths = BTreeMap<String, bool>;

fn flatten(node: &Value, prefix: &str, out: &mut Paths, providers: Option<&[&str]>) {
    let Some(obj) = node.as_object() else { return };
    out.insert(prefix.to_string(), obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)));
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (key, child) in props {
            if prefix == "spec.provider" && providers.is_some_and(|keep| !keep.contains(&key.as_str())) {
                continue;
            }
            flatten(child, &format!("{prefix}.{key}"), out, providers);
        }
    }
    if let Some(items) = obj.get("items").filter(|i| i.is_object()) {
        flatten(items, &format!("{prefix}[]"), out, providers);
    }
    if let Some(values) =
        obj.get("additionalProperties").filter(|a| a.get("properties").is_some() || a.get("items").is_some())
    {
        flatten(values, &format!("{prefix}{{}}"), out, providers);
    }
}

fn paths(version: &Value, providers: Option<&[&str]>) -> Paths {
    let root = &version["schema"]["openAPIV3Schema"]["properties"];
    let mut out = Paths::new();
    for top in ["spec", "status"] {
        if let Some(node) = root.get(top) {
            flatten(node, top, &mut out, providers);
        }
    }
    out
}

/// True when `path` is in `paths` or lies below a node of `paths` that
/// preserves unknown fields.
fn covered(path: &str, paths: &Paths) -> bool {
    if paths.contains_key(path) {
        return true;
    }
    let ancestors = path.char_indices().filter_map(|(i, c)| match c {
        '.' | '[' | '{' if i > 0 => Some(&path[..i]),
        ']' | '}' => Some(&path[..=i]),
        _ => None,
    });
    ancestors.filter(|a| a.len() < path.len()).any(|a| paths.get(a) == Some(&true))
}

fn json_paths<'a>(version: &'a Value, key: &str) -> BTreeSet<&'a str> {
    version[key].as_array().into_iter().flatten().filter_map(|c| c["jsonPath"].as_str()).collect()
}

/// `tests/eso_gaps.txt`: `Kind[,Kind…] path reason…` per line; `#` comments.
/// A path is a field path, `column:<jsonPath>` or `selectable:<jsonPath>`.
fn gap_table() -> BTreeMap<(String, String), String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/eso_gaps.txt");
    let text = std::fs::read_to_string(&file).expect("tests/eso_gaps.txt");
    let mut table = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        let (kinds, path, reason) =
            (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or("").trim());
        assert!(!path.is_empty() && !reason.is_empty(), "eso_gaps.txt:{}: want `Kind path reason`", n + 1);
        for kind in kinds.split(',') {
            assert!(PAIRS.iter().any(|p| p.kind == kind), "eso_gaps.txt:{}: unknown kind {kind}", n + 1);
            let dup = table.insert((kind.to_string(), path.to_string()), reason.to_string());
            assert!(dup.is_none(), "eso_gaps.txt:{}: {kind} {path} is listed twice", n + 1);
        }
    }
    table
}

#[test]
fn every_eso_field_is_covered_or_listed_as_a_gap() {
    let eso_dir = repo().join("e2e/eso/crds");
    let ours_dir = repo().join("crds");
    let mut table = gap_table();
    let mut failures = Vec::new();
    let mut listed = 0;
    for pair in PAIRS {
        let eso_crd = load(&eso_dir.join(pair.eso_file));
        let our_crd = load(&ours_dir.join(pair.vaultsync_file));
        let (eso_v, our_v) = (version(&eso_crd, Some(pair.eso_version)), version(&our_crd, None));
        let eso = paths(eso_v, pair.providers.map(|p| p.0));
        let ours = paths(our_v, pair.providers.map(|p| p.1));

        let mut missing: Vec<String> = eso.keys().filter(|p| !covered(p, &ours)).cloned().collect();
        let count = |top: &str| {
            let all: Vec<&String> = eso.keys().filter(|p| p.split(['.', '[', '{']).next() == Some(top)).collect();
            (all.iter().filter(|p| covered(p, &ours)).count(), all.len())
        };
        let ((spec_n, spec_m), (status_n, status_m)) = (count("spec"), count("status"));
        eprintln!(
            "{:<22} fields: {} of {} (spec {spec_n} of {spec_m}, status {status_n} of {status_m}); vaultsync-only: {}",
            pair.kind,
            eso.len() - missing.len(),
            eso.len(),
            ours.keys().filter(|p| !covered(p, &eso)).count()
        );

        let (eso_cols, our_cols) =
            (json_paths(eso_v, "additionalPrinterColumns"), json_paths(our_v, "additionalPrinterColumns"));
        let cols: Vec<String> = eso_cols.difference(&our_cols).map(|c| format!("column:{c}")).collect();
        let (eso_sel, our_sel) = (json_paths(eso_v, "selectableFields"), json_paths(our_v, "selectableFields"));
        let sels: Vec<String> = eso_sel.difference(&our_sel).map(|c| format!("selectable:{c}")).collect();
        eprintln!(
            "{:<22} printer columns: {} of {}; selectable fields: {} of {}",
            "",
            eso_cols.len() - cols.len(),
            eso_cols.len(),
            eso_sel.len() - sels.len(),
            eso_sel.len()
        );
        missing.extend(cols);
        missing.extend(sels);

        for path in &missing {
            match table.remove(&(pair.kind.to_string(), path.clone())) {
                Some(_) => listed += 1,
                None => failures.push(format!(
                    "{} {path}: ESO has it, vaultsync does not, and tests/eso_gaps.txt does not list it",
                    pair.kind
                )),
            }
        }
    }
    for ((kind, path), reason) in &table {
        failures.push(format!(
            "{kind} {path}: listed in tests/eso_gaps.txt ({reason}) but no longer missing (or not an ESO path): remove the entry"
        ));
    }
    eprintln!("gap table: {listed} entries");
    assert!(failures.is_empty(), "{} problem(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn covered_sees_preserve_unknown_ancestors() {
    let ours: Paths = [("spec".into(), false), ("spec.a".into(), true), ("spec.l".into(), true)].into();
    assert!(covered("spec.a.b.c", &ours));
    assert!(covered("spec.l[].x", &ours));
    assert!(covered("spec", &ours));
    assert!(!covered("spec.b", &ours));
    assert!(!covered("spec.ab", &ours));
}
