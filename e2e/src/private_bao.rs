//! An OpenBao dev server of a test's own, for scenarios that would disturb
//! the shared one (sealing it, stopping it).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;

use crate::{Bao, eventually};

/// An OpenBao dev server on a free loopback port, killed when dropped.
pub struct PrivateBao {
    _process: tokio::process::Child,
    pub addr: String,
    log: PathBuf,
}

impl PrivateBao {
    pub async fn start(name: &str) -> anyhow::Result<Self> {
        Self::start_with_config(name, None).await
    }

    /// As `start`, with a configuration file of more stanzas (another
    /// listener, say) beside the dev server's own.
    pub async fn start_with_config(name: &str, config: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let state = PathBuf::from(std::env::var("VAULTSYNC_STATE").context("VAULTSYNC_STATE")?);
        let log = state.join(format!("logs/openbao-{name}.log"));
        let mut command = tokio::process::Command::new("bao");
        command.arg("server");
        if let Some(config) = config {
            command.arg(format!("-config={}", config.display()));
        }
        let process = command
            .args(["-dev", "-dev-root-token-id=root", "-dev-no-store-token"])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::from(std::fs::File::create(&log)?))
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting bao (on PATH from the e2e env file)")?;
        let addr = format!("http://127.0.0.1:{port}");
        let bao = Bao::at(&addr, "root");
        eventually(Duration::from_secs(30), || async { Ok(bao.read("sys/health").await.is_ok()) })
            .await
            .context("the private OpenBao never became healthy")?;
        Ok(Self { _process: process, addr, log })
    }

    /// The unseal key a dev server prints when it starts.
    pub fn unseal_key(&self) -> anyhow::Result<String> {
        let output = std::fs::read_to_string(&self.log)?;
        output
            .lines()
            .find_map(|line| line.trim().strip_prefix("Unseal Key: "))
            .map(str::to_owned)
            .context("no unseal key in the dev server's output")
    }
}
