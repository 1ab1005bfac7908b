//! How much of an AdmissionReview is read, and what one review may cost:
//! the parse keeps only the fields the mutation and the answer need (the
//! rest is skipped unstored), charges an estimate of the heap it takes to
//! a budget, and charges what injection would add before it runs, so that
//! a hostile or huge review is refused instead of growing the heap.

use serde_json::Value;
use vaultsync_inject::InjectConfig;

/// An upper bound on the memory injection takes for `pod` beyond the
/// parsed review, in bytes, to be charged before it runs; 0 when it will
/// not get past the annotations. The agent's configuration (the Vault CA
/// and what the annotations ask for, templates included) goes into each
/// agent container, and in exec mode into every container; the patch
/// carries it as JSON inside a JSON string, so escaped twice (a `"` takes
/// four bytes), and the answer holds the patch serialized and then in
/// base64 (three forms at most at once). The mutation's copy of the Pod,
/// and the Pod's own init containers repeated in the patch when the agent
/// is put before them, take no more than `parsed` again.
pub(crate) fn additions(pod: &Value, inject: &InjectConfig, parsed: usize) -> usize {
    use vaultsync_inject::annotations::{asks, done, read};
    let annotations: std::collections::BTreeMap<String, String> =
        pod.pointer("/metadata/annotations").and_then(|a| serde_json::from_value(a.clone()).ok()).unwrap_or_default();
    if !asks(&annotations) || done(&annotations) {
        return 0;
    }
    // Refused on its annotations: nothing is added.
    let Ok(request) = read(&annotations, inject) else { return 0 };
    let mut config = Escaped(1024);
    let _ = serde_json::to_writer(&mut config, &(&annotations, &inject.vault_ca_pem));
    let count = |path: &str| pod.pointer(path).and_then(Value::as_array).map_or(0, Vec::len);
    let (containers, inits) = (count("/spec/containers"), count("/spec/initContainers"));
    let copies = match request.mode {
        vaultsync_inject::Mode::Exec => containers + 1,
        vaultsync_inject::Mode::Init | vaultsync_inject::Mode::Sidecar => 2,
    };
    3 * (copies * config.0 + (containers + inits) * 512) + parsed
}

/// Counts the bytes written as they would be once escaped in a JSON
/// string.
struct Escaped(usize);

impl std::io::Write for Escaped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for byte in bytes {
            self.0 += match byte {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
                0..0x20 => 6,
                _ => 1,
            };
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The review's uid (echoed in the answer), and the Pod's namespace and
/// name for the log, cut to the length Kubernetes allows a name: a
/// client other than the API server may send anything there.
pub(crate) fn identify(review: &Value) -> (Value, String, String) {
    let uid = review.pointer("/request/uid").cloned().unwrap_or(Value::Null);
    let object = review.pointer("/request/object").unwrap_or(&Value::Null);
    let pod_name = object
        .pointer("/metadata/name")
        .or_else(|| object.pointer("/metadata/generateName"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = review.pointer("/request/namespace").and_then(Value::as_str).unwrap_or("");
    (uid, clip(namespace, 253), clip(pod_name, 253))
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub(crate) fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Which parts of a JSON document are kept: all of it, or only the named
/// fields of an object (each with its own shape); the rest is skipped by
/// the parser without being stored.
pub(crate) enum Shape {
    Whole,
    Only(&'static [(&'static str, Shape)]),
}

/// What the mutation reads of a Pod, and what the answer and the log need
/// of the review. Nothing else is kept: not the old object of an update,
/// not managedFields (whose fieldsV1 is free-form JSON), not the status.
/// The patch is computed on this much of the Pod, which is the same patch
/// as on all of it: the mutation changes only these fields, and keeps each
/// of them whole.
pub(crate) const REVIEW: Shape = Shape::Only(&[(
    "request",
    Shape::Only(&[
        ("uid", Shape::Whole),
        ("namespace", Shape::Whole),
        (
            "object",
            Shape::Only(&[
                (
                    "metadata",
                    Shape::Only(&[
                        ("name", Shape::Whole),
                        ("generateName", Shape::Whole),
                        ("annotations", Shape::Whole),
                    ]),
                ),
                (
                    "spec",
                    Shape::Only(&[
                        ("volumes", Shape::Whole),
                        ("containers", Shape::Whole),
                        ("initContainers", Shape::Whole),
                    ]),
                ),
            ]),
        ),
    ]),
)]);

/// Enough of a review to answer it and to name the Pod in the log.
pub(crate) const REVIEW_HEAD: Shape = Shape::Only(&[(
    "request",
    Shape::Only(&[
        ("uid", Shape::Whole),
        ("namespace", Shape::Whole),
        (
            "object",
            Shape::Only(&[("metadata", Shape::Only(&[("name", Shape::Whole), ("generateName", Shape::Whole)]))]),
        ),
    ]),
)]);

/// What one review may take in memory: parsed (by the estimate of
/// [`Cost`]) and then added by injection (by [`additions`]). A Pod as
/// large as the API server stores fits unless it is built of very many
/// tiny objects or asks for exec mode in very many containers; the
/// amplifications of a hostile body (a huge array of zeros, or of
/// `{"a":0}`) are cut off here instead of growing the heap tenfold.
pub(crate) const REVIEW_BUDGET: usize = 8 << 20;
pub(crate) const OVER_BUDGET: &str = "over the webhook's parse budget";

/// The parts of `body` that `shape` keeps, as JSON, within `budget` (what
/// is left of it stays there).
pub(crate) fn parse_review(
    body: &[u8],
    shape: &'static Shape,
    budget: &std::cell::Cell<usize>,
) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed as _;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = Shaped { shape, budget }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Estimates, in bytes, of what serde_json's `Value` allocates: every
/// value's slot in its array (32 bytes, doubled for the array's growth) or
/// map, a string's bytes, a map's first B-tree node (11 entries of key and
/// value) and each entry's share of the nodes after it. They err on the
/// high side, so that the budget bounds the real heap.
struct Cost;

impl Cost {
    const VALUE: usize = 64;
    const MAP: usize = 640;
    const ENTRY: usize = 96;
}

#[derive(Clone, Copy)]
struct Shaped<'a> {
    shape: &'static Shape,
    budget: &'a std::cell::Cell<usize>,
}

impl Shaped<'_> {
    fn charge<E: serde::de::Error>(&self, cost: usize) -> Result<(), E> {
        let left = self.budget.get();
        if cost > left {
            return Err(E::custom(OVER_BUDGET));
        }
        self.budget.set(left - cost);
        Ok(())
    }

    fn whole(self) -> Self {
        Shaped { shape: &Shape::Whole, ..self }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Shaped<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Shaped<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.charge(Cost::VALUE)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.charge(Cost::VALUE)?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.charge(Cost::VALUE)?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.charge(Cost::VALUE)?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.charge(Cost::VALUE + v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.charge(Cost::VALUE + v.len())?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.charge(Cost::VALUE)?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, deserializer)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.charge(Cost::VALUE)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.whole())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.charge(Cost::VALUE)?;
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let shape = match self.shape {
                Shape::Whole => &Shape::Whole,
                Shape::Only(fields) => match fields.iter().find(|(name, _)| *name == key) {
                    Some((_, shape)) => shape,
                    None => {
                        map.next_value::<serde::de::IgnoredAny>()?;
                        continue;
                    }
                },
            };
            self.charge(Cost::ENTRY + key.len() + if object.is_empty() { Cost::MAP } else { 0 })?;
            let value = map.next_value_seed(Shaped { shape, ..self })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vaultsync_inject::{Decision, mutate};

    use super::*;

    fn config() -> InjectConfig {
        InjectConfig {
            vault_address: "https://vault:8200".into(),
            vault_ca_pem: None,
            agent_image: "vaultsync:test".into(),
            auth_path: "kubernetes".into(),
            audience: "vault".into(),
        }
    }

    /// A Pod as the API server sends it: defaults filled in, managedFields,
    /// a status, an init container of its own.
    fn full_pod(mode: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web", "namespace": "team-a", "uid": "1234", "labels": {"app": "web"},
                "annotations": {"vaultsync.dev/inject": "true", "vaultsync.dev/role": "web", "vaultsync.dev/mode": mode,
                                "vaultsync.dev/secret-db": "secret/data/db"},
                "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "9"}],
            },
            "spec": {
                "serviceAccountName": "web",
                "initContainers": [{"name": "migrate", "image": "app:1", "command": ["migrate"],
                                    "terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "IfNotPresent",
                                    "resources": {}, "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets"}]}],
                "containers": [{"name": "app", "image": "app:1", "command": ["/app"], "args": ["--serve"],
                                "env": [{"name": "DB", "value": "vault:secret/data/db#password"}, {"name": "X", "value": "1"}],
                                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets"}]}],
                "volumes": [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}],
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}],
                "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
            },
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        })
    }

    fn review(object: Value, old: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "namespace": "team-a", "operation": "CREATE", "object": object, "oldObject": old,
                        "userInfo": {"username": "someone", "groups": ["system:authenticated"]}},
        }))
        .expect("json")
    }

    fn budget() -> std::cell::Cell<usize> {
        std::cell::Cell::new(REVIEW_BUDGET)
    }

    #[test]
    fn the_patch_from_the_kept_fields_is_the_patch_from_the_whole_pod() {
        for mode in ["init", "sidecar", "exec"] {
            let pod = full_pod(mode);
            let whole = mutate(&pod, &config()).expect("accepted");
            let body = review(pod.clone(), Value::Null);
            let kept = parse_review(&body, &REVIEW, &budget()).expect("parsed");
            let object = kept.pointer("/request/object").expect("object");
            assert!(object.pointer("/metadata/managedFields").is_none() && object.get("status").is_none());
            let shaped = mutate(object, &config()).expect("accepted");
            match (whole, shaped) {
                (Decision::Patch(whole, _, _), Decision::Patch(shaped, _, _)) => {
                    assert_eq!(serde_json::to_value(&whole).unwrap(), serde_json::to_value(&shaped).unwrap(), "{mode}");
                    // And it applies to the whole Pod as the API server holds it.
                    let mut patched = pod.clone();
                    json_patch::patch(&mut patched, &shaped).expect("applies");
                    assert_eq!(patched["status"], pod["status"]);
                    assert_eq!(
                        patched["spec"]["initContainers"].as_array().map(Vec::len),
                        Some(if mode == "sidecar" { 3 } else { 2 })
                    );
                }
                other => panic!("{mode}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_answer_names_the_review_and_the_pod() {
        let kept = parse_review(&review(full_pod("init"), Value::Null), &REVIEW, &budget()).expect("parsed");
        let (uid, namespace, name) = identify(&kept);
        assert_eq!((uid, namespace.as_str(), name.as_str()), (json!("u-1"), "team-a", "web"));
        let long = "n".repeat(10_000);
        let mut pod = full_pod("init");
        pod["metadata"]["name"] = json!(long);
        let kept = parse_review(&review(pod, Value::Null), &REVIEW_HEAD, &budget()).expect("parsed");
        assert_eq!(identify(&kept).2.len(), 253, "a name for the log is cut to a name's length");
    }

    /// `[0,0,...]` of nearly `size` bytes.
    fn zeros(size: usize) -> Value {
        serde_json::from_str(&format!("[{}0]", "0,".repeat(size / 2))).expect("zeros")
    }

    #[test]
    fn what_the_mutation_does_not_read_is_skipped_however_large() {
        let mut pod = full_pod("init");
        pod["metadata"]["managedFields"][0]["fieldsV1"] = json!({"f:x": zeros(1 << 20)});
        pod["spec"]["nodeSelector"] = json!({"x": zeros(1 << 20)});
        let budget = 64 << 10;
        let kept = parse_review(&review(pod, zeros(1 << 20)), &REVIEW, &std::cell::Cell::new(budget))
            .expect("within a small budget");
        assert!(kept.to_string().len() < 4096, "{kept}");
    }

    #[test]
    fn an_amplifying_review_is_cut_off_at_the_budget() {
        for at in ["/metadata/annotations", "/spec/containers"] {
            let mut pod = full_pod("init");
            *pod.pointer_mut(at).expect("field") = zeros(2 << 20);
            let error = parse_review(&review(pod.clone(), Value::Null), &REVIEW, &budget()).expect_err(at);
            assert!(error.to_string().contains(OVER_BUDGET), "{error}");
            // Enough of it to answer, all the same.
            let head = parse_review(&review(pod, Value::Null), &REVIEW_HEAD, &budget()).expect("head");
            assert_eq!(identify(&head).0, json!("u-1"));
        }
        let objects: Vec<Value> = (0..300_000).map(|_| json!({"a": 0})).collect();
        let mut pod = full_pod("init");
        pod["spec"]["volumes"] = Value::Array(objects);
        let error = parse_review(&review(pod, Value::Null), &REVIEW, &budget()).expect_err("tiny objects");
        assert!(error.to_string().contains(OVER_BUDGET), "{error}");
    }

    #[test]
    fn what_injection_would_add_is_charged_before_it_runs() {
        let mut config = config();
        let mut pod = full_pod("exec");
        let one = additions(&pod, &config, 0);
        assert!(one > 0 && one < 64 << 10, "{one}");
        // Exec mode copies the agent's configuration (with the CA, and the
        // annotations escaped twice) into every container.
        config.vault_ca_pem = Some("-----BEGIN CERTIFICATE-----\n".repeat(200));
        let container = pod["spec"]["containers"][0].clone();
        pod["spec"]["containers"] = Value::Array(vec![container; 1000]);
        pod["metadata"]["annotations"]["vaultsync.dev/template-db"] = json!("{{ \"\" }}".repeat(1000));
        assert!(additions(&pod, &config, 0) > REVIEW_BUDGET, "{}", additions(&pod, &config, 0));
        // Not in init mode, where two agent containers carry it.
        pod["metadata"]["annotations"]["vaultsync.dev/mode"] = json!("init");
        assert!(additions(&pod, &config, 0) < REVIEW_BUDGET / 4, "{}", additions(&pod, &config, 0));
        // Nothing when the Pod was injected already, or does not ask.
        pod["metadata"]["annotations"]["vaultsync.dev/mode"] = json!("exec");
        pod["metadata"]["annotations"]["vaultsync.dev/inject-status"] = json!("injected");
        assert_eq!(additions(&pod, &config, 0), 0);
    }

    #[test]
    fn a_large_real_pod_fits_the_budget() {
        // Ten containers of 100 variables and 20 mounts each, and 150 kB of
        // annotations: far beyond what Pods that ask for injection carry.
        let env: Vec<Value> =
            (0..100).map(|i| json!({"name": format!("VARIABLE_{i}"), "value": format!("value-{i}")})).collect();
        let mounts: Vec<Value> = (0..20)
            .map(|i| json!({"name": format!("v{i}"), "mountPath": format!("/mnt/{i}"), "readOnly": true}))
            .collect();
        let mut pod = full_pod("init");
        let container = json!({"name": "c", "image": "app:1", "env": env, "volumeMounts": mounts,
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            "securityContext": {"runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}}});
        pod["spec"]["containers"] = Value::Array(
            (0..10)
                .map(|i| {
                    let mut c = container.clone();
                    c["name"] = json!(format!("c{i}"));
                    c
                })
                .collect(),
        );
        for i in 0..150 {
            pod["metadata"]["annotations"][format!("example.com/note-{i}")] = json!("x".repeat(1000));
        }
        let body = review(pod, Value::Null);
        let left = budget();
        let kept = parse_review(&body, &REVIEW, &left).expect("fits");
        let used = REVIEW_BUDGET - left.get();
        let added = additions(kept.pointer("/request/object").expect("object"), &config(), used);
        assert!(added > 0, "the Pod asks for injection");
        assert!(
            used + added < REVIEW_BUDGET,
            "a large Pod: {used} parsed + {added} added (body: {} bytes)",
            body.len()
        );
    }
}
