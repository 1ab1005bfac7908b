//! Vault tokens: a read the policies refuse costs no new login, and the
//! tokens vaultsync logs in for are revoked when their client goes (store
//! deleted or changed, namespace deleted, operator stopped). Logins are
//! counted in OpenBao's audit log; tokens are found through their accessors.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::DeleteParams;
use serde_json::{Value, json};
use vaultsync_e2e::{Bao, TestEnv, eventually, external_secret};

/// An AppRole mount of the test's own with one role per name in `roles`,
/// each with the test's read policy, so logins and tokens can be counted.
async fn approle_mount(env: &TestEnv, roles: &[&str]) -> anyhow::Result<String> {
    let mount = format!("approle-{}", env.prefix);
    env.bao.write(&format!("sys/auth/{mount}"), json!({"type": "approle"})).await?;
    env.write_read_policy().await?;
    for role in roles {
        env.bao
            .write(
                &format!("auth/{mount}/role/{role}"),
                json!({"token_policies": [env.prefix], "token_ttl": "10m", "token_max_ttl": "1h"}),
            )
            .await?;
    }
    Ok(mount)
}

/// A SecretStore `name` in `env`'s namespace logging in as AppRole `role`.
async fn approle_store(env: &TestEnv, name: &str, mount: &str, role: &str) -> anyhow::Result<()> {
    let (role_id, secret_id) = env.bao.approle_credentials(mount, role).await?;
    env.create_secret(&format!("{name}-approle"), &[("secret-id", &secret_id)]).await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": name},
        "spec": {"provider": {"vault": {
            "server": env.bao.addr, "path": "secret", "allowInsecureHttp": true,
            "auth": {"appRole": {"path": mount, "roleId": role_id, "secretRef": {"name": format!("{name}-approle")}}},
        }}},
    }))
    .await?;
    Ok(())
}

/// An ExternalSecret `name` reading property `v` of `path` through `store`.
async fn reader(env: &TestEnv, name: &str, store: &str, path: &str) -> anyhow::Result<()> {
    env.apply(external_secret(
        name,
        store,
        json!({"data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
    ))
    .await?;
    Ok(())
}

/// Live tokens issued by logins at `mount`, by accessor: the AppRole role
/// each was issued to.
async fn live_tokens(bao: &Bao, mount: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let listed = bao.read("auth/token/accessors?list=true").await?;
    let mut found = BTreeMap::new();
    for accessor in listed["data"]["keys"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        // A token revoked or expired since the list is simply not found.
        let Ok(token) = bao.write("auth/token/lookup-accessor", json!({"accessor": accessor})).await else {
            continue;
        };
        if token["data"]["path"] == format!("auth/{mount}/login") {
            let role = token["data"]["meta"]["role_name"].as_str().unwrap_or_default().to_owned();
            found.insert(accessor.to_owned(), role);
        }
    }
    Ok(found)
}

fn count_role(tokens: &BTreeMap<String, String>, role: &str) -> usize {
    tokens.values().filter(|r| *r == role).count()
}

/// Waits until `role` has exactly `n` live tokens from `mount`.
async fn wait_tokens(bao: &Bao, mount: &str, role: &str, n: usize, what: &str) -> anyhow::Result<()> {
    let last = std::sync::Mutex::new(BTreeMap::new());
    let waited = eventually(Duration::from_secs(60), || async {
        let tokens = live_tokens(bao, mount).await?;
        let done = count_role(&tokens, role) == n;
        *last.lock().unwrap() = tokens;
        Ok(done)
    })
    .await;
    let last = last.into_inner().unwrap();
    let roles: Vec<&String> = last.values().collect();
    waited.map_err(|e| e.context(format!("{what}: expected {n} live token(s) of role {role}, have {roles:?}")))
}

#[tokio::test]
async fn a_refused_read_retried_costs_no_new_login() -> anyhow::Result<()> {
    let env = TestEnv::new("tokens-denied").await?;
    let mount = approle_mount(&env, &["app"]).await?;
    approle_store(&env, "vault", &mount, "app").await?;
    let allowed = format!("{}/allowed", env.prefix);
    env.bao.kv2_put(&allowed, json!({"v": env.secret_value("allowed")})).await?;
    // Outside the test's policy: Vault answers 403 "permission denied", as
    // it does to a token it no longer knows.
    let refused = format!("other-{}/refused", env.prefix);
    env.bao.kv2_put(&refused, json!({"v": env.secret_value("refused")})).await?;

    reader(&env, "allowed", "vault", &allowed).await?;
    let refused_names: Vec<String> = (0..3).map(|i| format!("refused-{i}")).collect();
    for name in &refused_names {
        reader(&env, name, "vault", &refused).await?;
    }
    env.wait_secret("allowed").await?;
    for name in &refused_names {
        let (reason, message) = env.wait_ready(name, "False").await?;
        assert_eq!(reason, "SecretSyncedError");
        assert!(message.contains("permission denied"), "{message}");
    }

    // Five more rounds of the refused reads, each a new request to Vault.
    let audited = format!("secret/data/{refused}");
    for round in 1..=5 {
        let before = Bao::audited_responses(&audited)?;
        for name in &refused_names {
            env.force_sync(name, &format!("round-{round}")).await?;
        }
        eventually(Duration::from_secs(30), || async { Ok(Bao::audited_responses(&audited)? > before) }).await?;
        // Past the read window, so the next round cannot share this answer.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let refusals = Bao::audited_responses(&audited)?;
    let logins = Bao::audited_responses(&format!("auth/{mount}/login"))?;
    eprintln!("tokens-denied: {refusals} refused reads, {logins} login(s)");
    assert!(refusals >= 6, "the refused read was retried at least 5 times ({refusals})");
    assert_eq!(logins, 1, "refused reads must not cause new logins ({refusals} refused reads)");
    // The token still serves the reads it may do.
    let (reason, _) = env.wait_ready("allowed", "True").await?;
    assert_eq!(reason, "SecretSynced");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_failed_login_is_shared_by_every_external_secret() -> anyhow::Result<()> {
    let env = TestEnv::new("tokens-failed").await?;
    let mount = approle_mount(&env, &["app"]).await?;
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": env.secret_value("failed")})).await?;
    // A secret ID OpenBao never issued: every login attempt fails.
    let role_id = env.bao.approle_credentials(&mount, "app").await?.0;
    env.create_secret("broken-approle", &[("secret-id", "00000000-0000-0000-0000-000000000000")]).await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "broken"},
        "spec": {"provider": {"vault": {
            "server": env.bao.addr, "path": "secret", "allowInsecureHttp": true,
            "auth": {"appRole": {"path": mount, "roleId": role_id, "secretRef": {"name": "broken-approle"}}},
        }}},
    }))
    .await?;
    let names: Vec<String> = (0..5).map(|i| format!("app-{i}")).collect();
    for name in &names {
        reader(&env, name, "broken", &path).await?;
    }
    let attempts = || Bao::audited_responses(&format!("auth/{mount}/login"));
    eventually(Duration::from_secs(30), || async { Ok(attempts()? > 0) }).await?;
    for name in &names {
        let (_, message) = env.wait_ready(name, "False").await?;
        assert!(message.contains("login"), "{message}");
    }
    // The store check and 5 ExternalSecrets, each retrying on its own
    // backoff (5s, 10s, ...), share one attempt per login backoff window
    // (5s, then 10s): at most 3 attempts in the first 12s.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let attempted = attempts()?;
    eprintln!("tokens-failed: {attempted} login attempt(s) in ~12s by a store and 5 ExternalSecrets");
    assert!(attempted <= 3, "a failed login is remembered, not retried by every user ({attempted} attempts)");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn tokens_are_revoked_when_stores_go_or_change() -> anyhow::Result<()> {
    let mut env = TestEnv::new("tokens-revoke").await?;
    let mount = approle_mount(&env, &["a", "b", "b2", "c"]).await?;
    let prefix = env.prefix.clone();
    let path = |store: &str| format!("{prefix}/{store}");
    for store in ["a", "b", "c"] {
        env.bao.kv2_put(&path(store), json!({"v": env.secret_value(&format!("revoke-{store}"))})).await?;
    }
    let other_ns = format!("{}-other", env.namespace);
    env.create_namespace(&other_ns).await?;
    let other = env.in_namespace(&other_ns);
    approle_store(&env, "a", &mount, "a").await?;
    approle_store(&env, "b", &mount, "b").await?;
    approle_store(&other, "c", &mount, "c").await?;
    reader(&env, "a", "a", &path("a")).await?;
    reader(&env, "b", "b", &path("b")).await?;
    reader(&other, "c", "c", &path("c")).await?;
    env.wait_secret("a").await?;
    env.wait_secret("b").await?;
    other.wait_secret("c").await?;

    let tokens = live_tokens(&env.bao, &mount).await?;
    for role in ["a", "b", "c"] {
        assert_eq!(count_role(&tokens, role), 1, "one login per store: {tokens:?}");
    }
    let accessor_of = |role: &str| tokens.iter().find(|(_, r)| *r == role).map(|(a, _)| a.clone()).unwrap_or_default();
    let (token_a, token_b) = (accessor_of("a"), accessor_of("b"));

    // A deleted store: its token is revoked.
    env.stores().delete("a", &DeleteParams::default()).await?;
    wait_tokens(&env.bao, &mount, "a", 0, "after deleting store a").await?;
    let lookup = env.bao.write("auth/token/lookup-accessor", json!({"accessor": token_a})).await;
    assert!(lookup.is_err(), "store a's token must be revoked: {lookup:?}");

    // A store whose auth changes: the new client replaces the old one,
    // whose token is revoked.
    approle_store(&env, "b", &mount, "b2").await?;
    wait_tokens(&env.bao, &mount, "b2", 1, "after store b changed its role").await?;
    wait_tokens(&env.bao, &mount, "b", 0, "after store b changed its role").await?;
    assert!(env.bao.write("auth/token/lookup-accessor", json!({"accessor": token_b})).await.is_err());
    let (reason, _) = env.wait_ready("b", "True").await?;
    assert_eq!(reason, "SecretSynced");

    // New credentials, same spec (a rotated secret ID in the store's
    // Secret): the next sync builds a new client, and the old token goes.
    let old_b2: Vec<String> =
        live_tokens(&env.bao, &mount).await?.into_iter().filter(|(_, r)| r == "b2").map(|(a, _)| a).collect();
    let (_, secret_id) = env.bao.approle_credentials(&mount, "b2").await?;
    env.create_secret("b-approle", &[("secret-id", &secret_id)]).await?;
    env.force_sync("b", "rotated").await?;
    let rotated = eventually(Duration::from_secs(60), || async {
        let live = live_tokens(&env.bao, &mount).await?;
        Ok(count_role(&live, "b2") == 1 && !old_b2.iter().any(|a| live.contains_key(a)))
    })
    .await;
    rotated.map_err(|e| e.context("store b's token after its secret ID was rotated"))?;

    // A deleted namespace: its stores go, and their tokens with them.
    kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(env.client.clone())
        .delete(&other_ns, &DeleteParams::default())
        .await?;
    wait_tokens(&env.bao, &mount, "c", 0, &format!("after deleting namespace {other_ns}")).await?;

    let logins = Bao::audited_responses(&format!("auth/{mount}/login"))?;
    let remaining = live_tokens(&env.bao, &mount).await?;
    let roles: Vec<&String> = remaining.values().collect();
    eprintln!("tokens-revoke: {logins} logins, live tokens at the end (by role): {roles:?}");
    assert_eq!(roles, ["b2"], "only store b's new token is left");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn per_namespace_cluster_store_clients_go_with_their_last_user() -> anyhow::Result<()> {
    let mut env = TestEnv::new("tokens-cluster").await?;
    let mount = approle_mount(&env, &["cs"]).await?;
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": env.secret_value("cluster")})).await?;
    // secretRef without a namespace: each ExternalSecret's namespace holds
    // its own secret ID, so the store has one client (one login) per
    // namespace.
    let store = env.prefix.clone();
    let role_id = env.bao.approle_credentials(&mount, "cs").await?.0;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ClusterSecretStore",
        "metadata": {"name": store},
        "spec": {"provider": {"vault": {
            "server": env.bao.addr, "path": "secret", "allowInsecureHttp": true,
            "auth": {"appRole": {"path": mount, "roleId": role_id, "secretRef": {"name": "cs-approle"}}},
        }}},
    }))
    .await?;
    let other_ns = format!("{}-other", env.namespace);
    env.create_namespace(&other_ns).await?;
    let other = env.in_namespace(&other_ns);
    let cluster_reader = |name: &str| {
        external_secret(
            name,
            &store,
            json!({"secretStoreRef": {"kind": "ClusterSecretStore"},
                   "data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
        )
    };
    for (ns, names) in [(&env, &["one", "two"][..]), (&other, &["three"][..])] {
        let (_, secret_id) = env.bao.approle_credentials(&mount, "cs").await?;
        ns.create_secret("cs-approle", &[("secret-id", &secret_id)]).await?;
        for name in names {
            ns.apply(cluster_reader(name)).await?;
        }
    }
    env.wait_secret("one").await?;
    env.wait_secret("two").await?;
    other.wait_secret("three").await?;
    wait_tokens(&env.bao, &mount, "cs", 2, "one client per namespace").await?;

    // One of two users gone: the namespace's client stays.
    env.external_secrets().delete("one", &DeleteParams::default()).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    wait_tokens(&env.bao, &mount, "cs", 2, "a user is left in the namespace").await?;
    // The last user gone: its client is closed, its token revoked.
    env.external_secrets().delete("two", &DeleteParams::default()).await?;
    wait_tokens(&env.bao, &mount, "cs", 1, "after the last user in the namespace went").await?;
    // The other namespace deleted, its ExternalSecret with it.
    kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(env.client.clone())
        .delete(&other_ns, &DeleteParams::default())
        .await?;
    wait_tokens(&env.bao, &mount, "cs", 0, &format!("after deleting namespace {other_ns}")).await?;
    let logins = Bao::audited_responses(&format!("auth/{mount}/login"))?;
    eprintln!("tokens-cluster: {logins} logins, all revoked");
    assert_eq!(logins, 2);
    env.cluster_stores().delete(&store, &DeleteParams::default()).await?;
    env.cleanup().await;
    Ok(())
}

/// `vaultsync_vault_clients` and the revocation counter of an operator's
/// /metrics.
async fn scrape(addr: &str) -> anyhow::Result<(f64, f64)> {
    let text = reqwest::get(format!("http://{addr}/metrics")).await?.text().await?;
    let value = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or(f64::NAN)
    };
    Ok((value("vaultsync_vault_clients "), value("vaultsync_vault_token_revocations_total ")))
}

/// An operator of the test's own (the shared one serves the whole suite),
/// scoped to the test's namespace, without leader election: its client
/// gauge counts this test's stores only, and it can be stopped. Ignored in
/// the parallel run; the serial phase runs it.
#[tokio::test]
#[ignore = "starts and stops an operator of its own; run in the serial phase"]
async fn clients_follow_live_stores_and_stopping_revokes_tokens() -> anyhow::Result<()> {
    let env = TestEnv::new("tokens-own").await?;
    let mount = approle_mount(&env, &["x", "y"]).await?;
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": env.secret_value("own")})).await?;
    approle_store(&env, "x", &mount, "x").await?;
    approle_store(&env, "y", &mount, "y").await?;
    reader(&env, "x", "x", &path).await?;
    reader(&env, "y", "y", &path).await?;

    let state = std::env::var("VAULTSYNC_STATE")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let log_path = format!("{state}/logs/tokens-lifecycle-operator.log");
    let binary = vaultsync_e2e::vaultsync_binary();
    let mut operator = tokio::process::Command::new(binary)
        .arg("run")
        .env("KUBECONFIG", format!("{state}/operator.kubeconfig"))
        .env_remove("VAULTSYNC_LEADER_ELECTION")
        .env("VAULTSYNC_NAMESPACE", &env.namespace)
        .env("POD_NAME", "tokens-e2e")
        .env("VAULTSYNC_HEALTH_ADDR", &addr)
        .env("RUST_LOG", "info,kube=warn")
        .stderr(std::fs::File::create(&log_path)?)
        .kill_on_drop(true)
        .spawn()?;

    let last = std::sync::Mutex::new((f64::NAN, f64::NAN));
    let scraped = || async {
        let values = scrape(&addr).await?;
        *last.lock().unwrap() = values;
        anyhow::Ok(values)
    };
    let check = eventually(Duration::from_secs(60), || async { Ok(scraped().await?.0 == 2.0) }).await;
    let seen = *last.lock().unwrap();
    check.map_err(|e| e.context(format!("two stores, two clients: (clients, revocations) = {seen:?}")))?;
    env.wait_secret("x").await?;
    env.wait_secret("y").await?;

    env.stores().delete("x", &DeleteParams::default()).await?;
    let check = eventually(Duration::from_secs(60), || async { Ok(scraped().await? == (1.0, 1.0)) }).await;
    let seen = *last.lock().unwrap();
    check.map_err(|e| e.context(format!("one store left: (clients, revocations) = {seen:?}")))?;
    wait_tokens(&env.bao, &mount, "x", 0, "after deleting store x").await?;

    // The shared operator, when running, holds a token of role y too.
    let before = count_role(&live_tokens(&env.bao, &mount).await?, "y");
    let pid = operator.id().ok_or_else(|| anyhow::anyhow!("operator exited early"))?;
    let term = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await?;
    assert!(term.success());
    let status = tokio::time::timeout(Duration::from_secs(30), operator.wait()).await??;
    let log = std::fs::read_to_string(&log_path)?;
    assert!(status.success(), "operator exit {status}:\n{log}");
    let after = count_role(&live_tokens(&env.bao, &mount).await?, "y");
    eprintln!("tokens-own: role y tokens {before} before stopping, {after} after");
    assert_eq!(after + 1, before, "stopping revokes the operator's token:\n{log}");
    assert!(log.contains("operator is stopping"), "{log}");
    env.cleanup().await;
    Ok(())
}
