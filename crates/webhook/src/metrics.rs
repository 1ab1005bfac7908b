//! The webhook's counters and their Prometheus text at `/metrics`: what it
//! did with each review, certificate rotations, and its listener's refusals.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Server;
use crate::listen;

/// What the webhook did, since start.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) mutated: AtomicU64,
    pub(crate) untouched: AtomicU64,
    pub(crate) already: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) invalid: AtomicU64,
    pub(crate) rotations: AtomicU64,
}

/// The text of `/metrics` (Prometheus 0.0.4: the TYPE lines end in `_total`).
pub(crate) fn text(server: &Server) -> String {
    let counters = &server.counters;
    let mut text = String::from(
        "# HELP vaultsync_webhook_admissions_total Pods the injection webhook was asked about, by what it did.\n# TYPE vaultsync_webhook_admissions_total counter\n",
    );
    for (result, value) in [
        ("mutated", &counters.mutated),
        ("untouched", &counters.untouched),
        ("already_injected", &counters.already),
        ("refused", &counters.refused),
        ("invalid", &counters.invalid),
    ] {
        text.push_str(&format!(
            "vaultsync_webhook_admissions_total{{result=\"{result}\"}} {}\n",
            value.load(Ordering::Relaxed)
        ));
    }
    text.push_str("# HELP vaultsync_webhook_certificate_rotations_total Serving certificates replaced since start.\n# TYPE vaultsync_webhook_certificate_rotations_total counter\n");
    text.push_str(&format!(
        "vaultsync_webhook_certificate_rotations_total {}\n",
        counters.rotations.load(Ordering::Relaxed)
    ));
    text.push_str(&listen::metrics("webhook", &server.connections, false));
    let (total, peer) = server.reviews.refused();
    text.push_str(&format!(
        "# HELP vaultsync_webhook_reviews_refused_total Reviews answered 429: too many at once in all (total) or from one address (peer).\n\
         # TYPE vaultsync_webhook_reviews_refused_total counter\n\
         vaultsync_webhook_reviews_refused_total{{reason=\"total\"}} {total}\n\
         vaultsync_webhook_reviews_refused_total{{reason=\"peer\"}} {peer}\n"
    ));
    text
}
