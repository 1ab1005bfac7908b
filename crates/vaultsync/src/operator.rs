//! `vaultsync run`: the operator's flags, checked and turned into the
//! controller's configuration, and its start-up: the Kubernetes client
//! (fenced when replicas elect a leader), the /live, /ready and /metrics
//! server, the shutdown signals; then the controller crate runs it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use vaultsync_controller::fence::Fence;
use vaultsync_controller::leader::LeaderConfig;
use vaultsync_controller::rate_limit::RateLimit;
use vaultsync_controller::term::{self, Election, guarded_client};
use vaultsync_controller::{Config, Context};

use crate::health;

#[derive(Args)]
pub struct RunArgs {
    /// Audience of ServiceAccount tokens used for Kubernetes auth when a
    /// store names none.
    #[arg(long, env = "VAULTSYNC_DEFAULT_AUDIENCE", default_value = "vault")]
    default_audience: String,
    /// Largest extra delay added to each refresh, as a fraction of
    /// refreshInterval.
    #[arg(long, env = "VAULTSYNC_JITTER", default_value_t = 0.1)]
    jitter: f64,
    /// How long one Vault read's answer serves other readers of the same
    /// secret (Go duration; 0 turns coalescing of finished reads off).
    #[arg(long, env = "VAULTSYNC_READ_WINDOW", default_value = "1s")]
    read_window: String,
    /// How many ExternalSecrets are reconciled at once.
    #[arg(long, env = "VAULTSYNC_CONCURRENCY", default_value_t = 16)]
    concurrency: u16,
    /// The shortest refreshInterval honoured (Go duration): a shorter
    /// one, other than 0 (once), counts as this.
    #[arg(long, env = "VAULTSYNC_MIN_REFRESH_INTERVAL", default_value = "1s")]
    min_refresh_interval: String,
    /// Watch and sync only this namespace (a namespace-scoped install,
    /// whose RBAC is a Role there); ClusterSecretStores and
    /// ClusterExternalSecrets are then not served.
    #[arg(long, env = "VAULTSYNC_NAMESPACE")]
    namespace: Option<String>,
    /// Compete for a Lease so that only one replica syncs.
    #[arg(long, env = "VAULTSYNC_LEADER_ELECTION")]
    leader_election: bool,
    /// Name of the Lease the replicas compete for (the chart sets one per
    /// release, so two releases never share it).
    #[arg(long, env = "VAULTSYNC_LEASE_NAME", default_value = "vaultsync-leader")]
    lease_name: String,
    /// Namespace of the Lease (default: the kubeconfig's or the pod's
    /// namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// This replica's name in the Lease (default: POD_NAME, else host
    /// name and process id).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Request ServiceAccount tokens only for ServiceAccounts in
    /// namespaces with these labels (`key=value`, `key!=value`, `key`,
    /// `!key`, comma-separated). Default: any namespace.
    #[arg(long, env = "VAULTSYNC_TOKEN_NAMESPACE_SELECTOR")]
    token_namespace_selector: Option<String>,
    /// Serve only stores whose spec.controller is unset or this class
    /// (ESO's --controller-class); stores of another class and the
    /// ExternalSecrets that use them are left alone.
    #[arg(long, env = "VAULTSYNC_CONTROLLER_CLASS", default_value = vaultsync_api::DEFAULT_CONTROLLER_CLASS)]
    controller_class: String,
    /// Also serve ESO's API group (external-secrets.io/v1, with ESO's CRDs
    /// installed): ESO-group stores whose spec.controller is
    /// --controller-class, and the ExternalSecrets that use them, take
    /// over from ESO in place (docs/migration.md#taking-over-from-eso-in-place).
    #[arg(long, env = "VAULTSYNC_ESO_API")]
    eso_api: bool,
    /// With --eso-api, also serve ESO-group stores without a
    /// spec.controller. Only for a cluster whose ESO controller is gone:
    /// while it runs, ESO serves those stores itself.
    #[arg(long, env = "VAULTSYNC_ESO_CLAIM_UNCLASSED", requires = "eso_api")]
    eso_claim_unclassed: bool,
    /// A kind ExternalSecrets may write with target.manifest (ESO's
    /// generic targets), as apiVersion/Kind: `v1/ConfigMap`,
    /// `argoproj.io/v1alpha1/Application`. Repeat the flag (or separate
    /// with commas) for several; none by default. The operator's RBAC must
    /// allow writing them (chart value genericTargets grants it).
    #[arg(long = "generic-target", env = "VAULTSYNC_GENERIC_TARGETS", value_delimiter = ',',
          value_parser = vaultsync_controller::parse_generic_target)]
    generic_targets: Vec<String>,
    /// How long a Lease claim lasts: another replica takes over when the
    /// leader has not renewed for this long (Go duration).
    #[arg(long, env = "VAULTSYNC_LEASE_DURATION", default_value = "15s")]
    lease_duration: String,
    /// How long the leader keeps writing after sending its last
    /// successful renewal; must be shorter than --lease-duration.
    #[arg(long, env = "VAULTSYNC_RENEW_DEADLINE", default_value = "10s")]
    renew_deadline: String,
    /// Pause between attempts to claim or renew the Lease.
    #[arg(long, env = "VAULTSYNC_RETRY_PERIOD", default_value = "2s")]
    retry_period: String,
    /// Address of the /live, /ready and /metrics endpoints.
    #[arg(long, env = "VAULTSYNC_HEALTH_ADDR", default_value = "127.0.0.1:8080")]
    health_addr: std::net::SocketAddr,
    /// Kubernetes API requests per second, after a burst of
    /// --client-burst (ESO's flag); 0, the default: no limit. The Lease's
    /// requests are never held back by it.
    // No limit by default, as before the flag: --concurrency already
    // bounds the requests in flight, and ESO's 50 would stretch the first
    // sync of the README's benchmark (902 GETs) from 3.5s to 18s or more.
    #[arg(long, env = "VAULTSYNC_CLIENT_QPS", default_value_t = 0.0)]
    client_qps: f64,
    /// Kubernetes API requests sent at once before --client-qps paces
    /// them.
    #[arg(long, env = "VAULTSYNC_CLIENT_BURST", default_value_t = 100)]
    client_burst: u32,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let RunArgs {
        default_audience,
        jitter,
        read_window,
        concurrency,
        min_refresh_interval,
        namespace,
        leader_election,
        lease_name,
        leader_election_namespace,
        identity,
        token_namespace_selector,
        controller_class,
        eso_api,
        eso_claim_unclassed,
        generic_targets,
        lease_duration,
        renew_deadline,
        retry_period,
        health_addr,
        client_qps,
        client_burst,
    } = args;
    crate::logging::log_panics();
    anyhow::ensure!((0.0..=1.0).contains(&jitter), "--jitter must be between 0 and 1");
    let read_window = vaultsync_api::parse_duration(&read_window).context("--read-window")?;
    anyhow::ensure!(concurrency > 0, "--concurrency must be at least 1");
    let min_refresh_interval =
        vaultsync_api::parse_duration(&min_refresh_interval).context("--min-refresh-interval")?;
    // VAULTSYNC_NAMESPACE set to "" (a templated env left blank)
    // means every namespace, not a namespace named "".
    let namespace = namespace.filter(|ns| !ns.is_empty());
    let token_namespace_selector = token_namespace_selector
        .filter(|s| !s.trim().is_empty())
        .map(|s| vaultsync_controller::parse_label_selector(&s))
        .transpose()
        .map_err(anyhow::Error::msg)
        .context("--token-namespace-selector")?;
    // A scoped install's RBAC has no namespaces right, and only ever
    // grants tokens in its own namespace anyway.
    anyhow::ensure!(
        namespace.is_none() || token_namespace_selector.is_none(),
        "--token-namespace-selector is for cluster-wide installs; with --namespace, tokens are only requested in that namespace"
    );
    anyhow::ensure!(!controller_class.trim().is_empty(), "--controller-class must not be empty");
    let config = Config {
        controller_class: controller_class.trim().to_owned(),
        eso_api,
        eso_claim_unclassed,
        generic_targets,
        default_audience,
        jitter,
        read_window,
        concurrency,
        min_refresh_interval,
        namespace,
        token_namespace_selector,
        ..Config::default()
    };
    let rate_limit = RateLimit::new(client_qps, client_burst)
        .map_err(anyhow::Error::msg)
        .context("--client-qps and --client-burst")?;
    let timings = LeaseTimings::parse(&lease_duration, &renew_deadline, &retry_period)?;
    let leadership = leader_election.then_some(Leadership {
        lease_name,
        namespace: leader_election_namespace,
        identity,
        timings: timings.clone(),
    });
    start(config, health_addr, timings.request_timeout(), rate_limit, leadership).await
}

/// Lease timings from the command line, validated.
#[derive(Clone, Debug)]
struct LeaseTimings {
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
}

impl LeaseTimings {
    fn parse(lease_duration: &str, renew_deadline: &str, retry_period: &str) -> anyhow::Result<Self> {
        let lease_duration = vaultsync_api::parse_duration(lease_duration).context("--lease-duration")?;
        let renew_deadline = vaultsync_api::parse_duration(renew_deadline).context("--renew-deadline")?;
        let retry_period = vaultsync_api::parse_duration(retry_period).context("--retry-period")?;
        anyhow::ensure!(
            renew_deadline < lease_duration,
            "--renew-deadline ({renew_deadline:?}) must be shorter than --lease-duration ({lease_duration:?})"
        );
        anyhow::ensure!(
            !retry_period.is_zero() && retry_period < renew_deadline,
            "--retry-period ({retry_period:?}) must be above zero and shorter than --renew-deadline ({renew_deadline:?})"
        );
        Ok(Self { lease_duration, renew_deadline, retry_period })
    }

    /// Timeout of every non-watch API request: a renewal stuck on a dead
    /// connection must fail in time for a retry before the renew deadline.
    fn request_timeout(&self) -> Duration {
        Duration::from_secs(5).min(self.renew_deadline / 2)
    }
}

struct Leadership {
    lease_name: String,
    namespace: Option<String>,
    identity: Option<String>,
    timings: LeaseTimings,
}

async fn start(
    config: Config,
    health_addr: std::net::SocketAddr,
    request_timeout: Duration,
    rate_limit: Option<RateLimit>,
    leadership: Option<Leadership>,
) -> anyhow::Result<()> {
    // kube and reqwest are both built on rustls with ring; one process-wide
    // provider serves both.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kube_config =
        kube::Config::infer().await.context("cannot reach the Kubernetes API (set KUBECONFIG or run in a cluster)")?;
    // Only a leader writes, so only a leader's writes are fenced; the Lease
    // has a client of its own, unfenced, or it could never be renewed.
    let fence = leadership.as_ref().map(|_| Fence::new());
    let client = guarded_client(&kube_config, request_timeout, fence.clone(), rate_limit).context(CLIENT_ERROR)?;
    let scope = config.namespace.clone().unwrap_or_else(|| "all namespaces".into());
    let api_rate_limit = rate_limit.map_or_else(|| "none".to_owned(), |l| format!("{l:?}"));
    tracing::info!(version = crate::VERSION, %scope, %api_rate_limit, "vaultsync starting");
    let ctx = Arc::new(Context::new(client.clone(), config));
    let bound = vaultsync_serve::admin::serve(health_addr, Arc::new(health::OperatorProbe(ctx.clone())))
        .await
        .with_context(|| format!("cannot serve /live, /ready and /metrics on {health_addr}"))?;
    tracing::info!(address = %bound, "serving /live, /ready and /metrics");

    // One watch of the shutdown signals for the life of the process, so a
    // SIGTERM between two terms of leadership is not missed.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing the syncs in flight");
        let _ = stop_tx.send(true);
    });

    let election = match (leadership, fence) {
        (Some(leadership), Some(fence)) => {
            ctx.enable_leader_election();
            Some(Election {
                // Not rate limited: a renewal queued behind a burst of syncs
                // could miss the renew deadline and cost the leadership.
                lease_client: guarded_client(&kube_config, request_timeout, None, None).context(CLIENT_ERROR)?,
                leader: LeaderConfig {
                    namespace: leadership.namespace.unwrap_or_else(|| client.default_namespace().to_owned()),
                    lease_name: leadership.lease_name,
                    identity: leadership.identity.unwrap_or_else(term::default_identity),
                    lease_duration: leadership.timings.lease_duration,
                    renew_deadline: leadership.timings.renew_deadline,
                    retry_period: leadership.timings.retry_period,
                },
                fence,
            })
        }
        _ => None,
    };
    term::run(ctx, stop, election).await;
    Ok(())
}

const CLIENT_ERROR: &str = "cannot build the Kubernetes client";

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
