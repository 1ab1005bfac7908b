//! `vaultsync agent`: the command line of what the injection webhook puts
//! into Pods. Each mode reads its configuration from
//! `VAULTSYNC_AGENT_CONFIG` and runs in `vaultsync_agent::run`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Log in, render every file once, exit (the init container).
    Init,
    /// Render, then keep the files current: poll with jitter, rewrite what
    /// changed (atomically), signal the app when asked (a native sidecar).
    /// Leased credentials are renewed, and replaced only near their end;
    /// certificates written for (`pki/issue`) at two thirds of their life.
    Sidecar,
    /// Resolve `vault:<path>#<key>` environment values and exec COMMAND
    /// with them; nothing is written anywhere.
    Exec {
        /// The app's command and arguments.
        #[arg(trailing_var_arg = true, required = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Copy this binary to PATH (exec mode's init container).
    Install { path: PathBuf },
}

pub async fn run(command: AgentCommand) -> anyhow::Result<()> {
    match command {
        AgentCommand::Install { path } => vaultsync_agent::run::install(&path),
        AgentCommand::Init => vaultsync_agent::run::init().await,
        AgentCommand::Sidecar => {
            // The poll interval is a Go duration, parsed here: the agent
            // crate stays free of the CRD crate (and so of Kubernetes).
            let config = vaultsync_agent::config_from_env()?;
            let poll = vaultsync_api::parse_duration(&config.poll_interval)
                .context("poll interval")?
                .max(Duration::from_secs(1));
            vaultsync_agent::run::sidecar(config, poll).await
        }
        AgentCommand::Exec { command } => vaultsync_agent::run::exec(command).await,
    }
}
