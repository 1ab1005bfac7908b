use serde_json::{Map, Value};

use crate::path::encode;
use crate::{Error, Result};

/// KV secrets engine version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvVersion {
    V1,
    V2,
}

/// One KV secret. `Debug` shows its keys, never its values.
#[derive(Clone)]
pub struct KvSecret {
    pub data: Map<String, Value>,
    /// KV v2 version that was read.
    pub version: Option<u64>,
}

impl std::fmt::Debug for KvSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvSecret")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("version", &self.version)
            .finish()
    }
}

/// The API path of a read, from a checked mount and path.
pub(crate) fn read_path(mount: &str, path: &str, kv: KvVersion, version: Option<&str>) -> Result<String> {
    let (mount, path) = (encode(mount), encode(path));
    match (kv, version) {
        (KvVersion::V1, Some(_)) => Err(Error::InvalidRequest(format!(
            "remoteRef.version is only supported on KV v2 mounts, and {mount} is KV v1"
        ))),
        (KvVersion::V1, None) => Ok(format!("{mount}/{path}")),
        (KvVersion::V2, None) => Ok(format!("{mount}/data/{path}")),
        (KvVersion::V2, Some(v)) => {
            let v: u64 =
                v.parse().map_err(|_| Error::InvalidRequest(format!("remoteRef.version {v:?} is not a number")))?;
            Ok(format!("{mount}/data/{path}?version={v}"))
        }
    }
}

/// Turns a successful read's body into a secret.
pub(crate) fn parse_read(body: &Value, mount: &str, path: &str, kv: KvVersion) -> Result<KvSecret> {
    let not_found = || Error::NotFound { mount: mount.to_owned(), path: path.to_owned() };
    let bad =
        |detail: &str| Error::BadResponse { path: format!("{mount}/{path}"), status: 200, detail: detail.to_owned() };
    let data = body.get("data").ok_or_else(|| bad("no data field"))?;
    match kv {
        KvVersion::V1 => match data {
            Value::Object(map) => Ok(KvSecret { data: map.clone(), version: None }),
            Value::Null => Err(not_found()),
            _ => Err(bad("data is not an object")),
        },
        KvVersion::V2 => {
            let metadata = data.get("metadata");
            // A deleted or destroyed version reads as data: null, with its
            // metadata still there.
            let deleted =
                metadata.and_then(|m| m.get("deletion_time")).and_then(Value::as_str).is_some_and(|t| !t.is_empty());
            let destroyed = metadata.and_then(|m| m.get("destroyed")).and_then(Value::as_bool).unwrap_or(false);
            if deleted || destroyed {
                return Err(not_found());
            }
            let version = metadata.and_then(|m| m.get("version")).and_then(Value::as_u64);
            match data.get("data") {
                Some(Value::Object(map)) => Ok(KvSecret { data: map.clone(), version }),
                Some(Value::Null) | None => Err(not_found()),
                Some(_) => Err(bad("data.data is not an object")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn builds_read_paths() {
        assert_eq!(read_path("secret", "a", KvVersion::V2, None).unwrap(), "secret/data/a");
        assert_eq!(read_path("secret", "a", KvVersion::V2, Some("3")).unwrap(), "secret/data/a?version=3");
        assert_eq!(read_path("kv", "a", KvVersion::V1, None).unwrap(), "kv/a");
        assert!(read_path("kv", "a", KvVersion::V1, Some("3")).is_err());
        assert!(read_path("secret", "a", KvVersion::V2, Some("x&y=1")).is_err());
        assert_eq!(read_path("secret", "a b/c", KvVersion::V2, None).unwrap(), "secret/data/a%20b/c");
    }

    #[test]
    fn parses_v2_and_treats_deleted_versions_as_missing() {
        let ok = json!({"data": {"data": {"k": "v"}, "metadata": {"version": 4, "deletion_time": ""}}});
        let secret = parse_read(&ok, "secret", "a", KvVersion::V2).unwrap();
        assert_eq!(secret.version, Some(4));
        assert_eq!(secret.data["k"], "v");
        let deleted =
            json!({"data": {"data": null, "metadata": {"version": 5, "deletion_time": "2026-01-01T00:00:00Z"}}});
        assert!(matches!(parse_read(&deleted, "secret", "a", KvVersion::V2), Err(Error::NotFound { .. })));
        let v1 = json!({"data": {"k": "v"}});
        assert_eq!(parse_read(&v1, "kv", "a", KvVersion::V1).unwrap().data["k"], "v");
    }

    #[test]
    fn debug_shows_keys_not_values() {
        let secret = KvSecret { data: json!({"password": "hunter2"}).as_object().unwrap().clone(), version: Some(1) };
        let printed = format!("{secret:?}");
        assert!(printed.contains("password") && !printed.contains("hunter2"), "{printed}");
    }
}
