//! A sealed Vault: Ready=False with a message that says so, the Secret left
//! as it was, and recovery once it is unsealed. The test runs its own
//! OpenBao dev server, since sealing the shared one would break the others.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use vaultsync_e2e::{Bao, TestEnv, eventually, external_secret};

/// An OpenBao dev server on a free loopback port, killed when dropped.
struct PrivateBao {
    _process: tokio::process::Child,
    addr: String,
    log: PathBuf,
}

impl PrivateBao {
    async fn start(name: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let state = PathBuf::from(std::env::var("VAULTSYNC_STATE").context("VAULTSYNC_STATE")?);
        let log = state.join(format!("logs/openbao-{name}.log"));
        let process = tokio::process::Command::new("bao")
            .args(["server", "-dev", "-dev-root-token-id=root", "-dev-no-store-token"])
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
    fn unseal_key(&self) -> anyhow::Result<String> {
        let output = std::fs::read_to_string(&self.log)?;
        output
            .lines()
            .find_map(|line| line.trim().strip_prefix("Unseal Key: "))
            .map(str::to_owned)
            .context("no unseal key in the dev server's output")
    }
}

#[tokio::test]
async fn sealed_vault_keeps_the_secret_and_recovers() -> anyhow::Result<()> {
    let env = TestEnv::new("sealed").await?;
    let server = PrivateBao::start(&env.prefix).await?;
    let bao = Bao::at(&server.addr, "root");
    let value = env.secret_value("sealed");
    bao.kv2_put("app/db", json!({"password": value})).await?;
    env.token_store("private", "root", json!({"server": server.addr})).await?;
    env.apply(external_secret(
        "app",
        "private",
        json!({"data": [{"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}}]}),
    ))
    .await?;
    assert_eq!(env.wait_secret("app").await?.get("password"), Some(&value));
    env.wait_ready("app", "True").await?;
    let resource_version = env.secrets().get("app").await?.metadata.resource_version;

    bao.call(reqwest::Method::PUT, "sys/seal", None).await?;
    let force_sync = |token: &str| {
        let patch = json!({"metadata": {"annotations": {"vaultsync.dev/force-sync": token}}});
        let api = env.external_secrets();
        async move { api.patch("app", &PatchParams::default(), &Patch::Merge(patch)).await }
    };
    force_sync("sealed").await?;
    let (reason, message) = env.wait_ready("app", "False").await?;
    assert_eq!(reason, "SecretSyncedError");
    assert!(message.contains("sealed") && message.contains(&server.addr), "{message}");
    assert_eq!(env.secrets().get("app").await?.metadata.resource_version, resource_version);
    assert_eq!(env.secret_data("app").await?.get("password"), Some(&value), "the Secret must be kept");

    bao.call(reqwest::Method::PUT, "sys/unseal", Some(json!({"key": server.unseal_key()?}))).await?;
    let updated = env.secret_value("unsealed");
    bao.kv2_put("app/db", json!({"password": updated})).await?;
    force_sync("unsealed").await?;
    env.wait_ready("app", "True").await?;
    eventually(Duration::from_secs(30), || async {
        Ok(env.secret_data("app").await?.get("password") == Some(&updated))
    })
    .await?;
    env.cleanup().await;
    Ok(())
}
