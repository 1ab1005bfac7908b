//! Where this process stands: whether its caches are filled, whether it
//! leads, and whether a standby's look at the Lease is recent. Kept apart
//! from the reconcilers' `Context` so the health server and the term loop
//! read and set it without reaching into reconcile state, and so a
//! reconcile sees none of it. A leaf: it imports nothing from the crate.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Readiness and leader-election standing of this replica, for `/ready`,
/// the term loop and the leader metric.
#[derive(Default)]
pub struct Standing {
    /// Leader election is on: a replica that is not leading is a standby.
    election: AtomicBool,
    leading: AtomicBool,
    /// The first full list of ExternalSecrets of this term is in.
    ready: AtomicBool,
    /// Until when the last successful look at the Lease vouches for a
    /// standby's health.
    standby_healthy_until: Mutex<Option<Instant>>,
}

impl Standing {
    /// `/ready`: the process is healthy and either syncing with its caches
    /// filled (the first full list of ExternalSecrets is in, so it knows
    /// what to sync), or a healthy standby: it read the Lease recently.
    /// Never "is leader": a Deployment's rolling update must be able to
    /// start a new replica while the old one still leads.
    pub fn is_ready(&self) -> bool {
        if self.is_leading() {
            return self.ready.load(Ordering::Relaxed);
        }
        let until = *self.standby_healthy_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        until.is_some_and(|until| Instant::now() < until)
    }

    /// Whether this replica leads (always, without leader election).
    pub fn is_leading(&self) -> bool {
        !self.election.load(Ordering::Relaxed) || self.leading.load(Ordering::Relaxed)
    }

    /// A standby read the Lease: it is healthy for `valid_for`.
    pub fn standby_contact(&self, valid_for: Duration) {
        *self.standby_healthy_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Instant::now() + valid_for);
    }

    /// Leader election is on; this replica starts as a standby.
    pub(crate) fn enable_election(&self) {
        self.election.store(true, Ordering::Relaxed);
    }

    /// A term begins (`true`: not ready until its caches fill, as a
    /// restarted process) or ends.
    pub(crate) fn set_leading(&self, leading: bool) {
        if leading {
            self.ready.store(false, Ordering::Relaxed);
        }
        self.leading.store(leading, Ordering::Relaxed);
    }

    /// The first full list of ExternalSecrets is in.
    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_election_ready_follows_the_caches() {
        let standing = Standing::default();
        assert!(standing.is_leading());
        assert!(!standing.is_ready());
        standing.set_ready();
        assert!(standing.is_ready());
    }

    #[test]
    fn a_standby_is_ready_while_its_lease_contact_is_recent_and_a_new_term_waits_for_caches() {
        let standing = Standing::default();
        standing.set_ready();
        standing.enable_election();
        assert!(!standing.is_leading());
        assert!(!standing.is_ready(), "a standby that never read the Lease is not ready");
        standing.standby_contact(Duration::from_secs(60));
        assert!(standing.is_ready());
        standing.standby_contact(Duration::ZERO);
        assert!(!standing.is_ready());
        standing.set_leading(true);
        assert!(standing.is_leading());
        assert!(!standing.is_ready(), "a new term starts with its caches not yet filled");
        standing.set_ready();
        assert!(standing.is_ready());
    }
}
