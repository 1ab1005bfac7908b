//! Every manifest under examples/ is applied here and its Secret checked.

use base64::Engine;
use serde_json::{Value, json};
use vaultsync_e2e::TestEnv;

#[tokio::test]
async fn quickstart_example_syncs() -> anyhow::Result<()> {
    let env = TestEnv::new("quickstart").await?;
    let password = env.secret_value("quickstart");
    // The quickstart reads secret/quickstart/db, which `make demo` seeds;
    // this test's copy lives under its own prefix.
    let key = format!("{}/db", env.prefix);
    env.bao.kv2_put(&key, json!({"username": "app", "password": password})).await?;
    env.create_secret("vault-token", &[("token", "root")]).await?;
    let addr = env.bao.addr.clone();
    env.apply_file("examples/quickstart/secretstore.yaml", |doc| {
        doc["spec"]["provider"]["vault"]["server"] = json!(addr);
    })
    .await?;
    env.apply_file("examples/quickstart/externalsecret.yaml", |doc: &mut Value| {
        for item in doc["spec"]["data"].as_array_mut().into_iter().flatten() {
            item["remoteRef"]["key"] = json!(key);
        }
    })
    .await?;
    let data = env.wait_secret("db-credentials").await?;
    assert_eq!(data.get("password"), Some(&password));
    assert_eq!(data.get("username").map(String::as_str), Some("app"));
    env.cleanup().await;
    Ok(())
}

/// Points an example at this test's OpenBao and paths: servers, remote keys
/// (prefixed) and cluster-scoped names (suffixed).
fn localize(doc: &mut Value, addr: &str, prefix: &str, namespace: &str) {
    // Only pointer_mut: indexing a Value mutably would insert the keys it
    // looks for, and the API server rejects unknown fields.
    if let Some(server) = doc.pointer_mut("/spec/provider/vault/server") {
        *server = json!(addr);
    }
    if let Some(ns) = doc.pointer_mut("/spec/provider/vault/auth/tokenSecretRef/namespace") {
        *ns = json!(namespace);
    }
    let suffixed = |name: &mut Value| *name = json!(format!("{}-{prefix}", name.as_str().unwrap_or_default()));
    if doc["kind"] == "ClusterSecretStore" {
        doc.pointer_mut("/metadata/name").map(suffixed);
    }
    if doc.pointer("/spec/secretStoreRef/kind") == Some(&json!("ClusterSecretStore")) {
        doc.pointer_mut("/spec/secretStoreRef/name").map(suffixed);
    }
    let prefix_key = |key: &mut Value| *key = json!(format!("{prefix}/{}", key.as_str().unwrap_or_default()));
    for item in doc.pointer_mut("/spec/data").and_then(Value::as_array_mut).into_iter().flatten() {
        item.pointer_mut("/remoteRef/key").map(prefix_key);
    }
    for item in doc.pointer_mut("/spec/dataFrom").and_then(Value::as_array_mut).into_iter().flatten() {
        item.pointer_mut("/extract/key").map(prefix_key);
    }
}

async fn quickstart_store(env: &TestEnv) -> anyhow::Result<()> {
    env.create_secret("vault-token", &[("token", "root")]).await?;
    let (addr, prefix, ns) = (env.bao.addr.clone(), env.prefix.clone(), env.namespace.clone());
    env.apply_file("examples/quickstart/secretstore.yaml", |doc| localize(doc, &addr, &prefix, &ns)).await
}

#[tokio::test]
async fn tls_docker_registry_and_extract_examples() -> anyhow::Result<()> {
    let env = TestEnv::new("examples-shapes").await?;
    quickstart_store(&env).await?;
    let (cert, key) = (env.secret_value("cert"), env.secret_value("key"));
    env.bao
        .kv2_put(&format!("{}/certificates/web", env.prefix), json!({"certificate": cert, "private_key": key}))
        .await?;
    // A quote and a backslash: the template must still produce valid JSON.
    let password = format!("{}\"\\", env.secret_value("registry"));
    env.bao
        .kv2_put(
            &format!("{}/registry/pull", env.prefix),
            json!({"registry": "registry.example.com", "username": "puller", "password": password}),
        )
        .await?;
    let url = env.secret_value("url");
    env.bao.kv2_put(&format!("{}/apps/config", env.prefix), json!({"database-url": url, "log-level": "debug"})).await?;
    let (addr, prefix, ns) = (env.bao.addr.clone(), env.prefix.clone(), env.namespace.clone());
    for file in [
        "examples/tls-certificate/tls-certificate.yaml",
        "examples/docker-registry/docker-registry.yaml",
        "examples/extract-whole-path/extract-whole-path.yaml",
    ] {
        env.apply_file(file, |doc| localize(doc, &addr, &prefix, &ns)).await?;
    }

    let tls = env.wait_secret("web-tls").await?;
    assert_eq!((tls.get("tls.crt"), tls.get("tls.key")), (Some(&cert), Some(&key)));
    let secret = env.secrets().get("web-tls").await?;
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(
        secret.metadata.labels.unwrap_or_default().get("app.kubernetes.io/part-of").map(String::as_str),
        Some("web")
    );

    let registry = env.wait_secret("registry-pull").await?;
    assert_eq!(registry.keys().collect::<Vec<_>>(), [".dockerconfigjson"], "Replace keeps only templated keys");
    let config: Value = serde_json::from_str(&registry[".dockerconfigjson"])?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("puller:{password}"));
    assert_eq!(
        config,
        json!({"auths": {"registry.example.com": {"username": "puller", "password": password, "auth": auth}}})
    );
    assert_eq!(env.secrets().get("registry-pull").await?.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));

    let config = env.wait_secret("app-config").await?;
    assert_eq!(config.get("database_url"), Some(&url));
    assert_eq!(config.get("log_level").map(String::as_str), Some("debug"));
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn database_credentials_example_with_kubernetes_auth() -> anyhow::Result<()> {
    let env = TestEnv::new("examples-db").await?;
    let (user, password) = (env.secret_value("dbuser"), env.secret_value("dbpass"));
    env.bao.kv2_put(&format!("{}/database/app", env.prefix), json!({"username": user, "password": password})).await?;
    let policy = format!("path \"secret/data/{}/database/*\" {{ capabilities = [\"read\"] }}", env.prefix);
    env.bao.write("sys/policies/acl/db-app", json!({"policy": policy})).await?;
    env.bao
        .write(
            "auth/kubernetes/role/db-app",
            json!({"bound_service_account_names": ["db-app"], "bound_service_account_namespaces": [env.namespace],
                   "audience": "vault", "token_policies": ["db-app"], "token_ttl": "10m"}),
        )
        .await?;
    let (addr, prefix, ns) = (env.bao.addr.clone(), env.prefix.clone(), env.namespace.clone());
    env.apply_file("examples/database-credentials/database-credentials.yaml", |doc| localize(doc, &addr, &prefix, &ns))
        .await?;
    let data = env.wait_secret("db-credentials").await?;
    assert_eq!((data.get("DB_USER"), data.get("DB_PASSWORD")), (Some(&user), Some(&password)));
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn cluster_store_example_serves_labelled_namespaces() -> anyhow::Result<()> {
    let mut env = TestEnv::new("examples-css").await?;
    let api_key = env.secret_value("apikey");
    env.bao.kv2_put(&format!("{}/shared/api", env.prefix), json!({"key": api_key})).await?;
    env.create_secret("shared-vault-token", &[("token", "root")]).await?;
    let shared = format!("{}-shared", env.namespace);
    let unlabelled = format!("{}-plain", env.namespace);
    env.create_labelled_namespace(&shared, json!({"vaultsync.dev/shared-secrets": "true"})).await?;
    env.create_namespace(&unlabelled).await?;
    let (addr, prefix, ns) = (env.bao.addr.clone(), env.prefix.clone(), env.namespace.clone());
    for target in [&shared, &unlabelled] {
        let target = target.clone();
        env.apply_file("examples/cluster-store/cluster-store.yaml", |doc| {
            localize(doc, &addr, &prefix, &ns);
            if doc["kind"] == "ExternalSecret" {
                doc["metadata"]["namespace"] = json!(target);
            }
        })
        .await?;
    }
    assert_eq!(env.in_namespace(&shared).wait_secret("shared-api-key").await?.get("API_KEY"), Some(&api_key));
    let (_, message) = env.in_namespace(&unlabelled).wait_ready("shared-api-key", "False").await?;
    assert!(message.contains("does not allow namespace"), "{message}");
    env.cluster_stores().delete(&format!("shared-openbao-{}", env.prefix), &Default::default()).await?;
    env.cleanup().await;
    Ok(())
}

/// Test certificates from crates/template/testdata (made with openssl).
mod pki {
    pub const LEAF: &str = include_str!("../../../crates/template/testdata/leaf.crt");
    pub const INTERMEDIATE: &str = include_str!("../../../crates/template/testdata/int.crt");
    pub const ROOT: &str = include_str!("../../../crates/template/testdata/root.crt");
    pub const KEY: &str = include_str!("../../../crates/template/testdata/leaf.key");
    /// PBES2/AES, password "s3cret".
    pub const ARCHIVE: &[u8] = include_bytes!("../../../crates/template/testdata/aes.p12");
    /// The EC key of ec-pkcs8.key as a JWK, and openssl's public key PEM of it.
    pub const EC_JWK: &str = include_str!("../../../crates/template/testdata/ec-p-256.jwk.json");
    pub const EC_KEY: &str = include_str!("../../../crates/template/testdata/ec-pkcs8.key");
    pub const EC_PUBLIC: &str = include_str!("../../../crates/template/testdata/ec.pub.pem");
}

/// The keystore.p12 of a Secret, opened with `password`: (key DER, certificate DERs).
fn open_keystore(archive: &[u8], password: &str) -> anyhow::Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(archive, password)?;
    let key = archive.keys.first().ok_or_else(|| anyhow::anyhow!("no key in keystore"))?.key.as_der().to_vec();
    Ok((key, archive.certs.iter().map(|bag| bag.cert.as_der().to_vec()).collect()))
}

fn der(pem_text: &str) -> Vec<u8> {
    let body: String = pem_text.lines().filter(|line| !line.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).expect("test PEM")
}

#[tokio::test]
async fn tls_keystore_example_splits_a_bundle_and_builds_a_stable_keystore() -> anyhow::Result<()> {
    use pki::*;
    let env = TestEnv::new("examples-keystore").await?;
    quickstart_store(&env).await?;
    env.record_secret(KEY.lines().nth(1).unwrap_or_default());
    env.record_secret(EC_KEY.lines().nth(1).unwrap_or_default());
    let password = env.secret_value("keystore");
    // Out of order on purpose: the template puts the chain right.
    let bundle = format!("{ROOT}{KEY}{INTERMEDIATE}{LEAF}");
    let path = format!("{}/certificates/api", env.prefix);
    env.bao.kv2_put(&path, json!({"bundle": bundle, "keystore-password": password})).await?;
    let (addr, prefix, ns) = (env.bao.addr.clone(), env.prefix.clone(), env.namespace.clone());
    env.apply_file("examples/tls-keystore/tls-keystore.yaml", |doc| {
        localize(doc, &addr, &prefix, &ns);
        // Refresh every second, so that the keystore's stability is tested.
        doc["spec"]["refreshInterval"] = json!("1s");
    })
    .await?;

    let data = env.wait_secret("api-tls").await?;
    assert_eq!(data["tls.crt"], format!("{LEAF}{INTERMEDIATE}"));
    assert_eq!(data["tls.key"], KEY);
    assert_eq!(data["ca.crt"], ROOT);
    let secret = env.secrets().get("api-tls").await?;
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let keystore = secret.data.as_ref().and_then(|d| d.get("keystore.p12")).map(|b| b.0.clone()).unwrap_or_default();
    let (key, certs) = open_keystore(&keystore, &password)?;
    assert_eq!(key, der(KEY));
    assert_eq!(certs, [der(LEAF), der(INTERMEDIATE), der(ROOT)]);

    // Each render salts the keystore afresh, yet refreshes with unchanged
    // inputs leave the Secret alone.
    let before = secret.metadata.resource_version.clone();
    let refreshed = |es: &vaultsync_api::ExternalSecret| es.status.as_ref().and_then(|s| s.refresh_time.clone());
    let first_refresh = refreshed(&env.external_secrets().get("api-tls").await?);
    vaultsync_e2e::eventually(std::time::Duration::from_secs(30), || async {
        Ok(refreshed(&env.external_secrets().get("api-tls").await?) != first_refresh)
    })
    .await?;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(env.secrets().get("api-tls").await?.metadata.resource_version, before, "keystore rewritten");

    // A new password is a new input: the keystore is rebuilt with it.
    let new_password = env.secret_value("keystore-rotated");
    env.bao.kv2_put(&path, json!({"bundle": bundle, "keystore-password": new_password})).await?;
    vaultsync_e2e::eventually(std::time::Duration::from_secs(30), || async {
        let data = env.secrets().get("api-tls").await?.data.unwrap_or_default();
        let keystore = data.get("keystore.p12").map(|b| b.0.clone()).unwrap_or_default();
        Ok(open_keystore(&keystore, &new_password).is_ok())
    })
    .await?;

    // An archive kept in Vault as base64: read back as PEM, and passed
    // through byte for byte.
    let archive = base64::engine::general_purpose::STANDARD.encode(ARCHIVE);
    let legacy = format!("{}/certificates/legacy", env.prefix);
    env.bao.kv2_put(&legacy, json!({"keystore": archive, "password": "s3cret"})).await?;
    let from_archive = |password_template: &str| {
        let spec = json!({
            "data": [
                {"secretKey": "keystore", "remoteRef": {"key": legacy, "property": "keystore", "decodingStrategy": "Base64"}},
                {"secretKey": "password", "remoteRef": {"key": legacy, "property": "password"}},
            ],
            "target": {"template": {"type": "kubernetes.io/tls", "data": {
                "tls.crt": format!("{{{{ .keystore | pkcs12certPass {password_template} }}}}"),
                "tls.key": format!("{{{{ .keystore | pkcs12keyPass {password_template} }}}}"),
                "copy.p12": "{{ .keystore }}",
            }}},
        });
        vaultsync_e2e::external_secret("from-archive", "openbao", spec)
    };
    env.apply(from_archive(".password")).await?;
    let data = env.wait_secret("from-archive").await?;
    assert_eq!(data["tls.crt"], format!("{LEAF}{INTERMEDIATE}{ROOT}"));
    assert_eq!(data["tls.key"], KEY);
    let secret = env.secrets().get("from-archive").await?;
    let copy = secret.data.as_ref().and_then(|d| d.get("copy.p12")).map(|b| b.0.as_slice());
    assert_eq!(copy, Some(ARCHIVE), "binary data must pass through a template unchanged");

    // A JSON Web Key kept in Vault, as PEM keys.
    let jwk_path = format!("{}/keys/signing", env.prefix);
    env.bao.kv2_put(&jwk_path, json!({"jwk": EC_JWK})).await?;
    let spec = json!({
        "data": [{"secretKey": "jwk", "remoteRef": {"key": jwk_path, "property": "jwk"}}],
        "target": {"template": {"data": {
            "public.pem": "{{ .jwk | jwkPublicKeyPem }}",
            "private.pem": "{{ .jwk | jwkPrivateKeyPem }}",
        }}},
    });
    env.apply(vaultsync_e2e::external_secret("from-jwk", "openbao", spec)).await?;
    let data = env.wait_secret("from-jwk").await?;
    assert_eq!((data["public.pem"].as_str(), data["private.pem"].as_str()), (EC_PUBLIC, EC_KEY));

    // A wrong password: Ready=False naming the template, Secret kept.
    env.apply(from_archive("\"not-the-password\"")).await?;
    let (_, message) = env.wait_ready("from-archive", "False").await?;
    assert!(message.contains("data[tls.") && message.contains("wrong password"), "{message}");
    let after = env.secrets().get("from-archive").await?;
    assert_eq!(after.metadata.resource_version, secret.metadata.resource_version);
    env.cleanup().await;
    Ok(())
}

/// Dynamic database credentials with Kubernetes auth: issued, logged in
/// with, replaced before the role's max TTL (here seconds, not hours), and
/// each replacement rolls the Deployment once.
#[tokio::test]
async fn dynamic_database_credentials_example_rotates_and_restarts() -> anyhow::Result<()> {
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use kube::api::ListParams;
    use std::time::Duration;

    let env = TestEnv::new("examples-dyndb").await?;
    let pg = vaultsync_e2e::Postgres::from_env()?;
    env.bao
        .write(
            &format!("database/roles/{}", env.prefix),
            json!({
                "db_name": "postgres", "default_ttl": "10s", "max_ttl": "20s",
                "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"],
            }),
        )
        .await?;
    let policy = format!(
        "path \"database/creds/{}\" {{ capabilities = [\"read\"] }}\n\
         path \"sys/leases/renew\" {{ capabilities = [\"update\"] }}\n\
         path \"sys/leases/revoke\" {{ capabilities = [\"update\"] }}",
        env.prefix
    );
    env.bao.write("sys/policies/acl/db-dynamic", json!({"policy": policy})).await?;
    env.bao
        .write(
            "auth/kubernetes/role/db-dynamic",
            json!({"bound_service_account_names": ["app"], "bound_service_account_namespaces": [env.namespace],
                   "audience": "vault", "token_policies": ["db-dynamic"], "token_period": "1h"}),
        )
        .await?;
    let (addr, path) = (env.bao.addr.clone(), format!("database/creds/{}", env.prefix));
    env.apply_file("examples/dynamic-database-credentials/dynamic-database-credentials.yaml", |doc| {
        if let Some(server) = doc.pointer_mut("/spec/provider/server") {
            *server = json!(addr);
        }
        if doc["kind"] == "VaultDynamicSecret" {
            doc["spec"]["path"] = json!(path);
        }
    })
    .await?;
    let data = env.wait_secret("db-credentials").await?;
    let (user, password) = (data["DB_USER"].clone(), data["DB_PASSWORD"].clone());
    env.record_secret(&password);
    assert!(pg.can_log_in(&user, &password)?, "the example's credential logs in");
    let replica_sets = || async {
        let api = kube::Api::<ReplicaSet>::namespaced(env.client.clone(), &env.namespace);
        anyhow::Ok(api.list(&ListParams::default().labels("app=app")).await?.items.len())
    };
    vaultsync_e2e::eventually(Duration::from_secs(30), || async { Ok(replica_sets().await? == 1) }).await?;
    // Replaced before the 20 s max TTL: new data, one restart.
    vaultsync_e2e::eventually(Duration::from_secs(40), || async {
        Ok(env.secret_data("db-credentials").await?.get("DB_USER") != Some(&user))
    })
    .await?;
    let rotated = env.secret_data("db-credentials").await?;
    env.record_secret(&rotated["DB_PASSWORD"]);
    assert!(pg.can_log_in(&rotated["DB_USER"], &rotated["DB_PASSWORD"])?, "the replacement logs in");
    vaultsync_e2e::eventually(Duration::from_secs(30), || async { Ok(replica_sets().await? == 2) })
        .await
        .map_err(|e| e.context("one new ReplicaSet for the replaced credential"))?;
    env.cleanup().await;
    Ok(())
}

/// A certificate from the PKI engine as a kubernetes.io/tls Secret.
#[tokio::test]
async fn pki_certificate_example_writes_a_tls_secret() -> anyhow::Result<()> {
    let env = TestEnv::new("examples-pki").await?;
    env.bao
        .write(
            &format!("sys/policies/acl/{}", env.prefix),
            json!({"policy": "path \"pki/issue/example-dot-com\" { capabilities = [\"update\"] }"}),
        )
        .await?;
    let token = env.bao.write("auth/token/create", json!({"policies": [env.prefix], "period": "1h"})).await?;
    env.create_secret("vault-token", &[("token", token["auth"]["client_token"].as_str().unwrap_or_default())]).await?;
    let addr = env.bao.addr.clone();
    env.apply_file("examples/pki-certificate/pki-certificate.yaml", |doc| {
        if let Some(server) = doc.pointer_mut("/spec/provider/server") {
            *server = json!(addr);
        }
    })
    .await?;
    let data = env.wait_secret("web-tls").await?;
    let secret = env.secrets().get("web-tls").await?;
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    assert!(data["tls.crt"].starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(data["tls.key"].contains("PRIVATE KEY"));
    for line in data["tls.key"].lines().filter(|l| l.len() > 40).take(2) {
        env.record_secret(line);
    }
    let ca = std::fs::read_to_string(std::env::var("VAULTSYNC_PKI_CA")?)?;
    assert_eq!(data["ca.crt"].trim(), ca.trim());
    env.cleanup().await;
    Ok(())
}
