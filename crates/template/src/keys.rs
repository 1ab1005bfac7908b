//! Secret key names from remote paths.

/// A Secret key for a remote path: `app/db` becomes `app_db`, and any other
/// character a Secret key may not hold becomes `_`.
pub fn path_to_key(path: &str) -> String {
    path.trim_matches('/').chars().map(|c| if valid_key_char(c) { c } else { '_' }).collect()
}

/// Turns `_U<hex>_` escapes in a key into the characters they name (ESO's
/// `conversionStrategy: Unicode`); anything else stays as it is.
pub fn unescape_unicode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut rest = key;
    while let Some(start) = rest.find("_U") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let decoded = after.find('_').and_then(|end| {
            let hex = &after[..end];
            let valid = !hex.is_empty() && hex.len() <= 6 && hex.chars().all(|c| c.is_ascii_hexdigit());
            valid.then(|| u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)).flatten().map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("_U");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub(crate) fn valid_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_escapes_are_decoded() {
        assert_eq!(unescape_unicode("a_U002E_b"), "a.b");
        assert_eq!(unescape_unicode("_U0041__U0042_"), "AB");
        assert_eq!(unescape_unicode("plain_Unotahex_"), "plain_Unotahex_");
        assert_eq!(unescape_unicode("tail_U00"), "tail_U00");
    }

    #[test]
    fn paths_become_valid_keys() {
        assert_eq!(path_to_key("app/db/creds"), "app_db_creds");
        assert_eq!(path_to_key("/a b:c/"), "a_b_c");
    }
}
