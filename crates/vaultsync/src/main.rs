//! The vaultsync binary: `vaultsync run` starts the operator, `vaultsync
//! crdgen` writes the CustomResourceDefinitions.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use vaultsync_controller::fence::{Fence, GuardLayer};
use vaultsync_controller::leader::{self, LeaderConfig};
use vaultsync_controller::{Config, Context};

mod agent;
mod health;
mod render;

/// The release and the git commit it was built from (see build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("VAULTSYNC_GIT_COMMIT"), ")");

#[derive(Parser)]
#[command(name = "vaultsync", version = VERSION, about = "Keeps Kubernetes Secrets in sync with HashiCorp Vault and OpenBao")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up; the size of the `run` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster of the current kubeconfig (or
    /// the in-cluster ServiceAccount).
    Run {
        /// Audience of ServiceAccount tokens used for Kubernetes auth when a
        /// store names none.
        #[arg(long, env = "VAULTSYNC_DEFAULT_AUDIENCE", default_value = "vault")]
        default_audience: String,
        /// Largest extra delay added to each refresh, as a fraction of
        /// refreshInterval.
        #[arg(long, env = "VAULTSYNC_JITTER", default_value_t = 0.1)]
        jitter: f64,
        /// Log as JSON lines.
        #[arg(long, env = "VAULTSYNC_LOG_JSON")]
        log_json: bool,
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
    },
    /// Show the Secret an ExternalSecret would produce, reading the store and
    /// Vault but writing nothing. Values are masked unless --show-values.
    Render {
        /// The ExternalSecret manifest (YAML).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// A SecretStore or ClusterSecretStore manifest to use instead of
        /// the one the ExternalSecret names in the cluster.
        #[arg(long)]
        store: Option<PathBuf>,
        /// Namespace to render in (default: the manifest's, else the
        /// kubeconfig's).
        #[arg(short, long)]
        namespace: Option<String>,
        /// Print the values instead of masking them.
        #[arg(long)]
        show_values: bool,
    },
    /// What the injection webhook runs inside Pods (init container,
    /// sidecar, exec wrapper); configured by VAULTSYNC_AGENT_CONFIG.
    Agent {
        #[command(subcommand)]
        command: agent::AgentCommand,
    },
    /// Serve the mutating admission webhook that injects the agent into
    /// Pods annotated `vaultsync.dev/inject: "true"` (or with the Vault agent
    /// injector's `vault.hashicorp.com/agent-inject: "true"`).
    Webhook {
        /// Address to serve HTTPS on (`/mutate`, `/metrics`, `/live`).
        #[arg(long, env = "VAULTSYNC_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
        listen: std::net::SocketAddr,
        /// Vault address the agent uses unless a Pod says otherwise.
        #[arg(long, env = "VAULTSYNC_VAULT_ADDRESS")]
        vault_address: String,
        /// PEM file of the CA that signed Vault's certificate, given to the agent.
        #[arg(long, env = "VAULTSYNC_VAULT_CACERT")]
        vault_ca_file: Option<PathBuf>,
        /// Image of the injected agent (this image).
        #[arg(long, env = "VAULTSYNC_AGENT_IMAGE")]
        agent_image: String,
        /// Kubernetes auth mount the agent logs in at.
        #[arg(long, env = "VAULTSYNC_AUTH_PATH", default_value = "kubernetes")]
        auth_path: String,
        /// Audience of the Pod's projected token (the Vault role's audience).
        #[arg(long, env = "VAULTSYNC_TOKEN_AUDIENCE", default_value = "vault")]
        audience: String,
        /// DNS names or IP addresses the webhook's own certificate is for
        /// (comma-separated), e.g. its Service's `name.namespace.svc`.
        #[arg(long, env = "VAULTSYNC_WEBHOOK_HOSTS", value_delimiter = ',', default_value = "localhost")]
        hosts: Vec<String>,
        /// Lifetime of the certificate it makes itself (rotated at 2/3).
        #[arg(long, env = "VAULTSYNC_WEBHOOK_CERT_LIFETIME", default_value = "2160h")]
        cert_lifetime: String,
        /// Serve this certificate (PEM; e.g. from cert-manager) instead.
        #[arg(long, env = "VAULTSYNC_WEBHOOK_CERT", requires = "key_file")]
        cert_file: Option<PathBuf>,
        #[arg(long, env = "VAULTSYNC_WEBHOOK_KEY", requires = "cert_file")]
        key_file: Option<PathBuf>,
        /// MutatingWebhookConfiguration whose caBundle the webhook keeps
        /// current with its own CA.
        #[arg(long, env = "VAULTSYNC_WEBHOOK_CONFIG")]
        webhook_config: Option<String>,
        /// Keep the generated CA and certificate in this Secret (of
        /// --tls-secret-namespace), so that every replica serves the same.
        #[arg(long, env = "VAULTSYNC_WEBHOOK_TLS_SECRET")]
        tls_secret: Option<String>,
        #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
        tls_secret_namespace: String,
    },
    /// Write the CustomResourceDefinitions as YAML, one file per kind.
    Crdgen {
        /// Directory to write into; prints to stdout when omitted.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crdgen { out } => crdgen(out),
        Command::Agent { command } => agent::run(command).await,
        Command::Webhook {
            listen,
            vault_address,
            vault_ca_file,
            agent_image,
            auth_path,
            audience,
            hosts,
            cert_lifetime,
            cert_file,
            key_file,
            webhook_config,
            tls_secret,
            tls_secret_namespace,
        } => {
            let vault_ca_pem = vault_ca_file
                .map(|f| std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display())))
                .transpose()?;
            let cert_lifetime = vaultsync_api::parse_duration(&cert_lifetime).context("--cert-lifetime")?;
            anyhow::ensure!(cert_lifetime >= Duration::from_secs(3), "--cert-lifetime must be at least 3s");
            vaultsync_webhook::run(vaultsync_webhook::WebhookOptions {
                listen,
                inject: vaultsync_inject::InjectConfig {
                    vault_address,
                    vault_ca_pem,
                    agent_image,
                    auth_path,
                    audience,
                },
                hosts,
                cert_lifetime,
                cert_files: cert_file.zip(key_file),
                webhook_config,
                tls_secret: tls_secret.filter(|s| !s.is_empty()).map(|s| (tls_secret_namespace, s)),
            })
            .await
        }
        Command::Render { file, store, namespace, show_values } => {
            render::run(&file, store.as_deref(), namespace, show_values).await
        }
        Command::Run {
            default_audience,
            jitter,
            log_json,
            read_window,
            concurrency,
            min_refresh_interval,
            namespace,
            leader_election,
            lease_name,
            leader_election_namespace,
            identity,
            token_namespace_selector,
            lease_duration,
            renew_deadline,
            retry_period,
            health_addr,
        } => {
            init_logging(log_json);
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
            let config = Config {
                default_audience,
                jitter,
                read_window,
                concurrency,
                min_refresh_interval,
                namespace,
                token_namespace_selector,
                ..Config::default()
            };
            let timings = LeaseTimings::parse(&lease_duration, &renew_deadline, &retry_period)?;
            let leadership = leader_election.then_some(Leadership {
                lease_name,
                namespace: leader_election_namespace,
                identity,
                timings: timings.clone(),
            });
            run(config, health_addr, timings.request_timeout(), leadership).await
        }
    }
}

fn crdgen(out: Option<PathBuf>) -> anyhow::Result<()> {
    for (name, yaml) in vaultsync_api::crds_yaml().context("cannot encode CRDs as YAML")? {
        match &out {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let path = dir.join(name);
                std::fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
            }
            None => print!("---\n{yaml}"),
        }
    }
    Ok(())
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

/// A client whose every non-watch request has `request_timeout`, and whose
/// writes, given a fence, stop when leadership lapses.
fn guarded_client(
    config: &kube::Config,
    request_timeout: Duration,
    fence: Option<Fence>,
) -> anyhow::Result<kube::Client> {
    let builder =
        kube::client::ClientBuilder::try_from(config.clone()).context("cannot build the Kubernetes client")?;
    Ok(builder.with_layer(&GuardLayer::new(request_timeout, fence)).build())
}

async fn run(
    config: Config,
    health_addr: std::net::SocketAddr,
    request_timeout: Duration,
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
    let client = guarded_client(&kube_config, request_timeout, fence.clone())?;
    let scope = config.namespace.clone().unwrap_or_else(|| "all namespaces".into());
    tracing::info!(version = VERSION, %scope, "vaultsync starting");
    let ctx = Arc::new(Context::new(client.clone(), config));
    let bound = health::serve(health_addr, ctx.clone())
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

    let (Some(leadership), Some(fence)) = (leadership, fence) else {
        vaultsync_controller::run(ctx.clone(), stopped(stop)).await;
        // The syncs are over: the Vault tokens the operator logged in for
        // are revoked rather than left to expire.
        ctx.revoke_vault_tokens(REVOKE_TIMEOUT).await;
        tracing::info!("vaultsync stopped");
        return Ok(());
    };
    ctx.enable_leader_election();
    let lease_client = guarded_client(&kube_config, request_timeout, None)?;
    let leader = LeaderConfig {
        namespace: leadership.namespace.unwrap_or_else(|| client.default_namespace().to_owned()),
        lease_name: leadership.lease_name,
        identity: leadership.identity.unwrap_or_else(default_identity),
        lease_duration: leadership.timings.lease_duration,
        renew_deadline: leadership.timings.renew_deadline,
        retry_period: leadership.timings.retry_period,
    };
    loop {
        tokio::select! {
            () = leader::acquire(&lease_client, &leader, &fence, &ctx) => {}
            () = stopped(stop.clone()) => return Ok(()),
        }
        ctx.set_leading(true);
        let (term_over_tx, term_over) = tokio::sync::watch::channel(false);
        let mut stop_term = stop.clone();
        let controllers = vaultsync_controller::run(ctx.clone(), async move {
            let mut term_over = term_over;
            tokio::select! {
                _ = stop_term.wait_for(|stop| *stop) => {}
                _ = term_over.wait_for(|over| *over) => {}
            }
        });
        tokio::pin!(controllers);
        let shutting_down = tokio::select! {
            () = &mut controllers => true,
            () = stopped(stop.clone()) => {
                // Let the syncs in flight finish under the fence, then stop
                // writing and hand the Lease over.
                let _ = tokio::time::timeout(leader.renew_deadline, &mut controllers).await;
                true
            }
            // The fence already refuses every write; what is still running
            // fails fast or is abandoned at the deadline.
            () = leader::hold(lease_client.clone(), leader.clone(), fence.clone()) => {
                let _ = term_over_tx.send(true);
                if tokio::time::timeout(leader.lease_duration, &mut controllers).await.is_err() {
                    tracing::warn!("controllers of the lost term did not stop in time; dropped");
                }
                false
            }
        };
        fence.revoke();
        ctx.set_leading(false);
        if shutting_down {
            // The Lease first, so a standby takes over without waiting.
            leader::release(&lease_client, &leader).await;
            ctx.revoke_vault_tokens(REVOKE_TIMEOUT).await;
            tracing::info!("vaultsync stopped");
            return Ok(());
        }
        // A standby needs no Vault token; a new term logs in again.
        ctx.revoke_vault_tokens(REVOKE_TIMEOUT).await;
        tracing::info!(lease = %leader.lease_name, "no longer leading; competing for the Lease again");
    }
}

/// How long stopping (or losing leadership) waits for Vault tokens to be
/// revoked; those not revoked by then expire with their TTL.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves once `stop` says true.
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn init_logging(json: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
    // Colour codes only for a person at a terminal, never in a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A panic (a bug, caught so that it fails one object only) is logged
    // like everything else, one JSON line, instead of raw text on stderr.
    std::panic::set_hook(Box::new(|panic| {
        let message = panic
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = panic.location().map(ToString::to_string).unwrap_or_default();
        tracing::error!(%message, %location, "panic: a bug in vaultsync; the object being handled fails, the process goes on");
    }));
    if json {
        // Fields at the top level of each line, where log pipelines look.
        builder.json().flatten_event(true).with_current_span(false).with_span_list(false).init();
    } else {
        builder.init();
    }
}
