//! Rendering the files a Pod asked for, and writing them so that a reader
//! never sees a partial file.

use std::collections::BTreeMap;
use std::path::Path;

use vaultsync_inject::{AgentConfig, SecretFile};
use vaultsync_template::VaultCall;

use crate::AgentError;

/// The Vault agent injector's template for a secret without one: each key
/// of the response's `data`, as Go prints it.
fn default_template(path: &str) -> String {
    let quoted = serde_json::to_string(path).unwrap_or_default();
    format!(
        "{{{{ with secret {quoted} }}}}{{{{ range $k, $v := .Data }}}}{{{{ $k }}}}: {{{{ $v }}}}\n{{{{ end }}}}{{{{ end }}}}"
    )
}

fn template_of(file: &SecretFile) -> String {
    file.template.clone().unwrap_or_else(|| default_template(&file.path))
}

fn delims(file: &SecretFile) -> vaultsync_template::Delims<'_> {
    match &file.delimiters {
        Some((left, right)) => vaultsync_template::Delims { left, right },
        None => vaultsync_template::Delims::default(),
    }
}

/// The `secret` calls the files make (reads, and writes such as
/// `pki/issue/...` with parameters), each once, in order of first use.
pub fn calls_of(config: &AgentConfig) -> Result<Vec<VaultCall>, AgentError> {
    let mut calls = Vec::new();
    for file in &config.files {
        let found = vaultsync_template::vault_template_calls_delimited(&file.name, &template_of(file), delims(file))
            .map_err(|e| AgentError::Render { file: file.file.clone(), reason: e.to_string() })?;
        for call in found {
            if !calls.contains(&call) {
                calls.push(call);
            }
        }
    }
    Ok(calls)
}

/// Renders every file from `secrets` (each call's answer, by
/// [`VaultCall::key`]): file name to content.
pub fn render_files(
    config: &AgentConfig,
    secrets: &BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, Vec<u8>>, AgentError> {
    let mut rendered = BTreeMap::new();
    for file in &config.files {
        let options = vaultsync_template::AgentTemplateOptions {
            delims: delims(file),
            error_on_missing_key: file.error_on_missing_key,
        };
        let content = vaultsync_template::render_vault_template_with(&file.name, &template_of(file), secrets, options)
            .map_err(|e| AgentError::Render { file: file.file.clone(), reason: e.to_string() })?;
        rendered.insert(file.file.clone(), content);
    }
    Ok(rendered)
}

/// Writes `content` to `dir/name` with `mode` (octal text): a temporary
/// file in the same directory, then a rename.
pub fn write_atomically(dir: &Path, name: &str, content: &[u8], mode: &str) -> Result<(), AgentError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let error = |reason: String| AgentError::Write { file: name.to_owned(), reason };
    let mode = u32::from_str_radix(mode.trim_start_matches("0o"), 8)
        .map_err(|_| error(format!("mode {mode:?} is not octal")))?;
    let target = dir.join(name);
    let parent = target.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(|e| error(e.to_string()))?;
    let temp = parent.join(format!(
        ".{}.{}.tmp",
        target.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| error(e.to_string()))?;
        file.write_all(content).map_err(|e| error(e.to_string()))?;
        file.sync_all().map_err(|e| error(e.to_string()))?;
    }
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode)).map_err(|e| error(e.to_string()))?;
    std::fs::rename(&temp, &target).map_err(|e| error(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_replaced_whole_with_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        write_atomically(dir.path(), "db", b"one", "0440").unwrap();
        write_atomically(dir.path(), "db", b"two", "0440").unwrap();
        assert_eq!(std::fs::read(dir.path().join("db")).unwrap(), b"two");
        let mode = std::fs::metadata(dir.path().join("db")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o440);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn the_default_template_reads_the_path() {
        assert_eq!(
            vaultsync_template::vault_template_paths(&default_template("secret/data/a b")),
            vec!["secret/data/a b"]
        );
    }
}
