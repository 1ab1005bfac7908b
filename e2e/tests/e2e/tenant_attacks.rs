//! Security, round two: the attacks of a tenant who may create vaultsync
//! objects, Pods, ServiceAccounts and ConfigMaps in one namespace, each
//! repeated and shown to fail on the real API server and OpenBao.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vaultsync_e2e::{TestEnv, eventually, external_secret};

/// Every request line a listener was sent: a "Vault" the tenant runs, or a
/// proxy in front of the real one.
type Seen = Arc<Mutex<Vec<String>>>;

/// Reads one HTTP request head (and its body, by Content-Length).
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, Vec<String>, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n").map(str::to_owned);
    let request_line = lines.next()?;
    let headers: Vec<String> = lines.collect();
    let length = headers
        .iter()
        .find_map(|h| h.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0usize);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((request_line, headers, body))
}

/// A tenant's own "Vault": records every request line and answers 403.
async fn recording_listener() -> anyhow::Result<(String, Seen)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                while let Some((line, _, _)) = read_request(&mut socket).await {
                    log.lock().unwrap().push(line);
                    let body = r#"{"errors":["permission denied"]}"#;
                    let answer = format!(
                        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(answer.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok((address, seen))
}

/// Decodes `%XX` once, as nginx's `proxy_pass` with a URI does.
fn percent_decode_once(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A reverse proxy in front of OpenBao that decodes the path once before
/// forwarding it; it records the paths that decoding changed, as forwarded.
async fn decoding_proxy(backend: &str) -> anyhow::Result<(String, Seen)> {
    let backend = backend.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            let backend = backend.clone();
            tokio::spawn(async move {
                let Some((line, headers, body)) = read_request(&mut client).await else { return };
                let mut parts = line.splitn(3, ' ');
                let (method, target, version) =
                    (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let forwarded = percent_decode_once(target);
                if forwarded != target {
                    log.lock().unwrap().push(forwarded.clone());
                }
                let Ok(mut server) = tokio::net::TcpStream::connect(&backend).await else { return };
                let mut request = format!("{method} {forwarded} {version}\r\n");
                for header in headers.iter().filter(|h| !h.to_ascii_lowercase().starts_with("connection:")) {
                    request.push_str(header);
                    request.push_str("\r\n");
                }
                request.push_str("connection: close\r\n\r\n");
                let mut bytes = request.into_bytes();
                bytes.extend_from_slice(&body);
                if server.write_all(&bytes).await.is_err() {
                    return;
                }
                let mut answer = Vec::new();
                let _ = server.read_to_end(&mut answer).await;
                let _ = client.write_all(&answer).await;
            });
        }
    });
    Ok((address, seen))
}

fn audit_log() -> anyhow::Result<String> {
    let state = std::env::var("VAULTSYNC_STATE")?;
    std::fs::read_to_string(format!("{state}/logs/openbao-audit.log")).context("OpenBao audit log")
}

/// OpenBao audit entries of requests made inside Vault namespace `ns`,
/// after the first `skip` lines of the log (the test's own setup).
fn audited_in_namespace(ns: &str, skip: usize) -> anyhow::Result<Vec<String>> {
    Ok(audit_log()?
        .lines()
        .skip(skip)
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["type"] == "request")
        .filter(|e| {
            e["request"]["namespace"]["path"].as_str().is_some_and(|p| p.trim_end_matches('/') == ns)
                || e["request"]["path"].as_str().is_some_and(|p| p.starts_with(&format!("{ns}/")))
        })
        .map(|e| e["request"]["path"].as_str().unwrap_or_default().to_owned())
        .collect())
}

/// A legacy token Secret of ServiceAccount `deployer`, as a cluster that
/// still has them holds; kube-controller-manager fills in the token.
async fn legacy_token(env: &TestEnv) -> anyhow::Result<String> {
    env.apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer"}})).await?;
    env.apply(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "deployer-token", "annotations": {"kubernetes.io/service-account.name": "deployer"}},
    }))
    .await?;
    eventually(Duration::from_secs(60), || async {
        let secret = env.secrets().get("deployer-token").await?;
        Ok(secret.data.unwrap_or_default().contains_key("token"))
    })
    .await
    .context("kube-controller-manager fills in the legacy token")?;
    let data = env.secrets().get("deployer-token").await?.data.unwrap_or_default();
    let token = String::from_utf8(data.get("token").context("token")?.0.clone())?;
    env.record_secret(&token);
    Ok(token)
}

#[tokio::test]
async fn no_service_account_token_secret_is_written() -> anyhow::Result<()> {
    let env = TestEnv::new("satoken").await?;
    env.apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer"}})).await?;
    let template_only = |template: Value| {
        json!({
            "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ExternalSecret",
            "metadata": {"name": "mint"},
            "spec": {"target": {"template": template}},
        })
    };
    // What the template states statically, the API server refuses.
    let by_type = env
        .apply(template_only(json!({
            "type": "kubernetes.io/service-account-token",
            "metadata": {"annotations": {"kubernetes.io/service-account.name": "deployer"}},
            "data": {"x": "y"},
        })))
        .await;
    let error = format!("{:#}", by_type.expect_err("a service-account-token template must be refused"));
    assert!(error.contains("never writes Secrets that Kubernetes fills with API tokens"), "{error}");
    let by_annotation = env
        .apply(template_only(json!({
            "metadata": {"annotations": {"kubernetes.io/service-account.name": "deployer"}},
            "data": {"x": "y"},
        })))
        .await;
    assert!(by_annotation.is_err(), "the service-account annotation must be refused");

    // What only rendering shows (annotations from a templateFrom literal),
    // the controller refuses before writing.
    env.apply(template_only(json!({
        "data": {"x": "y"},
        "templateFrom": [{"literal": "kubernetes.io/service-account.name: deployer", "target": "Annotations"}],
    })))
    .await?;
    let (reason, message) = env.wait_ready("mint", "False").await?;
    assert_eq!(reason, "SecretSyncedError");
    assert!(message.contains("kubernetes.io/service-account.name"), "{message}");
    assert!(env.secrets().get_opt("mint").await?.is_none(), "no Secret may be written");

    // Merge into an existing token Secret: refused, the token untouched.
    let token = legacy_token(&env).await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "overwrite"},
        "spec": {"target": {"name": "deployer-token", "creationPolicy": "Merge", "template": {"data": {"token": "mine"}}}},
    }))
    .await?;
    let (_, message) = env.wait_ready("overwrite", "False").await?;
    assert!(message.contains("service-account-token"), "{message}");
    let kept = env.secrets().get("deployer-token").await?.data.unwrap_or_default();
    assert_eq!(kept.get("token").map(|v| v.0.as_slice()), Some(token.as_bytes()), "the token Secret is untouched");
    let written: Vec<Secret> = env.secrets().list(&Default::default()).await?.items;
    let token_secrets = written
        .iter()
        .filter(|s| s.type_.as_deref() == Some("kubernetes.io/service-account-token"))
        .filter(|s| s.metadata.labels.as_ref().is_some_and(|l| l.contains_key("app.kubernetes.io/managed-by")))
        .count();
    assert_eq!(token_secrets, 0, "vaultsync wrote no token Secret");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn no_kubernetes_token_reaches_a_tenant_server() -> anyhow::Result<()> {
    let env = TestEnv::new("tokensend").await?;
    let (listener, seen) = recording_listener().await?;
    let token = legacy_token(&env).await?;
    // The same token copied into an ordinary Secret, as a tenant with
    // Secret rights could: only a TokenReview tells it is an API token.
    env.create_secret("copied", &[("token", &token)]).await?;
    let stores = [
        ("k8s-legacy", json!({"kubernetes": {"role": "x", "secretRef": {"name": "deployer-token", "key": "token"}}})),
        ("k8s-copied", json!({"kubernetes": {"role": "x", "secretRef": {"name": "copied", "key": "token"}}})),
        ("jwt-copied", json!({"jwt": {"role": "x", "secretRef": {"name": "copied", "key": "token"}}})),
        ("token-legacy", json!({"tokenSecretRef": {"name": "deployer-token", "key": "token"}})),
        ("token-copied", json!({"tokenSecretRef": {"name": "copied", "key": "token"}})),
    ];
    for (name, auth) in &stores {
        env.apply(json!({
            "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
            "metadata": {"name": name},
            "spec": {"provider": {"vault": {"server": listener, "path": "secret", "auth": auth}}},
        }))
        .await?;
        env.apply(external_secret(
            name,
            name,
            json!({"data": [{"secretKey": "x", "remoteRef": {"key": "app/x", "property": "x"}}]}),
        ))
        .await?;
    }
    // A generator's provider is resolved the same way.
    env.apply(json!({
        "apiVersion": "generators.vaultsync.dev/v1alpha1", "kind": "VaultDynamicSecret",
        "metadata": {"name": "gen-copied"},
        "spec": {"path": "database/creds/app", "provider": {
            "server": listener,
            "auth": {"kubernetes": {"role": "x", "secretRef": {"name": "copied", "key": "token"}}},
        }},
    }))
    .await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "gen-copied"},
        "spec": {"dataFrom": [{"sourceRef": {"generatorRef": {
            "apiVersion": "generators.vaultsync.dev/v1alpha1", "kind": "VaultDynamicSecret", "name": "gen-copied"}}}]},
    }))
    .await?;
    for (name, _) in &stores {
        let (_, message) = env.wait_store_ready(name, "False").await?;
        assert!(
            message.contains("ServiceAccount token") || message.contains("Kubernetes API server accepts"),
            "{name}: {message}"
        );
        assert!(!message.contains(&token), "{name}: the token itself must not be quoted");
    }
    let (_, message) = env.wait_ready("gen-copied", "False").await?;
    assert!(message.contains("Kubernetes API server accepts"), "generator: {message}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let requests = seen.lock().unwrap().clone();
    assert!(requests.is_empty(), "nothing may reach the tenant's server, got {requests:?}");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn reserved_mounts_stay_closed_behind_namespaces_and_decoding_proxies() -> anyhow::Result<()> {
    let env = TestEnv::new("nsmount").await?;
    let ns = format!("{}ns", env.prefix.replace('-', ""));
    env.bao.write(&format!("sys/namespaces/{ns}"), json!({})).await?;
    env.bao.write_in_namespace(&ns, "sys/mounts/kv", json!({"type": "kv", "options": {"version": "1"}})).await?;
    let value = env.secret_value("nsmount");
    env.bao.write_in_namespace(&ns, "kv/app", json!({"password": value})).await?;
    env.create_secret("root-token", &[("token", "root")]).await?;
    let setup_lines = audit_log()?.lines().count();
    let (proxy, forwarded) = decoding_proxy(&env.bao.addr).await?;
    let pathless = |name: &str, server: &str| {
        json!({
            "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
            "metadata": {"name": name},
            "spec": {"provider": {"vault": {
                "server": server, "version": "v1",
                "auth": {"tokenSecretRef": {"name": "root-token", "key": "token"}},
            }}},
        })
    };
    env.apply(pathless("direct", &env.bao.addr)).await?;
    env.apply(pathless("proxied", &proxy)).await?;
    // The namespace's own KV mount, the way to read it: namespace set.
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "in-namespace"},
        "spec": {"provider": {"vault": {
            "server": env.bao.addr, "version": "v1", "path": "kv", "namespace": ns,
            "auth": {"tokenSecretRef": {"name": "root-token", "key": "token"}},
        }}},
    }))
    .await?;
    // Written plainly, the API server refuses a system mount at any segment.
    for key in [format!("{ns}/auth/token/lookup-self"), format!("{ns}/sys/mounts")] {
        let refused =
            env.apply(external_secret("plain", "direct", json!({"dataFrom": [{"extract": {"key": key}}]}))).await;
        let error = format!("{:#}", refused.expect_err(&format!("{key:?} must be refused")));
        assert!(error.contains("Vault's own mounts"), "{key:?}: {error}");
    }
    // Encoded, the controller refuses it after decoding, before any request.
    let attacks = [
        ("ns-lookup", "direct", format!("{ns}/%61uth/token/lookup-self"), "system mount"),
        ("ns-mounts", "direct", format!("{ns}/%73ys/mounts"), "system mount"),
        ("ns-kv", "direct", format!("{ns}/kv/app"), "Vault namespace belongs in provider.vault.namespace"),
        ("proxy-lookup", "proxied", "%61uth/token/lookup-self".to_owned(), "system mount"),
        ("proxy-ns", "proxied", format!("{ns}/%2573ys/mounts"), "system mount"),
    ];
    for (name, store, key, _) in &attacks {
        env.apply(external_secret(
            name,
            store,
            json!({
                "dataFrom": [{"extract": {"key": key},
                              "rewrite": [{"regexp": {"source": "/", "target": "_"}}]}],
            }),
        ))
        .await?;
    }
    for (name, _, key, why) in &attacks {
        let (reason, message) = env.wait_ready(name, "False").await?;
        assert_eq!(reason, "SecretSyncedError", "{key}");
        assert!(message.contains(why), "{key}: {message}");
        assert!(env.secrets().get_opt(name).await?.is_none(), "{key}: no Secret may be written");
    }
    env.apply(external_secret(
        "legit",
        "in-namespace",
        json!({"data": [{"secretKey": "password", "remoteRef": {"key": "app", "property": "password"}}]}),
    ))
    .await?;
    assert_eq!(env.wait_secret("legit").await?.get("password"), Some(&value));
    // OpenBao's audit log: inside the namespace, only the mount check and
    // the legitimate read of kv/app, never a system mount.
    let inside = audited_in_namespace(&ns, setup_lines)?;
    let reserved: Vec<&String> = inside
        .iter()
        .filter(|p| {
            let p = p.trim_start_matches(&format!("{ns}/"));
            (p.starts_with("auth/") || p.starts_with("sys/") || p.starts_with("identity/"))
                && !p.starts_with("sys/internal/ui/mounts/")
        })
        .collect();
    assert!(reserved.is_empty(), "a system mount inside namespace {ns} was asked: {reserved:?}");
    assert!(inside.iter().any(|p| p.ends_with("kv/app")), "the audit log shows the legitimate read: {inside:?}");
    // The store's own token check (auth/token/lookup-self, sent as is) is
    // not an attack; only paths the proxy's decoding changed count.
    let through_proxy = forwarded.lock().unwrap().clone();
    let leaked: Vec<&String> = through_proxy
        .iter()
        .filter(|p| {
            let p = p.to_ascii_lowercase();
            (p.contains("/auth/") || p.contains("/sys/mounts")) && !p.starts_with("/v1/sys/internal/ui/mounts/")
        })
        .collect();
    assert!(leaked.is_empty(), "the proxy forwarded a system path: {leaked:?}");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn requests_stay_under_the_server_origin() -> anyhow::Result<()> {
    let env = TestEnv::new("origin").await?;
    let (listener, seen) = recording_listener().await?;
    env.create_secret("tenant-token", &[("token", "tenant-vault-token")]).await?;
    let store = |name: &str, server: &str| {
        json!({
            "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
            "metadata": {"name": name},
            "spec": {"provider": {"vault": {
                "server": server, "path": "secret",
                "auth": {"tokenSecretRef": {"name": "tenant-token", "key": "token"}},
            }}},
        })
    };
    let generator = |name: &str, server: &str| {
        json!({
            "apiVersion": "generators.vaultsync.dev/v1alpha1", "kind": "VaultDynamicSecret",
            "metadata": {"name": name},
            "spec": {"path": "database/creds/app", "resultType": "Raw", "provider": {
                "server": server, "auth": {"tokenSecretRef": {"name": "tenant-token", "key": "token"}},
            }},
        })
    };
    for (i, server) in [
        format!("{listener}/internal/admin#"),
        format!("{listener}/internal/admin?x="),
        format!("{listener}/a/../internal"),
        format!("{listener}/%2e%2e/internal"),
        "http://user@127.0.0.1:1".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        let refused = env.apply(store(&format!("bad-{i}"), server)).await;
        let error = format!("{:#}", refused.expect_err(&format!("server {server:?} must be refused")));
        assert!(error.contains("server must be scheme, host and port"), "{server}: {error}");
        assert!(env.apply(generator(&format!("bad-{i}"), server)).await.is_err(), "generator server {server:?}");
    }
    // A plain path prefix is allowed (Vault behind a gateway); every
    // request goes under <prefix>/v1/.
    env.apply(store("prefixed", &format!("{listener}/vault/"))).await?;
    env.apply(external_secret(
        "prefixed",
        "prefixed",
        json!({"data": [{"secretKey": "x", "remoteRef": {"key": "app", "property": "x"}}]}),
    ))
    .await?;
    env.apply(generator("prefixed", &format!("{listener}/vault"))).await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "generated"},
        "spec": {"dataFrom": [{"sourceRef": {"generatorRef": {
            "apiVersion": "generators.vaultsync.dev/v1alpha1", "kind": "VaultDynamicSecret", "name": "prefixed"}}}]},
    }))
    .await?;
    env.wait_ready("prefixed", "False").await?;
    env.wait_ready("generated", "False").await?;
    let requests = seen.lock().unwrap().clone();
    assert!(!requests.is_empty(), "the listener was asked something");
    for line in &requests {
        let path = line.split(' ').nth(1).unwrap_or_default();
        assert!(path.starts_with("/vault/v1/") && !path.contains('#'), "request outside <origin>/vault/v1/: {line}");
    }
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn refresh_interval_has_a_floor() -> anyhow::Result<()> {
    // The e2e operator runs with the default --min-refresh-interval (1s).
    let env = TestEnv::new("floor").await?;
    let p = env.prefix.clone();
    env.token_store("vault", "root", json!({})).await?;
    env.bao.kv2_put(&format!("{p}/app"), json!({"x": env.secret_value("floor")})).await?;
    env.apply(external_secret(
        "hammer",
        "vault",
        json!({"refreshInterval": "1ms", "data": [{"secretKey": "x", "remoteRef": {"key": format!("{p}/app"), "property": "x"}}]}),
    ))
    .await?;
    env.wait_secret("hammer").await?;
    let path = format!("secret/data/{p}/app");
    let before = vaultsync_e2e::Bao::audited_responses(&path)?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let reads = vaultsync_e2e::Bao::audited_responses(&path)? - before;
    // 1ms would be thousands; the 1s floor (plus jitter) allows about 10.
    assert!((3..=15).contains(&reads), "{reads} reads of {path} in 10s with refreshInterval 1ms");
    env.cleanup().await;
    Ok(())
}
