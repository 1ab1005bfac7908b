//! The webhook's series at `/metrics` (`vaultsync_webhook_*`): what it did
//! with each review, certificate rotations, and its listener's refusals.
//! The admin endpoints of vaultsync_serve add the `process_*` series.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use vaultsync_serve::listen::Gate;

/// What the webhook did, since start.
#[derive(Clone)]
pub(crate) struct Counters {
    pub(crate) mutated: Counter,
    pub(crate) untouched: Counter,
    pub(crate) already: Counter,
    pub(crate) refused: Counter,
    pub(crate) invalid: Counter,
    pub(crate) rotations: Counter,
    admissions: Family<ResultLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

impl Default for Counters {
    fn default() -> Self {
        let admissions = Family::<ResultLabels, Counter>::default();
        // Every result is a series from the start, so a scrape shows 0.
        let of = |result| admissions.get_or_create(&ResultLabels { result }).clone();
        Self {
            mutated: of("mutated"),
            untouched: of("untouched"),
            already: of("already_injected"),
            refused: of("refused"),
            invalid: of("invalid"),
            rotations: Counter::default(),
            admissions,
        }
    }
}

/// The webhook's registry: its counters and both gates' refusals.
pub(crate) fn registry(counters: &Counters, connections: &Gate, reviews: &Gate) -> Registry {
    let mut registry = Registry::with_prefix("vaultsync_webhook");
    registry.register(
        "admissions",
        "Pods the injection webhook was asked about, by what it did",
        counters.admissions.clone(),
    );
    registry.register("certificate_rotations", "Serving certificates replaced since start", counters.rotations.clone());
    connections.register(
        &mut registry,
        "connections_refused",
        "Connections closed at accept: too many in all (total) or from one address (peer)",
        true,
    );
    reviews.register(
        &mut registry,
        "reviews_refused",
        "Reviews answered 429: too many at once in all (total) or from one address (peer)",
        false,
    );
    registry
}

#[cfg(test)]
mod tests {
    use vaultsync_serve::listen::Limits;

    use super::*;

    #[test]
    fn every_series_is_there_from_the_start_and_counts() {
        let counters = Counters::default();
        let gate = || Gate::new(Limits { total: 1, per_peer: 1 });
        let registry = registry(&counters, &gate(), &gate());
        counters.mutated.inc();
        counters.rotations.inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode_registry(&mut text, &registry).expect("encodes");
        for line in [
            "vaultsync_webhook_admissions_total{result=\"mutated\"} 1\n",
            "vaultsync_webhook_admissions_total{result=\"untouched\"} 0\n",
            "vaultsync_webhook_admissions_total{result=\"already_injected\"} 0\n",
            "vaultsync_webhook_admissions_total{result=\"refused\"} 0\n",
            "vaultsync_webhook_admissions_total{result=\"invalid\"} 0\n",
            "vaultsync_webhook_certificate_rotations_total 1\n",
            "vaultsync_webhook_connections_refused_total{reason=\"peer\"} 0\n",
            "vaultsync_webhook_accept_errors_total 0\n",
            "vaultsync_webhook_reviews_refused_total{reason=\"total\"} 0\n",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
