//! `spec.syncWindows` (ESO's): whether a periodic refresh may run now.
//!
//! A window opens at each firing of its cron schedule (UTC) and stays open
//! for its duration, as in ESO: the window open at `at` is the one that
//! fired last at or before `at`, within `duration`. `allow` windows let
//! periodic refreshes run only while one is open; `deny` windows stop them
//! while any is open. A window whose schedule does not parse counts as
//! closed, as in ESO (the schema refuses malformed ones).

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use vaultsync_api::{SyncWindow, SyncWindowKind, SyncWindows, parse_duration};

/// How long to wait before looking again while windows block a refresh:
/// schedules are minute-grained, and looking costs no Vault request.
pub(crate) const RECHECK_WHILE_BLOCKED: Duration = Duration::from_secs(30);

/// Whether `windows` let a periodic refresh run at `at`.
pub(crate) fn refresh_allowed(windows: Option<&SyncWindows>, at: DateTime<Utc>) -> bool {
    let Some(windows) = windows.filter(|w| !w.windows.is_empty()) else { return true };
    let any_open = windows.windows.iter().any(|window| open(window, at));
    match windows.kind {
        SyncWindowKind::Allow => any_open,
        SyncWindowKind::Deny => !any_open,
    }
}

fn open(window: &SyncWindow, at: DateTime<Utc>) -> bool {
    let Some(duration) = parse_duration(&window.duration).ok().and_then(|d| chrono::Duration::from_std(d).ok()) else {
        return false;
    };
    let schedule = window.schedule.trim();
    // `@every D` fires every D from whenever it is asked; ESO looks for the
    // first firing after `at - duration - 1s`, so such a window is open
    // exactly when D is at most `duration + 1s`.
    if let Some(every) = schedule.strip_prefix("@every ") {
        return parse_duration(every.trim())
            .ok()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .is_some_and(|every| every <= duration + chrono::Duration::seconds(1));
    }
    let Some(cron) = parse(schedule) else { return false };
    // Open when the schedule fired within the last `duration`. ESO looks
    // only at the first firing after `at - duration - 1s`, which misses a
    // later window that overlaps it (a firing every minute for an hour is
    // closed for a moment at each minute there); every window counts here.
    let since = at - duration;
    cron.find_next_occurrence(&since, true).is_ok_and(|fired| fired <= at)
}

/// A 5-field cron expression or a named one (`@midnight` is `@daily`).
fn parse(schedule: &str) -> Option<Cron> {
    let schedule = if schedule.eq_ignore_ascii_case("@midnight") { "@daily" } else { schedule };
    CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build().parse(schedule).ok()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn windows(kind: SyncWindowKind, list: &[(&str, &str)]) -> SyncWindows {
        SyncWindows {
            kind,
            windows: list
                .iter()
                .map(|(schedule, duration)| SyncWindow { schedule: (*schedule).into(), duration: (*duration).into() })
                .collect(),
        }
    }

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        // A Wednesday.
        Utc.with_ymd_and_hms(2026, 12, 2, hour, minute, 0).single().expect("a time")
    }

    #[test]
    fn overlapping_windows_stay_open_across_their_firings() {
        let every_minute = windows(SyncWindowKind::Deny, &[("* * * * *", "1h")]);
        for second in [0, 1] {
            for millis in [0, 323, 999] {
                let at =
                    Utc.with_ymd_and_hms(2026, 12, 3, 11, 14, second).unwrap() + chrono::Duration::milliseconds(millis);
                assert!(!refresh_allowed(Some(&every_minute), at), "held at {at}");
            }
        }
    }

    #[test]
    fn no_windows_always_allow() {
        assert!(refresh_allowed(None, at(3, 0)));
        assert!(refresh_allowed(Some(&windows(SyncWindowKind::Allow, &[])), at(3, 0)));
    }

    #[test]
    fn a_window_is_open_from_its_firing_for_its_duration() {
        // Weekdays at 22:00 for 8 hours: open 22:00-06:00.
        let night = windows(SyncWindowKind::Allow, &[("0 22 * * 1-5", "8h")]);
        assert!(refresh_allowed(Some(&night), at(23, 30)));
        assert!(refresh_allowed(Some(&night), at(5, 59)), "opened Tuesday 22:00");
        assert!(refresh_allowed(Some(&night), at(22, 0)), "the firing itself");
        assert!(!refresh_allowed(Some(&night), at(12, 0)));
        assert!(!refresh_allowed(Some(&night), at(6, 1)));
        let deny = windows(SyncWindowKind::Deny, &[("0 22 * * 1-5", "8h")]);
        assert!(!refresh_allowed(Some(&deny), at(23, 30)));
        assert!(refresh_allowed(Some(&deny), at(12, 0)));
    }

    #[test]
    fn any_open_window_counts() {
        let two = windows(SyncWindowKind::Allow, &[("0 1 * * *", "1h"), ("@hourly", "10m")]);
        assert!(refresh_allowed(Some(&two), at(1, 30)), "the first");
        assert!(refresh_allowed(Some(&two), at(14, 5)), "the second");
        assert!(!refresh_allowed(Some(&two), at(14, 30)));
    }

    #[test]
    fn named_schedules_and_every() {
        assert!(refresh_allowed(Some(&windows(SyncWindowKind::Allow, &[("@midnight", "1h")])), at(0, 30)));
        assert!(!refresh_allowed(Some(&windows(SyncWindowKind::Allow, &[("@daily", "1h")])), at(1, 30)));
        // As ESO evaluates `@every`: open when the period fits in the window.
        assert!(refresh_allowed(Some(&windows(SyncWindowKind::Allow, &[("@every 1h", "1h")])), at(9, 17)));
        assert!(!refresh_allowed(Some(&windows(SyncWindowKind::Allow, &[("@every 2h", "1h")])), at(9, 17)));
    }

    #[test]
    fn a_window_that_does_not_parse_is_closed() {
        assert!(!refresh_allowed(Some(&windows(SyncWindowKind::Allow, &[("61 * * * *", "1h")])), at(9, 0)));
        assert!(refresh_allowed(Some(&windows(SyncWindowKind::Deny, &[("61 * * * *", "1h")])), at(9, 0)));
        assert!(!refresh_allowed(Some(&windows(SyncWindowKind::Allow, &[("* * * * *", "soon")])), at(9, 0)));
    }
}
