//! The environment's PostgreSQL and PKI, as the leased-credential features
//! use them: OpenBao issues database credentials that log in and stop
//! working when their lease is revoked; its PKI issues certificates that
//! verify against its CA.

use serde_json::json;
use vaultsync_e2e::{Postgres, TestEnv};

#[tokio::test]
async fn issued_database_credentials_log_in_until_revoked() -> anyhow::Result<()> {
    let env = TestEnv::new("dbenv").await?;
    let pg = Postgres::from_env()?;
    let role = format!("database/roles/{}", env.prefix);
    env.bao
        .write(
            &role,
            json!({
                "db_name": "postgres",
                "default_ttl": "30s",
                "max_ttl": "60s",
                "creation_statements": [
                    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
                    "GRANT CONNECT ON DATABASE app TO \"{{name}}\";",
                ],
            }),
        )
        .await?;
    let issued = env.bao.read(&format!("database/creds/{}", env.prefix)).await?;
    let user = issued["data"]["username"].as_str().unwrap_or_default().to_owned();
    let password = issued["data"]["password"].as_str().unwrap_or_default().to_owned();
    let lease = issued["lease_id"].as_str().unwrap_or_default().to_owned();
    assert!(!user.is_empty() && !password.is_empty() && !lease.is_empty(), "{issued}");
    assert_eq!(issued["lease_duration"], 30, "the role's default TTL");
    assert!(pg.can_log_in(&user, &password)?, "issued credentials log in");
    assert!(!pg.can_log_in(&user, "not-the-password")?, "a wrong password is refused");

    env.bao.write("sys/leases/revoke", json!({"lease_id": lease})).await?;
    assert!(!pg.can_log_in(&user, &password)?, "revoking the lease drops the user");
    env.bao.delete(&role).await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn the_pki_issues_certificates_its_ca_verifies() -> anyhow::Result<()> {
    let env = TestEnv::new("pkienv").await?;
    let issued = env
        .bao
        .write("pki/issue/example-dot-com", json!({"common_name": format!("{}.example.com", env.prefix), "ttl": "1h"}))
        .await?;
    let certificate = issued["data"]["certificate"].as_str().unwrap_or_default();
    assert!(certificate.starts_with("-----BEGIN CERTIFICATE-----"), "{issued}");
    assert!(issued["data"]["private_key"].as_str().is_some_and(|k| k.contains("PRIVATE KEY")));
    assert!(issued["data"]["ca_chain"].as_array().is_some_and(|c| !c.is_empty()), "the chain is returned");
    let dir = std::env::temp_dir().join(format!("pkienv-{}", env.prefix));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("leaf.pem"), certificate)?;
    let verify = std::process::Command::new("openssl")
        .args(["verify", "-CAfile", &std::env::var("VAULTSYNC_PKI_CA")?])
        .arg(dir.join("leaf.pem"))
        .output()?;
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    // Outside the role's domains: refused.
    assert!(env.bao.write("pki/issue/example-dot-com", json!({"common_name": "evil.example.org"})).await.is_err());
    std::fs::remove_dir_all(dir)?;
    env.cleanup().await;
    Ok(())
}
