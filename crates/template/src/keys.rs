//! Secret key names: from remote paths, and renamed by `rewrite` rules.

use std::collections::BTreeMap;

use regex::Regex;

use crate::Error;

/// A Secret key for a remote path: `app/db` becomes `app_db`, and any other
/// character a Secret key may not hold becomes `_`.
pub fn path_to_key(path: &str) -> String {
    path.trim_matches('/').chars().map(|c| if valid_key_char(c) { c } else { '_' }).collect()
}

/// Applies `rules` (regexp source, replacement target) in order to every
/// key. A key that ends up empty or invalid is an error, not a silent loss.
pub fn rewrite_keys(
    data: BTreeMap<String, Vec<u8>>,
    rules: &[(String, String)],
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    if rules.is_empty() {
        return Ok(data);
    }
    let compiled = rules
        .iter()
        .map(|(source, target)| {
            Regex::new(source).map(|regex| (regex, target.as_str())).map_err(|e| Error::BadRegexp {
                field: "rewrite.regexp.source",
                pattern: source.clone(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    data.into_iter()
        .map(|(key, value)| {
            let renamed = compiled
                .iter()
                .fold(key.clone(), |current, (regex, target)| regex.replace_all(&current, *target).into_owned());
            if renamed.is_empty() || !renamed.chars().all(valid_key_char) {
                return Err(Error::InvalidKey { from: key, to: renamed });
            }
            Ok((renamed, value))
        })
        .collect()
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

fn valid_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(keys: &[&str]) -> BTreeMap<String, Vec<u8>> {
        keys.iter().map(|k| (k.to_string(), b"v".to_vec())).collect()
    }

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

    #[test]
    fn rules_apply_in_order_with_capture_groups() {
        let rules = vec![("^app_(.*)$".to_owned(), "$1".to_owned()), ("-".to_owned(), "_".to_owned())];
        let out = rewrite_keys(data(&["app_db-url", "other"]), &rules).unwrap();
        assert_eq!(out.keys().collect::<Vec<_>>(), ["db_url", "other"]);
    }

    #[test]
    fn bad_regexp_and_invalid_results_are_errors() {
        let bad = rewrite_keys(data(&["a"]), &[("(".to_owned(), "x".to_owned())]).unwrap_err();
        assert!(matches!(bad, Error::BadRegexp { .. }));
        let invalid = rewrite_keys(data(&["a"]), &[("a".to_owned(), "a/b".to_owned())]).unwrap_err();
        assert!(invalid.to_string().contains("\"a/b\""), "{invalid}");
    }
}
