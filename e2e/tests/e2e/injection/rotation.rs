//! The injection webhook's certificate: rotated while the API server keeps
//! calling it, by one replica or by two that share it through a Secret.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::json;
use vaultsync_e2e::{TestEnv, Webhook, eventually, injected, pod, report};

#[tokio::test]
async fn the_webhook_rotates_its_certificate_and_keeps_being_called() -> anyhow::Result<()> {
    for replicas in [1, 2] {
        rotation(replicas).await?;
    }
    Ok(())
}

/// One webhook process, or two sharing their certificate through a Secret.
async fn rotation(replicas: usize) -> anyhow::Result<()> {
    let env = TestEnv::new("injectrot").await?;
    env.create_app_service_account().await?;
    let webhook = Webhook::start(&env, "6s", replicas).await?;
    let pods = Api::<Pod>::namespaced(env.client.clone(), &env.namespace);
    let annotated = pod(
        "rot",
        json!({"vaultsync.dev/inject": "true", "vaultsync.dev/role": "r", "vaultsync.dev/secret-db": "secret/data/x"}),
        json!({"name": "a", "image": "registry.example.com/a:1"}),
    );
    let mutated = || injected(&pods, annotated.clone(), true);
    Webhook::wait_called(&pods, &annotated).await?;
    // Rotated at 2/3 of 6 s, twice; calls keep succeeding (Fail policy: a
    // TLS failure would refuse the Pod).
    eventually(Duration::from_secs(30), || async { Ok(webhook.rotations().await? >= 2) }).await?;
    assert!(mutated().await?, "the API server still calls the webhook after rotations");
    report(&format!(
        "inject: {replicas} webhook replica(s): certificate rotated {} times; calls kept working",
        webhook.rotations().await?
    ));
    webhook.stop().await;
    env.cleanup().await;
    Ok(())
}
