//! Lease-based leadership: only one replica syncs. Every write to the
//! Lease carries the resourceVersion it read, so two replicas can never
//! both believe they won. The leader's writes are fenced by its own clock
//! (see [`crate::leadership::fence`]): it stops at the renew deadline, before another
//! replica can take the Lease at the end of the lease duration.
//!
//! A replica that loses the Lease (or cannot renew it, the API server being
//! unreachable) stops its controllers and competes again; one shut down
//! releases the Lease, so its successor takes over at its next attempt
//! instead of waiting out the lease duration.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::leadership::fence::Fence;
use crate::process::Standing;

/// Who competes for which Lease, and how long a claim lasts.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    /// How long another replica waits after the last renewal before it
    /// takes over.
    pub lease_duration: Duration,
    /// How long after sending its last successful claim the leader may
    /// still write; shorter than `lease_duration`, so the leader stops
    /// before anyone else can start.
    pub renew_deadline: Duration,
    /// Pause between attempts to claim or renew.
    pub retry_period: Duration,
}

/// Waits until this replica holds the Lease, then opens `fence` for a new
/// term, until the renew deadline. Each successful look at the Lease
/// tells `standing` that this standby is healthy. Call it only while no
/// controller of an earlier term runs.
pub async fn acquire(client: &kube::Client, config: &LeaderConfig, fence: &Fence, standing: &Standing) {
    let api = Api::<Lease>::namespaced(client.clone(), &config.namespace);
    let mut announced = false;
    loop {
        let sent = Instant::now();
        match try_claim(&api, config).await {
            Ok(true) if fence.begin_term(sent + config.renew_deadline) => {
                info!(lease = %config.lease_name, identity = %config.identity, "became leader");
                return;
            }
            // The claim took longer than the renew deadline: too late to
            // write anything under it; the next attempt renews it.
            Ok(true) => standing.standby_contact(config.lease_duration),
            Ok(false) => {
                standing.standby_contact(config.lease_duration);
                if !announced {
                    info!(lease = %config.lease_name, "another replica leads; standing by");
                    announced = true;
                }
            }
            Err(e) => warn!(lease = %config.lease_name, error = %e, "cannot read or claim the Lease"),
        }
        tokio::time::sleep(config.retry_period).await;
    }
}

/// Gives the Lease up, if this replica still holds it, so that a standby
/// takes over at its next attempt. Guarded by resourceVersion like every
/// Lease write: a Lease someone else took meanwhile is left alone.
pub async fn release(client: &kube::Client, config: &LeaderConfig) {
    let api = Api::<Lease>::namespaced(client.clone(), &config.namespace);
    let released = async {
        let Some(mut lease) = api.get_opt(&config.lease_name).await? else { return Ok(false) };
        let Some(spec) = lease.spec.as_mut() else { return Ok(false) };
        if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
            return Ok(false);
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        spec.lease_duration_seconds = Some(1);
        api.replace(&config.lease_name, &PostParams::default(), &lease).await.map(|_| true)
    };
    match released.await {
        Ok(true) => info!(lease = %config.lease_name, "released the Lease"),
        Ok(false) => {}
        Err(e) => warn!(lease = %config.lease_name, error = %e, "cannot release the Lease; it expires on its own"),
    }
}

/// Renews the Lease, moving `fence` on with each success. Returns when
/// leadership is lost: another replica took the Lease, or the renew
/// deadline passed without a successful renewal (however long the pending
/// request may still hang). The fence is closed for good by then.
pub async fn hold(client: kube::Client, config: LeaderConfig, fence: Fence) {
    let api = Api::<Lease>::namespaced(client, &config.namespace);
    loop {
        let Some(deadline) = fence.valid_until() else {
            warn!(lease = %config.lease_name, "leadership deadline passed without a renewal; writes stopped");
            return;
        };
        let renewal = async {
            tokio::time::sleep(config.retry_period).await;
            // The deadline counts from when the claim was sent, not
            // answered: the Lease's renewTime is no later than this.
            let sent = Instant::now();
            (sent, try_claim(&api, &config).await)
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                fence.revoke();
                warn!(
                    lease = %config.lease_name,
                    renew_deadline = ?config.renew_deadline,
                    "leadership deadline passed without a renewal; writes stopped"
                );
                return;
            }
            (sent, outcome) = renewal => match outcome {
                Ok(true) => {
                    if !fence.extend(sent + config.renew_deadline) {
                        warn!(lease = %config.lease_name, "renewed too late: the leadership deadline had passed; writes stopped");
                        return;
                    }
                }
                Ok(false) => {
                    fence.revoke();
                    warn!(lease = %config.lease_name, "another replica took the Lease; writes stopped");
                    return;
                }
                Err(e) => warn!(lease = %config.lease_name, error = %e, "cannot renew the Lease"),
            },
        }
    }
}

/// One attempt: create the Lease, renew our own, or take over an expired
/// one. `Ok(false)`: someone else holds it.
async fn try_claim(api: &Api<Lease>, config: &LeaderConfig) -> kube::Result<bool> {
    let now = MicroTime(Timestamp::now());
    // The Lease keeps whole seconds; rounding up only makes others wait longer.
    let duration_secs =
        i32::try_from(config.lease_duration.as_secs() + u64::from(config.lease_duration.subsec_nanos() > 0))
            .unwrap_or(i32::MAX);
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
    // A released Lease has no holder: free at once.
    let released = spec.holder_identity.as_deref().is_none_or(str::is_empty);
    let expired = released
        || spec.renew_time.as_ref().is_none_or(|renewed| {
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
