//! The vaultsync binary: `vaultsync run` starts the operator, `vaultsync
//! crdgen` writes the CustomResourceDefinitions.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use vaultsync_controller::leader::{self, LeaderConfig};
use vaultsync_controller::{Config, Context};

mod health;
mod render;

#[derive(Parser)]
#[command(name = "vaultsync", version, about = "Keeps Kubernetes Secrets in sync with HashiCorp Vault and OpenBao")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

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
        /// Watch and sync only this namespace (a namespace-scoped install,
        /// whose RBAC is a Role there); ClusterSecretStores and
        /// ClusterExternalSecrets are then not served.
        #[arg(long, env = "VAULTSYNC_NAMESPACE")]
        namespace: Option<String>,
        /// Compete for a Lease so that only one replica syncs.
        #[arg(long, env = "VAULTSYNC_LEADER_ELECTION")]
        leader_election: bool,
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
        Command::Render { file, store, namespace, show_values } => {
            render::run(&file, store.as_deref(), namespace, show_values).await
        }
        Command::Run {
            default_audience,
            jitter,
            log_json,
            read_window,
            concurrency,
            namespace,
            leader_election,
            leader_election_namespace,
            identity,
            token_namespace_selector,
            health_addr,
        } => {
            init_logging(log_json);
            anyhow::ensure!((0.0..=1.0).contains(&jitter), "--jitter must be between 0 and 1");
            let read_window = vaultsync_api::parse_duration(&read_window).context("--read-window")?;
            anyhow::ensure!(concurrency > 0, "--concurrency must be at least 1");
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
                namespace,
                token_namespace_selector,
                ..Config::default()
            };
            let leadership = leader_election.then_some((leader_election_namespace, identity));
            run(config, health_addr, leadership).await
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

async fn run(
    config: Config,
    health_addr: std::net::SocketAddr,
    leadership: Option<(Option<String>, Option<String>)>,
) -> anyhow::Result<()> {
    // kube and reqwest are both built on rustls with ring; one process-wide
    // provider serves both.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default()
        .await
        .context("cannot reach the Kubernetes API (set KUBECONFIG or run in a cluster)")?;
    let scope = config.namespace.clone().unwrap_or_else(|| "all namespaces".into());
    tracing::info!(version = env!("CARGO_PKG_VERSION"), %scope, "vaultsync starting");
    let ctx = Arc::new(Context::new(client.clone(), config));
    let bound = health::serve(health_addr, ctx.clone())
        .await
        .with_context(|| format!("cannot serve /live, /ready and /metrics on {health_addr}"))?;
    tracing::info!(address = %bound, "serving /live, /ready and /metrics");

    let Some((namespace, identity)) = leadership else {
        vaultsync_controller::run(ctx, shutdown_signal()).await;
        tracing::info!("vaultsync stopped");
        return Ok(());
    };
    let leader = LeaderConfig {
        namespace: namespace.unwrap_or_else(|| client.default_namespace().to_owned()),
        lease_name: "vaultsync-leader".into(),
        identity: identity.unwrap_or_else(default_identity),
        lease_duration: Duration::from_secs(15),
        renew_every: Duration::from_secs(5),
    };
    tokio::select! {
        _ = leader::acquire(&client, &leader) => {}
        _ = shutdown_signal() => return Ok(()),
    }
    tokio::select! {
        _ = vaultsync_controller::run(ctx, shutdown_signal()) => {
            tracing::info!("vaultsync stopped");
            Ok(())
        }
        // Another replica may be writing now: stop at once, and let the
        // restarted process compete again.
        _ = leader::hold(client, leader) => anyhow::bail!("lost the leader Lease; exiting"),
    }
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
    // Give in-flight reconciles a moment; the controller stops taking new ones.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
