//! Generators: `VaultDynamicSecret` issuing database credentials from
//! OpenBao's database engine (logged in with against the real PostgreSQL)
//! and certificates from its PKI engine, with the leases kept in status:
//! renewed, replaced before they end, revoked after the grace period and
//! when the ExternalSecret is deleted.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use kube::api::DeleteParams;
use serde_json::{Value, json};
use vaultsync_api::{IssuedLease, LeaseState};
use vaultsync_e2e::{Postgres, TestEnv, eventually, report};

async fn leases(env: &TestEnv, name: &str) -> anyhow::Result<Vec<IssuedLease>> {
    let es = env.external_secrets().get(name).await?;
    Ok(es.status.map(|s| s.leases).unwrap_or_default())
}

fn active(leases: &[IssuedLease]) -> Option<&IssuedLease> {
    leases.iter().find(|l| l.state == LeaseState::Active)
}

/// Waits for the Secret's `username` to differ from `old`; returns the new
/// (user, password), recorded for the suite's leak check.
async fn credentials(env: &TestEnv, name: &str, other_than: Option<&str>) -> anyhow::Result<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let found = loop {
        let data = env.secret_data(name).await.unwrap_or_default();
        let user = data.get("username").cloned().unwrap_or_default();
        if !user.is_empty() && Some(user.as_str()) != other_than {
            break Some((user, data.get("password").cloned().unwrap_or_default()));
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (user, password) =
        found.with_context(|| format!("Secret {name} with credentials other than {other_than:?}"))?;
    env.record_secret(&password);
    Ok((user, password))
}

#[tokio::test]
async fn database_credentials_are_renewed_then_replaced_before_they_end() -> anyhow::Result<()> {
    let env = TestEnv::new("gendb").await?;
    let pg = Postgres::from_env()?;
    // Renewed every ~8 s; Vault grants less than asked from 24 s on, so a
    // replacement comes before the 30 s max TTL ends the first one.
    env.database_role("12s", "30s").await?;
    env.apply(json!({
        "apiVersion": "generators.vaultsync.dev/v1alpha1", "kind": "VaultDynamicSecret",
        "metadata": {"name": "db"},
        "spec": {
            "path": format!("/database/creds/{}", env.prefix),
            "provider": env.generator_provider(),
            "lease": {"rotationGracePeriod": "3s"},
        },
    }))
    .await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "db"},
        "spec": {
            "refreshInterval": "1h",
            "dataFrom": [{"sourceRef": {"generatorRef": {"apiVersion": "generators.vaultsync.dev/v1alpha1", "kind": "VaultDynamicSecret", "name": "db"}}}],
        },
    }))
    .await?;
    let started = Instant::now();
    let (user, password) = credentials(&env, "db", None).await?;
    assert!(pg.can_log_in(&user, &password)?, "the issued credential logs in to PostgreSQL");
    let first = active(&leases(&env, "db").await?).cloned().context("an active lease in status")?;
    let lease_id = first.lease_id.clone().context("a lease id")?;
    assert!(lease_id.starts_with("database/creds/"), "{lease_id}");
    assert!(first.renewable && first.ttl_seconds == 12, "{first:?}");
    let es = env.external_secrets().get("db").await?;
    assert!(es.metadata.finalizers.unwrap_or_default().contains(&vaultsync_api::LEASE_FINALIZER.to_owned()));
    let text = serde_json::to_string(&es.status)?;
    assert!(!text.contains(&password), "no credential in status");

    // Renewed, not issued again: the same lease lives on past its first TTL.
    eventually(Duration::from_secs(30), || async {
        let now = leases(&env, "db").await?;
        Ok(active(&now).is_some_and(|l| l.lease_id == first.lease_id && l.expires_at != first.expires_at))
    })
    .await
    .context("the lease is renewed")?;
    assert_eq!(env.secret_data("db").await?.get("username"), Some(&user), "renewal keeps the credential");
    let issued = vaultsync_e2e::Bao::audited_responses(&format!("database/creds/{}", env.prefix))?;
    assert_eq!(issued, 1, "OpenBao's audit log: renewed, never issued again");
    tokio::time::sleep(Duration::from_secs(13).saturating_sub(started.elapsed())).await;
    assert!(pg.can_log_in(&user, &password)?, "past its first 12 s TTL, the renewed credential still logs in");

    // Near the max TTL a new credential is written while the old one lives.
    let (new_user, new_password) = credentials(&env, "db", Some(&user)).await?;
    let replaced_after = started.elapsed();
    assert!(pg.can_log_in(&new_user, &new_password)?, "the replacement logs in");
    let both = pg.can_log_in(&user, &password)?;
    let now = leases(&env, "db").await?;
    report(&format!(
        "generators: credential replaced {:.1}s after issue (max TTL 30s); old still logs in right after: {both}; leases {:?}",
        replaced_after.as_secs_f64(),
        now.iter().map(|l| (l.state, l.lease_id.clone())).collect::<Vec<_>>()
    ));
    assert!(replaced_after < Duration::from_secs(30), "replaced before the first lease's max TTL");
    assert!(both, "the replaced credential still logs in when its successor is written");
    // After the grace period (3 s, never past its end) the old one is gone.
    eventually(Duration::from_secs(20), || async { Ok(!pg.can_log_in(&user, &password)?) })
        .await
        .context("the replaced credential is revoked after the grace period")?;
    eventually(Duration::from_secs(20), || async {
        let now = leases(&env, "db").await?;
        Ok(now.len() == 1 && active(&now).is_some_and(|l| l.lease_id != first.lease_id))
    })
    .await
    .context("status keeps only the new lease")?;

    // Deleting the ExternalSecret revokes its lease: the credential stops
    // working, and the Secret goes with it.
    env.external_secrets().delete("db", &DeleteParams::default()).await?;
    eventually(Duration::from_secs(30), || async { Ok(env.external_secrets().get_opt("db").await?.is_none()) })
        .await
        .context("the ExternalSecret goes once its leases are revoked")?;
    assert!(!pg.can_log_in(&new_user, &new_password)?, "deletion revoked the lease");
    eventually(Duration::from_secs(30), || async { Ok(env.secrets().get_opt("db").await?.is_none()) })
        .await
        .context("the owned Secret is garbage-collected")?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn deletion_completes_when_vault_cannot_be_reached() -> anyhow::Result<()> {
    let env = TestEnv::new("genunreach").await?;
    env.database_role("1h", "2h").await?;
    // Reached through a proxy the test stops.
    let proxy = vaultsync_e2e::TcpRelay::start(&env.bao.addr).await?;
    let mut via_proxy = env.generator_provider();
    via_proxy["server"] = json!(proxy.url());
    env.apply(json!({
        "apiVersion": "generators.vaultsync.dev/v1alpha1", "kind": "VaultDynamicSecret",
        "metadata": {"name": "db"},
        "spec": {"path": format!("database/creds/{}", env.prefix), "provider": via_proxy},
    }))
    .await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "db"},
        "spec": {"dataFrom": [{"sourceRef": {"generatorRef": {"kind": "VaultDynamicSecret", "name": "db"}}}]},
    }))
    .await?;
    let (user, password) = credentials(&env, "db", None).await?;
    proxy.stop();
    let started = Instant::now();
    env.external_secrets().delete("db", &DeleteParams::default()).await?;
    eventually(Duration::from_secs(60), || async { Ok(env.external_secrets().get_opt("db").await?.is_none()) })
        .await
        .context("deletion completes without Vault")?;
    report(&format!(
        "generators: deletion with Vault unreachable completed in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    let warning = env.wait_warning("db").await?;
    assert!(warning.contains("without revoking"), "{warning}");
    // The lease was not revoked: it ends by itself (here: revoke it).
    let pg = Postgres::from_env()?;
    assert!(pg.can_log_in(&user, &password)?, "nothing revoked it");
    env.bao.write(&format!("sys/leases/revoke-prefix/database/creds/{}", env.prefix), json!({})).await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn pki_certificates_are_tls_secrets_reissued_by_their_lifetime() -> anyhow::Result<()> {
    let env = TestEnv::new("genpki").await?;
    env.database_role("1h", "2h").await?;
    let cn = format!("{}.example.com", env.prefix);
    env.apply(json!({
        "apiVersion": "generators.vaultsync.dev/v1alpha1", "kind": "VaultDynamicSecret",
        "metadata": {"name": "web"},
        "spec": {
            "method": "POST",
            "path": "pki/issue/example-dot-com",
            "parameters": {"common_name": cn, "ttl": "40s"},
            "resultType": "Certificate",
            "provider": env.generator_provider(),
            "lease": {"renewAtPercent": 50, "rotationGracePeriod": "0s"},
        },
    }))
    .await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "web"},
        "spec": {
            "refreshInterval": "1h",
            "target": {"name": "web-tls"},
            "dataFrom": [{"sourceRef": {"generatorRef": {"kind": "VaultDynamicSecret", "name": "web"}}}],
        },
    }))
    .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        if let Some(secret) = env.secrets().get_opt("web-tls").await? {
            break Some(secret);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let secret = first.context("Secret web-tls")?;
    let first_seen = Instant::now();
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = secret.data.unwrap_or_default();
    let text = |k: &str| String::from_utf8(data.get(k).map(|b| b.0.clone()).unwrap_or_default()).unwrap_or_default();
    let (crt, key, ca) = (text("tls.crt"), text("tls.key"), text("ca.crt"));
    assert!(key.contains("PRIVATE KEY"), "tls.key holds the key");
    for line in key.lines().filter(|l| l.len() > 40).take(2) {
        env.record_secret(line);
    }
    let dir = std::env::temp_dir().join(format!("genpki-{}", env.prefix));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("tls.crt"), &crt)?;
    // The first certificate of tls.crt is the leaf, for our name, and it
    // verifies against the PKI's CA, which is what ca.crt holds.
    let subject = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(dir.join("tls.crt"))
        .output()?;
    let subject = String::from_utf8_lossy(&subject.stdout).to_string();
    assert!(subject.contains(&cn), "leaf first: {subject}");
    let verify = std::process::Command::new("openssl")
        .args(["verify", "-CAfile", &std::env::var("VAULTSYNC_PKI_CA")?])
        .arg(dir.join("tls.crt"))
        .output()?;
    assert!(verify.status.success(), "openssl verify: {}", String::from_utf8_lossy(&verify.stdout));
    let root = std::fs::read_to_string(std::env::var("VAULTSYNC_PKI_CA")?)?;
    assert_eq!(ca.trim(), root.trim(), "ca.crt is the PKI's CA");
    let serial = active(&leases(&env, "web").await?).and_then(|l| l.serial.clone()).context("serial in status")?;

    // Re-issued at half of its 40 s lifetime, not at the 1h refresh.
    eventually(Duration::from_secs(45), || async {
        let now = leases(&env, "web").await?;
        Ok(active(&now).and_then(|l| l.serial.clone()).is_some_and(|s| s != serial))
    })
    .await
    .context("the certificate is re-issued")?;
    let reissued = env.secret_data("web-tls").await?;
    assert_ne!(reissued.get("tls.crt"), Some(&crt), "the Secret holds the new certificate");
    let reissued_after = first_seen.elapsed();
    report(&format!(
        "generators: certificate (40s, renewAtPercent 50) re-issued {:.1}s after the first",
        reissued_after.as_secs_f64()
    ));
    // 50% minus up to 5 points of jitter of 40 s is 18 s at the earliest.
    assert!(reissued_after >= Duration::from_secs(15), "re-issued too early: {reissued_after:?}");
    env.cleanup().await;
    Ok(())
}

/// ESO's own VaultDynamicSecret example, with only the apiVersions changed.
#[tokio::test]
async fn an_eso_generator_manifest_syncs_after_changing_only_api_versions() -> anyhow::Result<()> {
    let env = TestEnv::new("geneso").await?;
    env.database_role("1h", "2h").await?;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let eso = std::fs::read_to_string(root.join("e2e/eso/vault-dynamic-secret.yaml"))?;
    let converted = eso
        .replace("generators.external-secrets.io/v1alpha1", "generators.vaultsync.dev/v1alpha1")
        .replace("external-secrets.io/v1", "vaultsync.dev/v1alpha1")
        .replace("http://vault.default:8200", &env.bao.addr)
        .replace("database/creds/my-role", &format!("database/creds/{}", env.prefix));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&converted)?;
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        env.apply(doc).await?;
    }
    let (user, password) = credentials(&env, "pg-example", None).await?;
    assert!(Postgres::from_env()?.can_log_in(&user, &password)?, "the credential logs in");
    env.cleanup().await;
    Ok(())
}

/// ESO's own VaultDynamicSecret example in ESO's group, unchanged but for
/// the generator's class (`spec.controller: vaultsync`) and the test's
/// server and role, served with `--eso-api`: the credential logs in, its
/// lease is kept (ESO's status has no room: in the values Secret) and not
/// issued anew at a force-sync, and deleting the ExternalSecret revokes it.
/// The same ExternalSecret with an unclassed generator is ESO's.
#[tokio::test]
async fn an_eso_group_generator_of_our_class_is_served() -> anyhow::Result<()> {
    let env = TestEnv::new("geneso-group").await?;
    env.database_role("1h", "2h").await?;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let eso = std::fs::read_to_string(root.join("e2e/eso/vault-dynamic-secret.yaml"))?
        .replace("http://vault.default:8200", &env.bao.addr)
        .replace("database/creds/my-role", &format!("database/creds/{}", env.prefix));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&eso)?;
    let (mut generator, external_secret) = (docs[0].clone(), docs[1].clone());
    // Unclassed first: ESO's, untouched.
    env.apply(generator.clone()).await?;
    env.apply(external_secret.clone()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.eso_ready("ExternalSecret", "pg-example").await?, None, "an unclassed generator is ESO's");
    assert!(env.secrets().get_opt("pg-example").await?.is_none());

    generator["spec"]["controller"] = json!("vaultsync");
    env.apply(generator).await?;
    let (user, password) = credentials(&env, "pg-example", None).await?;
    let pg = Postgres::from_env()?;
    assert!(pg.can_log_in(&user, &password)?, "the credential logs in");
    let (reason, _) = env.wait_eso_ready("ExternalSecret", "pg-example", "True").await?;
    assert_eq!(reason, "SecretSynced");
    let es = env.eso_object("ExternalSecret", "pg-example").await?;
    let uid = es.metadata.uid.clone().unwrap_or_default();
    assert!(es.metadata.finalizers.unwrap_or_default().iter().any(|f| f == vaultsync_api::LEASE_FINALIZER));
    let values = env.secrets().get(&format!("vaultsync-leased-{uid}")).await?;
    let ledger: Vec<IssuedLease> = serde_json::from_str(
        values.metadata.annotations.unwrap_or_default().get("vaultsync.dev/leases").context("the ledger")?,
    )?;
    assert_eq!(ledger.iter().filter(|l| l.state == LeaseState::Active).count(), 1, "{ledger:?}");

    // Kept, not issued anew, at a force-sync.
    let force = json!({"metadata": {"annotations": {"force-sync": "1"}}});
    env.eso_api("ExternalSecret")
        .patch("pg-example", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&force))
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.secret_data("pg-example").await?.get("username"), Some(&user), "the credential is kept");

    // Deleted: the lease is revoked before the ExternalSecret goes.
    env.eso_api("ExternalSecret").delete("pg-example", &DeleteParams::default()).await?;
    eventually(Duration::from_secs(60), || async { Ok(env.eso_ready("ExternalSecret", "pg-example").await.is_err()) })
        .await
        .ok();
    eventually(Duration::from_secs(60), || async { Ok(!pg.can_log_in(&user, &password)?) })
        .await
        .map_err(|e| e.context("the credential still logs in after its ExternalSecret was deleted"))?;
    env.cleanup().await;
    Ok(())
}

/// A static role has no lease: its credential is read like a KV secret, and
/// nothing is recorded, renewed or revoked.
#[tokio::test]
async fn static_role_credentials_are_read_not_leased() -> anyhow::Result<()> {
    let env = TestEnv::new("genstatic").await?;
    env.database_role("1h", "2h").await?;
    env.apply(json!({
        "apiVersion": "generators.vaultsync.dev/v1alpha1", "kind": "VaultDynamicSecret",
        "metadata": {"name": "static"},
        "spec": {"path": "database/static-creds/static-app", "provider": env.generator_provider()},
    }))
    .await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "static"},
        "spec": {
            "refreshInterval": "1h",
            "dataFrom": [{"sourceRef": {"generatorRef": {"kind": "VaultDynamicSecret", "name": "static"}}}],
            "target": {"template": {"data": {"username": "{{ .username }}", "password": "{{ .password }}"}}},
        },
    }))
    .await?;
    let (user, password) = credentials(&env, "static", None).await?;
    assert_eq!(user, "static_app");
    assert!(Postgres::from_env()?.can_log_in(&user, &password)?, "the static role's password logs in");
    env.wait_ready("static", "True").await?;
    assert!(leases(&env, "static").await?.is_empty(), "no lease recorded for a static role");
    env.cleanup().await;
    Ok(())
}

/// A ClusterExternalSecret naming a generator: each namespace's
/// ExternalSecret uses that namespace's generator, gets credentials of its
/// own, and deleting the ClusterExternalSecret revokes them all.
#[tokio::test]
async fn a_cluster_external_secret_uses_each_namespace_generator() -> anyhow::Result<()> {
    let mut env = TestEnv::new("gences").await?;
    env.database_role("1h", "2h").await?;
    let second_ns = format!("{}-b", env.namespace);
    env.create_namespace(&second_ns).await?;
    let second = env.in_namespace(&second_ns);
    let token = env.secret_data("vault-token").await?.get("token").cloned().unwrap_or_default();
    second.create_secret("vault-token", &[("token", &token)]).await?;
    for at in [&env, &second] {
        at.apply(json!({
            "apiVersion": "generators.vaultsync.dev/v1alpha1", "kind": "VaultDynamicSecret",
            "metadata": {"name": "db"},
            "spec": {"path": format!("database/creds/{}", env.prefix), "provider": env.generator_provider()},
        }))
        .await?;
    }
    let ces = env.prefix.clone();
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ClusterExternalSecret",
        "metadata": {"name": ces},
        "spec": {
            "namespaces": [env.namespace, second_ns],
            "externalSecretName": "db",
            "externalSecretSpec": {
                "refreshInterval": "1h",
                "dataFrom": [{"sourceRef": {"generatorRef": {"kind": "VaultDynamicSecret", "name": "db"}}}],
            },
        },
    }))
    .await?;
    let first = credentials(&env, "db", None).await?;
    let other = credentials(&second, "db", None).await?;
    assert_ne!(first.0, other.0, "each namespace has a credential of its own");
    let pg = Postgres::from_env()?;
    assert!(pg.can_log_in(&first.0, &first.1)? && pg.can_log_in(&other.0, &other.1)?);

    let api = kube::Api::<vaultsync_api::ClusterExternalSecret>::all(env.client.clone());
    api.delete(&ces, &DeleteParams::default()).await?;
    eventually(Duration::from_secs(60), || async {
        Ok(!pg.can_log_in(&first.0, &first.1)? && !pg.can_log_in(&other.0, &other.1)?)
    })
    .await
    .context("deleting the ClusterExternalSecret revokes every namespace's lease")?;
    env.cleanup().await;
    Ok(())
}

/// A generator issues from a secrets engine: Vault's own mounts (a child
/// token from `auth/token/create`, `sys/...`) are refused by the API server.
#[tokio::test]
async fn generators_cannot_reach_vaults_own_mounts() -> anyhow::Result<()> {
    let env = TestEnv::new("gensys").await?;
    for path in ["/auth/token/create", "sys/leases/lookup", "Identity/oidc/token/x", "cubbyhole/x"] {
        let error = env
            .apply(json!({
                "apiVersion": "generators.vaultsync.dev/v1alpha1", "kind": "VaultDynamicSecret",
                "metadata": {"name": "sys"},
                "spec": {"path": path, "method": "POST", "provider": env.generator_provider()},
            }))
            .await
            .expect_err(path)
            .to_string();
        assert!(error.contains("names a system mount"), "{path}: {error}");
    }
    env.cleanup().await;
    Ok(())
}
