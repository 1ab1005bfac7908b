//! Leadership as a Deployment lives it, with operators of the test's own
//! (scoped to its namespace, competing for the release's Lease, the only
//! one the chart's RBAC lets them write, while the shared operator is
//! stopped):
//! - every healthy replica is Ready, leader or standby, so a rolling
//!   replacement can bring up a new pod while the old one leads;
//! - SIGTERM hands over: the leader finishes, releases the Lease, exits 0,
//!   and a standby takes over at its next attempt (the handover time is
//!   printed);
//! - the API server going away ends nothing: the operator stays up, and
//!   what changed in Vault meanwhile arrives once the API server is back.
//!
//! Ignored in the shared run: the shared operator syncs every namespace and
//! would answer too, and the outage stops the API server for everyone.
//! `scripts/e2e.sh` runs them after the suite with the shared operator
//! stopped. `VAULTSYNC_OUTAGE_SECS` (default 15) sets the outage's length.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use vaultsync_e2e::{TestEnv, eventually, external_secret, vaultsync_binary};

const RELEASE_NAMESPACE: &str = "vaultsync-system";
/// Release `vaultsync`'s Lease.
const LEASE: &str = "vaultsync-leader";

/// One operator process, as one replica of a Deployment.
struct Replica {
    name: String,
    health: String,
    child: tokio::process::Child,
}

impl Replica {
    fn start(state: &str, name: &str, namespace: &str, lease: &str) -> anyhow::Result<Replica> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(format!("{state}/logs/handover-{name}-operator.log"))?;
        let child = tokio::process::Command::new(vaultsync_binary())
            .arg("run")
            .env_clear()
            .env("KUBECONFIG", format!("{state}/operator.kubeconfig"))
            .env("VAULTSYNC_LEADER_ELECTION", "true")
            .env("VAULTSYNC_LEASE_NAME", lease)
            .env("POD_NAME", name)
            .env("POD_NAMESPACE", RELEASE_NAMESPACE)
            .env("VAULTSYNC_NAMESPACE", namespace)
            .env("VAULTSYNC_HEALTH_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        Ok(Replica { name: name.into(), health: format!("127.0.0.1:{port}"), child })
    }

    async fn ready(&self) -> bool {
        reqwest::get(format!("http://{}/ready", self.health)).await.is_ok_and(|r| r.status() == 200)
    }

    /// `vaultsync_leader` from its /metrics.
    async fn leading(&self) -> anyhow::Result<bool> {
        let metrics = reqwest::get(format!("http://{}/metrics", self.health)).await?.text().await?;
        let value = metrics.lines().find_map(|l| l.strip_prefix("vaultsync_leader ")).map(str::trim);
        Ok(value == Some("1"))
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.child.id().ok_or_else(|| anyhow::anyhow!("{} has exited", self.name))?;
        let status = std::process::Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid}");
        Ok(())
    }
}

async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases.get_opt(name).await.ok().flatten()?.spec?.holder_identity
}

async fn synced_store(env: &TestEnv, name: &str) -> anyhow::Result<String> {
    env.token_store("vault", "root", json!({})).await?;
    let path = format!("{}/{name}", env.prefix);
    env.bao.kv2_put(&path, json!({"v": env.secret_value(name)})).await?;
    Ok(path)
}

fn one_key(path: &str) -> serde_json::Value {
    json!({"data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]})
}

#[tokio::test]
#[ignore = "needs the shared operator stopped; scripts/e2e.sh runs it after the suite"]
async fn every_replica_is_ready_and_sigterm_hands_over() -> anyhow::Result<()> {
    let env = TestEnv::new("handover").await?;
    let state = std::env::var("VAULTSYNC_STATE")?;
    let lease = LEASE.to_owned();
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), RELEASE_NAMESPACE);

    let mut replicas = vec![
        Replica::start(&state, "a", &env.namespace, &lease)?,
        Replica::start(&state, "b", &env.namespace, &lease)?,
    ];
    let path = synced_store(&env, "first").await?;
    env.apply(external_secret("first", "vault", one_key(&path))).await?;
    env.wait_secret("first").await?;

    // Both Ready: one leading, one standing by.
    eventually(Duration::from_secs(30), || async { Ok(replicas[0].ready().await && replicas[1].ready().await) })
        .await?;
    let leader_name = holder(&leases, &lease).await.ok_or_else(|| anyhow::anyhow!("no holder of {lease}"))?;
    for replica in &replicas {
        assert_eq!(replica.leading().await?, replica.name == leader_name, "vaultsync_leader of {}", replica.name);
    }

    // A rolling update's new pod, started while the leader still leads,
    // becomes Ready too.
    replicas.push(Replica::start(&state, "c", &env.namespace, &lease)?);
    eventually(Duration::from_secs(30), || async { Ok(replicas[2].ready().await) }).await?;
    assert_eq!(holder(&leases, &lease).await.as_deref(), Some(leader_name.as_str()), "the leader keeps leading");
    let transitions = leases.get(&lease).await?.spec.and_then(|s| s.lease_transitions).unwrap_or_default();

    // SIGTERM to the leader: it releases the Lease and a standby takes over.
    let at = replicas.iter().position(|r| r.name == leader_name).unwrap_or_default();
    let mut old = replicas.remove(at);
    let sent = Instant::now();
    old.signal("TERM")?;
    let mut successor = None;
    while sent.elapsed() < Duration::from_secs(30) {
        if let Some(now) = holder(&leases, &lease).await.filter(|h| !h.is_empty() && *h != leader_name) {
            successor = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let handover = sent.elapsed();
    let successor = successor.ok_or_else(|| anyhow::anyhow!("no replica took over from {leader_name}"))?;
    let exit = tokio::time::timeout(Duration::from_secs(20), old.child.wait()).await??;
    vaultsync_e2e::report(&format!(
        "handover: SIGTERM to {leader_name} -> {successor} holds the Lease after {handover:?} \
         (lease duration 15s, retry period 2s); {leader_name} exited with {exit}"
    ));
    assert!(exit.success(), "a graceful shutdown exits 0: {exit}");
    let after = leases.get(&lease).await?.spec.unwrap_or_default();
    assert_eq!(after.lease_transitions, Some(transitions + 1), "exactly one change of holder");
    assert!(handover < Duration::from_secs(10), "the successor did not wait out the lease: {handover:?}");
    let log = std::fs::read_to_string(format!("{state}/logs/handover-{leader_name}-operator.log"))?;
    assert!(log.contains("released the Lease"), "{log}");

    // The successor syncs what comes next.
    let path = synced_store(&env, "second").await?;
    env.apply(external_secret("second", "vault", one_key(&path))).await?;
    env.wait_secret("second").await?;
    vaultsync_e2e::report(&format!("handover: a new ExternalSecret synced {:?} after the SIGTERM", sent.elapsed()));
    for replica in &replicas {
        assert_eq!(replica.leading().await?, replica.name == successor, "vaultsync_leader of {}", replica.name);
    }
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
#[ignore = "stops the API server for everyone; scripts/e2e.sh runs it after the suite"]
async fn the_operator_outlives_an_api_server_outage() -> anyhow::Result<()> {
    let env = TestEnv::new("outage").await?;
    let state = std::env::var("VAULTSYNC_STATE")?;
    let outage =
        Duration::from_secs(std::env::var("VAULTSYNC_OUTAGE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(15));
    let lease = LEASE.to_owned();
    let mut replica = Replica::start(&state, "outage", &env.namespace, &lease)?;
    let path = synced_store(&env, "db").await?;
    env.apply(external_secret(
        "db",
        "vault",
        json!({"refreshInterval": "2s", "data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
    ))
    .await?;
    env.wait_secret("db").await?;

    // Stop the API server (the real process, not a proxy), and restart it
    // later with the same command line.
    let pid_file = format!("{state}/pids/kube-apiserver.pid");
    let pid = std::fs::read_to_string(&pid_file)?.trim().to_owned();
    let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))?
        .split(|b| *b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect();
    anyhow::ensure!(argv.first().is_some_and(|a| a.contains("kube-apiserver")), "pid {pid} is not kube-apiserver");
    std::process::Command::new("kill").args(["-TERM", &pid]).status()?;
    // Gone, or a zombie nobody reaps (no init in a container); KILL if it
    // lingers in its graceful shutdown.
    let gone = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut killed = false;
    while !gone(&pid) {
        anyhow::ensure!(Instant::now() < deadline, "kube-apiserver {pid} does not stop");
        if !killed && deadline - Instant::now() < Duration::from_secs(50) {
            std::process::Command::new("kill").args(["-KILL", &pid]).status()?;
            killed = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stopped = Instant::now();

    // Vault changes while Kubernetes is away.
    let rotated = env.secret_value("rotated");
    env.bao.kv2_put(&path, json!({"v": rotated})).await?;
    tokio::time::sleep(outage).await;
    assert!(replica.child.try_wait()?.is_none(), "the operator exited while the API server was away");

    let log = std::fs::OpenOptions::new().append(true).open(format!("{state}/logs/kube-apiserver.log"))?;
    let restarted = std::process::Command::new("setsid")
        .args(&argv)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    std::fs::write(&pid_file, restarted.id().to_string())?;
    let back = Instant::now();
    eventually(Duration::from_secs(60), || async { Ok(env.client.apiserver_version().await.is_ok()) }).await?;
    vaultsync_e2e::report(&format!(
        "outage: API server down {:?}, answering again {:?} after its restart",
        back - stopped,
        back.elapsed()
    ));

    eventually(Duration::from_secs(90), || async { Ok(env.secret_data("db").await?.get("v") == Some(&rotated)) })
        .await?;
    vaultsync_e2e::report(&format!(
        "outage: the Vault change made during the outage reached its Secret {:?} after the restart",
        back.elapsed()
    ));
    assert!(replica.child.try_wait()?.is_none(), "the operator keeps running");
    assert!(replica.leading().await?, "and leads again");

    // Leave the environment as found: the controller manager, cut off too,
    // serves new namespaces again (the tests after this one need their
    // default ServiceAccounts).
    let probe = format!("{}-after", env.namespace);
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    namespaces.create(&Default::default(), &serde_json::from_value(json!({"metadata": {"name": probe}}))?).await?;
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(env.client.clone(), &probe);
    eventually(Duration::from_secs(180), || async { Ok(accounts.get_opt("default").await?.is_some()) }).await?;
    vaultsync_e2e::report(&format!(
        "outage: the controller manager serves new namespaces again {:?} after the restart",
        back.elapsed()
    ));
    let _ = namespaces.delete(&probe, &Default::default()).await;
    env.cleanup().await;
    Ok(())
}

/// Pod-template restart annotation of Deployment `name`.
async fn restart_mark(env: &TestEnv, name: &str) -> anyhow::Result<Option<String>> {
    let deployment = Api::<Deployment>::namespaced(env.client.clone(), &env.namespace).get(name).await?;
    Ok(deployment.spec.template.metadata.and_then(|m| m.annotations?.get("vaultsync.dev/restartedAt").cloned()))
}

async fn replica_sets(env: &TestEnv, app: &str) -> anyhow::Result<usize> {
    let api = Api::<ReplicaSet>::namespaced(env.client.clone(), &env.namespace);
    Ok(api.list(&ListParams::default().labels(&format!("app={app}"))).await?.items.len())
}

#[tokio::test]
#[ignore = "needs the shared operator stopped; scripts/e2e.sh runs it after the suite"]
async fn a_new_operator_restarts_no_workload_for_unchanged_data() -> anyhow::Result<()> {
    let env = TestEnv::new("restartnone").await?;
    let state = std::env::var("VAULTSYNC_STATE")?;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), RELEASE_NAMESPACE);
    let first = Replica::start(&state, "restart-a", &env.namespace, LEASE)?;
    let path = synced_store(&env, "creds").await?;
    env.apply(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"vaultsync.dev/rollout-restart-from": "creds"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]}},
        },
    }))
    .await?;
    let mut es = external_secret("creds", "vault", one_key(&path));
    es["spec"]["refreshInterval"] = json!("1s");
    es["spec"]["rolloutRestartTargets"] = json!([{"kind": "Deployment", "name": "web"}]);
    env.apply(es).await?;
    env.wait_secret("creds").await?;
    // A data change restarts the Deployment: the new ReplicaSet.
    let changed = env.secret_value("creds-changed");
    env.bao.kv2_put(&path, json!({"v": changed})).await?;
    eventually(Duration::from_secs(30), || async { Ok(replica_sets(&env, "web").await? == 2) }).await?;
    let mark = restart_mark(&env, "web").await?;
    assert!(mark.is_some());

    // A new operator process (as after a crash, an upgrade or a new
    // leader): its first sync finds the data unchanged and restarts nothing.
    first.signal("TERM")?;
    let mut first = first;
    tokio::time::timeout(Duration::from_secs(20), first.child.wait()).await??;
    let before = env.external_secrets().get("creds").await?.status.and_then(|s| s.refresh_time);
    let second = Replica::start(&state, "restart-b", &env.namespace, LEASE)?;
    eventually(Duration::from_secs(40), || async {
        Ok(holder(&leases, LEASE).await.as_deref() == Some("restart-b") && second.leading().await?)
    })
    .await?;
    eventually(Duration::from_secs(30), || async {
        Ok(env.external_secrets().get("creds").await?.status.and_then(|s| s.refresh_time) != before)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(restart_mark(&env, "web").await?, mark, "no restart after the operator's restart");
    assert_eq!(replica_sets(&env, "web").await?, 2);
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the shared operator stopped; scripts/e2e.sh runs it after the suite"]
async fn a_killed_operator_leaves_leases_its_successor_renews() -> anyhow::Result<()> {
    let env = TestEnv::new("leasekill").await?;
    let state = std::env::var("VAULTSYNC_STATE")?;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), RELEASE_NAMESPACE);
    env.database_role("45s", "2h").await?;
    let first = Replica::start(&state, "lease-a", &env.namespace, LEASE)?;
    env.apply(json!({
        "apiVersion": "generators.vaultsync.dev/v1alpha1", "kind": "VaultDynamicSecret",
        "metadata": {"name": "db"},
        "spec": {"path": format!("database/creds/{}", env.prefix), "provider": env.generator_provider()},
    }))
    .await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "db"},
        "spec": {"refreshInterval": "1s", "dataFrom": [{"sourceRef": {"generatorRef": {"kind": "VaultDynamicSecret", "name": "db"}}}]},
    }))
    .await?;
    let issue_path = format!("database/creds/{}", env.prefix);
    let lease_of = || async {
        let es = env.external_secrets().get("db").await?;
        anyhow::Ok(es.status.and_then(|s| s.leases.into_iter().next()))
    };
    eventually(Duration::from_secs(40), || async { Ok(lease_of().await?.is_some()) }).await?;
    let issued = lease_of().await?.expect("a lease");
    let user = env.secret_data("db").await?.get("username").cloned().unwrap_or_default();
    assert!(!user.is_empty());
    env.record_secret(env.secret_data("db").await?.get("password").map_or("", String::as_str));

    // Killed (no graceful shutdown): the successor takes the Lease when it
    // runs out, and finds the credential in status and its values Secret.
    first.signal("KILL")?;
    let renewals_before = vaultsync_e2e::Bao::audited_responses("sys/leases/renew")?;
    let second = Replica::start(&state, "lease-b", &env.namespace, LEASE)?;
    eventually(Duration::from_secs(40), || async {
        Ok(holder(&leases, LEASE).await.as_deref() == Some("lease-b") && second.leading().await?)
    })
    .await?;
    // Renewed by the successor (at about 2/3 of the 45 s TTL), not issued anew.
    eventually(Duration::from_secs(60), || async {
        Ok(lease_of().await?.is_some_and(|l| l.expires_at != issued.expires_at))
    })
    .await?;
    let now = lease_of().await?.expect("a lease");
    assert_eq!(now.lease_id, issued.lease_id, "the same lease");
    assert_eq!(env.secret_data("db").await?.get("username"), Some(&user), "the same credential");
    assert_eq!(vaultsync_e2e::Bao::audited_responses(&issue_path)?, 1, "issued once, across the restart");
    let renewals = vaultsync_e2e::Bao::audited_responses("sys/leases/renew")? - renewals_before;
    assert!(renewals >= 1, "the successor renewed it");
    vaultsync_e2e::report(&format!(
        "handover: killed operator's lease kept by its successor: 1 issue, {renewals} renewal(s), lease {}",
        now.lease_id.unwrap_or_default()
    ));
    // Deleted while the successor runs: it revokes the lease.
    env.external_secrets().delete("db", &Default::default()).await?;
    eventually(Duration::from_secs(30), || async { Ok(env.external_secrets().get_opt("db").await?.is_none()) }).await?;
    drop(second);
    env.cleanup().await;
    Ok(())
}
