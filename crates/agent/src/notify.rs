//! Telling the app that its files changed, other than by a signal: a
//! command the sidecar runs, or a URL it POSTs to (an app's reload
//! endpoint on localhost; the agent's image has no shell or curl, so this
//! is what stands in for `curl -X POST` in a command).
//!
//! Neither the command's output nor the answer's body is logged: either
//! may hold what the app just read.

use std::time::Duration;

use tracing::{info, warn};

/// How long a command or a POST may take.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `argv` (no shell), waits for it up to [`NOTIFY_TIMEOUT`], and logs
/// how it ended; whether it succeeded.
pub async fn run_command(argv: &[String]) -> bool {
    let Some((program, args)) = argv.split_first() else { return false };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            warn!(program = ?program, error = %e, "command did not start");
            return false;
        }
    };
    match tokio::time::timeout(NOTIFY_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) if status.success() => {
            info!(program = ?program, "ran command");
            true
        }
        Ok(Ok(status)) => {
            warn!(program = ?program, %status, "command failed");
            false
        }
        Ok(Err(e)) => {
            warn!(program = ?program, error = %e, "waiting for the command failed");
            false
        }
        Err(_) => {
            warn!(program = ?program, timeout = ?NOTIFY_TIMEOUT, "command still running at the timeout; killed");
            false
        }
    }
}

/// The Vault agent's command of a rendered file, as it runs one: a shell
/// line, `/bin/sh -c <command>`.
pub async fn run_file_command(file: &str, command: &str) -> bool {
    info!(file, "running the file's command (agent-inject-command)");
    run_command(&["/bin/sh".to_owned(), "-c".to_owned(), command.to_owned()]).await
}

/// POSTs an empty body to `url` and logs the answer's status.
pub async fn post(url: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder().timeout(NOTIFY_TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => {
            warn!(error = %e, "notify URL: no HTTP client");
            return;
        }
    };
    match client.post(url).send().await {
        Ok(answer) => info!(url, status = answer.status().as_u16(), "notified"),
        Err(e) => warn!(url, error = %without_url(e), "notifying failed"),
    }
}

/// reqwest's error text names the URL already; say what went wrong.
fn without_url(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else {
        error.without_url().to_string()
    }
}
