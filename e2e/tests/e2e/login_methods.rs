//! ESO's other Vault login methods against real OpenBao: userPass with a
//! password from a Secret, cert with a client certificate presented to the
//! TLS server, ldap as a user of a real directory (slapd), and
//! `auth.namespace` (a login in a parent namespace whose
//! token reads in a child). Each store syncs a value, and one with a wrong
//! credential is `Ready=False` with OpenBao's answer, its value nowhere in
//! the status.

use serde_json::{Value, json};
use vaultsync_e2e::{Bao, Ldap, TestEnv, certs, external_secret, report, vault_store};

/// An ExternalSecret `name` of store `store`, reading `key`'s `v`.
fn reading(name: &str, store: &str, key: &str) -> Value {
    external_secret(name, store, json!({"data": [{"secretKey": "v", "remoteRef": {"key": key, "property": "v"}}]}))
}

#[tokio::test]
async fn a_userpass_store_logs_in_with_the_password_of_its_secret() -> anyhow::Result<()> {
    let env = TestEnv::new("userpass").await?;
    let mount = format!("userpass-{}", env.prefix);
    env.bao.write(&format!("sys/auth/{mount}"), json!({"type": "userpass"})).await?;
    env.write_read_policy().await?;
    let password = env.secret_value("userpass-password");
    env.bao
        .write(&format!("auth/{mount}/users/app"), json!({"password": password, "token_policies": [env.prefix]}))
        .await?;
    let value = env.secret_value("userpass");
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": value})).await?;
    env.create_secret("app-password", &[("password", &password)]).await?;
    env.create_secret("wrong-password", &[("password", "not-the-password")]).await?;
    let vault = |secret: &str| {
        json!({"server": env.bao.addr, "path": "secret", "allowInsecureHttp": true,
            "auth": {"userPass": {"path": mount, "username": "app", "secretRef": {"name": secret}}}})
    };
    env.apply(vault_store("userpass", vault("app-password"))).await?;
    env.apply(vault_store("wrong", vault("wrong-password"))).await?;
    env.apply(reading("app", "userpass", &path)).await?;
    assert_eq!(env.wait_secret("app").await?.get("v"), Some(&value));
    env.wait_store_ready("userpass", "True").await?;
    let (reason, message) = env.wait_store_ready("wrong", "False").await?;
    assert!(message.contains("userPass") && message.contains("400"), "{reason}: {message}");
    assert!(!message.contains("not-the-password"), "the password is not in the status: {message}");
    report("login: userPass store synced; a wrong password is Ready=False with OpenBao's answer");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_cert_store_presents_its_client_certificate() -> anyhow::Result<()> {
    let env = TestEnv::new("cert-auth").await?;
    let tls = Bao::tls_from_env()?;
    let mount = format!("cert-{}", env.prefix);
    tls.write(&format!("sys/auth/{mount}"), json!({"type": "cert"})).await?;
    tls.write(
        &format!("sys/policies/acl/{}", env.prefix),
        json!({"policy": format!("path \"secret/data/{}/*\" {{ capabilities = [\"read\"] }}", env.prefix)}),
    )
    .await?;
    let dir = std::env::temp_dir().join(format!("cert-auth-{}", env.prefix));
    let (cert, key) = certs::self_signed(&dir, &format!("{}-app", env.prefix))?;
    let (other_cert, other_key) = certs::self_signed(&dir, &format!("{}-stranger", env.prefix))?;
    let _ = std::fs::remove_dir_all(&dir);
    env.record_secret(&key);
    env.record_secret(&other_key);
    tls.write(&format!("auth/{mount}/certs/app"), json!({"certificate": cert, "token_policies": [env.prefix]})).await?;
    let value = env.secret_value("cert");
    let path = format!("{}/app", env.prefix);
    tls.kv2_put(&path, json!({"v": value})).await?;
    // A kubernetes.io/tls Secret: its keys are the defaults.
    for (name, cert, key) in [("client-tls", &cert, &key), ("stranger-tls", &other_cert, &other_key)] {
        env.apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "type": "kubernetes.io/tls", "stringData": {"tls.crt": cert, "tls.key": key}}))
            .await?;
    }
    let bundle = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, Bao::tls_ca_pem()?);
    let vault = |secret: &str| {
        json!({"server": tls.addr, "path": "secret", "caBundle": bundle,
            "auth": {"cert": {"path": mount, "vaultRole": "app",
                "clientCert": {"name": secret}, "secretRef": {"name": secret}}}})
    };
    env.apply(vault_store("cert", vault("client-tls"))).await?;
    env.apply(vault_store("stranger", vault("stranger-tls"))).await?;
    env.apply(reading("app", "cert", &path)).await?;
    assert_eq!(env.wait_secret("app").await?.get("v"), Some(&value));
    env.wait_store_ready("cert", "True").await?;
    let (reason, message) = env.wait_store_ready("stranger", "False").await?;
    assert!(message.contains("cert") && message.contains("auth/"), "{reason}: {message}");
    report(
        "login: cert store presented its client certificate to the TLS server and synced; an unknown certificate is refused",
    );
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn auth_namespace_logs_in_where_the_method_is_and_reads_in_the_provider_namespace() -> anyhow::Result<()> {
    let env = TestEnv::new("auth-ns").await?;
    let parent = env.prefix.clone();
    let child = format!("{parent}/app");
    env.bao.write(&format!("sys/namespaces/{parent}"), json!({})).await?;
    env.bao.write_in_namespace(&parent, "sys/namespaces/app", json!({})).await?;
    env.bao.write_in_namespace(&child, "sys/mounts/kv", json!({"type": "kv", "options": {"version": "2"}})).await?;
    let value = env.secret_value("auth-ns");
    env.bao.write_in_namespace(&child, "kv/data/config", json!({"data": {"v": value}})).await?;
    // The method and the policy live in the parent; the policy names the
    // child's paths from there.
    env.bao.write_in_namespace(&parent, "sys/auth/userpass", json!({"type": "userpass"})).await?;
    env.bao
        .write_in_namespace(
            &parent,
            "sys/policies/acl/reader",
            json!({"policy": "path \"app/kv/*\" { capabilities = [\"read\"] }"}),
        )
        .await?;
    let password = env.secret_value("auth-ns-password");
    env.bao
        .write_in_namespace(
            &parent,
            "auth/userpass/users/app",
            json!({"password": password, "token_policies": ["reader"]}),
        )
        .await?;
    env.create_secret("app-password", &[("password", &password)]).await?;
    let vault = |auth_namespace: Option<&str>| {
        let mut auth =
            json!({"userPass": {"path": "userpass", "username": "app", "secretRef": {"name": "app-password"}}});
        if let Some(namespace) = auth_namespace {
            auth["namespace"] = json!(namespace);
        }
        json!({"server": env.bao.addr, "path": "kv", "namespace": child, "allowInsecureHttp": true, "auth": auth})
    };
    env.apply(vault_store("parent-login", vault(Some(&parent)))).await?;
    // Without auth.namespace the login goes to the child, which has no
    // userpass method.
    env.apply(vault_store("child-login", vault(None))).await?;
    env.apply(reading("app", "parent-login", "config")).await?;
    assert_eq!(env.wait_secret("app").await?.get("v"), Some(&value));
    let (reason, message) = env.wait_store_ready("child-login", "False").await?;
    assert!(message.contains("userPass"), "{reason}: {message}");
    report("login: auth.namespace logged in in the parent namespace and read in the child; without it the login fails");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn an_ldap_store_logs_in_as_a_directory_user() -> anyhow::Result<()> {
    let env = TestEnv::new("ldap-auth").await?;
    // OpenBao 2.7 has no built-in LDAP method: the directory's OpenBao is
    // the environment's LDAP one (see e2e/lib/ldap.sh).
    let ldap = Ldap::from_env()?;
    let (user, password) = env.ldap_user("app")?;
    let group = env.ldap_group_with_member("readers", &user)?;
    ldap.bao
        .write(
            &format!("sys/policies/acl/{}", env.prefix),
            json!({"policy": format!("path \"secret/data/{}/*\" {{ capabilities = [\"read\"] }}", env.prefix)}),
        )
        .await?;
    env.ldap_group_policies(&group, &[&env.prefix]).await?;
    let value = env.secret_value("ldap");
    let path = format!("{}/app", env.prefix);
    ldap.bao.kv2_put(&path, json!({"v": value})).await?;
    env.create_secret("directory-password", &[("password", &password)]).await?;
    env.create_secret("wrong-password", &[("password", "not-the-password")]).await?;
    let vault = |secret: &str| {
        json!({"server": ldap.bao.addr, "path": "secret", "allowInsecureHttp": true,
            "auth": {"ldap": {"username": user, "secretRef": {"name": secret}}}})
    };
    env.apply(vault_store("ldap", vault("directory-password"))).await?;
    env.apply(vault_store("wrong", vault("wrong-password"))).await?;
    env.apply(reading("app", "ldap", &path)).await?;
    assert_eq!(env.wait_secret("app").await?.get("v"), Some(&value));
    env.wait_store_ready("ldap", "True").await?;
    let (reason, message) = env.wait_store_ready("wrong", "False").await?;
    assert!(message.contains("ldap login at auth/ldap"), "{reason}: {message}");
    assert!(!message.contains("not-the-password"), "the password is not in the status: {message}");
    ldap.delete(&ldap.group_dn(&group))?;
    ldap.delete(&ldap.user_dn(&user))?;
    report(
        "login: ldap store logged in as a directory user (through its group's policy) and synced; a wrong password is refused",
    );
    env.cleanup().await;
    Ok(())
}
