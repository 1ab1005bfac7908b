//! Reading a Prometheus scrape, for the figures tests assert on.

/// The value of the sample `series` (name and labels exactly as exported)
/// in a scrape; None when the series is absent.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}
