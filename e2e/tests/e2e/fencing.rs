//! Fenced leadership under a partition: the leader's connections to the
//! API server freeze (a proxy stops forwarding without closing anything),
//! another replica takes the Lease, the partition heals. The API server's
//! audit log must show no write of the old leader accepted after its
//! deadline.
//!
//! Ignored in the main run: the two replicas of each trial would sync every
//! ExternalSecret in the cluster next to the shared operator. `scripts/e2e.sh`
//! runs it with `--ignored` once the main suite is done and the shared
//! operator is stopped.
//!
//! FENCING_TRIALS changes the number of trials (default 5),
//! FENCING_RUST_LOG the replicas' RUST_LOG, VAULTSYNC_E2E_BINARY the
//! operator build under test (run against a build without the fence, the
//! old leader's writes land after the heal and the test fails).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::process::Child;
use vaultsync_e2e::{TestEnv, eventually, external_secret};

const TRIALS: u8 = 5;
const LEASE_DURATION: &str = "6s";
const RENEW_DEADLINE: Duration = Duration::from_secs(4);
const RETRY_PERIOD: &str = "1s";
const OPERATOR_USER: &str = "system:serviceaccount:vaultsync-system:vaultsync";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts operators of its own; run by scripts/e2e.sh after the main suite"]
async fn a_frozen_leader_writes_nothing_after_its_deadline() -> Result<()> {
    let mut env = TestEnv::new("fencing").await?;
    let mut failures = Vec::new();
    let trials = std::env::var("FENCING_TRIALS").ok().and_then(|t| t.parse().ok()).unwrap_or(TRIALS);
    for trial in 1..=trials {
        let outcome = run_trial(&mut env, trial).await.with_context(|| format!("trial {trial}"))?;
        eprintln!(
            "trial {trial}: old leader wrote {} times before the freeze, {} times accepted after its deadline \
             (first at {:?}); new leader wrote {} times; old leader exited by itself: {}",
            outcome.writes_before,
            outcome.late_writes.len(),
            outcome.late_writes.first(),
            outcome.new_leader_writes,
            outcome.old_leader_exited,
        );
        if !outcome.late_writes.is_empty() {
            failures.push(format!("trial {trial}: {:?}", outcome.late_writes));
        }
    }
    env.cleanup().await;
    ensure!(failures.is_empty(), "the old leader's writes were accepted after its deadline: {failures:#?}");
    Ok(())
}

struct Outcome {
    writes_before: usize,
    late_writes: Vec<String>,
    new_leader_writes: usize,
    old_leader_exited: bool,
}

async fn run_trial(env: &mut TestEnv, trial: u8) -> Result<Outcome> {
    let namespace = format!("{}-t{trial}", env.namespace);
    env.create_namespace(&namespace).await?;
    let trial_env = env.in_namespace(&namespace);
    grant_lease_rights(&trial_env).await?;

    // OpenBao value changing all the time, so every refresh is a write.
    let path = format!("{}/t{trial}", env.prefix);
    env.bao.kv2_put(&path, json!({"value": "0"})).await?;
    trial_env.token_store("vault", "root", json!({})).await?;
    let changer = {
        let bao = env.bao.clone();
        let path = path.clone();
        tokio::spawn(async move {
            for n in 1u64.. {
                let _ = bao.kv2_put(&path, json!({"value": n.to_string()})).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    // Each trial's proxy connects from its own loopback address, so the
    // audit log tells this trial's old leader apart from everything else.
    let source = Ipv4Addr::new(127, 0, 0, 10 + trial);
    let state = std::env::var("VAULTSYNC_STATE")?;
    let kubeconfig_text = std::fs::read_to_string(format!("{state}/operator.kubeconfig"))?;
    let mut kubeconfig: Value = serde_saphyr::from_str(&kubeconfig_text)?;
    let server = kubeconfig["clusters"][0]["cluster"]["server"].as_str().context("server")?.to_owned();
    let upstream: SocketAddr = server.trim_start_matches("https://").parse().context("API server address")?;
    let proxy = Proxy::start(upstream, source).await?;
    kubeconfig["clusters"][0]["cluster"]["server"] = json!(format!("https://{}", proxy.addr));
    let proxied = format!("{state}/fencing-{namespace}.kubeconfig");
    std::fs::write(&proxied, serde_json::to_vec(&kubeconfig)?)?;

    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &namespace);
    let holder = || async {
        Ok::<_, anyhow::Error>(
            leases.get_opt("vaultsync-leader").await?.and_then(|l| l.spec).and_then(|s| s.holder_identity),
        )
    };
    let old_id = format!("fence-old-{trial}");
    let new_id = format!("fence-new-{trial}");
    let audit_path = format!("{state}/logs/kube-audit.log");
    let audit = Audit { offset: std::fs::metadata(&audit_path)?.len(), path: audit_path };
    let started = Timestamp::now();
    let mut old = replica(&proxied, &old_id, &namespace, &format!("{state}/logs/fencing-{old_id}.log"))?;
    eventually(Duration::from_secs(30), || async { Ok(holder().await?.as_deref() == Some(old_id.as_str())) })
        .await
        .context("the proxied replica never led")?;
    // One at a time, after the old leader leads: a burst would open many
    // connections, and an unfenced leader's later writes would wait on
    // those, frozen and idle, instead of opening fresh ones after the heal.
    // The busy ones refresh often, so each is stuck on a frozen connection
    // soon after the freeze, using up the idle ones.
    let busy = 16;
    for i in 0..busy {
        trial_env.apply(synced(&format!("busy-{i}"), &path, "2s")).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Refreshes that fall due only after the partition heals (created
    // just before the freeze, due 21 to 30 seconds after it): the writes an
    // unfenced old leader would still send, over fresh connections.
    for i in 0..24 {
        let every = format!("{}ms", 24_000 + 250 * i);
        trial_env.apply(synced(&format!("sleeper-{i}"), &path, &every)).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut new = replica(
        &format!("{state}/operator.kubeconfig"),
        &new_id,
        &namespace,
        &format!("{state}/logs/fencing-{new_id}.log"),
    )?;
    // The old leader is writing before the partition, or the test proves
    // nothing.
    eventually(Duration::from_secs(30), || async {
        Ok(audited_writes(&audit, source, started, None)?.len() >= 2 * busy + 24)
    })
    .await
    .context("the leader never wrote through the proxy")?;

    let frozen_at = Timestamp::now();
    proxy.freeze();
    eventually(Duration::from_secs(60), || async { Ok(holder().await?.as_deref() == Some(new_id.as_str())) })
        .await
        .context("the other replica never took the Lease")?;
    let taken_at = Timestamp::now();
    // The heal comes when the sleepers' refreshes start to fall due (see
    // above), and never before the other replica leads.
    let heal_at = (frozen_at + SignedDuration::from_secs(21)).max(taken_at + SignedDuration::from_secs(1));
    sleep_until(heal_at).await;
    proxy.heal();
    sleep_until(heal_at + SignedDuration::from_secs(12)).await;
    let old_leader_exited = old.try_wait()?.is_some();
    stop(&mut old).await;
    stop(&mut new).await;
    changer.abort();
    // The audit backend writes before answering; a moment for the file.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let deadline = frozen_at + SignedDuration::try_from(RENEW_DEADLINE)?;
    let synced_here = |w: &String| w.contains(&namespace) && !w.contains(" leases/");
    let before = audited_writes(&audit, source, started, Some(frozen_at))?.into_iter().filter(synced_here).count();
    let late = audited_writes(&audit, source, deadline, None)?;
    let new_leader_writes =
        audited_writes(&audit, Ipv4Addr::LOCALHOST, taken_at, None)?.iter().filter(|w| synced_here(w)).count();
    // Later trials' replicas would sync this trial's ExternalSecrets too.
    let _ = Api::<Namespace>::all(env.client.clone()).delete(&namespace, &DeleteParams::default()).await;
    ensure!(before > 0, "no write of the old leader before the freeze");
    ensure!(new_leader_writes > 0, "the new leader wrote nothing");
    Ok(Outcome { writes_before: before, late_writes: late, new_leader_writes, old_leader_exited })
}

async fn sleep_until(at: Timestamp) {
    tokio::time::sleep(at.duration_since(Timestamp::now()).try_into().unwrap_or_default()).await;
}

fn synced(name: &str, path: &str, every: &str) -> Value {
    external_secret(
        name,
        "vault",
        json!({"refreshInterval": every, "data": [{"secretKey": "value", "remoteRef": {"key": path, "property": "value"}}]}),
    )
}

/// The chart grants Lease rights in vaultsync-system only.
async fn grant_lease_rights(env: &TestEnv) -> Result<()> {
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "fencing-leases"},
        "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}],
    }))?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "fencing-leases"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "fencing-leases"},
        "subjects": [{"kind": "ServiceAccount", "name": "vaultsync", "namespace": "vaultsync-system"}],
    }))?;
    Api::<Role>::namespaced(env.client.clone(), &env.namespace).create(&PostParams::default(), &role).await?;
    Api::<RoleBinding>::namespaced(env.client.clone(), &env.namespace).create(&PostParams::default(), &binding).await?;
    Ok(())
}

fn replica(kubeconfig: &str, identity: &str, lease_namespace: &str, log: &str) -> Result<Child> {
    // VAULTSYNC_E2E_BINARY runs the trials against another build, e.g. one
    // without the fence, to see the test fail.
    let binary =
        std::env::var_os("VAULTSYNC_E2E_BINARY").map_or_else(vaultsync_e2e::vaultsync_binary, std::path::PathBuf::from);
    let log = std::fs::File::create(log)?;
    Ok(tokio::process::Command::new(binary)
        .arg("run")
        .env("KUBECONFIG", kubeconfig)
        .env("VAULTSYNC_LEADER_ELECTION", "true")
        .env("POD_NAME", identity)
        .env("POD_NAMESPACE", lease_namespace)
        .env("VAULTSYNC_LEASE_DURATION", LEASE_DURATION)
        .env("VAULTSYNC_RENEW_DEADLINE", format!("{}s", RENEW_DEADLINE.as_secs()))
        .env("VAULTSYNC_RETRY_PERIOD", RETRY_PERIOD)
        .env("VAULTSYNC_HEALTH_ADDR", "127.0.0.1:0")
        // Room for every ExternalSecret of the trial at once, stuck or not.
        .env("VAULTSYNC_CONCURRENCY", "64")
        .env("RUST_LOG", std::env::var("FENCING_RUST_LOG").unwrap_or_else(|_| "info".into()))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?)
}

async fn stop(child: &mut Child) {
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// The API server's audit log, from where a trial began.
struct Audit {
    path: String,
    offset: u64,
}

/// Writes (create, update, patch, delete) by the operator's ServiceAccount
/// from `source` that the API server accepted (2xx) and received at or
/// after `from` (and before `until`), one line each.
fn audited_writes(log: &Audit, source: Ipv4Addr, from: Timestamp, until: Option<Timestamp>) -> Result<Vec<String>> {
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(&log.path).context("kube-audit.log")?;
    file.seek(std::io::SeekFrom::Start(log.offset))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let source = source.to_string();
    let mut writes = Vec::new();
    for entry in text.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()) {
        let verb = entry["verb"].as_str().unwrap_or_default();
        let code = entry["responseStatus"]["code"].as_u64().unwrap_or_default();
        if entry["user"]["username"] != OPERATOR_USER
            || entry["sourceIPs"][0] != source.as_str()
            || !["create", "update", "patch", "delete"].contains(&verb)
            || !(200..300).contains(&code)
        {
            continue;
        }
        let Some(received) = entry["requestReceivedTimestamp"].as_str().and_then(|t| t.parse::<Timestamp>().ok())
        else {
            continue;
        };
        if received < from || until.is_some_and(|until| received >= until) {
            continue;
        }
        let object = &entry["objectRef"];
        writes.push(format!(
            "{received} {verb} {}/{}/{}/{}",
            object["resource"].as_str().unwrap_or_default(),
            object["subresource"].as_str().unwrap_or_default(),
            object["namespace"].as_str().unwrap_or_default(),
            object["name"].as_str().unwrap_or_default(),
        ));
    }
    Ok(writes)
}

/// A TCP proxy on loopback that can freeze: every connection open at the
/// freeze, or opened while frozen, stops forwarding in both directions and
/// is held open for good; connections opened after the heal work. TLS
/// passes through untouched.
struct Proxy {
    addr: SocketAddr,
    frozen: Arc<AtomicBool>,
    /// Connections numbered below this stay frozen after a heal.
    frozen_below: Arc<AtomicU64>,
    next_id: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Runs on a thread and runtime of its own: the test's runtime also
    /// parses the audit log, and a stalled proxy would look like a
    /// partition before the freeze.
    async fn start(upstream: SocketAddr, source: Ipv4Addr) -> Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let frozen = Arc::new(AtomicBool::new(false));
        let frozen_below = Arc::new(AtomicU64::new(0));
        let next_id = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (flags, below, ids) = (frozen.clone(), frozen_below.clone(), next_id.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("proxy runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("proxy listener");
                let accept = async {
                    while let Ok((client, _)) = listener.accept().await {
                        let id = ids.fetch_add(1, Ordering::SeqCst);
                        let is_frozen: Arc<dyn Fn() -> bool + Send + Sync> = {
                            let (flags, below) = (flags.clone(), below.clone());
                            Arc::new(move || flags.load(Ordering::SeqCst) || id < below.load(Ordering::SeqCst))
                        };
                        tokio::spawn(async move {
                            let Ok(server) = connect_from(source, upstream).await else { return };
                            let (client_read, client_write) = client.into_split();
                            let (server_read, server_write) = server.into_split();
                            tokio::join!(
                                pump(client_read, server_write, is_frozen.clone()),
                                pump(server_read, client_write, is_frozen),
                            );
                        });
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime closes every connection, frozen or not.
        });
        Ok(Self { addr, frozen, frozen_below, next_id, stop: Some(stop), thread: Some(thread) })
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.frozen_below.store(self.next_id.load(Ordering::SeqCst), Ordering::SeqCst);
        self.frozen.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn connect_from(source: Ipv4Addr, upstream: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(upstream).await
}

/// Copies one direction until the connection closes; once frozen, holds
/// both halves open and forwards nothing more, for good.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    is_frozen: Arc<dyn Fn() -> bool + Send + Sync>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buf).await;
        if is_frozen() {
            std::future::pending::<()>().await;
        }
        match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
