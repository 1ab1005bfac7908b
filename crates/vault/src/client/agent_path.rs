//! The path a Vault agent template's `secret "<path>"` reads, as
//! consul-template (inside the Vault agent) resolves it: on a KV v2 mount,
//! `secret/devops` means `secret/data/devops`.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::Client;
use crate::Result;
use crate::path::encode;
use crate::telemetry::Operation;

impl Client {
    /// The path to read for a template's `path`: on a KV v2 mount (as Vault
    /// describes the mount that serves `path`), `<mount>/data/<rest>`,
    /// unless `rest` already starts with `data/` or `metadata/`; the mount
    /// itself reads `<mount>/data`. Anywhere else, or when Vault will not
    /// say (consul-template then assumes no KV v2 as well), `path` as it is.
    /// Asked once per path and client.
    pub async fn agent_read_path(&self, path: &str) -> Result<String> {
        let path = path.trim_start_matches('/');
        if let Some(known) = self.inner.agent_paths.lock().expect("agent path lock").get(path) {
            return Ok(known.clone());
        }
        let token = self.token().await?;
        let api_path = format!("sys/internal/ui/mounts/{}", encode(path));
        let (status, body) = self.send(Operation::MountInfo, Method::GET, &api_path, Some(&token), None).await?;
        let kv2_mount = match status {
            StatusCode::OK => {
                let answer = serde_json::from_str::<Value>(&body).unwrap_or_default();
                let data = &answer["data"];
                let version = data["options"]["version"].as_str().unwrap_or_default();
                (data["type"] == "kv" && version == "2")
                    .then(|| data["path"].as_str().map(|p| p.trim_end_matches('/').to_owned()))
                    .flatten()
            }
            StatusCode::SERVICE_UNAVAILABLE => return Err(self.unexpected(status, &body, api_path)),
            _ => None,
        };
        let read = match kv2_mount {
            Some(mount) => kv2_data_path(path, &mount),
            None => path.to_owned(),
        };
        self.inner.agent_paths.lock().expect("agent path lock").insert(path.to_owned(), read.clone());
        Ok(read)
    }
}

/// `path` on the KV v2 mount `mount`, as consul-template shims it.
fn kv2_data_path(path: &str, mount: &str) -> String {
    if path == mount {
        return format!("{mount}/data");
    }
    let Some(rest) = path.strip_prefix(mount).and_then(|r| r.strip_prefix('/')) else {
        return path.to_owned();
    };
    if rest.starts_with("data/") || rest.starts_with("metadata/") {
        return path.to_owned();
    }
    format!("{mount}/data/{rest}")
}

#[cfg(test)]
mod tests {
    use super::kv2_data_path;

    #[test]
    fn kv2_paths_read_under_data_as_consul_template_reads_them() {
        assert_eq!(kv2_data_path("secret/devops", "secret"), "secret/data/devops");
        assert_eq!(kv2_data_path("secret/data/devops", "secret"), "secret/data/devops");
        assert_eq!(kv2_data_path("secret/metadata/devops", "secret"), "secret/metadata/devops");
        assert_eq!(kv2_data_path("secret", "secret"), "secret/data");
        assert_eq!(kv2_data_path("team/kv/app/db", "team/kv"), "team/kv/data/app/db");
        assert_eq!(kv2_data_path("secret/database/data", "secret"), "secret/data/database/data");
        // A path of another mount is left alone.
        assert_eq!(kv2_data_path("secretive/x", "secret"), "secretive/x");
    }
}
