/// What went wrong talking to Vault. Messages name the server, mount, path
/// and status so a person can act, and never contain a secret value.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    #[error("permission denied to {operation} {path} (check the policies of the token vaultsync logs in with)")]
    PermissionDenied { operation: &'static str, path: String },
    #[error("secret not found at {mount}/{path} (mount {mount:?})")]
    NotFound { mount: String, path: String },
    #[error("Vault at {address} is sealed")]
    Sealed { address: String },
    #[error("Vault at {address} is unreachable: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("unexpected response from Vault for {path}: HTTP {status}: {detail}")]
    BadResponse { path: String, status: u16, detail: String },
    #[error("{method} login at auth/{mount} failed: HTTP {status}: {detail}")]
    Login { method: &'static str, mount: String, status: u16, detail: String },
    #[error("{method} login at auth/{mount} failed: {reason}")]
    Credential { method: &'static str, mount: String, reason: String },
    #[error("{field} {value:?} is refused: it {reason}")]
    InvalidPath { field: &'static str, value: String, reason: &'static str },
    #[error("mount {mount:?} is a {kind} engine, not a KV secrets engine; vaultsync reads KV mounts only")]
    NotKv { mount: String, kind: String },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("server {server:?} is refused: it {reason}")]
    InvalidServer { server: String, reason: String },
    #[error("mount {mount:?} is refused: {reason}; vaultsync reads only mounts Vault confirms are KV secrets engines")]
    UnverifiedMount { mount: String, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The client was closed (its store changed or was deleted, or the
    /// process is stopping) and its token revoked; a retry takes the new one.
    #[error("the Vault client of this store was closed (the store changed or was deleted); retrying")]
    Closed,
}

impl Error {
    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::PermissionDenied { .. } => "permission_denied",
            Error::NotFound { .. } => "not_found",
            Error::Sealed { .. } => "sealed",
            Error::Unreachable { .. } => "unreachable",
            Error::BadResponse { .. } => "bad_response",
            Error::Login { .. } | Error::Credential { .. } => "login",
            Error::InvalidPath { .. } | Error::NotKv { .. } => "invalid_path",
            Error::InvalidRequest(_) => "invalid_request",
            Error::InvalidServer { .. } => "invalid_server",
            Error::UnverifiedMount { .. } => "invalid_path",
            Error::Tls(_) => "tls",
            Error::Closed => "closed",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Vault's own error strings from a response body (`{"errors": [...]}`),
/// capped: they explain a refusal and carry no secret data.
pub(crate) fn vault_errors(body: &str) -> String {
    let joined = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errors")?
                .as_array()
                .map(|errors| errors.iter().filter_map(|e| e.as_str()).collect::<Vec<_>>().join("; "))
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "no error detail".to_owned());
    let mut capped: String = joined.chars().take(300).collect();
    if capped.len() < joined.len() {
        capped.push('…');
    }
    capped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_vault_error_strings() {
        assert_eq!(vault_errors(r#"{"errors":["permission denied","x"]}"#), "permission denied; x");
        assert_eq!(vault_errors("<html>"), "no error detail");
        assert_eq!(vault_errors(r#"{"errors":[]}"#), "no error detail");
        let long = format!(r#"{{"errors":["{}"]}}"#, "a".repeat(500));
        assert!(vault_errors(&long).chars().count() <= 301);
    }
}
