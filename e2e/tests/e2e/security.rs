//! A hostile tenant, who may create any vaultsync object in their own
//! namespace, gains nothing more: no Kubernetes API token leaves the
//! operator, and no key reaches Vault outside the store's KV mount.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use vaultsync_e2e::{TestEnv, external_secret};

/// A listener standing in for a "Vault" the tenant runs: it counts the
/// bytes anyone sends it.
async fn tenant_listener() -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while let Ok(n) = socket.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    counter.fetch_add(n, Ordering::SeqCst);
                }
            });
        }
    });
    Ok((address, received))
}

/// TokenRequests the API server answered for `namespace/name`, from its
/// audit log of the operator's requests.
fn audited_token_requests(namespace: &str, service_account: &str) -> anyhow::Result<usize> {
    let state = std::env::var("VAULTSYNC_STATE")?;
    let log = std::fs::read_to_string(format!("{state}/logs/kube-audit.log")).context("API server audit log")?;
    Ok(log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| {
            let o = &e["objectRef"];
            o["resource"] == "serviceaccounts"
                && o["subresource"] == "token"
                && o["namespace"] == namespace
                && o["name"] == service_account
        })
        .count())
}

#[tokio::test]
async fn stores_cannot_mint_kubernetes_api_tokens() -> anyhow::Result<()> {
    refuses_kubernetes_api_audiences("mint", false).await
}

/// The same in ESO's group, whose CRDs carry none of vaultsync's rules: the
/// refusal is vaultsync's code, reported with ESO's store reason.
#[tokio::test]
async fn eso_group_stores_cannot_mint_kubernetes_api_tokens() -> anyhow::Result<()> {
    refuses_kubernetes_api_audiences("mint-eso", true).await
}

async fn refuses_kubernetes_api_audiences(test: &str, eso: bool) -> anyhow::Result<()> {
    let env = TestEnv::new(test).await?;
    let (listener, received) = tenant_listener().await?;
    env.apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer"}})).await?;
    let api_audience = "https://kubernetes.default.svc";
    let stores = [
        (
            "k8s-api",
            json!({"kubernetes": {"role": "x", "serviceAccountRef": {"name": "deployer", "audiences": [api_audience]}}}),
        ),
        (
            "k8s-mixed",
            json!({"kubernetes": {"role": "x", "serviceAccountRef": {"name": "deployer", "audiences": ["vault", api_audience]}}}),
        ),
        ("k8s-empty", json!({"kubernetes": {"role": "x", "serviceAccountRef": {"name": "deployer", "audiences": []}}})),
        (
            "jwt-api",
            json!({"jwt": {"role": "x", "kubernetesServiceAccountToken": {"serviceAccountRef": {"name": "deployer"}, "audiences": [api_audience]}}}),
        ),
    ];
    for (name, auth) in &stores {
        let mut store = json!({
            "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
            "metadata": {"name": name},
            "spec": {"provider": {"vault": {"server": listener, "path": "secret", "auth": auth}}},
        });
        let mut es = external_secret(
            name,
            name,
            json!({"data": [{"secretKey": "x", "remoteRef": {"key": "app/x", "property": "x"}}]}),
        );
        if eso {
            store["apiVersion"] = json!("external-secrets.io/v1");
            store["spec"]["controller"] = json!("vaultsync");
            es["apiVersion"] = json!("external-secrets.io/v1");
        }
        env.apply(store).await?;
        env.apply(es).await?;
    }
    for (name, _) in &stores {
        let (reason, message) = match eso {
            false => env.wait_store_ready(name, "False").await?,
            true => env.wait_eso_ready("SecretStore", name, "False").await?,
        };
        let expected = if eso { "InvalidProviderConfig" } else { "RefusedAudience" };
        assert_eq!(reason, expected, "{name}: {message}");
        if *name == "k8s-empty" {
            assert!(message.contains("empty audience list"), "{name}: {message}");
        } else {
            assert!(message.contains(api_audience) && message.contains("deployer"), "{name}: {message}");
        }
        let (reason, message) = match eso {
            false => env.wait_ready(name, "False").await?,
            true => env.wait_eso_ready("ExternalSecret", name, "False").await?,
        };
        assert_eq!(reason, "SecretSyncedError");
        assert!(message.contains("refused to request a token"), "{name}: {message}");
    }
    // Give any straggling request time to show, then check that none
    // happened: no TokenRequest reached the API server, nothing reached
    // the tenant's listener.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(audited_token_requests(&env.namespace, "deployer")?, 0, "no token may be requested for deployer");
    assert_eq!(received.load(Ordering::SeqCst), 0, "nothing may be sent to the tenant's listener");
    env.cleanup().await;
    Ok(())
}

/// A store reading with a token whose policy allows this test's KV paths.
async fn policy_token(env: &TestEnv, extra: &str) -> anyhow::Result<String> {
    let policy = format!(
        "path \"secret/data/{p}/*\" {{ capabilities = [\"read\"] }}\n\
         path \"secret/metadata/{p}/*\" {{ capabilities = [\"read\", \"list\"] }}\n\
         path \"kv1/{p}/*\" {{ capabilities = [\"read\", \"list\"] }}\n{extra}",
        p = env.prefix
    );
    env.bao.write(&format!("sys/policies/acl/{}", env.prefix), json!({"policy": policy})).await?;
    let answer = env
        .bao
        .write("auth/token/create", json!({"policies": [env.prefix], "ttl": "1h", "no_default_policy": false}))
        .await?;
    Ok(answer["auth"]["client_token"].as_str().context("client_token")?.to_owned())
}

#[tokio::test]
async fn keys_never_leave_the_mount() -> anyhow::Result<()> {
    let env = TestEnv::new("escape").await?;
    let p = env.prefix.clone();
    let value = env.secret_value("escape");
    let pki = format!("{p}-pki");
    env.bao.write(&format!("sys/mounts/{pki}"), json!({"type": "pki"})).await?;
    env.bao.write(&format!("{pki}/root/generate/internal"), json!({"common_name": "escape.test", "ttl": "1h"})).await?;
    let token = policy_token(&env, &format!("path \"{pki}/*\" {{ capabilities = [\"read\"] }}")).await?;
    env.bao.kv2_put(&format!("{p}/app"), json!({"password": value})).await?;
    env.bao.kv1_put(&format!("{p}/app"), json!({"password": value})).await?;
    // Dots and odd characters inside a segment are names, not traversal.
    env.bao.kv2_put(&format!("{p}/cfg.v2..x"), json!({"password": value})).await?;
    env.bao.kv2_put(&format!("{p}/with space"), json!({"password": value})).await?;
    env.token_store("kv2", &token, json!({})).await?;
    env.token_store("kv1", &token, json!({"path": "kv1", "version": "v1"})).await?;
    // A KV v1 store without path: the first segment of each key is the mount.
    env.create_secret("pathless-token", &[("token", &token)]).await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "pathless"},
        "spec": {"provider": {"vault": {
            "server": env.bao.addr, "version": "v1",
            "auth": {"tokenSecretRef": {"name": "pathless-token", "key": "token"}},
        }}},
    }))
    .await?;

    // What the schema can see is refused by the API server, in data,
    // dataFrom.extract and dataFrom.find alike.
    let escapes = [
        "../auth/token/lookup-self",
        "../../sys/health",
        "%2e%2e/auth/token/lookup-self",
        "app/%2E%2e/%2e%2e/x",
        "x/%252e%252e/y",
        "app?list=true",
        "app#frag",
        "app\u{1}",
        "/secret/data/app",
        "a//b",
        "a\\..\\b",
    ];
    for (i, key) in escapes.iter().enumerate() {
        for (store, spec) in [
            ("kv1", json!({"data": [{"secretKey": "x", "remoteRef": {"key": key}}]})),
            ("kv2", json!({"dataFrom": [{"extract": {"key": key}}]})),
            ("kv2", json!({"dataFrom": [{"find": {"path": key}}]})),
        ] {
            let refused = env.apply(external_secret(&format!("escape-{i}"), store, spec.clone())).await;
            let error = format!("{:#}", refused.expect_err(&format!("{key:?} in {spec} must be refused")));
            assert!(error.contains("must be a path inside"), "{key:?}: {error}");
        }
    }
    for path in ["sys", "auth/token", "../secret", "cubbyhole"] {
        let refused = env.token_store(&format!("bad-{}", path.len()), &token, json!({"path": path})).await;
        assert!(refused.is_err(), "store path {path:?} must be refused");
    }

    // What it cannot see (the store has no path, so the key's first segment
    // is the mount) is refused by the controller, before any request.
    // Plain system mount names are the API server's to refuse.
    for key in ["auth/token/lookup-self", "sys/health/x", "cubbyhole/x", "team/auth/token/lookup-self"] {
        let refused =
            env.apply(external_secret("plain", "pathless", json!({"dataFrom": [{"extract": {"key": key}}]}))).await;
        let error = format!("{:#}", refused.expect_err(&format!("{key:?} must be refused")));
        assert!(error.contains("Vault's own mounts"), "{key:?}: {error}");
    }
    let pathless_cases = [
        ("lookup", "%61uth/token/lookup-self", "system mount"),
        ("sys", "%73ys/health/x", "system mount"),
        ("cubby", "%2563ubbyhole/x", "system mount"),
        ("pki", &format!("{pki}/cert/ca") as &str, "not a KV secrets engine"),
    ];
    for (name, key, why) in pathless_cases {
        env.apply(external_secret(name, "pathless", json!({"dataFrom": [{"extract": {"key": key}}]}))).await?;
        let (reason, message) = env.wait_ready(name, "False").await?;
        assert_eq!(reason, "SecretSyncedError");
        assert!(message.contains(why), "{key}: {message}");
        assert!(env.secrets().get_opt(name).await?.is_none(), "{key}: no Secret may be written");
    }

    // The same stores still read what they should.
    env.apply(external_secret(
        "ok",
        "pathless",
        json!({"data": [{"secretKey": "password", "remoteRef": {"key": format!("kv1/{p}/app"), "property": "password"}}]}),
    ))
    .await?;
    env.apply(external_secret(
        "dots",
        "kv2",
        json!({"data": [
            {"secretKey": "dots", "remoteRef": {"key": format!("{p}/cfg.v2..x"), "property": "password"}},
            {"secretKey": "space", "remoteRef": {"key": format!("{p}/with space"), "property": "password"}},
        ]}),
    ))
    .await?;
    assert_eq!(env.wait_secret("ok").await?.get("password"), Some(&value));
    let dots = env.wait_secret("dots").await?;
    assert_eq!((dots.get("dots"), dots.get("space")), (Some(&value), Some(&value)));
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn merge_writers_share_a_secret_without_fighting() -> anyhow::Result<()> {
    let env = TestEnv::new("comerge").await?;
    env.token_store("vault", "root", json!({})).await?;
    let (a, b, c) = (env.secret_value("a"), env.secret_value("b"), env.secret_value("c"));
    env.bao.kv2_put(&format!("{}/app", env.prefix), json!({"a": a, "b": b, "c": c})).await?;
    env.create_secret("shared", &[("base", "kept")]).await?;
    let merge = |key: &str, property: &str| {
        json!({
            "refreshInterval": "2s",
            "target": {"name": "shared", "creationPolicy": "Merge"},
            "data": [{"secretKey": key, "remoteRef": {"key": format!("{}/app", env.prefix), "property": property}}],
        })
    };
    env.apply(external_secret("writer-a", "vault", merge("a", "a"))).await?;
    env.apply(external_secret("writer-b", "vault", merge("b", "b"))).await?;
    let expected = |data: &std::collections::BTreeMap<String, String>| {
        data.get("a") == Some(&a) && data.get("b") == Some(&b) && data.get("base").map(String::as_str) == Some("kept")
    };
    vaultsync_e2e::eventually(Duration::from_secs(60), || async { Ok(expected(&env.secret_data("shared").await?)) })
        .await
        .context("both writers' keys and the creator's key must be present")?;
    env.wait_ready("writer-a", "True").await?;
    env.wait_ready("writer-b", "True").await?;

    // A third writer of key `a` is refused and told who writes it.
    env.apply(external_secret("writer-c", "vault", merge("a", "c"))).await?;
    let (_, message) = env.wait_ready("writer-c", "False").await?;
    assert!(message.contains(&format!("vaultsync/{}/writer-a", env.namespace)), "{message}");

    // Converged: every refresh (every 2s) finds the Secret as it should be
    // and writes nothing.
    let version = env.secrets().get("shared").await?.metadata.resource_version;
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let secret = env.secrets().get("shared").await?;
        assert_eq!(secret.metadata.resource_version, version, "no write after convergence");
    }
    assert!(expected(&env.secret_data("shared").await?));
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn plain_http_is_flagged_and_long_warnings_still_arrive() -> anyhow::Result<()> {
    let env = TestEnv::new("plainhttp").await?;
    env.token_store("plain", "root", json!({})).await?;
    env.token_store("acknowledged", "root", json!({"allowInsecureHttp": true})).await?;
    env.wait_store_ready("plain", "True").await?;
    env.wait_store_ready("acknowledged", "True").await?;
    let insecure = |name: &'static str| {
        let stores = env.stores();
        async move {
            let store = stores.get(name).await?;
            Ok::<_, anyhow::Error>(
                store.status.unwrap_or_default().conditions.into_iter().find(|c| c.type_ == "InsecureTransport"),
            )
        }
    };
    let condition = insecure("plain").await?.context("a plain http:// store carries InsecureTransport")?;
    assert_eq!(condition.reason.as_deref(), Some("PlainHTTP"));
    assert!(condition.message.unwrap_or_default().contains("allowInsecureHttp"));
    let warning = env.wait_warning("plain").await?;
    assert!(warning.contains("plain http://"), "{warning}");
    assert!(insecure("acknowledged").await?.is_none(), "an acknowledged http:// store carries no warning");

    // An error longer than an Event may be: the Event is cut to the API
    // server's limit, the status keeps every word.
    let key = format!("{}/long", env.prefix);
    env.bao.kv2_put(&key, json!({"x": "not a secret"})).await?;
    let property = "missing".repeat(200);
    env.apply(external_secret(
        "long",
        "plain",
        json!({"data": [{"secretKey": "x", "remoteRef": {"key": key, "property": property}}]}),
    ))
    .await?;
    let (_, message) = env.wait_ready("long", "False").await?;
    assert!(
        message.len() > 1024 && message.contains(&property),
        "status keeps the full message ({} bytes)",
        message.len()
    );
    let notes = env.wait_warning("long").await?;
    let note = notes.lines().next().unwrap_or_default();
    assert!(note.len() <= 1024 && note.ends_with("(cut; the full text is in the status condition)"), "{note}");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn token_requests_follow_the_namespace_selector() -> anyhow::Result<()> {
    // The e2e operator runs with --token-namespace-selector
    // '!vaultsync-e2e/no-tokens' (scripts/start-operator.sh).
    let mut env = TestEnv::new("nstokens").await?;
    let fenced = format!("{}-fenced", env.namespace);
    env.create_labelled_namespace(&fenced, json!({"vaultsync-e2e/no-tokens": "true"})).await?;
    let fenced_env = env.in_namespace(&fenced);
    fenced_env
        .apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app", "namespace": fenced}}))
        .await?;
    fenced_env
        .apply(json!({
            "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
            "metadata": {"name": "vault", "namespace": fenced},
            "spec": {"provider": {"vault": {
                "server": env.bao.addr, "path": "secret",
                "auth": {"kubernetes": {"role": "x", "serviceAccountRef": {"name": "app"}}},
            }}},
        }))
        .await?;
    let (reason, message) = fenced_env.wait_store_ready("vault", "False").await?;
    assert_eq!(reason, "ServiceAccountNotAllowed", "{message}");
    assert!(message.contains(&format!("{fenced}/app")), "{message}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(audited_token_requests(&fenced, "app")?, 0, "no token may be requested in a fenced namespace");
    env.cleanup().await;
    Ok(())
}
