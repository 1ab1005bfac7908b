//! ESO's connection options of a Vault store against real OpenBao: `tls`
//! (a client certificate for a listener that requires mutual TLS) and
//! `headers` (added to every request, seen in OpenBao's audit log).

use serde_json::{Value, json};
use vaultsync_e2e::{Bao, PrivateBao, TestEnv, certs, external_secret, report, vault_store};

#[tokio::test]
async fn a_store_presents_its_client_certificate_to_a_listener_that_requires_one() -> anyhow::Result<()> {
    let env = TestEnv::new("mtls").await?;
    let dir = std::env::temp_dir().join(format!("mtls-{}", env.prefix));
    std::fs::create_dir_all(&dir)?;
    let server_ca = certs::server_certificate(&dir)?;
    let (client_cert, client_key) = certs::self_signed(&dir, "client")?;
    env.record_secret(&client_key);
    // The dev server's own listener is plain http (for seeding); a second
    // one serves TLS and refuses a connection without a client certificate
    // of the client CA.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = dir.join("mtls.hcl");
    std::fs::write(
        &config,
        format!(
            "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_cert_file = \"{d}/server.crt\"\n  tls_key_file = \"{d}/server.key\"\n  tls_require_and_verify_client_cert = true\n  tls_client_ca_file = \"{d}/client.crt\"\n}}\n",
            d = dir.display()
        ),
    )?;
    let bao = PrivateBao::start_with_config(&format!("mtls-{}", env.prefix), Some(&config)).await?;
    let seed = Bao::at(&bao.addr, "root");
    let value = env.secret_value("mtls");
    seed.write("secret/data/app", json!({"data": {"v": value}})).await?;
    env.create_secret("vault-token", &[("token", "root")]).await?;
    env.apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "client-tls"},
        "type": "kubernetes.io/tls", "stringData": {"tls.crt": client_cert, "tls.key": client_key}}))
        .await?;
    let bundle = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &server_ca);
    let vault = |tls: Option<Value>| {
        let mut vault = json!({"server": format!("https://127.0.0.1:{port}"), "path": "secret", "caBundle": bundle,
            "auth": {"tokenSecretRef": {"name": "vault-token"}}});
        if let Some(tls) = tls {
            vault["tls"] = tls;
        }
        vault
    };
    env.apply(vault_store(
        "mtls",
        vault(Some(json!({"certSecretRef": {"name": "client-tls"},
        "keySecretRef": {"name": "client-tls"}}))),
    ))
    .await?;
    env.apply(vault_store("no-client-cert", vault(None))).await?;
    env.apply(external_secret(
        "app",
        "mtls",
        json!({"data": [{"secretKey": "v", "remoteRef": {"key": "app", "property": "v"}}]}),
    ))
    .await?;
    assert_eq!(env.wait_secret("app").await?.get("v"), Some(&value));
    env.wait_store_ready("mtls", "True").await?;
    let (reason, message) = env.wait_store_ready("no-client-cert", "False").await?;
    report(&format!(
        "connection: mTLS store synced through a listener requiring client certificates; without tls: {reason}"
    ));
    assert!(!message.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
    drop(bao);
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn store_headers_reach_vault_on_every_request() -> anyhow::Result<()> {
    let env = TestEnv::new("headers").await?;
    // OpenBao's audit log shows a request header once told to.
    let header = format!("x-vaultsync-{}", env.prefix);
    env.bao.write(&format!("sys/config/auditing/request-headers/{header}"), json!({"hmac": false})).await?;
    let path = format!("{}/app", env.prefix);
    let value = env.secret_value("headers");
    env.bao.kv2_put(&path, json!({"v": value})).await?;
    env.create_secret("vault-token", &[("token", "root")]).await?;
    env.apply(vault_store(
        "with-headers",
        json!({"server": env.bao.addr, "path": "secret", "allowInsecureHttp": true,
            "headers": {header.clone(): "team-a"},
            "auth": {"tokenSecretRef": {"name": "vault-token"}}}),
    ))
    .await?;
    env.apply(external_secret(
        "app",
        "with-headers",
        json!({"data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
    ))
    .await?;
    assert_eq!(env.wait_secret("app").await?.get("v"), Some(&value));
    let log = std::path::PathBuf::from(std::env::var("VAULTSYNC_STATE")?).join("logs/openbao-audit.log");
    let read_path = format!("secret/data/{path}");
    let carried: Vec<bool> = std::fs::read_to_string(&log)?
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| {
            entry["type"] == "request"
                && entry["request"]["operation"] == "read"
                && entry["request"]["path"] == read_path.as_str()
        })
        .map(|entry| entry["request"]["headers"][&header] == json!(["team-a"]))
        .collect();
    anyhow::ensure!(!carried.is_empty(), "no read of {read_path} in the audit log");
    anyhow::ensure!(carried.iter().all(|c| *c), "a read without the store's header: {carried:?}");
    // A header of Vault's own is refused by the API server.
    let refused = env
        .apply(vault_store(
            "vault-header",
            json!({"server": env.bao.addr, "headers": {"X-Vault-Namespace": "elsewhere"},
                "auth": {"tokenSecretRef": {"name": "vault-token"}}}),
        ))
        .await
        .expect_err("X-Vault-Namespace is Vault's header");
    assert!(refused.to_string().contains("never X-Vault-*"), "{refused}");
    report(&format!(
        "connection: {} read(s) carried the store's header (OpenBao's audit log); X-Vault-* refused",
        carried.len()
    ));
    env.cleanup().await;
    Ok(())
}
