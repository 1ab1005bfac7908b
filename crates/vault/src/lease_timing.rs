//! When to act on something Vault hands out for a limited time (a lease, a
//! certificate, a token): renew it part way through its life, stop handing
//! it out just before its end, replace it when a renewal falls short, and
//! revoke a replaced one after a grace period. The controller's generators
//! and the agent's held answers both follow these rules; they differ only
//! in the parameters they pass (see each caller).
//!
//! Pure functions of durations and instants, with the clock and the
//! randomness passed in, so the rules are tested without waiting.

use std::time::{Duration, SystemTime};

/// Where in a lifetime to act, drawn between `low` and `high` (fractions
/// of the lifetime) by `unit` in `[0, 1)`: jitter, so that many holders of
/// credentials issued at one instant do not all renew at the next.
pub fn fraction_between(low: f64, high: f64, unit: f64) -> f64 {
    low + (high - low) * unit
}

/// How long after a lifetime starts to renew (or ask again): `fraction` of
/// it. Acting at about two thirds leaves a third for retries while Vault
/// is away, before the credential ends.
pub fn renew_after(lifetime: Duration, fraction: f64) -> Duration {
    lifetime.mul_f64(fraction)
}

/// How close to its end a credential of `ttl` is no longer handed out: a
/// tenth of its TTL, at most 5 s, so that short-lived ones (seconds) are
/// still renewed rather than replaced, and long ones are used to the end.
pub fn end_margin(ttl: Duration) -> Duration {
    (ttl / 10).min(Duration::from_secs(5))
}

/// Whether a renewal that asked for `asked` and was granted `granted` calls
/// for a new credential: Vault granting less than asked means the max TTL
/// is near, and one no longer renewable cannot be kept by renewing. The
/// old one still has what was just granted to cover the change.
pub fn renewal_falls_short(asked: Duration, granted: Duration, renewable: bool) -> bool {
    !renewable || granted < asked
}

/// When a replaced credential is revoked: after `grace` (the app may still
/// hold connections made with it), but never after its own `end`.
pub fn retire_at<T>(now: T, grace: Duration, end: T) -> T
where
    T: Ord + std::ops::Add<Duration, Output = T>,
{
    (now + grace).min(end)
}

/// How long a credential ending at `end` has left at `now` (zero once
/// ended).
pub fn remaining(end: SystemTime, now: SystemTime) -> Duration {
    end.duration_since(now).unwrap_or_default()
}

/// Whether an action planned for `at` is due at `now`; one with no known
/// time (a record that cannot be read) is due, so nothing is left to lapse.
pub fn due<T: PartialOrd>(at: Option<T>, now: T) -> bool {
    at.is_none_or(|at| at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn renews_part_way_through_within_the_jitter_window() {
        assert_eq!(fraction_between(0.62, 0.72, 0.0), 0.62);
        assert!((fraction_between(0.62, 0.72, 0.5) - 0.67).abs() < 1e-9);
        assert!(fraction_between(0.62, 0.72, 0.999) < 0.72);
        assert_eq!(renew_after(Duration::from_secs(300), 2.0 / 3.0), Duration::from_secs(200));
    }

    #[test]
    fn the_end_margin_is_a_tenth_of_the_ttl_up_to_five_seconds() {
        assert_eq!(end_margin(Duration::from_secs(12)), Duration::from_millis(1200));
        assert_eq!(end_margin(Duration::from_secs(3600)), Duration::from_secs(5));
        assert_eq!(end_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_renewal_granting_less_than_asked_calls_for_a_new_credential() {
        assert!(!renewal_falls_short(MINUTE, MINUTE, true));
        assert!(renewal_falls_short(MINUTE, MINUTE - Duration::from_secs(1), true));
        assert!(renewal_falls_short(MINUTE, MINUTE, false));
    }

    #[test]
    fn a_retired_credential_is_revoked_after_the_grace_but_not_after_its_end() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(retire_at(now, 5 * MINUTE, now + MINUTE), now + MINUTE);
        assert_eq!(retire_at(now, MINUTE, now + 60 * MINUTE), now + MINUTE);
    }

    #[test]
    fn remaining_and_due_follow_the_clock() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(remaining(now + MINUTE, now), MINUTE);
        assert_eq!(remaining(now - MINUTE, now), Duration::ZERO);
        assert!(due(Some(now - MINUTE), now));
        assert!(due(Some(now), now));
        assert!(!due(Some(now + MINUTE), now));
        assert!(due(None, now));
    }
}
