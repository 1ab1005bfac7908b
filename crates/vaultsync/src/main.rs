//! The vaultsync binary: parses the command line and hands each subcommand
//! to where its work lives. `vaultsync run` starts the operator,
//! `vaultsync webhook` serves the injection webhook, `vaultsync agent` is
//! what it injects, `vaultsync render` previews an ExternalSecret,
//! `vaultsync crdgen` writes the CustomResourceDefinitions, and
//! `vaultsync migrate check` and `vaultsync convert` move ESO manifests over.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

// Each subcommand's setup in a file of its own, so that this one only
// parses and dispatches.
mod crdgen;
mod crdref;
mod logging;
mod operator;

mod agent;
mod health;
mod migrate;
mod render;

/// The release and the git commit it was built from (see build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("VAULTSYNC_GIT_COMMIT"), ")");

#[derive(Parser)]
#[command(name = "vaultsync", version = VERSION, about = "Keeps Kubernetes Secrets in sync with HashiCorp Vault and OpenBao")]
struct Cli {
    /// Log as JSON lines.
    #[arg(long, env = "VAULTSYNC_LOG_JSON", global = true)]
    log_json: bool,
    /// What to log: a level (error, warn, info, debug, trace) or a tracing
    /// filter directive (`info,vaultsync_controller=debug`). Wins over
    /// RUST_LOG, which is read when this is not given; default
    /// `info,kube=warn`.
    #[arg(long, env = "VAULTSYNC_LOG_LEVEL", global = true, value_parser = logging::parse_level)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster of the current kubeconfig (or
    /// the in-cluster ServiceAccount).
    Run(operator::RunArgs),
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
    /// Moving from the External Secrets Operator: what would change or fail.
    Migrate {
        #[command(subcommand)]
        command: migrate::MigrateCommand,
    },
    /// Rewrite manifests between ESO's groups (external-secrets.io/v1,
    /// generators.external-secrets.io/v1alpha1) and vaultsync's.
    Convert(migrate::ConvertArgs),
    /// Write the CustomResourceDefinitions as YAML, one file per kind.
    Crdgen {
        /// Directory to write into; prints to stdout when omitted.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write the Markdown field reference of every kind to this
        /// file (docs/crd-reference.md).
        #[arg(long)]
        reference: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One setup for every mode, so the libraries' logs (Vault's, say) are
    // seen in the agent and the webhook too.
    logging::init(cli.log_json, cli.log_level.as_deref());
    match cli.command {
        Command::Crdgen { out, reference } => crdgen::run(out, reference),
        // Their exit codes tell "would fail" (1) from "could not read" (2).
        Command::Migrate { command } => std::process::exit(migrate::run_check(command).await),
        Command::Convert(args) => std::process::exit(migrate::run_convert(args)),
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
        Command::Run(args) => operator::run(args).await,
    }
}
