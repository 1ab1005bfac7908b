//! The chart folds vaultsync rights into Kubernetes' built-in roles: a
//! person bound to `edit` in a namespace may manage its ExternalSecrets and
//! SecretStores, one bound to `view` may read them, and neither may touch
//! ClusterSecretStores.

use std::time::Duration;

use serde_json::json;
use vaultsync_e2e::{TestEnv, eventually};

/// `kubectl auth can-i VERB RESOURCE.vaultsync.dev --as USER -n NS`, run for
/// real (it asks the API server with a SubjectAccessReview).
async fn can_i(env: &TestEnv, user: &str, verb: &str, resource: &str) -> anyhow::Result<bool> {
    let output = tokio::process::Command::new("kubectl")
        .args(["auth", "can-i", verb, &format!("{resource}.vaultsync.dev"), "--as", user, "-n", &env.namespace])
        .output()
        .await?;
    match String::from_utf8_lossy(&output.stdout).trim() {
        "yes" => Ok(true),
        "no" => Ok(false),
        other => anyhow::bail!("kubectl auth can-i: {other} {}", String::from_utf8_lossy(&output.stderr)),
    }
}

#[tokio::test]
async fn edit_and_view_include_the_namespaced_kinds() -> anyhow::Result<()> {
    let env = TestEnv::new("userroles").await?;
    let (editor, viewer) = (format!("{}-editor", env.prefix), format!("{}-viewer", env.prefix));
    for (user, role) in [(&editor, "edit"), (&viewer, "view")] {
        env.apply(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }))
        .await?;
    }
    // The controller manager aggregates the chart's roles into the built-in ones.
    eventually(Duration::from_secs(30), || async { can_i(&env, &editor, "create", "externalsecrets").await }).await?;
    for resource in ["externalsecrets", "secretstores"] {
        for verb in ["create", "get", "list", "update", "patch", "delete"] {
            assert!(can_i(&env, &editor, verb, resource).await?, "edit: {verb} {resource}");
        }
        for verb in ["get", "list", "watch"] {
            assert!(can_i(&env, &viewer, verb, resource).await?, "view: {verb} {resource}");
        }
        for verb in ["create", "update", "delete"] {
            assert!(!can_i(&env, &viewer, verb, resource).await?, "view must not {verb} {resource}");
        }
    }
    for user in [&editor, &viewer] {
        for resource in ["clustersecretstores", "clusterexternalsecrets"] {
            assert!(!can_i(&env, user, "create", resource).await?, "{user} must not create {resource}");
        }
    }
    env.cleanup().await;
    Ok(())
}
