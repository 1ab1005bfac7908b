//! The mutation itself, on the Pod's JSON.

use serde_json::{Value, json};

use crate::annotations::{AGENT_INJECT_STATUS, INJECT_STATUS, Request};
use crate::{AGENT_CONFIG_ENV, AgentConfig, BIN_DIR, InjectConfig, Mode, Refused, STATE_DIR, TOKEN_DIR};

const SECRETS_VOLUME: &str = "vaultsync-secrets";
const TOKEN_VOLUME: &str = "vaultsync-token";
const BIN_VOLUME: &str = "vaultsync-bin";
const STATE_VOLUME: &str = "vaultsync-agent-state";
/// Prefix of an environment value exec mode resolves:
/// `vault:<path>#<key>`, e.g. `vault:secret/data/app#password`.
pub const VAULT_REF_PREFIX: &str = "vault:";

/// `pod` with the agent added as `request` asks.
pub fn mutate_pod(pod: &Value, request: &Request, config: &InjectConfig) -> Result<Value, Refused> {
    let mut pod = pod.clone();
    let volumes = pod.pointer("/spec/volumes").and_then(Value::as_array).cloned().unwrap_or_default();
    for taken in [SECRETS_VOLUME, TOKEN_VOLUME, BIN_VOLUME, STATE_VOLUME] {
        if volumes.iter().any(|v| v["name"] == taken) {
            return Err(Refused(format!("the Pod already has a volume named {taken:?}, which injection adds")));
        }
    }
    let agent = AgentConfig {
        address: request.address.clone(),
        vault_namespace: request.vault_namespace.clone(),
        ca_pem: config.vault_ca_pem.clone(),
        auth_path: request.auth_path.clone(),
        role: request.role.clone(),
        token_path: format!("{TOKEN_DIR}/token"),
        secrets_dir: request.secrets_dir.clone(),
        file_mode: request.file_mode.clone(),
        files: request.files.clone(),
        poll_interval: request.poll_interval.clone(),
        notify_signal: request.notify_signal.clone(),
        notify_process: request.notify_process.clone(),
        notify_command: request.notify_command.clone(),
        notify_url: request.notify_url.clone(),
        state_dir: (request.mode == Mode::Sidecar).then(|| STATE_DIR.to_owned()),
    };
    let shape = &request.shape;
    let mut agent_env = json!([{"name": AGENT_CONFIG_ENV, "value": serde_json::to_string(&agent).unwrap_or_default()}]);
    if let Some(list) = agent_env.as_array_mut() {
        if let Some(level) = &shape.log_level {
            list.push(json!({"name": "VAULTSYNC_LOG_LEVEL", "value": level}));
        }
        if shape.log_json {
            list.push(json!({"name": "VAULTSYNC_LOG_JSON", "value": "true"}));
        }
    }
    let run_as_user = match (shape.run_as_user, run_as_same_user(&pod, request)?) {
        (_, Some(same)) => Some(same),
        (user, None) => user,
    };
    let mut resources = json!({"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}});
    for (kind, asked) in [("requests", &shape.requests), ("limits", &shape.limits)] {
        for (resource, quantity) in asked {
            resources[kind][resource] = json!(quantity);
        }
    }
    let mut security_context = json!({
        "runAsNonRoot": true,
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]},
    });
    if let Some(user) = run_as_user {
        security_context["runAsUser"] = json!(user);
    }
    if let Some(group) = shape.run_as_group {
        security_context["runAsGroup"] = json!(group);
    }
    let token_mount = json!({"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": true});
    let secrets_mount =
        |read_only: bool| json!({"name": SECRETS_VOLUME, "mountPath": request.secrets_dir, "readOnly": read_only});
    let agent_container = |name: &str, args: Value, mounts: Value| {
        json!({
            "name": name,
            "image": request.agent_image.as_deref().unwrap_or(&config.agent_image),
            "args": args,
            "env": agent_env,
            "volumeMounts": mounts,
            "resources": resources,
            "securityContext": security_context,
        })
    };
    let agent_container = |name: &str, args: Value, mounts: Value| {
        let mut container = agent_container(name, args, mounts);
        if shape.no_security_context
            && let Some(object) = container.as_object_mut()
        {
            object.remove("securityContext");
        }
        container
    };

    let mut new_volumes = vec![json!({
        "name": TOKEN_VOLUME,
        "projected": {"sources": [{"serviceAccountToken": {"audience": config.audience, "expirationSeconds": 3600, "path": "token"}}]},
    })];
    let mut agents = Vec::new();
    match request.mode {
        Mode::Init | Mode::Sidecar => {
            new_volumes.push(json!({"name": SECRETS_VOLUME, "emptyDir": {"medium": "Memory"}}));
            let mut mounts = json!([secrets_mount(false), token_mount]);
            if request.mode == Mode::Sidecar {
                // What the init container was issued, for the sidecar only.
                new_volumes.push(json!({"name": STATE_VOLUME, "emptyDir": {"medium": "Memory"}}));
                if let Some(list) = mounts.as_array_mut() {
                    list.push(json!({"name": STATE_VOLUME, "mountPath": STATE_DIR}));
                }
            }
            agents.push(agent_container("vaultsync-agent-init", json!(["agent", "init"]), mounts.clone()));
            if request.mode == Mode::Sidecar {
                let mut sidecar = agent_container("vaultsync-agent", json!(["agent", "sidecar"]), mounts);
                // A native sidecar: started before the app, stopped after
                // it, and never keeping a Job from completing.
                sidecar["restartPolicy"] = json!("Always");
                agents.push(sidecar);
            }
            for container in containers_mut(&mut pod) {
                let name = container["name"].as_str().unwrap_or_default();
                if shape.containers.as_ref().is_none_or(|only| only.iter().any(|c| c == name)) {
                    push(container, "volumeMounts", secrets_mount(true));
                }
            }
        }
        Mode::Exec => {
            new_volumes.push(json!({"name": BIN_VOLUME, "emptyDir": {"medium": "Memory"}}));
            let mounts = json!([{"name": BIN_VOLUME, "mountPath": BIN_DIR}]);
            agents.push(agent_container(
                "vaultsync-agent-install",
                json!(["agent", "install", format!("{BIN_DIR}/vaultsync")]),
                mounts,
            ));
            let mut wrapped = 0;
            for container in containers_mut(&mut pod) {
                let refers = container["env"].as_array().is_some_and(|env| {
                    env.iter().any(|e| e["value"].as_str().is_some_and(|v| v.starts_with(VAULT_REF_PREFIX)))
                });
                if !refers {
                    continue;
                }
                let name = container["name"].as_str().unwrap_or_default().to_owned();
                let command = container["command"].as_array().cloned().unwrap_or_default();
                if command.is_empty() {
                    return Err(Refused(format!(
                        "exec mode: container {name:?} has no command; the webhook cannot see the image's entrypoint, so set `command` (and `args`) in the Pod spec"
                    )));
                }
                let args = container["args"].as_array().cloned().unwrap_or_default();
                let mut wrapper =
                    vec![json!(format!("{BIN_DIR}/vaultsync")), json!("agent"), json!("exec"), json!("--")];
                wrapper.extend(command);
                wrapper.extend(args);
                container["command"] = Value::Array(wrapper);
                if let Some(object) = container.as_object_mut() {
                    object.remove("args");
                }
                push(container, "volumeMounts", json!({"name": BIN_VOLUME, "mountPath": BIN_DIR, "readOnly": true}));
                push(container, "volumeMounts", token_mount.clone());
                push(container, "env", agent_env[0].clone());
                wrapped += 1;
            }
            if wrapped == 0 {
                return Err(Refused(format!(
                    "exec mode: no container has an environment value starting with {VAULT_REF_PREFIX:?} (e.g. vault:secret/data/app#password)"
                )));
            }
        }
    }

    let spec = pod["spec"].as_object_mut().ok_or_else(|| Refused("the Pod has no spec".into()))?;
    if let Some(share) = shape.share_process_namespace {
        spec.insert("shareProcessNamespace".into(), json!(share));
    }
    let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
    if let Some(list) = volumes.as_array_mut() {
        list.extend(new_volumes);
    }
    let inits = spec.entry("initContainers").or_insert_with(|| json!([]));
    if let Some(list) = inits.as_array_mut() {
        // First, so that the app's own init containers see the secrets too.
        for (at, agent) in agents.into_iter().enumerate() {
            list.insert(at, agent);
        }
    }
    let metadata = pod["metadata"].as_object_mut().ok_or_else(|| Refused("the Pod has no metadata".into()))?;
    let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
    annotations[INJECT_STATUS] = json!("injected");
    if request.agent_compatible {
        annotations[AGENT_INJECT_STATUS] = json!("injected");
    }
    Ok(pod)
}

/// `agent-run-as-same-user: true`: the first app container's user, as the
/// injector takes it (never root).
fn run_as_same_user(pod: &Value, request: &Request) -> Result<Option<i64>, Refused> {
    let asked = pod
        .pointer("/metadata/annotations/vault.hashicorp.com~1agent-run-as-same-user")
        .and_then(Value::as_str)
        .is_some_and(|v| matches!(v.trim(), "true" | "1" | "t" | "T" | "TRUE" | "True"));
    if !asked || !request.agent_compatible {
        return Ok(None);
    }
    let user = pod.pointer("/spec/containers/0/securityContext/runAsUser").and_then(Value::as_i64);
    match user {
        Some(0) => Err(Refused(
            "vault.hashicorp.com/agent-run-as-same-user: the app's first container runs as root, and the agent never does".into(),
        )),
        Some(user) => Ok(Some(user)),
        None => Err(Refused(
            "vault.hashicorp.com/agent-run-as-same-user: the app's first container sets no securityContext.runAsUser to share".into(),
        )),
    }
}

fn containers_mut(pod: &mut Value) -> impl Iterator<Item = &mut Value> {
    pod.pointer_mut("/spec/containers").and_then(Value::as_array_mut).into_iter().flatten()
}

fn push(container: &mut Value, field: &str, item: Value) {
    match container.get_mut(field).and_then(Value::as_array_mut) {
        Some(list) => list.push(item),
        None => container[field] = json!([item]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decision, mutate};

    fn config() -> InjectConfig {
        InjectConfig {
            vault_address: "https://vault:8200".into(),
            vault_ca_pem: None,
            agent_image: "vaultsync:test".into(),
            auth_path: "kubernetes".into(),
            audience: "vault".into(),
        }
    }

    fn pod(annotations: Value, container: Value) -> Value {
        json!({"metadata": {"name": "p", "annotations": annotations}, "spec": {"containers": [container]}})
    }

    fn mutated(pod: &Value) -> Value {
        match mutate(pod, &config()).expect("accepted") {
            Decision::Patch(patch, _, _) => {
                let mut out = pod.clone();
                json_patch::patch(&mut out, &patch).expect("patch applies");
                out
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unannotated_pod_is_untouched() {
        let p = pod(json!({"other": "x"}), json!({"name": "app", "image": "app"}));
        assert!(matches!(mutate(&p, &config()), Ok(Decision::Untouched)));
    }

    #[test]
    fn init_mode_adds_an_init_container_and_mounts() {
        let p = pod(
            json!({"vaultsync.dev/inject": "true", "vaultsync.dev/role": "app", "vaultsync.dev/secret-db": "secret/data/db"}),
            json!({"name": "app", "image": "app"}),
        );
        let out = mutated(&p);
        let init = &out["spec"]["initContainers"][0];
        assert_eq!(init["name"], "vaultsync-agent-init");
        assert_eq!(init["args"], json!(["agent", "init"]));
        let agent: AgentConfig = serde_json::from_str(init["env"][0]["value"].as_str().unwrap()).unwrap();
        assert_eq!(
            (agent.role.as_str(), agent.files[0].path.as_str(), agent.files[0].file.as_str()),
            ("app", "secret/data/db", "db")
        );
        assert_eq!(out["spec"]["containers"][0]["volumeMounts"][0]["mountPath"], "/vault/secrets");
        assert_eq!(out["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["audience"], "vault");
        assert_eq!(out["metadata"]["annotations"]["vaultsync.dev/inject-status"], "injected");
        assert!(out["spec"]["initContainers"].as_array().unwrap().len() == 1, "no sidecar in init mode");
        // Re-admission of the mutated Pod changes nothing.
        assert!(matches!(mutate(&out, &config()), Ok(Decision::AlreadyInjected)));
    }

    #[test]
    fn vault_agent_annotations_mean_init_and_sidecar() {
        let p = pod(
            json!({
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/role": "web",
                "vault.hashicorp.com/agent-inject-secret-config.txt": "secret/data/web",
                "vault.hashicorp.com/agent-inject-template-config.txt": "{{ with secret \"secret/data/web\" }}{{ .Data.data.user }}{{ end }}",
                "vault.hashicorp.com/auth-path": "auth/k8s",
            }),
            json!({"name": "web", "image": "web"}),
        );
        let out = mutated(&p);
        let inits = out["spec"]["initContainers"].as_array().unwrap();
        assert_eq!(inits.len(), 2);
        assert_eq!(inits[1]["restartPolicy"], "Always", "a native sidecar");
        let agent: AgentConfig = serde_json::from_str(inits[0]["env"][0]["value"].as_str().unwrap()).unwrap();
        assert_eq!(agent.auth_path, "k8s");
        assert_eq!(agent.files[0].file, "config.txt");
        assert!(agent.files[0].template.as_deref().unwrap().contains("secret"));
        assert_eq!(out["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"], "injected");
        // The sidecar carries on with what the init container was issued,
        // through a volume the app does not mount.
        assert_eq!(agent.state_dir.as_deref(), Some(STATE_DIR));
        for agent in inits {
            assert!(agent["volumeMounts"].as_array().unwrap().iter().any(|m| m["name"] == STATE_VOLUME));
        }
        assert!(
            !out["spec"]["containers"][0]["volumeMounts"].as_array().unwrap().iter().any(|m| m["name"] == STATE_VOLUME)
        );
        assert!(out["spec"]["volumes"].as_array().unwrap().iter().any(|v| v["name"] == STATE_VOLUME));
        let mut pre = p.clone();
        pre["metadata"]["annotations"]["vault.hashicorp.com/agent-pre-populate-only"] = json!("true");
        let pre = mutated(&pre);
        assert_eq!(pre["spec"]["initContainers"].as_array().unwrap().len(), 1);
        let agent: AgentConfig =
            serde_json::from_str(pre["spec"]["initContainers"][0]["env"][0]["value"].as_str().unwrap()).unwrap();
        assert_eq!(agent.state_dir, None, "init only: nothing to hand on");
    }

    #[test]
    fn the_sidecar_notifies_by_command_or_url_as_asked() {
        let annotations = |command: &str, url: &str| {
            json!({"vaultsync.dev/inject": "true", "vaultsync.dev/role": "app", "vaultsync.dev/mode": "sidecar",
                   "vaultsync.dev/secret-db": "secret/data/db",
                   "vaultsync.dev/notify-command": command, "vaultsync.dev/notify-url": url})
        };
        let out = mutated(&pod(
            annotations(r#"["/app/reload", "--now"]"#, "http://127.0.0.1:8080/-/reload"),
            json!({"name": "app", "image": "app"}),
        ));
        let agent: AgentConfig =
            serde_json::from_str(out["spec"]["initContainers"][1]["env"][0]["value"].as_str().unwrap()).unwrap();
        assert_eq!(agent.notify_command, Some(vec!["/app/reload".to_string(), "--now".to_string()]));
        assert_eq!(agent.notify_url.as_deref(), Some("http://127.0.0.1:8080/-/reload"));
        assert_eq!(out["spec"]["initContainers"][1]["image"], config().agent_image, "the webhook's agent image");
        let mut own = annotations(r#"["/bin/sh", "-c", "kill -HUP 1"]"#, "http://x");
        own["vaultsync.dev/agent-image"] = json!("registry.example.com/team/vaultsync-with-shell:1");
        let out = mutated(&pod(own, json!({"name": "app", "image": "app"})));
        for agent in out["spec"]["initContainers"].as_array().unwrap() {
            assert_eq!(agent["image"], "registry.example.com/team/vaultsync-with-shell:1");
        }
        for (command, url, says) in [
            ("kill -HUP 1", "http://x", "JSON array"),
            ("[]", "http://x", "JSON array"),
            (r#"["/app/reload"]"#, "file:///etc/passwd", "http:// or https://"),
        ] {
            let refused = mutate(&pod(annotations(command, url), json!({"name": "app", "image": "app"})), &config());
            let Err(Refused(reason)) = refused else { panic!("{command} {url}: not refused") };
            assert!(reason.contains(says), "{reason}");
        }
    }

    #[test]
    fn exec_mode_wraps_the_command_of_containers_with_references() {
        let p = pod(
            json!({"vaultsync.dev/inject": "true", "vaultsync.dev/role": "app", "vaultsync.dev/mode": "exec"}),
            json!({"name": "app", "image": "app", "command": ["sh", "-c"], "args": ["run"],
                   "env": [{"name": "DB_PASSWORD", "value": "vault:secret/data/db#password"}]}),
        );
        let out = mutated(&p);
        let app = &out["spec"]["containers"][0];
        assert_eq!(app["command"], json!(["/vaultsync-agent/bin/vaultsync", "agent", "exec", "--", "sh", "-c", "run"]));
        assert!(app.get("args").is_none());
        assert_eq!(out["spec"]["initContainers"][0]["name"], "vaultsync-agent-install");
    }

    #[test]
    fn exec_mode_without_a_command_is_refused() {
        let p = pod(
            json!({"vaultsync.dev/inject": "true", "vaultsync.dev/role": "app", "vaultsync.dev/mode": "exec"}),
            json!({"name": "app", "image": "app", "env": [{"name": "X", "value": "vault:secret/data/db#x"}]}),
        );
        let error = mutate(&p, &config()).expect_err("refused");
        assert!(error.to_string().contains("has no command"), "{error}");
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let no_role =
            pod(json!({"vaultsync.dev/inject": "true", "vaultsync.dev/secret-db": "x"}), json!({"name": "a"}));
        assert!(mutate(&no_role, &config()).unwrap_err().to_string().contains("Vault role"));
        let escape = pod(
            json!({"vaultsync.dev/inject": "true", "vaultsync.dev/role": "r", "vaultsync.dev/secret-db": "x", "vaultsync.dev/file-db": "../etc/passwd"}),
            json!({"name": "a"}),
        );
        assert!(mutate(&escape, &config()).unwrap_err().to_string().contains("relative path"));
    }
}
