//! The agent's modes as the binary runs them: the init container (render
//! once), the sidecar (keep the files current and tell the app), exec
//! (resolve the environment, then become the app) and install (copy the
//! binary for exec mode). The binary only parses the command line and
//! calls these; an error ends the process non-zero with a message naming
//! the role, the path and Vault's answer (never a value), which
//! `kubectl describe pod` shows.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use tracing::{info, warn};
use vaultsync_inject::AgentConfig;

use crate::{HeldSecrets, calls_of, config_from_env, jittered, login, render_files, resolve_env, write_atomically};

/// The init container: log in, render every file once, exit.
pub async fn init() -> anyhow::Result<()> {
    let config = config_from_env()?;
    let client = login(&config).await?;
    let mut held = HeldSecrets::default();
    let files = render_files(&config, &held.answers(&client, &config, &calls_of(&config)?).await?)?;
    // A sidecar follows: it carries on with what was issued here.
    if let Some(state) = &config.state_dir {
        held.save(Path::new(state))?;
    }
    for (name, content) in &files {
        write_atomically(Path::new(&config.secrets_dir), name, content, mode_of(&config, name))?;
    }
    // As the Vault agent's pre-populate run does: a command that fails
    // fails the init container, so the app does not start on it.
    for name in files.keys() {
        if let Some(command) = command_of(&config, name)
            && !crate::notify::run_file_command(name, command).await
        {
            anyhow::bail!("the command of {name:?} (agent-inject-command) failed");
        }
    }
    info!("vaultsync agent: wrote {} file(s) to {} as role {:?}", files.len(), config.secrets_dir, config.role);
    Ok(())
}

/// The mode of rendered file `file`: its own (`agent-inject-perms-<name>`),
/// else the Pod's.
fn mode_of<'a>(config: &'a AgentConfig, file: &str) -> &'a str {
    config.files.iter().find(|f| f.file == file).and_then(|f| f.mode.as_deref()).unwrap_or(&config.file_mode)
}

/// The command to run after rendered file `file` is written.
fn command_of<'a>(config: &'a AgentConfig, file: &str) -> Option<&'a str> {
    config.files.iter().find(|f| f.file == file).and_then(|f| f.command.as_deref())
}

/// Copies this binary to `path` (exec mode's init container), executable.
pub fn install(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let me = std::env::current_exe().context("finding this binary")?;
    std::fs::copy(&me, path).with_context(|| format!("copying {} to {}", me.display(), path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The sidecar: render, then keep the files current every `poll` (with
/// jitter), rewriting what changed atomically and telling the app. The
/// caller reads `config` and parses its poll interval (the duration syntax
/// lives with the CRDs, which this crate does not depend on).
pub async fn sidecar(config: AgentConfig, poll: Duration) -> anyhow::Result<()> {
    let dir = Path::new(&config.secrets_dir).to_owned();
    let client = login(&config).await?;
    let calls = calls_of(&config)?;
    // Leased credentials are kept and renewed, not issued again each round;
    // the sidecar starts from what the init container was issued.
    let state = config.state_dir.as_deref().map(Path::new);
    let mut held = state.map(HeldSecrets::load).unwrap_or_default();
    let mut last = render_files(&config, &held.answers(&client, &config, &calls).await?)?;
    for (name, content) in &last {
        write_atomically(&dir, name, content, mode_of(&config, name))?;
    }
    // The init container ran each file's command on these same files (a
    // sidecar started without one runs them now).
    if config.state_dir.is_none() {
        for name in last.keys() {
            if let Some(command) = command_of(&config, name) {
                crate::notify::run_file_command(name, command).await;
            }
        }
    }
    info!("vaultsync agent: keeping {} file(s) in {} current every {poll:?}", last.len(), dir.display());
    loop {
        tokio::time::sleep(next_wake(jittered(poll), held.next_due(), client.token_ttl_remaining())).await;
        // Renewed when due even if no read is made this round (everything
        // held): leases issued under the token end with it.
        if let Err(e) = client.ensure_token().await {
            warn!("vaultsync agent: {e}; keeping the files as they are");
            continue;
        }
        // A failed round (Vault away, say) keeps the files as they are.
        let rendered = match held.answers(&client, &config, &calls).await.and_then(|read| render_files(&config, &read))
        {
            Ok(rendered) => rendered,
            Err(e) => {
                warn!("vaultsync agent: {e}; keeping the files as they are");
                continue;
            }
        };
        if let Some(state) = state
            && let Err(e) = held.save(state)
        {
            warn!("vaultsync agent: {e}");
        }
        let mut changed = 0;
        for (name, content) in &rendered {
            if last.get(name) != Some(content) {
                write_atomically(&dir, name, content, mode_of(&config, name))?;
                changed += 1;
                if let Some(command) = command_of(&config, name) {
                    crate::notify::run_file_command(name, command).await;
                }
            }
        }
        if changed > 0 {
            info!("vaultsync agent: {changed} file(s) changed");
            if let (Some(signal), Some(process)) = (&config.notify_signal, &config.notify_process) {
                signal_processes(signal, process);
            }
            if let Some(argv) = &config.notify_command {
                crate::notify::run_command(argv).await;
            }
            if let Some(url) = &config.notify_url {
                crate::notify::post(url).await;
            }
        }
        last = rendered;
    }
}

/// How long the sidecar sleeps: its poll interval, but no later than the
/// next held answer is due, nor than half of the token's remaining life
/// (so that it is renewed, at 2/3 of its TTL, before it ends); at least a
/// second.
fn next_wake(poll: Duration, due: Option<tokio::time::Instant>, token_left: Option<Duration>) -> Duration {
    let mut wake = poll;
    if let Some(due) = due {
        wake = wake.min(due.saturating_duration_since(tokio::time::Instant::now()));
    }
    if let Some(left) = token_left {
        wake = wake.min(left / 2);
    }
    wake.max(Duration::from_secs(1))
}

/// Sends `signal` to every process named `process` (shareProcessNamespace).
fn signal_processes(signal: &str, process: &str) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let name = signal.trim().to_uppercase();
    let Ok(signal) = name.parse::<Signal>().or_else(|_| format!("SIG{name}").parse()) else {
        warn!("vaultsync agent: {signal:?} is not a signal name");
        return;
    };
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim() == process && pid != std::process::id() as i32 {
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) => info!("vaultsync agent: sent {signal} to {process} ({pid})"),
                Err(e) => warn!("vaultsync agent: sending {signal} to {process} ({pid}): {e}"),
            }
        }
    }
}

/// Exec mode: resolve `vault:<path>#<key>` environment values and replace
/// this process with `command`; nothing is written anywhere. Returns only
/// when it could not.
pub async fn exec(command: Vec<String>) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let config = config_from_env()?;
    let client = login(&config).await?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    let resolved = resolve_env(&client, &config, &env).await?;
    drop(client);
    let (program, args) = command.split_first().context("no command to exec")?;
    let error = std::process::Command::new(program)
        .args(args)
        .envs(resolved)
        .env_remove(vaultsync_inject::AGENT_CONFIG_ENV)
        .exec();
    Err(anyhow::anyhow!("exec {program}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sidecar_wakes_for_what_is_due_before_its_poll() {
        let minute = Duration::from_secs(60);
        assert_eq!(next_wake(minute, None, None), minute);
        let soon = tokio::time::Instant::now() + Duration::from_secs(10);
        assert!(next_wake(minute, Some(soon), None) <= Duration::from_secs(10));
        assert_eq!(next_wake(minute, None, Some(Duration::from_secs(30))), Duration::from_secs(15));
        assert_eq!(next_wake(minute, None, Some(Duration::ZERO)), Duration::from_secs(1), "never a busy loop");
    }
}
