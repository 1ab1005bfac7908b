//! Vault paths taken from user input (a store's `path`, a `remoteRef.key`,
//! a `find.path`, an auth mount) are checked before any request, so that
//! whoever writes an ExternalSecret or a store can name secrets inside a
//! KV mount and nothing else: no `..` that the URL parser or Vault would
//! resolve into another mount, no query string, no system backends.
//!
//! Checked paths are sent percent-encoded segment by segment, so a
//! character that survives the check reaches Vault as a literal part of a
//! name.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::{Error, Result};

/// Mounts that are never KV secrets: auth methods, the system backend,
/// identity, and the per-token cubbyhole (which would hand each store's
/// own scratch space to whoever writes an ExternalSecret).
const RESERVED_MOUNTS: [&str; 4] = ["auth", "sys", "identity", "cubbyhole"];

const RESERVED_IN_KEY: &str = "has a segment named like a system mount (auth, sys, identity, cubbyhole), \
     which behind a Vault namespace or a decoding proxy would reach that mount";

/// Everything but RFC 3986's unreserved characters is escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A secret's place: a KV mount and a path inside it, both checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub mount: String,
    pub path: String,
}

/// Splits a store's `path` and a `remoteRef.key` (named by `field` in
/// errors) into a checked mount and path. With a store path, a key that
/// repeats the mount (as some ESO manifests do) has it stripped; without
/// one, the key's first segment is the mount.
pub fn locate(store_path: Option<&str>, key: &str, field: &'static str) -> Result<Location> {
    check(field, key, Trailing::Refused)?;
    split(store_path, key, field, false)
}

/// The same for `dataFrom.find.path`, a folder: it may be empty (the whole
/// mount, when the store has a path) and may end with `/`.
pub fn locate_folder(store_path: Option<&str>, folder: &str, field: &'static str) -> Result<Location> {
    if !folder.is_empty() {
        check(field, folder, Trailing::Allowed)?;
    }
    split(store_path, folder.trim_end_matches('/'), field, true)
}

fn split(store_path: Option<&str>, key: &str, field: &'static str, folder: bool) -> Result<Location> {
    match store_path.map(|p| p.trim_end_matches('/')).filter(|p| !p.is_empty()) {
        Some(mount) => {
            check_mount("path", mount)?;
            let path = key.strip_prefix(mount).and_then(|rest| rest.strip_prefix('/')).unwrap_or(key);
            refuse_reserved(field, key, RESERVED_IN_KEY)?;
            Ok(Location { mount: mount.to_owned(), path: path.to_owned() })
        }
        None => {
            let Some((mount, path)) = key.split_once('/').or(folder.then_some((key, ""))) else {
                return Err(refused(
                    field,
                    key,
                    "names only a mount; the store sets no path, so the key must be <mount>/<path>",
                ));
            };
            // The whole key is named in the error: it is what the person wrote.
            check_mount(field, mount).map_err(|error| match error {
                Error::InvalidPath { reason, .. } => refused(field, key, reason),
                other => other,
            })?;
            refuse_reserved(field, key, RESERVED_IN_KEY)?;
            Ok(Location { mount: mount.to_owned(), path: path.to_owned() })
        }
    }
}

/// Checks a mount (a store's `path`, or the first segment of a key).
pub fn check_mount(field: &'static str, mount: &str) -> Result<()> {
    check(field, mount, Trailing::Allowed)?;
    refuse_reserved(field, mount, "names a system mount (auth/, sys/, identity/, cubbyhole/), not a KV secrets engine")
}

/// Checks the path of a dynamic-secrets request (a generator's): a path in
/// a secrets engine, not in one of Vault's own mounts.
pub fn check_engine_path(field: &'static str, path: &str) -> Result<()> {
    let path = path.trim_start_matches('/');
    check(field, path, Trailing::Refused)?;
    refuse_reserved(
        field,
        path,
        "names a system mount (auth/, sys/, identity/, cubbyhole/), not a secrets engine that issues credentials",
    )
}

/// Refuses `path` when any of its segments, fully percent-decoded and in
/// any case, is one of Vault's own mounts. Any segment, not the first:
/// behind a Vault namespace (`team/auth/token/lookup-self`, or a store
/// `path` that names a namespace) a mount starts wherever the namespace
/// prefix ends, and nothing here can tell a namespace from a folder.
/// Fully decoded: a proxy that decodes the path once more before Vault
/// (nginx `proxy_pass` with a URI does) turns `%2561uth` into `auth`.
/// The price is that a KV secret with a segment named like a system mount
/// cannot be read; docs/security.md says so (rule 3).
fn refuse_reserved(field: &'static str, path: &str, reason: &'static str) -> Result<()> {
    for segment in path.split('/') {
        let decoded = fully_decoded(segment);
        if RESERVED_MOUNTS.iter().any(|reserved| decoded.eq_ignore_ascii_case(reserved)) {
            return Err(refused(field, path, reason));
        }
    }
    Ok(())
}

/// A segment decoded until decoding changes nothing (bounded: every round
/// shortens it, so a segment of n bytes settles within n/3 rounds).
fn fully_decoded(segment: &str) -> String {
    let mut decoded = segment.to_owned();
    loop {
        let next = percent_decode_str(&decoded).decode_utf8_lossy().into_owned();
        if next == decoded {
            return decoded;
        }
        decoded = next;
    }
}

/// Checks the mount path of an auth method (`auth/<mount>/login`).
pub fn check_auth_mount(field: &'static str, mount: &str) -> Result<()> {
    check(field, mount, Trailing::Allowed)
}

/// Checks a path inside a mount again where a request is built, so no
/// caller can skip [`locate`]. A folder may be empty (the mount itself).
pub(crate) fn check_in_mount(path: &str, folder: bool) -> Result<()> {
    match folder {
        true if path.is_empty() => return Ok(()),
        true => check("path", path, Trailing::Allowed)?,
        false => check("path", path, Trailing::Refused)?,
    }
    refuse_reserved("path", path, "has a segment named like a system mount (auth, sys, identity, cubbyhole)")
}

/// Whether a path may end with `/` (a folder or a mount).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trailing {
    Allowed,
    Refused,
}

fn check(field: &'static str, value: &str, trailing: Trailing) -> Result<()> {
    if value.is_empty() {
        return Err(refused(field, value, "is empty"));
    }
    if value.starts_with('/') {
        return Err(refused(field, value, "starts with '/': give the path inside the mount, not an absolute path"));
    }
    let body = match trailing {
        Trailing::Allowed => value.strip_suffix('/').unwrap_or(value),
        Trailing::Refused => value,
    };
    for segment in body.split('/') {
        if segment.is_empty() {
            return Err(refused(field, value, "has an empty segment ('//' or a trailing '/')"));
        }
        check_segment(segment).map_err(|reason| refused(field, value, reason))?;
        // What Vault would see once it decodes the request path, as often as
        // proxies on the way might decode it again (every round removes a
        // '%', so this ends).
        let mut decoded = segment.to_owned();
        loop {
            let next = percent_decode_str(&decoded).decode_utf8_lossy().into_owned();
            if next == decoded {
                break;
            }
            if next.contains('/') {
                return Err(refused(field, value, "holds a percent-encoded '/'"));
            }
            check_segment(&next).map_err(|reason| refused(field, value, reason))?;
            decoded = next;
        }
    }
    Ok(())
}

fn check_segment(segment: &str) -> std::result::Result<(), &'static str> {
    if segment == "." || segment == ".." {
        return Err("has a '.' or '..' segment (also percent-encoded), which would leave the mount");
    }
    if segment.contains(['?', '#']) {
        return Err("contains '?' or '#', which would end the path");
    }
    if segment.contains('\\') {
        return Err("contains a backslash");
    }
    if segment.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    Ok(())
}

fn refused(field: &'static str, value: &str, reason: &'static str) -> Error {
    Error::InvalidPath { field, value: value.to_owned(), reason }
}

/// A checked path as it goes into a URL: each segment percent-encoded.
pub(crate) fn encode(path: &str) -> String {
    path.split('/').map(|segment| utf8_percent_encode(segment, SEGMENT).to_string()).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(mount: &str, path: &str) -> Location {
        Location { mount: mount.into(), path: path.into() }
    }

    #[test]
    fn splits_mount_and_path() {
        assert_eq!(locate(Some("secret"), "app/db", "key").unwrap(), loc("secret", "app/db"));
        assert_eq!(locate(Some("secret/"), "secret/app/db", "key").unwrap(), loc("secret", "app/db"));
        assert_eq!(locate(Some("secret"), "secretive/x", "key").unwrap(), loc("secret", "secretive/x"));
        assert_eq!(locate(Some("kv/team-a"), "app", "key").unwrap(), loc("kv/team-a", "app"));
        assert_eq!(locate(None, "kv/app/db", "key").unwrap(), loc("kv", "app/db"));
        assert_eq!(locate_folder(Some("secret"), "", "find.path").unwrap(), loc("secret", ""));
        assert_eq!(locate_folder(Some("secret"), "app/", "find.path").unwrap(), loc("secret", "app"));
        assert_eq!(locate_folder(None, "kv/", "find.path").unwrap(), loc("kv", ""));
        assert!(locate_folder(None, "", "find.path").is_err());
        assert!(locate_folder(None, "sys/", "find.path").is_err());
    }

    #[test]
    fn keeps_dots_and_odd_characters_that_stay_inside_a_segment() {
        for key in ["app/db.v2", "app/a..b", "app/...", "app/.hidden", "app/with space", "app/100%", "app/x%2", "app/ü"]
        {
            assert!(locate(Some("secret"), key, "key").is_ok(), "{key} must be accepted");
        }
    }

    #[test]
    fn refuses_keys_that_leave_the_mount() {
        let refused_keys = [
            "../auth/token/lookup-self",
            "app/../../sys/health",
            "app/./db",
            "%2e%2e/auth/token/lookup-self",
            "%2E%2e/x",
            "app/%252e%252e/x",
            "app%2f..%2fx",
            "app/db?version=1",
            "app/db#x",
            "app/d\nb",
            "app/d\u{0}b",
            "app\\..\\x",
            "/secret/app",
            "app//db",
            "app/db/",
            "",
        ];
        for key in refused_keys {
            assert!(
                matches!(locate(Some("secret"), key, "key"), Err(Error::InvalidPath { .. })),
                "{key:?} must be refused"
            );
        }
    }

    #[test]
    fn refuses_system_mounts() {
        for (store_path, key) in [
            (None, "auth/token/lookup-self"),
            (None, "sys/health/x"),
            (None, "identity/entity/id"),
            (None, "cubbyhole/x"),
            (None, "SYS/x"),
            (Some("auth/token"), "lookup-self"),
            (Some("sys"), "health"),
            (None, "secret"),
        ] {
            assert!(locate(store_path, key, "key").is_err(), "{store_path:?} {key:?} must be refused");
        }
        assert!(check_auth_mount("mountPath", "../sys").is_err());
    }

    #[test]
    fn refuses_system_mounts_behind_a_namespace_or_an_encoding() {
        for (store_path, key) in [
            (None, "t7ns/auth/token/lookup-self"),
            (None, "t7ns/sys/mounts"),
            (None, "a/b/Identity/entity"),
            (Some("t7ns"), "auth/token/lookup-self"),
            (Some("t7ns/sys"), "mounts"),
            (None, "%61uth/token/lookup-self"),
            (None, "%2561uth/token/lookup-self"),
            (None, "t7ns/%252573ys/mounts"),
            (Some("secret"), "app/%63ubbyhole"),
        ] {
            assert!(locate(store_path, key, "key").is_err(), "{store_path:?} {key:?} must be refused");
        }
        assert!(check_in_mount("x/auth/y", false).is_err());
        assert!(check_in_mount("x/%2573ys", true).is_err());
        assert!(check_engine_path("path", "t7ns/auth/token/create").is_err());
        assert!(check_engine_path("path", "db/%61uth").is_err());
        // Names that merely contain a reserved word stay readable.
        assert!(locate(Some("secret"), "authors/sysadmin", "key").is_ok());
        assert!(check_auth_mount("mountPath", "kubernetes/prod").is_ok());
    }

    #[test]
    fn generators_issue_from_secrets_engines_only() {
        for good in ["database/creds/app", "/pki/issue/web", "aws/sts/deploy", "authority/creds/x"] {
            assert!(check_engine_path("path", good).is_ok(), "{good}");
        }
        for bad in ["auth/token/create", "/sys/leases/lookup", "Identity/oidc/token/x", "cubbyhole/a", "db/../sys/x"] {
            assert!(check_engine_path("path", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_names_the_field_and_the_key() {
        let message = locate(Some("secret"), "../x", "data[0].remoteRef.key").unwrap_err().to_string();
        assert!(message.contains("data[0].remoteRef.key") && message.contains("\"../x\""), "{message}");
    }

    #[test]
    fn encodes_each_segment() {
        assert_eq!(encode("app/db.v2"), "app/db.v2");
        assert_eq!(encode("app/with space/100%"), "app/with%20space/100%25");
        assert_eq!(encode("app/x%2e%2e"), "app/x%252e%252e");
    }
}
