//! The operator's life after start-up: with no election, the controllers
//! run until the process is told to stop; with one, terms of leadership
//! follow each other (compete for the Lease, run the controllers under the
//! fence, stop them when the term ends), and shutting down hands the Lease
//! over. Either way, the Vault tokens logged in for are revoked at the end.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::context::Context;
use crate::leadership::fence::{Fence, GuardLayer};
use crate::leadership::leader::{self, LeaderConfig};
use crate::rate_limit::{RateLimit, RateLimitLayer};

/// How long stopping (or losing leadership) waits for Vault tokens to be
/// revoked; those not revoked by then expire with their TTL.
pub const REVOKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a replica that competes for the Lease needs.
pub struct Election {
    pub leader: LeaderConfig,
    /// A client of its own, unfenced, or the Lease could never be renewed.
    pub lease_client: kube::Client,
    /// The fence of the writing client the controllers use.
    pub fence: Fence,
}

/// A client whose every non-watch request has `request_timeout`, whose
/// writes, given a fence, stop when leadership lapses, and whose requests,
/// given a rate limit, wait for a token of it.
pub fn guarded_client(
    config: &kube::Config,
    request_timeout: Duration,
    fence: Option<Fence>,
    rate_limit: Option<RateLimit>,
) -> Result<kube::Client, kube::Error> {
    let builder = kube::client::ClientBuilder::try_from(config.clone())?;
    let guarded = builder.with_layer(&GuardLayer::new(request_timeout, fence));
    Ok(match rate_limit {
        // Outside the guard: a request waiting for a token has not started
        // its timeout, and meets the fence only once it is sent.
        Some(limit) => guarded.with_layer(&RateLimitLayer::new(limit)).build(),
        None => guarded.build(),
    })
}

/// This replica's name in the Lease when none is given: host name and
/// process id.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}

/// Runs the controllers until `stop` says true: directly, or, given an
/// `election`, for as many terms of leadership as this replica wins.
pub async fn run(ctx: Arc<Context>, stop: watch::Receiver<bool>, election: Option<Election>) {
    let Some(Election { leader, lease_client, fence }) = election else {
        crate::run(ctx.clone(), stopped(stop)).await;
        // The syncs are over: the Vault tokens the operator logged in for
        // are revoked rather than left to expire.
        ctx.revoke_vault_tokens(REVOKE_TIMEOUT).await;
        tracing::info!("vaultsync stopped");
        return;
    };
    loop {
        tokio::select! {
            () = leader::acquire(&lease_client, &leader, &fence, ctx.standing()) => {}
            () = stopped(stop.clone()) => return,
        }
        ctx.begin_term();
        let (term_over_tx, term_over) = watch::channel(false);
        let mut stop_term = stop.clone();
        let controllers = crate::run(ctx.clone(), async move {
            let mut term_over = term_over;
            tokio::select! {
                _ = stop_term.wait_for(|stop| *stop) => {}
                _ = term_over.wait_for(|over| *over) => {}
            }
        });
        tokio::pin!(controllers);
        let shutting_down = tokio::select! {
            () = &mut controllers => true,
            () = stopped(stop.clone()) => {
                // Let the syncs in flight finish under the fence, then stop
                // writing and hand the Lease over.
                let _ = tokio::time::timeout(leader.renew_deadline, &mut controllers).await;
                true
            }
            // The fence already refuses every write; what is still running
            // fails fast or is abandoned at the deadline.
            () = leader::hold(lease_client.clone(), leader.clone(), fence.clone()) => {
                let _ = term_over_tx.send(true);
                if tokio::time::timeout(leader.lease_duration, &mut controllers).await.is_err() {
                    tracing::warn!("controllers of the lost term did not stop in time; dropped");
                }
                false
            }
        };
        fence.revoke();
        ctx.end_term();
        if shutting_down {
            // The Lease first, so a standby takes over without waiting.
            leader::release(&lease_client, &leader).await;
            ctx.revoke_vault_tokens(REVOKE_TIMEOUT).await;
            tracing::info!("vaultsync stopped");
            return;
        }
        // A standby needs no Vault token; a new term logs in again.
        ctx.revoke_vault_tokens(REVOKE_TIMEOUT).await;
        tracing::info!(lease = %leader.lease_name, "no longer leading; competing for the Lease again");
    }
}

/// Resolves once `stop` says true.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
