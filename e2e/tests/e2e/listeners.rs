//! Listeners a neighbour cannot starve: the injection webhook and the
//! operator's health port, attacked as any Pod of the cluster could (the
//! reviews sent straight to the webhook, not through the API server), and
//! still serving the API server, the kubelet's probes and the operator's
//! own work.
//!
//! The attacker's connections come from 127.0.0.2 (and .3 to .5), so they
//! are another peer than the API server and the probes on 127.0.0.1, as a
//! tenant's Pod is another address than the control plane.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use vaultsync_e2e::{TestEnv, Webhook, eventually, external_secret, injected, pod, report, sample, vaultsync_binary};

/// The chart's memory limit of the injector (`injector.resources`).
const INJECTOR_LIMIT: u64 = 128 << 20;

fn attacker(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A field of /proc/PID/status, in bytes (`VmRSS`, `VmHWM`).
fn memory(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("{field} in /proc/{pid}/status"))?;
    Ok(kib << 10)
}

fn open_files(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// An annotated Pod that asks for injection.
fn asking(name: &str) -> Value {
    pod(
        name,
        json!({"vaultsync.dev/inject": "true", "vaultsync.dev/role": "app",
               "vaultsync.dev/secret-db": "secret/data/app/db"}),
        json!({"name": "app", "image": "registry.example.com/app:1"}),
    )
}

/// An AdmissionReview of close to `size` bytes whose Pod asks for
/// injection and carries `filler` (a JSON text) at `at`: where the webhook
/// skips it unread, or where the mutation would read it.
fn hostile_review(size: usize, at: &str, filler: &str) -> Vec<u8> {
    let mut review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "hostile", "namespace": "elsewhere", "operation": "CREATE", "object": asking("hostile")},
    });
    let (parent, field) = at.rsplit_once('/').expect("a field's path");
    let parent = review.pointer_mut(parent).and_then(Value::as_object_mut).expect("an object of the review");
    parent.insert(field.to_owned(), json!("FILLER"));
    let text = review.to_string();
    // `filler` repeated, comma-separated, into an array that fills the body.
    let room = size - text.len();
    let count = room / (filler.len() + 1);
    let mut array = String::with_capacity(room + 2);
    array.push('[');
    for i in 0..count {
        if i > 0 {
            array.push(',');
        }
        array.push_str(filler);
    }
    array.push(']');
    text.replacen("\"FILLER\"", &array, 1).into_bytes()
}

#[tokio::test]
async fn the_webhook_stays_under_its_memory_limit_with_four_3mib_reviews_at_once() -> anyhow::Result<()> {
    let env = TestEnv::new("listeners-memory").await?;
    env.create_app_service_account().await?;
    let webhook = Webhook::start(&env, "2160h", 1).await?;
    let pid = webhook.children[0].id().context("webhook pid")?;
    let pods = Api::<Pod>::namespaced(env.client.clone(), &env.namespace);
    Webhook::wait_called(&pods, &asking("probe")).await?;
    let before = memory(pid, "VmRSS")?;

    // What the attack of issue 19 sent (one 8 MiB array of zeros took the
    // webhook from 27 MB to 297 MB), at the largest body the webhook reads:
    // arrays where the webhook does not look, and where the mutation reads.
    let size = (3 << 20) - 4096;
    let bodies = [
        hostile_review(size, "/request/object/spec/nodeSelector", "0"),
        hostile_review(size, "/request/object/metadata/annotations/filler", "0"),
        hostile_review(size, "/request/object/spec/containers/0/env", "{\"a\":0}"),
        hostile_review(size, "/request/object/spec/volumes", "[]"),
    ];
    let mut answers = Vec::new();
    for round in 0..3 {
        let mut sends = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            // Four addresses, so that all four are read at once rather than
            // two at a time as one peer's would be.
            let http = reqwest::Client::builder()
                .danger_accept_invalid_certs(true)
                .local_address(attacker(2 + i as u8))
                .build()?;
            let url = format!("https://{}/mutate", webhook.addr);
            let body = body.clone();
            sends.push(tokio::spawn(async move {
                let answer = http.post(url).header("content-type", "application/json").body(body).send().await?;
                let status = answer.status().as_u16();
                let text = answer.text().await?;
                anyhow::Ok((status, text))
            }));
        }
        for (i, send) in sends.into_iter().enumerate() {
            let (status, text) = send.await??;
            answers.push(format!("round {round}, review {i}: {status} {}", text.chars().take(160).collect::<String>()));
            assert!(status == 200 || status == 400, "an answer, not an error: {status} {text}");
        }
    }
    let peak = memory(pid, "VmHWM")?;
    report(&format!(
        "listeners: webhook RSS {:.1} MiB before, peak {:.1} MiB over 3 rounds of 4 concurrent 3 MiB reviews (limit {} MiB)",
        mib(before),
        mib(peak),
        INJECTOR_LIMIT >> 20
    ));
    assert!(peak < INJECTOR_LIMIT, "the webhook peaked at {:.1} MiB; answers:\n{}", mib(peak), answers.join("\n"));
    // What the mutation never reads was skipped: that review was answered
    // as any other Pod that asks; the others were refused as too large.
    assert!(answers[0].contains("\"allowed\":true"), "{}", answers[0]);
    for answer in &answers[1..4] {
        assert!(answer.contains("too large"), "{answer}");
    }

    // And it goes on answering the API server.
    assert!(injected(&pods, asking("after-attack"), false).await?, "a Pod that asks is still injected");
    webhook.stop().await;
    env.cleanup().await;
    Ok(())
}

/// Idle connections from one address, each opened again as soon as the
/// server closes it (after a short pause, so that the test leaves the
/// machine some breath): what issue 19's attacker did to the webhook and
/// to the health port.
struct Flood {
    stop: Arc<AtomicBool>,
    /// Connections tried; the server may reset one before the attacker
    /// sees it connected.
    attempts: Arc<AtomicU64>,
    opened: Arc<AtomicU64>,
    open: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Flood {
    fn start(target: SocketAddr, from: IpAddr, connections: usize) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let (attempts, opened, open) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let tasks = (0..connections)
            .map(|_| {
                let (stop, attempts, opened, open) = (stop.clone(), attempts.clone(), opened.clone(), open.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut stream) = Self::connect(target, from).await {
                            opened.fetch_add(1, Ordering::Relaxed);
                            open.fetch_add(1, Ordering::Relaxed);
                            let mut buf = [0u8; 64];
                            // Nothing sent; held until the server closes it.
                            while !stop.load(Ordering::Relaxed) {
                                let read = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf));
                                if let Ok(Ok(0) | Err(_)) = read.await {
                                    break;
                                }
                            }
                            open.fetch_sub(1, Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                })
            })
            .collect();
        Flood { stop, attempts, opened, open, tasks }
    }

    async fn connect(target: SocketAddr, from: IpAddr) -> anyhow::Result<tokio::net::TcpStream> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        Ok(tokio::time::timeout(Duration::from_secs(5), socket.connect(target)).await??)
    }

    /// Stops; the connections tried, and those seen connected.
    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        (self.attempts.load(Ordering::Relaxed), self.opened.load(Ordering::Relaxed))
    }
}

/// What a probe is given. The kubelet's default is 1 s; this machine is
/// shared with other suites, so the test asks that probes are answered,
/// and reports how fast.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `count` GETs of `url` from 127.0.0.1, one every `every`, each given
/// `timeout` as a kubelet probe is: the ones answered 200, and the slowest.
async fn probe(url: &str, count: usize, every: Duration, timeout: Duration) -> anyhow::Result<(usize, Duration)> {
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(timeout)
        // A new connection each time, as the kubelet's probes make.
        .pool_max_idle_per_host(0)
        .build()?;
    let (mut answered, mut slowest) = (0, Duration::ZERO);
    for _ in 0..count {
        let started = Instant::now();
        if http.get(url).send().await.is_ok_and(|r| r.status() == 200) {
            answered += 1;
        }
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(every).await;
    }
    Ok((answered, slowest))
}

#[tokio::test]
async fn the_webhook_answers_the_api_server_during_600_idle_connections_from_one_peer() -> anyhow::Result<()> {
    let env = TestEnv::new("listeners-idle").await?;
    env.create_app_service_account().await?;
    let webhook = Webhook::start(&env, "2160h", 1).await?;
    let pid = webhook.children[0].id().context("webhook pid")?;
    let pods = Api::<Pod>::namespaced(env.client.clone(), &env.namespace);
    Webhook::wait_called(&pods, &asking("probe")).await?;

    let flood = Flood::start(webhook.addr.parse()?, attacker(2), 600);
    eventually(Duration::from_secs(30), || async { Ok(flood.attempts.load(Ordering::Relaxed) >= 1200) })
        .await
        .context("the attacker opened its connections")?;
    let live = format!("https://{}/live", webhook.addr);
    let probes = tokio::spawn(async move { probe(&live, 20, Duration::from_millis(500), PROBE_TIMEOUT).await });
    let mut most_files = 0;
    let mut stored = 0;
    for i in 0..5 {
        // Each Pod stored, not a dry run: failurePolicy Fail refuses it if
        // the API server cannot reach the webhook.
        assert!(injected(&pods, asking(&format!("during-{i}")), false).await?, "Pod {i} injected during the flood");
        stored += 1;
        most_files = most_files.max(open_files(pid)?);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (answered, slowest) = probes.await??;
    let held = flood.open.load(Ordering::Relaxed);
    let metrics = webhook.scrape().await?;
    let (attempts, opened) = flood.stop().await;
    let refused = sample(&metrics, "vaultsync_webhook_connections_refused_total{reason=\"peer\"}").unwrap_or(0.0);
    report(&format!(
        "listeners: webhook during 600 idle connections from one peer ({attempts} tried, {opened} seen connected, {held} \
         held open at the end): \
         {stored}/5 Pods injected, /live {answered}/20 (slowest {slowest:?}), {refused} connections refused at the \
         per-peer cap, at most {most_files} open files"
    ));
    assert_eq!(answered, 20, "every /live probe answered");
    assert!(refused >= 500.0, "the per-peer cap closed the attacker's extra connections: {refused}");
    assert!(most_files < 200, "the webhook's open files stay bounded: {most_files}");
    webhook.stop().await;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
#[ignore = "runs an operator of its own: scripts/e2e.sh runs it after the suite, with the shared operator stopped"]
async fn live_answers_during_1100_idle_connections_under_1024_open_files() -> anyhow::Result<()> {
    let env = TestEnv::new("listeners-health").await?;
    let state = std::env::var("VAULTSYNC_STATE")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let health: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let log = std::fs::File::create(format!("{state}/logs/listeners-operator.log"))?;
    // prlimit execs the operator: the child's pid is the operator's.
    let mut operator = tokio::process::Command::new("prlimit")
        .arg("--nofile=1024:1024")
        .arg(vaultsync_binary())
        .arg("run")
        .env_clear()
        .env("KUBECONFIG", format!("{state}/operator.kubeconfig"))
        .env("VAULTSYNC_NAMESPACE", &env.namespace)
        .env("VAULTSYNC_HEALTH_ADDR", health.to_string())
        .env("RUST_LOG", "info")
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let pid = operator.id().context("operator pid")?;
    eventually(Duration::from_secs(30), || async {
        Ok(reqwest::get(format!("http://{health}/ready")).await.is_ok_and(|r| r.status() == 200))
    })
    .await
    .context("the operator is ready")?;
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    let files = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or_default().to_owned();
    assert!(files.split_whitespace().nth(3) == Some("1024"), "the operator runs with 1024 open files: {files}");

    let flood = Flood::start(health, attacker(2), 1100);
    eventually(Duration::from_secs(60), || async { Ok(flood.attempts.load(Ordering::Relaxed) >= 2200) })
        .await
        .context("the attacker opened its connections")?;
    let live = format!("http://{health}/live");
    let probes = tokio::spawn(async move { probe(&live, 30, Duration::from_millis(500), PROBE_TIMEOUT).await });
    let watch_files = {
        let stop = flood.stop.clone();
        tokio::spawn(async move {
            let mut most = 0;
            while !stop.load(Ordering::Relaxed) {
                most = most.max(open_files(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            most
        })
    };

    // The operator's own work goes on: a new store logs in, a Secret is
    // written (issue 19: "Too many open files" for a new store).
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": env.secret_value("listeners")})).await?;
    env.token_store("vault", "root", json!({})).await?;
    env.apply(external_secret(
        "app",
        "vault",
        json!({"data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
    ))
    .await?;
    env.wait_secret("app").await.context("a Secret synced during the flood")?;

    let (answered, slowest) = probes.await??;
    let metrics = reqwest::get(format!("http://{health}/metrics")).await?.text().await?;
    let held = flood.open.load(Ordering::Relaxed);
    let (attempts, opened) = flood.stop().await;
    let most_files = watch_files.await?;
    let refused = sample(&metrics, "vaultsync_health_connections_refused_total{reason=\"peer\"}").unwrap_or(0.0);
    let accept_errors = sample(&metrics, "vaultsync_health_accept_errors_total").unwrap_or(-1.0);
    report(&format!(
        "listeners: health port during 1,100 idle connections from one peer under 1024 open files ({attempts} tried, \
         {opened} seen connected, {held} held open at the end): /live {answered}/30 (slowest {slowest:?}), a new store synced, {refused} \
         connections refused at the per-peer cap, {accept_errors} failed accepts, at most {most_files} open files"
    ));
    assert_eq!(answered, 30, "every /live probe answered");
    assert!(refused >= 1000.0, "the per-peer cap closed the attacker's extra connections: {refused}");
    assert!(most_files < 512, "the operator's open files stay well below its limit: {most_files}");
    assert!(operator.try_wait()?.is_none(), "the operator is still running");
    operator.start_kill()?;
    let _ = operator.wait().await;
    env.cleanup().await;
    Ok(())
}
