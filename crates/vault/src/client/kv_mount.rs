//! The KV mount check: a KV read goes only to a mount Vault itself says
//! is KV, and anything short of that answer refuses the read (fail-closed).

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::Client;
use crate::path::encode;
use crate::telemetry::Operation;
use crate::{Error, Result};

impl Client {
    /// Reads only from a mount Vault confirms is KV: a database, PKI or
    /// transit engine read "as KV" issues credentials or exposes keys, and
    /// behind a Vault namespace or a path rewrite the mount Vault serves
    /// may not be the one vaultsync thinks it names. Asked once per mount
    /// and client, through the endpoint Vault's own CLI uses to learn a
    /// mount's type (it needs no right beyond some access to the mount).
    /// Fails closed: only an answer that names exactly this mount with type
    /// `kv` (or `generic`, KV v1's old name) lets a read through; a 403, a
    /// missing type or another mount path refuses it. Refusals that a
    /// policy change can fix are not remembered, so the fix takes effect.
    pub(super) async fn check_kv_mount(&self, mount: &str) -> Result<()> {
        if let Some(known) = self.inner.kv_mounts.lock().expect("mount cache lock").get(mount) {
            return known.clone();
        }
        let token = self.token().await?;
        let api_path = format!("sys/internal/ui/mounts/{}", encode(mount));
        // Not `authenticated`: a 403 here is an answer, not a reason to
        // log in again.
        let (status, body) = self.send(Operation::MountInfo, Method::GET, &api_path, Some(&token), None).await?;
        let unverified = |reason: String| Err(Error::UnverifiedMount { mount: mount.to_owned(), reason });
        let verdict = match status {
            StatusCode::OK => {
                let answer = serde_json::from_str::<Value>(&body).unwrap_or_default();
                let kind = answer["data"]["type"].as_str().unwrap_or_default().to_owned();
                let served = answer["data"]["path"].as_str().map(|p| p.trim_end_matches('/').to_owned());
                match (kind.as_str(), served) {
                    ("kv" | "generic", Some(served)) if served == mount => Ok(()),
                    ("kv" | "generic", Some(served)) => {
                        return unverified(format!(
                            "Vault serves it from mount {served:?}, so it is not a mount of its own (a Vault namespace belongs in provider.vault.namespace, not in the path)"
                        ));
                    }
                    ("kv" | "generic", None) => return unverified("Vault's answer names no mount path".into()),
                    ("", _) => return unverified("Vault's answer names no engine type".into()),
                    _ => Err(Error::NotKv { mount: mount.to_owned(), kind }),
                }
            }
            StatusCode::SERVICE_UNAVAILABLE => return Err(self.unexpected(status, &body, api_path)),
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => {
                return unverified(format!(
                    "Vault would not say what engine serves it (HTTP {}): no mount of that path exists, or the token has no capability inside it (a Vault namespace belongs in provider.vault.namespace, not in the path)",
                    status.as_u16()
                ));
            }
            other => return Err(self.unexpected(other, &body, api_path)),
        };
        self.inner.kv_mounts.lock().expect("mount cache lock").insert(mount.to_owned(), verdict.clone());
        verdict
    }
}
