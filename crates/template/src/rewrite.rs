//! `dataFrom[].rewrite`: the steps that rename (and merge) the keys one
//! `dataFrom` entry produces, with the semantics of ESO's `RewriteMap`.
//!
//! Steps apply in order, each to the whole map the previous one left:
//! `regexp` replaces in every key, `transform` renders a Go template per
//! key (`.value` is the key), `merge` parses every value as a JSON object
//! and merges them. Only the keys left after the last step must be valid
//! Secret keys, as in ESO (which checks them once, after rewriting); a step
//! in between may go through names a Secret could not hold.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::Value as Json;

use crate::Error;
use crate::gotmpl::{go_json_marshal, render_template_with_budget};
use crate::keys::valid_key_char;

/// One step of `dataFrom[].rewrite`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewriteStep {
    /// Replace what `source` matches in each key with `target` (`$1`,
    /// `${name}` are capture groups).
    Regexp { source: String, target: String },
    /// Each key becomes what `template` renders with `.value` the key.
    Transform { template: String },
    /// Merge the values, each a JSON object.
    Merge(Merge),
}

/// ESO's `rewrite[].merge`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Merge {
    /// The key the merged object goes to with `MergeStrategy::Json`.
    pub into: String,
    /// Keys merged last, in this order: their fields win.
    pub priority: Vec<String>,
    /// A `priority` key missing from the data is skipped (`IgnoreNotFound`)
    /// rather than an error (`Strict`).
    pub ignore_missing_priority: bool,
    /// A field in more than one value is taken from the later one
    /// (`Ignore`) rather than an error (`Error`).
    pub ignore_conflicts: bool,
    pub strategy: MergeStrategy,
}

/// Where `merge` puts the merged object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MergeStrategy {
    /// Each field becomes a key: strings as they are, `null` as empty,
    /// numbers and booleans as Go prints them, objects and lists as JSON.
    /// The merged keys themselves are dropped.
    #[default]
    Extract,
    /// The merged object, as JSON, goes to `into`, beside the merged keys.
    Json,
}

/// Where a key came from, for the error when it is not a valid Secret key.
#[derive(Clone, Debug)]
enum Origin {
    /// A key the entry produced before rewriting, named as it was.
    Key(String),
    /// Made by the merge at this step.
    Merged(usize),
}

type Entries = BTreeMap<String, (Origin, Vec<u8>)>;

/// Applies `steps` in order to `data`'s keys. A key that ends up empty or
/// not a valid Secret key is an error, not a silent loss. When two keys
/// become one, the value of the one later in key order wins (ESO leaves
/// this to Go's map order).
pub fn rewrite_keys(
    data: BTreeMap<String, Vec<u8>>,
    steps: &[RewriteStep],
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    if steps.is_empty() {
        return Ok(data);
    }
    let mut entries: Entries = data.into_iter().map(|(key, value)| (key.clone(), (Origin::Key(key), value))).collect();
    let mut index = 0;
    while index < steps.len() {
        match &steps[index] {
            RewriteStep::Regexp { .. } => {
                // A run of regexps renames each key through all of them at
                // once, as vaultsync always did; the result is the same as
                // one map per step but for which of two colliding keys wins.
                let run = steps[index..].iter().take_while(|s| matches!(s, RewriteStep::Regexp { .. })).count();
                entries = regexps(&steps[index..index + run], entries)?;
                index += run;
            }
            RewriteStep::Transform { template } => {
                entries = transform(index, template, entries)?;
                index += 1;
            }
            RewriteStep::Merge(merge) => {
                entries = merge_values(index, merge, entries)?;
                index += 1;
            }
        }
    }
    entries
        .into_iter()
        .map(|(key, (origin, value))| {
            if key.is_empty() || !key.chars().all(valid_key_char) {
                return Err(match origin {
                    Origin::Key(from) => Error::InvalidKey { from, to: key },
                    Origin::Merged(index) => Error::InvalidMergedKey { index, key },
                });
            }
            Ok((key, value))
        })
        .collect()
}

fn regexps(steps: &[RewriteStep], entries: Entries) -> Result<Entries, Error> {
    let compiled = steps
        .iter()
        .filter_map(|step| match step {
            RewriteStep::Regexp { source, target } => Some((source, target)),
            _ => None,
        })
        .map(|(source, target)| {
            Regex::new(source).map(|regex| (regex, target.as_str())).map_err(|e| Error::BadRegexp {
                field: "rewrite.regexp.source",
                pattern: source.clone(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(entries
        .into_iter()
        .map(|(key, entry)| {
            let renamed =
                compiled.iter().fold(key, |current, (regex, target)| regex.replace_all(&current, *target).into_owned());
            (renamed, entry)
        })
        .collect())
}

/// The rendering time all keys of one `transform` step share, as one
/// `target.template` has: a template slow per key cannot multiply its cost
/// by the number of keys (a find may produce thousands).
const TRANSFORM_BUDGET: Duration = Duration::from_secs(1);

fn transform(index: usize, template: &str, entries: Entries) -> Result<Entries, Error> {
    let deadline = Instant::now() + TRANSFORM_BUDGET;
    entries
        .into_iter()
        .map(|(key, entry)| {
            let data = BTreeMap::from([("value".to_owned(), key.clone().into_bytes())]);
            let left = deadline.saturating_duration_since(Instant::now());
            match render_template_with_budget("transform", template, &data, left) {
                Ok(renamed) => Ok((String::from_utf8_lossy(&renamed).into_owned(), entry)),
                Err(source) => Err(Error::Transform { index, key, source: Box::new(source) }),
            }
        })
        .collect()
}

fn merge_values(index: usize, merge: &Merge, entries: Entries) -> Result<Entries, Error> {
    let failed = |reason: String| Error::Merge { index, reason };
    // Keys in order, the priority ones last in their given order (a
    // priority key named twice is merged twice, as in ESO).
    let order =
        entries.keys().filter(|key| !merge.priority.contains(key)).chain(merge.priority.iter()).collect::<Vec<_>>();
    let mut merged = serde_json::Map::new();
    let mut conflicts = Vec::new();
    for key in order {
        let Some((_, value)) = entries.get(key) else {
            if merge.ignore_missing_priority {
                continue;
            }
            return Err(failed(format!("priority key {key:?} not found in the data")));
        };
        // Go's json.Unmarshal into a map: `null` is an empty map, anything
        // but an object an error.
        let object = match serde_json::from_str::<Json>(&String::from_utf8_lossy(value)) {
            Ok(Json::Object(object)) => object,
            Ok(Json::Null) => continue,
            Ok(_) => return Err(failed(format!("the value of key {key:?} is not a JSON object"))),
            Err(_) => return Err(failed(format!("the value of key {key:?} is not valid JSON"))),
        };
        for (field, field_value) in object {
            if merged.contains_key(&field) {
                conflicts.push(field.clone());
            }
            merged.insert(field, field_value);
        }
    }
    if !merge.ignore_conflicts && !conflicts.is_empty() {
        return Err(failed(format!(
            "conflicts in fields {} (conflictPolicy: Ignore lets the later value win)",
            conflicts.join(", ")
        )));
    }
    match merge.strategy {
        MergeStrategy::Extract => merged
            .into_iter()
            .map(|(field, value)| {
                let bytes = extracted_bytes(&value).map_err(|reason| failed(format!("field {field:?}: {reason}")))?;
                Ok((field, (Origin::Merged(index), bytes)))
            })
            .collect(),
        MergeStrategy::Json => {
            if merge.into.is_empty() {
                return Err(failed("strategy JSON needs 'into', the key to write the merged JSON to".into()));
            }
            // Go's JSONMarshal: no HTML escaping.
            let json = go_json_marshal(&Json::Object(merged), false).map_err(failed)?;
            let mut out = entries;
            out.insert(merge.into.clone(), (Origin::Merged(index), json.into_bytes()));
            Ok(out)
        }
    }
}

/// ESO's `GetByteValue` on what `json.Unmarshal` made: strings as they
/// are, numbers (float64) as `strconv.FormatFloat(f, 'f', -1, 64)`,
/// booleans as `true`/`false`, `null` as nothing, objects and lists as
/// `json.Marshal` writes them.
fn extracted_bytes(value: &Json) -> Result<Vec<u8>, String> {
    Ok(match value {
        Json::String(s) => s.clone().into_bytes(),
        Json::Null => Vec::new(),
        Json::Bool(b) => b.to_string().into_bytes(),
        // Rust prints the shortest digits that read back as the same f64,
        // without an exponent: what Go's 'f' format with precision -1 does.
        Json::Number(n) => format!("{}", n.as_f64().unwrap_or_default()).into_bytes(),
        Json::Array(_) | Json::Object(_) => go_json_marshal(value, true)?.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect()
    }

    fn keys(keys: &[&str]) -> BTreeMap<String, Vec<u8>> {
        keys.iter().map(|k| (k.to_string(), b"v".to_vec())).collect()
    }

    fn regexp(source: &str, target: &str) -> RewriteStep {
        RewriteStep::Regexp { source: source.into(), target: target.into() }
    }

    fn transform(template: &str) -> RewriteStep {
        RewriteStep::Transform { template: template.into() }
    }

    fn merge(merge: Merge) -> RewriteStep {
        RewriteStep::Merge(merge)
    }

    fn strings(out: &BTreeMap<String, Vec<u8>>) -> BTreeMap<&str, &str> {
        out.iter().map(|(k, v)| (k.as_str(), std::str::from_utf8(v).unwrap())).collect()
    }

    // ESO's TestRewriteMerge inputs.
    const MONGO: &str = r#"{"username": "foz", "password": "baz"}"#;
    const REDIS: &str = r#"{"host": "redis.example.com", "port": "6379"}"#;

    #[test]
    fn regexps_apply_in_order_with_capture_groups() {
        let rules = [regexp("^app_(.*)$", "$1"), regexp("-", "_")];
        let out = rewrite_keys(keys(&["app_db-url", "other"]), &rules).unwrap();
        assert_eq!(out.keys().collect::<Vec<_>>(), ["db_url", "other"]);
    }

    #[test]
    fn no_steps_leave_the_data_as_it_is() {
        let input = data(&[("a/b", "v")]);
        assert_eq!(rewrite_keys(input.clone(), &[]).unwrap(), input);
    }

    #[test]
    fn bad_regexp_and_invalid_results_are_errors() {
        let bad = rewrite_keys(keys(&["a"]), &[regexp("(", "x")]).unwrap_err();
        assert!(matches!(bad, Error::BadRegexp { .. }));
        let invalid = rewrite_keys(keys(&["a"]), &[regexp("a", "a/b")]).unwrap_err();
        assert!(invalid.to_string().contains("\"a/b\""), "{invalid}");
        let empty = rewrite_keys(keys(&["a"]), &[regexp("a", "")]).unwrap_err();
        assert_eq!(empty, Error::InvalidKey { from: "a".into(), to: "".into() });
    }

    /// ESO's TestRewrite regexp cases.
    #[test]
    fn regexp_cases_of_eso() {
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(&[RewriteStep], Pairs, Pairs)] = &[
            (&[regexp("-", "_")], &[("foo-bar", "bar")], &[("foo_bar", "bar")]),
            (&[regexp("hello", "world")], &[("foo", "bar")], &[("foo", "bar")]),
            (&[regexp("^my/initial/path/", "")], &[("my/initial/path/foo", "bar")], &[("foo", "bar")]),
            (
                &[regexp("f(.*)o", "a_new_path_$1")],
                &[("foo", "bar"), ("foodaloo", "barr")],
                &[("a_new_path_o", "bar"), ("a_new_path_oodalo", "barr")],
            ),
            (
                &[regexp("f(?P<content>.*)o", "a_new_path_${content}_${1}")],
                &[("foo", "bar"), ("floo", "barr")],
                &[("a_new_path_o_o", "bar"), ("a_new_path_lo_lo", "barr")],
            ),
            (
                &[regexp("my/(.*?)/bar/(.*)", "$1-$2"), regexp("-", "_"), regexp("ass", "***")],
                &[("my/app/bar/key", "bar"), ("my/app/bar/password", "barr")],
                // ESO's RewriteMap gives `app_p***word`, which its
                // ValidateKeys then refuses, as vaultsync does.
                &[("app_key", "bar"), ("app_p***word", "barr")],
            ),
        ];
        for (steps, input, want) in cases {
            let got = rewrite_keys(data(input), steps);
            let want: BTreeMap<&str, &str> = want.iter().copied().collect();
            if want.keys().all(|k| k.chars().all(valid_key_char)) {
                assert_eq!(strings(&got.unwrap()), want, "{steps:?}");
            } else {
                // `*` is no Secret key character: vaultsync refuses at once.
                let err = got.unwrap_err();
                assert!(matches!(err, Error::InvalidKey { ref to, .. } if to == "app_p***word"), "{err}");
            }
        }
    }

    /// ESO: "using transform rewrite operation to create env var format keys".
    #[test]
    fn transform_after_regexp_makes_env_var_names() {
        let steps = [regexp("my/(.*?)/bar/(.*)", "$1-$2"), transform(r#"{{ .value | upper | replace "-" "_" }}"#)];
        let out = rewrite_keys(data(&[("my/app/bar/key", "bar")]), &steps).unwrap();
        assert_eq!(strings(&out), BTreeMap::from([("APP_KEY", "bar")]));
    }

    #[test]
    fn transform_renders_per_key_and_only_the_result_must_be_valid() {
        // An invalid key in between is fine when a later step fixes it.
        let steps = [transform("{{ .value | upper }}/x"), regexp("/", "_"), transform(r#"{{ printf "p-%s" .value }}"#)];
        let out = rewrite_keys(data(&[("a", "1"), ("b.c", "2")]), &steps).unwrap();
        assert_eq!(strings(&out), BTreeMap::from([("p-A_x", "1"), ("p-B.C_x", "2")]));
        let invalid = rewrite_keys(data(&[("a", "1")]), &[transform("{{ .value }}:x")]).unwrap_err();
        assert_eq!(invalid, Error::InvalidKey { from: "a".into(), to: "a:x".into() });
    }

    #[test]
    fn transform_errors_name_the_step_and_key() {
        let err = rewrite_keys(data(&[("a", "1")]), &[regexp("a", "b"), transform("{{ fail .value }}")]).unwrap_err();
        assert!(matches!(err, Error::Transform { index: 1, ref key, .. } if key == "b"), "{err:?}");
        assert!(
            err.to_string().starts_with("rewrite[1]: transform of key \"b\" failed: template \"transform\""),
            "{err}"
        );
        let parse = rewrite_keys(data(&[("a", "1")]), &[transform("{{ .value ")]).unwrap_err();
        assert!(matches!(parse, Error::Transform { index: 0, .. }), "{parse:?}");
    }

    /// ESO: "using empty merge".
    #[test]
    fn empty_merge_extracts_every_field() {
        let input = data(&[("mongo-credentials", MONGO), ("redis-credentials", REDIS)]);
        let out = rewrite_keys(input, &[merge(Merge::default())]).unwrap();
        assert_eq!(
            strings(&out),
            BTreeMap::from([("username", "foz"), ("password", "baz"), ("host", "redis.example.com"), ("port", "6379")])
        );
    }

    /// ESO: "using priority": other, then mongo, then redis.
    #[test]
    fn priority_keys_merge_last_in_their_order() {
        let input = data(&[
            ("redis-credentials", REDIS),
            ("mongo-credentials", MONGO),
            ("other-credentials", r#"{"key": "value", "host": "other.example.com"}"#),
        ]);
        let step = Merge {
            ignore_conflicts: true,
            priority: vec!["mongo-credentials".into(), "redis-credentials".into()],
            ..Merge::default()
        };
        let out = rewrite_keys(input, &[merge(step)]).unwrap();
        assert_eq!(
            strings(&out),
            BTreeMap::from([
                ("username", "foz"),
                ("password", "baz"),
                ("host", "redis.example.com"),
                ("port", "6379"),
                ("key", "value")
            ])
        );
    }

    /// ESO: priority keys not in the input, Strict (default) and
    /// IgnoreNotFound.
    #[test]
    fn missing_priority_keys_fail_unless_ignored() {
        let input = data(&[("mongo-credentials", MONGO), ("redis-credentials", REDIS)]);
        let strict = Merge {
            ignore_conflicts: true,
            priority: vec!["non-existent-key".into(), "another-missing-key".into(), "mongo-credentials".into()],
            ..Merge::default()
        };
        let err = rewrite_keys(input.clone(), &[merge(strict)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rewrite[0]: merge failed: priority key \"non-existent-key\" not found in the data"
        );
        let ignore = Merge {
            ignore_conflicts: true,
            priority: vec!["non-existent-key".into(), "mongo-credentials".into()],
            ignore_missing_priority: true,
            ..Merge::default()
        };
        let out = rewrite_keys(input, &[merge(ignore)]).unwrap();
        assert_eq!(
            strings(&out),
            BTreeMap::from([("username", "foz"), ("password", "baz"), ("host", "redis.example.com"), ("port", "6379")])
        );
    }

    /// ESO: "using conflict policy error"; with Ignore the later wins.
    #[test]
    fn conflicts_fail_unless_ignored() {
        let input =
            data(&[("mongo-credentials", MONGO), ("redis-credentials", r#"{"username": "redis", "port": "6379"}"#)]);
        let err = rewrite_keys(input.clone(), &[merge(Merge::default())]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rewrite[0]: merge failed: conflicts in fields username (conflictPolicy: Ignore lets the later value win)"
        );
        let out = rewrite_keys(input, &[merge(Merge { ignore_conflicts: true, ..Merge::default() })]).unwrap();
        assert_eq!(strings(&out), BTreeMap::from([("username", "redis"), ("password", "baz"), ("port", "6379")]));
    }

    /// ESO: "using JSON strategy" (and without `into`).
    #[test]
    fn json_strategy_writes_into_and_keeps_the_keys() {
        let input = data(&[("mongo-credentials", MONGO), ("redis-credentials", REDIS)]);
        let step = Merge { strategy: MergeStrategy::Json, into: "credentials".into(), ..Merge::default() };
        let out = rewrite_keys(input.clone(), &[merge(step)]).unwrap();
        assert_eq!(
            strings(&out),
            BTreeMap::from([
                ("mongo-credentials", MONGO),
                ("redis-credentials", REDIS),
                ("credentials", r#"{"host":"redis.example.com","password":"baz","port":"6379","username":"foz"}"#),
            ])
        );
        let err = rewrite_keys(input, &[merge(Merge { strategy: MergeStrategy::Json, ..Merge::default() })]);
        assert!(matches!(err, Err(Error::Merge { index: 0, .. })), "{err:?}");
    }

    /// ESO: "with invalid JSON"; other values that are no objects too.
    #[test]
    fn values_must_be_json_objects() {
        for value in [r#"{"username": "foz", "password": "baz""#, "[1]", "\"s\"", "3"] {
            let err = rewrite_keys(data(&[("invalid-json", value)]), &[merge(Merge::default())]).unwrap_err();
            assert!(err.to_string().contains("\"invalid-json\""), "{err}");
            assert!(!err.to_string().contains("foz"), "no value in errors: {err}");
        }
        // json.Unmarshal of `null` into a map leaves it empty.
        let out = rewrite_keys(data(&[("a", "null"), ("b", r#"{"x":"1"}"#)]), &[merge(Merge::default())]).unwrap();
        assert_eq!(strings(&out), BTreeMap::from([("x", "1")]));
    }

    /// ESO: "using double merge" and "using regexp and merge".
    #[test]
    fn steps_chain_with_merges() {
        let input = data(&[
            ("a", r#"{"host": "dba", "pass": "yola", "port": 123}"#),
            ("b", r#"{"host": "dbb", "pass": "yolb"}"#),
        ]);
        let steps = [
            merge(Merge {
                strategy: MergeStrategy::Json,
                ignore_conflicts: true,
                into: "merged".into(),
                priority: vec!["a".into()],
                ..Merge::default()
            }),
            merge(Merge { ignore_conflicts: true, priority: vec!["b".into()], ..Merge::default() }),
        ];
        let out = rewrite_keys(input, &steps).unwrap();
        assert_eq!(strings(&out), BTreeMap::from([("host", "dbb"), ("pass", "yolb"), ("port", "123")]));

        let input = data(&[
            ("db/a", r#"{"host": "dba.example.com"}"#),
            ("db/b", r#"{"host": "dbb.example.com", "pass": "yolo"}"#),
        ]);
        let steps = [
            regexp("db/(.*)", "$1"),
            merge(Merge {
                strategy: MergeStrategy::Json,
                ignore_conflicts: true,
                into: "merged".into(),
                priority: vec!["a".into()],
                ..Merge::default()
            }),
        ];
        let out = rewrite_keys(input, &steps).unwrap();
        assert_eq!(
            strings(&out),
            BTreeMap::from([
                ("a", r#"{"host": "dba.example.com"}"#),
                ("b", r#"{"host": "dbb.example.com", "pass": "yolo"}"#),
                ("merged", r#"{"host":"dba.example.com","pass":"yolo"}"#),
            ])
        );
    }

    /// GetByteValue for Extract, json.Marshal (HTML escaped) for nested
    /// values, JSONMarshal (not escaped) for the JSON strategy; numbers
    /// are float64 throughout.
    #[test]
    fn values_are_written_as_go_writes_them() {
        let value = r#"{"s": "<a&b>", "i": 12345678901234567891, "f": 1.50, "big": 1e21, "small": 1e-7,
                        "t": true, "n": null, "o": {"z": "<", "a": [1, 2.5e-7, "\u0008"]}, "l": ["x", {"b": 1, "a": 2}]}"#;
        let out = rewrite_keys(data(&[("v", value)]), &[merge(Merge::default())]).unwrap();
        assert_eq!(
            strings(&out),
            BTreeMap::from([
                ("s", "<a&b>"),
                ("i", "12345678901234567000"),
                ("f", "1.5"),
                ("big", "1000000000000000000000"),
                ("small", "0.0000001"),
                ("t", "true"),
                ("n", ""),
                ("o", r#"{"a":[1,2.5e-7,"\b"],"z":"\u003c"}"#),
                ("l", r#"["x",{"a":2,"b":1}]"#),
            ])
        );
        let json = Merge { strategy: MergeStrategy::Json, into: "all".into(), ..Merge::default() };
        let out = rewrite_keys(data(&[("v", value)]), &[merge(json)]).unwrap();
        assert_eq!(
            std::str::from_utf8(&out["all"]).unwrap(),
            r#"{"big":1e+21,"f":1.5,"i":12345678901234567000,"l":["x",{"a":2,"b":1}],"n":null,"o":{"a":[1,2.5e-7,"\b"],"z":"<"},"s":"<a&b>","small":1e-7,"t":true}"#
        );
    }

    #[test]
    fn merged_keys_must_be_valid_secret_keys() {
        let err = rewrite_keys(data(&[("v", r#"{"a/b": "x"}"#)]), &[merge(Merge::default())]).unwrap_err();
        assert_eq!(err, Error::InvalidMergedKey { index: 0, key: "a/b".into() });
        // ... unless a later step renames them.
        let steps = [merge(Merge::default()), regexp("/", "_")];
        let out = rewrite_keys(data(&[("v", r#"{"a/b": "x"}"#)]), &steps).unwrap();
        assert_eq!(strings(&out), BTreeMap::from([("a_b", "x")]));
        let into = Merge { strategy: MergeStrategy::Json, into: "a b".into(), ..Merge::default() };
        let err = rewrite_keys(data(&[("v", "{}")]), &[merge(into)]).unwrap_err();
        assert_eq!(err, Error::InvalidMergedKey { index: 0, key: "a b".into() });
    }
}
