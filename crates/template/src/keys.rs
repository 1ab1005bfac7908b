//! Secret key names: from remote paths, and renamed by `rewrite` rules.

use std::collections::BTreeMap;

use regex::Regex;

use crate::Error;

/// A Secret key for a remote path: `app/db` becomes `app_db`, and any other
/// character a Secret key may not hold becomes `_`.
pub fn path_to_key(path: &str) -> String {
    path.trim_matches('/')
        .chars()
        .map(|c| if valid_key_char(c) { c } else { '_' })
        .collect()
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
            Regex::new(source)
                .map(|regex| (regex, target.as_str()))
                .map_err(|e| Error::BadRegexp {
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
                .fold(key.clone(), |current, (regex, target)| {
                    regex.replace_all(&current, *target).into_owned()
                });
            if renamed.is_empty() || !renamed.chars().all(valid_key_char) {
                return Err(Error::InvalidKey {
                    from: key,
                    to: renamed,
                });
            }
            Ok((renamed, value))
        })
        .collect()
}

fn valid_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(keys: &[&str]) -> BTreeMap<String, Vec<u8>> {
        keys.iter()
            .map(|k| (k.to_string(), b"v".to_vec()))
            .collect()
    }

    #[test]
    fn paths_become_valid_keys() {
        assert_eq!(path_to_key("app/db/creds"), "app_db_creds");
        assert_eq!(path_to_key("/a b:c/"), "a_b_c");
    }

    #[test]
    fn rules_apply_in_order_with_capture_groups() {
        let rules = vec![
            ("^app_(.*)$".to_owned(), "$1".to_owned()),
            ("-".to_owned(), "_".to_owned()),
        ];
        let out = rewrite_keys(data(&["app_db-url", "other"]), &rules).unwrap();
        assert_eq!(out.keys().collect::<Vec<_>>(), ["db_url", "other"]);
    }

    #[test]
    fn bad_regexp_and_invalid_results_are_errors() {
        let bad = rewrite_keys(data(&["a"]), &[("(".to_owned(), "x".to_owned())]).unwrap_err();
        assert!(matches!(bad, Error::BadRegexp { .. }));
        let invalid =
            rewrite_keys(data(&["a"]), &[("a".to_owned(), "a/b".to_owned())]).unwrap_err();
        assert!(invalid.to_string().contains("\"a/b\""), "{invalid}");
    }
}
