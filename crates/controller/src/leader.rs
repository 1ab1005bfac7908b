//! Lease-based leadership: only one replica syncs. Every write to the
//! Lease carries the resourceVersion it read, so two replicas can never
//! both believe they won.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;
use tracing::{info, warn};

/// Who competes for which Lease, and how long a claim lasts.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_every: Duration,
}

/// Waits until this replica holds the Lease.
pub async fn acquire(client: &kube::Client, config: &LeaderConfig) {
    let api = Api::<Lease>::namespaced(client.clone(), &config.namespace);
    let mut announced = false;
    loop {
        match try_claim(&api, config).await {
            Ok(true) => {
                info!(lease = %config.lease_name, identity = %config.identity, "became leader");
                return;
            }
            Ok(false) if !announced => {
                info!(lease = %config.lease_name, "another replica leads; standing by");
                announced = true;
            }
            Ok(false) => {}
            Err(e) => warn!(lease = %config.lease_name, error = %e, "cannot read or claim the Lease"),
        }
        tokio::time::sleep(config.renew_every).await;
    }
}

/// Renews the Lease until a renewal fails for a whole lease duration;
/// returns when leadership is lost, so the caller stops writing.
pub async fn hold(client: kube::Client, config: LeaderConfig) {
    let api = Api::<Lease>::namespaced(client, &config.namespace);
    let mut last_renewal = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(config.renew_every).await;
        match try_claim(&api, &config).await {
            Ok(true) => last_renewal = tokio::time::Instant::now(),
            Ok(false) => {
                warn!(lease = %config.lease_name, "another replica took the Lease");
                return;
            }
            Err(e) => {
                warn!(lease = %config.lease_name, error = %e, "cannot renew the Lease");
                if last_renewal.elapsed() >= config.lease_duration {
                    return;
                }
            }
        }
    }
}

/// One attempt: create the Lease, renew our own, or take over an expired
/// one. `Ok(false)`: someone else holds it.
async fn try_claim(api: &Api<Lease>, config: &LeaderConfig) -> kube::Result<bool> {
    let now = MicroTime(Timestamp::now());
    let duration_secs = i32::try_from(config.lease_duration.as_secs()).unwrap_or(15);
    let Some(mut lease) = api.get_opt(&config.lease_name).await? else {
        let lease = Lease {
            metadata: ObjectMeta { name: Some(config.lease_name.clone()), ..ObjectMeta::default() },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(duration_secs),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let ours = spec.holder_identity.as_deref() == Some(config.identity.as_str());
    let expired = spec.renew_time.as_ref().is_none_or(|renewed| {
        let held_for =
            SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(duration_secs).max(1)));
        Timestamp::now().duration_since(renewed.0) > held_for
    });
    if !ours && !expired {
        return Ok(false);
    }
    if !ours {
        spec.holder_identity = Some(config.identity.clone());
        spec.acquire_time = Some(now.clone());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(now);
    spec.lease_duration_seconds = Some(duration_secs);
    // `replace` sends the resourceVersion we read: if another replica wrote
    // in between, the API server answers 409 and we did not win.
    match api.replace(&config.lease_name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}
