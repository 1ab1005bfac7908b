//! `spec.syncWindows` (ESO's): when periodic refreshes may run.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// ESO's pattern for a window's schedule: a 5-field cron expression or a
/// named one (`@daily`, `@every 1h`).
pub const SYNC_WINDOW_SCHEDULE_PATTERN: &str =
    r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|@every [^\s]+.*|[^\s]+( [^\s]+){4})$";

/// When periodic refreshes may run. Only refreshes due by
/// `refreshInterval` are gated: a new or changed spec, a force-sync
/// request, a first sync and a Secret changed by someone else are synced
/// whatever the windows say. As in ESO.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindows {
    /// `allow`: periodic refreshes run only while at least one window is
    /// open. `deny`: they do not run while any window is open.
    pub kind: SyncWindowKind,
    /// The windows (at least one), all of `kind`.
    #[schemars(length(min = 1))]
    pub windows: Vec<SyncWindow>,
}

/// Whether the windows allow or deny periodic refreshes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncWindowKind {
    Allow,
    Deny,
}

/// A window that opens at each firing of `schedule` and stays open for
/// `duration`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindow {
    /// A 5-field cron expression in UTC (`0 22 * * 1-5`: weekdays at
    /// 22:00), or `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
    /// `@midnight`, `@hourly`, `@every <duration>`.
    #[schemars(regex(pattern = SYNC_WINDOW_SCHEDULE_PATTERN))]
    #[schemars(length(min = 1))]
    pub schedule: String,
    /// How long the window stays open after each firing, as a Go duration
    /// (`8h`, `30m`).
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub duration: String,
}
