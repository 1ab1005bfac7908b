//! KV reads: one secret (coalesced with other readers of it), a secret's
//! KV v2 `custom_metadata`, and the walk that lists every secret under a
//! folder. Each first checks that the mount is KV (see [`super::kv_mount`]).

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Client, Freshness};
use crate::kv::{parse_read, read_path};
use crate::path::{check_in_mount, check_mount, encode};
use crate::telemetry::Operation;
use crate::{Error, KvSecret, KvVersion, Result};

impl Client {
    /// Reads a KV secret at `path` in the KV mount `mount`.
    ///
    /// Reads of the same secret are coalesced: callers asking while a read
    /// is in flight, or within `ServerConfig::read_window` of its answer,
    /// share that one request and its answer (errors included), unless
    /// `freshness` is [`Freshness::Now`].
    pub async fn read_kv(
        &self,
        mount: &str,
        path: &str,
        kv: KvVersion,
        version: Option<&str>,
        freshness: Freshness,
    ) -> Result<KvSecret> {
        let mount = mount.trim_end_matches('/');
        check_mount("mount", mount)?;
        check_in_mount(path, false)?;
        self.check_kv_mount(mount).await?;
        let api_path = read_path(mount, path, kv, version)?;
        self.coalesce(api_path.clone(), freshness, self.read_uncached(mount, path, kv, &api_path)).await
    }

    /// The KV v2 `custom_metadata` of a secret, as a secret of its own.
    pub async fn read_custom_metadata(&self, mount: &str, path: &str) -> Result<KvSecret> {
        let mount = mount.trim_end_matches('/');
        check_mount("mount", mount)?;
        check_in_mount(path, false)?;
        self.check_kv_mount(mount).await?;
        let shown = format!("{mount}/metadata/{path}");
        let api_path = format!("{}/metadata/{}", encode(mount), encode(path));
        let (status, body) = self.authenticated(Operation::ReadMetadata, Method::GET, &api_path, &shown).await?;
        match status {
            StatusCode::OK => {
                let json: Value = serde_json::from_str(&body).map_err(|_| Error::BadResponse {
                    path: shown.clone(),
                    status: 200,
                    detail: "body is not JSON".into(),
                })?;
                let data = json["data"]["custom_metadata"].as_object().cloned().unwrap_or_default();
                Ok(KvSecret { data, version: json["data"]["current_version"].as_u64() })
            }
            StatusCode::NOT_FOUND => Err(Error::NotFound { mount: mount.to_owned(), path: path.to_owned() }),
            StatusCode::FORBIDDEN => Err(Error::PermissionDenied { operation: "read metadata of", path: shown }),
            other => Err(self.unexpected(other, &body, shown)),
        }
    }

    /// Paths (relative to the mount) of every secret under `prefix`,
    /// walking sub-folders. KV v2 lists metadata, which needs the `list`
    /// capability on `<mount>/metadata/<prefix>`.
    pub async fn list_secrets(&self, mount: &str, prefix: &str, kv: KvVersion) -> Result<Vec<String>> {
        // A bound on the walk, so a mount with millions of secrets fails
        // clearly instead of exhausting memory.
        const MAX_SECRETS: usize = 10_000;
        let mount = mount.trim_end_matches('/');
        check_mount("mount", mount)?;
        check_in_mount(prefix, true)?;
        self.check_kv_mount(mount).await?;
        let mut folders = vec![prefix.trim_end_matches('/').to_owned()];
        let mut found = Vec::new();
        while let Some(folder) = folders.pop() {
            let (shown, api_path) = match kv {
                KvVersion::V1 => (format!("{mount}/{folder}"), format!("{}/{}", encode(mount), encode(&folder))),
                KvVersion::V2 => {
                    (format!("{mount}/metadata/{folder}"), format!("{}/metadata/{}", encode(mount), encode(&folder)))
                }
            };
            let shown = shown.trim_end_matches('/').to_owned();
            let api_path = format!("{}?list=true", api_path.trim_end_matches('/'));
            let (status, body) = self.authenticated(Operation::List, Method::GET, &api_path, &shown).await?;
            let keys = match status {
                StatusCode::OK => serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v["data"]["keys"].as_array().cloned())
                    .unwrap_or_default(),
                // Vault answers 404 for a folder with nothing in it.
                StatusCode::NOT_FOUND => Vec::new(),
                StatusCode::FORBIDDEN => {
                    return Err(Error::PermissionDenied { operation: "list", path: shown });
                }
                other => return Err(self.unexpected(other, &body, shown)),
            };
            for key in keys.iter().filter_map(Value::as_str) {
                let full = if folder.is_empty() { key.to_owned() } else { format!("{folder}/{key}") };
                // Names come from Vault, but they become request paths too.
                check_in_mount(&full, true)?;
                match full.strip_suffix('/') {
                    Some(sub) => folders.push(sub.to_owned()),
                    None => found.push(full),
                }
            }
            if found.len() > MAX_SECRETS {
                return Err(Error::InvalidRequest(format!(
                    "more than {MAX_SECRETS} secrets under {mount}/{prefix}; narrow find.path"
                )));
            }
        }
        found.sort();
        Ok(found)
    }

    async fn read_uncached(&self, mount: &str, path: &str, kv: KvVersion, api_path: &str) -> Result<KvSecret> {
        let display = format!("{mount}/{path}");
        let (status, body) = self.authenticated(Operation::Read, Method::GET, api_path, &display).await?;
        match status {
            StatusCode::OK => {
                let json: Value = serde_json::from_str(&body).map_err(|_| Error::BadResponse {
                    path: display.clone(),
                    status: 200,
                    detail: "body is not JSON".into(),
                })?;
                parse_read(&json, mount, path, kv)
            }
            StatusCode::NOT_FOUND => Err(Error::NotFound { mount: mount.to_owned(), path: path.to_owned() }),
            StatusCode::FORBIDDEN => Err(Error::PermissionDenied { operation: "read", path: display }),
            other => Err(self.unexpected(other, &body, display)),
        }
    }
}
