//! The one tracing setup of every subcommand: human-readable lines on
//! stderr, or JSON lines for log pipelines, filtered by `--log-level`
//! (`VAULTSYNC_LOG_LEVEL`), else `RUST_LOG`; and, for the operator, panics
//! logged like everything else.

use tracing_subscriber::EnvFilter;

/// What is logged when neither `--log-level` nor `RUST_LOG` says: kube's
/// own info lines (every watch restart) are noise to an operator's reader.
const DEFAULT_FILTER: &str = "info,kube=warn";

/// The levels a bare word may name. Anything else without `=` or `,` is
/// refused: tracing would read `verbose` as "everything of the crate named
/// verbose" and log nothing of vaultsync, which is never what was meant.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks a `--log-level` value: a level, or a full tracing filter
/// directive (`info,vaultsync_controller=debug`), as RUST_LOG takes it.
pub fn parse_level(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("empty; give a level (error, warn, info, debug, trace) or a filter such as info,kube=warn".into());
    }
    if !value.contains(['=', ',']) && !LEVELS.contains(&value.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "{value:?} is not a level: use one of {}, or a filter such as info,kube=warn",
            LEVELS.join(", ")
        ));
    }
    EnvFilter::try_new(value).map_err(|e| format!("{value:?} is not a tracing filter: {e}"))?;
    Ok(value.to_owned())
}

/// The filter in force. An explicit `--log-level` (or VAULTSYNC_LOG_LEVEL)
/// wins over RUST_LOG, as a command-line flag wins over the environment in
/// ESO and client-go's tools: the chart passes its `logLevel` as the flag,
/// and a RUST_LOG inherited from elsewhere must not override what was
/// asked for. RUST_LOG still counts when no level is given; an invalid
/// RUST_LOG falls back to the default rather than stopping the process.
fn filter(level: Option<&str>, rust_log: Option<&str>) -> EnvFilter {
    let chosen = level.or(rust_log.filter(|v| !v.trim().is_empty())).unwrap_or(DEFAULT_FILTER);
    EnvFilter::try_new(chosen).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

pub fn init(json: bool, level: Option<&str>) {
    use std::io::IsTerminal;
    let rust_log = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    // Colour codes only for a person at a terminal, never in a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level, rust_log.as_deref()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        // Fields at the top level of each line, where log pipelines look.
        builder.json().flatten_event(true).with_current_span(false).with_span_list(false).init();
    } else {
        builder.init();
    }
}

/// A panic in the operator (a bug, caught so that it fails one object only)
/// is logged like everything else, one JSON line, instead of raw text on
/// stderr. Only `run` installs this: in the other subcommands a panic ends
/// the process, which Rust's own report says as it is.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|panic| {
        let message = panic
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = panic.location().map(ToString::to_string).unwrap_or_default();
        tracing::error!(%message, %location, "panic: a bug in vaultsync; the object being handled fails, the process goes on");
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_are_accepted() {
        for good in
            ["info", "DEBUG", "trace", "off", "info,kube=warn", "vaultsync_controller=debug", "warn,vaultsync=trace"]
        {
            assert!(parse_level(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_word_that_is_no_level_is_refused() {
        for bad in ["", "  ", "verbose", "information", "vaultsync=notalevel"] {
            assert!(parse_level(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_flag_wins_over_rust_log_which_wins_over_the_default() {
        assert_eq!(filter(Some("debug"), Some("error")).to_string(), "debug");
        assert_eq!(filter(None, Some("error")).to_string(), "error");
        assert_eq!(filter(None, Some("")).to_string(), filter(None, None).to_string());
        assert_eq!(filter(None, None).to_string(), EnvFilter::new(DEFAULT_FILTER).to_string());
        // An unreadable RUST_LOG does not stop the process.
        assert_eq!(filter(None, Some("a=b=c")).to_string(), EnvFilter::new(DEFAULT_FILTER).to_string());
    }
}
