//! The environment's OpenLDAP directory behind OpenBao's LDAP auth method,
//! as ESO-style stores with `auth.ldap` would use it: a user of the
//! directory logs in with its password (mapped to a policy directly or
//! through a group), the token reads what the policy allows, and a wrong
//! password or an unknown user is refused.

use serde_json::json;
use vaultsync_e2e::{Bao, Ldap, TestEnv};

#[tokio::test]
async fn ldap_users_log_in_to_openbao_with_their_directory_password() -> anyhow::Result<()> {
    let env = TestEnv::new("ldapenv").await?;
    let ldap = Ldap::from_env()?;
    let value = env.secret_value("ldap-read");
    ldap.bao.kv2_put(&format!("{}/cred", env.prefix), json!({"value": value})).await?;
    ldap.bao.write(&format!("sys/policies/acl/{}", env.prefix), json!({"policy": env.read_policy()})).await?;

    // A user mapped to the policy directly.
    let (user, password) = env.ldap_user("alice")?;
    env.ldap_user_policies(&user, &[&env.prefix]).await?;
    let login = ldap.login(&user, &password).await?.map_err(|(s, e)| anyhow::anyhow!("login refused: {s}: {e}"))?;
    let policies = &login["auth"]["policies"];
    assert!(policies.as_array().is_some_and(|p| p.contains(&json!(env.prefix))), "{policies}");
    assert_eq!(login["auth"]["metadata"]["username"], json!(user));
    let token = login["auth"]["client_token"].as_str().unwrap_or_default();
    let read = Bao::at(&ldap.bao.addr, token).read(&format!("secret/data/{}/cred", env.prefix)).await?;
    assert_eq!(read["data"]["data"]["value"], json!(value), "the LDAP login's token reads the path");
    // ... and only what the policy allows.
    assert!(Bao::at(&ldap.bao.addr, token).read("secret/data/env-check").await.is_err());

    // A wrong password, an unknown user: refused.
    match ldap.login(&user, "not-the-password").await? {
        Err((status, _)) => assert!(status == 400 || status == 403, "wrong password: HTTP {status}"),
        Ok(_) => panic!("a wrong password logged in"),
    }
    match ldap.login(&format!("{}-nobody", env.prefix), &password).await? {
        Err((status, _)) => assert!(status == 400 || status == 403, "unknown user: HTTP {status}"),
        Ok(_) => panic!("an unknown user logged in"),
    }

    // A user with no mapping of its own, through its group.
    let (bob, bob_password) = env.ldap_user("bob")?;
    let group = env.ldap_group_with_member("readers", &bob)?;
    env.ldap_group_with_member("readers", &user)?;
    env.ldap_group_policies(&group, &[&env.prefix]).await?;
    let token = ldap.login_token(&bob, &bob_password).await?;
    let read = Bao::at(&ldap.bao.addr, &token).read(&format!("secret/data/{}/cred", env.prefix)).await?;
    assert_eq!(read["data"]["data"]["value"], json!(value), "the group's policy applies");

    for path in [format!("auth/ldap/users/{user}"), format!("auth/ldap/groups/{group}")] {
        ldap.bao.delete(&path).await?;
    }
    for dn in [ldap.group_dn(&group), ldap.user_dn(&user), ldap.user_dn(&bob)] {
        ldap.delete(&dn)?;
    }
    // Removed from the directory: the password no longer logs in.
    assert!(ldap.login(&bob, &bob_password).await?.is_err(), "a deleted user logged in");
    env.cleanup().await;
    Ok(())
}
