//! The one tracing setup of every subcommand: human-readable lines on
//! stderr, or JSON lines for log pipelines, filtered by `RUST_LOG`; and,
//! for the operator, panics logged like everything else.

pub fn init(json: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
    // Colour codes only for a person at a terminal, never in a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
