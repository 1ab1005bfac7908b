//! A store's or generator's `server` is an origin, not a URL to complete:
//! whoever writes it chooses where vaultsync connects, never what it asks
//! there. Every request is built as this base, `/v1/`, and path segments
//! that [`crate::path`] checked and encoded, so a `server` ending in `#`,
//! `?x=` or a path of its own cannot turn a Vault read into a GET of some
//! other endpoint of that host.

use reqwest::Url;

use crate::{Error, Result};

/// Checks `server` and returns the base every request starts with:
/// `scheme://host[:port]` plus, when Vault is served under one, a path
/// prefix of plain segments (letters, digits, `-`, `.`, `_`, `~`; no `.`
/// or `..` segment), without a trailing `/`.
pub fn check_server(server: &str) -> Result<String> {
    let refuse = |reason: &str| Error::InvalidServer { server: server.to_owned(), reason: reason.to_owned() };
    // Checked on the raw text too: the URL parser would silently drop or
    // normalise some of these (an empty `?` or `#`, `\` in special schemes).
    if server.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse("contains whitespace or a control character"));
    }
    if server.contains(['?', '#']) {
        return Err(refuse("contains '?' or '#': give scheme, host and port only"));
    }
    if server.contains(['@', '\\', '%']) {
        return Err(refuse("contains '@', '\\' or '%': give scheme, host and port only"));
    }
    let url = Url::parse(server).map_err(|e| refuse(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("names no host"));
    }
    let prefix = url.path().trim_end_matches('/');
    // The parser resolves `..`; the raw text is what the person wrote.
    let raw_path = server.splitn(4, '/').nth(3).unwrap_or_default().trim_end_matches('/');
    for segment in raw_path.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return Err(refuse("has a '.' or '..' path segment"));
        }
        if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
            return Err(refuse("has a path prefix with characters other than letters, digits, '-', '.', '_' and '~'"));
        }
    }
    if raw_path.split('/').any(str::is_empty) && !raw_path.is_empty() {
        return Err(refuse("has an empty path segment ('//')"));
    }
    Ok(format!("{}{prefix}", url.origin().ascii_serialization()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_scheme_host_port_and_a_plain_prefix() {
        assert_eq!(check_server("https://vault.example.com:8200").unwrap(), "https://vault.example.com:8200");
        assert_eq!(check_server("https://vault.example.com:8200/").unwrap(), "https://vault.example.com:8200");
        assert_eq!(check_server("http://127.0.0.1:8200").unwrap(), "http://127.0.0.1:8200");
        assert_eq!(check_server("https://gw.example.com/vault").unwrap(), "https://gw.example.com/vault");
        assert_eq!(
            check_server("https://gw.example.com/team-a/vault/").unwrap(),
            "https://gw.example.com/team-a/vault"
        );
        assert_eq!(check_server("https://[::1]:8200").unwrap(), "https://[::1]:8200");
        // The default port is dropped, as the URL means the same.
        assert_eq!(check_server("https://vault:443").unwrap(), "https://vault");
    }

    #[test]
    fn refuses_what_would_change_the_request() {
        for server in [
            "http://host/internal/admin#",
            "http://host/internal/admin?x=",
            "http://host?",
            "http://host/a/../internal",
            "http://host/a/./b",
            "http://host/%2e%2e/x",
            "http://host/a%2fb",
            "http://user:pass@host",
            "http://host\\@evil",
            "http://host/a b",
            "http://host//x",
            "ftp://host",
            "file:///etc/passwd",
            "host:8200",
            "http://",
            "",
        ] {
            assert!(matches!(check_server(server), Err(Error::InvalidServer { .. })), "{server:?} must be refused");
        }
    }

    #[test]
    fn error_says_what_to_write() {
        let message = check_server("http://host/admin#").unwrap_err().to_string();
        assert!(message.contains("\"http://host/admin#\"") && message.contains("scheme, host and port"), "{message}");
    }
}
