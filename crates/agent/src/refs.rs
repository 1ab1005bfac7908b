//! Exec mode: environment values of the form `vault:<path>#<key>` (e.g.
//! `vault:secret/data/app#password`) are replaced by the value at `key` of
//! the secret at `path` (for a KV v2 read, `data.data`; else `data`).

use vaultsync_inject::AgentConfig;
use vaultsync_template::VaultCall;
use vaultsync_vault::Client;

use crate::{AgentError, call_all};

/// One reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultRef {
    pub path: String,
    pub key: String,
}

impl VaultRef {
    pub fn parse(value: &str) -> Option<Result<VaultRef, String>> {
        let rest = value.strip_prefix(vaultsync_inject::VAULT_REF_PREFIX)?;
        Some(match rest.rsplit_once('#') {
            Some((path, key)) if !path.is_empty() && !key.is_empty() => {
                Ok(VaultRef { path: path.to_owned(), key: key.to_owned() })
            }
            _ => Err(format!("{value:?} is not vault:<path>#<key>")),
        })
    }
}

/// The environment with every reference resolved (only the changed
/// variables are returned).
pub async fn resolve_env(
    client: &Client,
    config: &AgentConfig,
    env: &[(String, String)],
) -> Result<Vec<(String, String)>, AgentError> {
    let mut wanted = Vec::new();
    for (name, value) in env {
        if let Some(parsed) = VaultRef::parse(value) {
            let r = parsed.map_err(|e| AgentError::Reference(format!("environment variable {name}: {e}")))?;
            wanted.push((name.clone(), r));
        }
    }
    // Each path read once, however many variables refer to it: a dynamic
    // path read twice would issue two credentials.
    let mut calls: Vec<VaultCall> = Vec::new();
    for (_, r) in &wanted {
        if !calls.iter().any(|c| c.path == r.path) {
            calls.push(VaultCall { path: r.path.clone(), params: Vec::new() });
        }
    }
    let secrets = call_all(client, config, &calls).await?;
    let mut resolved = Vec::new();
    for (name, r) in wanted {
        let response = &secrets[&r.path];
        let data = response.pointer("/data/data").filter(|d| d.is_object()).or_else(|| response.get("data"));
        let value = data.and_then(|d| d.get(&r.key)).ok_or_else(|| {
            let keys: Vec<String> =
                data.and_then(|d| d.as_object()).map(|o| o.keys().cloned().collect()).unwrap_or_default();
            AgentError::Reference(format!(
                "environment variable {name}: {} has no key {:?} (its keys: {})",
                r.path,
                r.key,
                keys.join(", ")
            ))
        })?;
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        resolved.push((name, text));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_need_a_path_and_a_key() {
        assert_eq!(
            VaultRef::parse("vault:secret/data/app#password"),
            Some(Ok(VaultRef { path: "secret/data/app".into(), key: "password".into() }))
        );
        assert!(VaultRef::parse("vault:secret/data/app").unwrap().is_err());
        assert_eq!(VaultRef::parse("plain"), None);
    }
}
