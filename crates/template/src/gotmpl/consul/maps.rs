//! consul-template's map helpers: `mergeMap`, `mergeMapWithOverride`
//! (mergo's `Map`, which the Vault agent calls) and `explodeMap`.

use std::collections::BTreeMap;

use super::super::funcs::CallResult;
use super::super::sprig::merge_into;
use super::super::value::Value;

/// A `map[string]interface{}` parameter.
fn map<'a>(name: &str, value: &'a Value) -> Result<&'a BTreeMap<String, Value>, String> {
    match value {
        Value::Map(map) => Ok(map),
        other => Err(format!("{name}: expected map[string]interface {{}}, got {}", other.type_name())),
    }
}

/// `mergeMap dst src` (`src | mergeMap dst`): `dst` with what `src` adds,
/// as the Vault agent's mergo (before v1) merges them: a key `dst` lacks,
/// or holds empty, takes `src`'s value; maps under the same key merge key
/// by key; with `overwrite`, `src`'s value wins, except that a map never
/// replaces a value that is not one. The rules are sprig's `merge` ones.
pub(super) fn merge(name: &str, dst: &Value, src: &Value, overwrite: bool) -> CallResult {
    let mut out = map(name, dst)?.clone();
    merge_into(&mut out, map(name, src)?, overwrite, true);
    Ok(Value::Map(out))
}

/// `explodeMap`: keys with `/` become nested maps, `{"a/b": 1}` is
/// `{"a": {"b": 1}}`, taken in sorted order; an error where a key is
/// already a value that is not a map.
pub(super) fn explode(value: &Value) -> CallResult {
    let mut out = BTreeMap::new();
    for (key, value) in map("explodeMap", value)? {
        place(&mut out, key, value.clone())?;
    }
    Ok(Value::Map(out))
}

/// Walks down `key`'s parts without recursion: a key of many `/` is a
/// tenant's to write.
fn place(into: &mut BTreeMap<String, Value>, key: &str, value: Value) -> Result<(), String> {
    let mut parts: Vec<&str> = key.split('/').collect();
    let last = parts.pop().unwrap_or_default();
    let mut node = into;
    for top in parts {
        node = match node.entry(top.to_owned()).or_insert_with(|| Value::Map(BTreeMap::new())) {
            Value::Map(nested) => nested,
            other => return Err(format!("explodeMap: not a map: a key holds a {} already", other.type_name())),
        };
    }
    if !last.is_empty() {
        node.insert(last.to_owned(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, Value)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    #[test]
    fn merge_fills_what_is_missing_or_empty_and_overrides_when_asked() {
        let dst = m(&[("a", s("1")), ("b", s("")), ("n", m(&[("x", s("dx"))])), ("l", Value::List(vec![s("d")]))]);
        let src = m(&[
            ("a", s("2")),
            ("b", s("3")),
            ("c", s("4")),
            ("n", m(&[("x", s("sx")), ("y", s("sy"))])),
            ("l", Value::List(vec![s("s")])),
        ]);
        let kept = m(&[
            ("a", s("1")),
            ("b", s("3")),
            ("c", s("4")),
            ("n", m(&[("x", s("dx")), ("y", s("sy"))])),
            ("l", Value::List(vec![s("d")])),
        ]);
        assert_eq!(merge("mergeMap", &dst, &src, false), Ok(kept));
        let overridden = m(&[
            ("a", s("2")),
            ("b", s("3")),
            ("c", s("4")),
            ("n", m(&[("x", s("sx")), ("y", s("sy"))])),
            ("l", Value::List(vec![s("s")])),
        ]);
        assert_eq!(merge("mergeMap", &dst, &src, true), Ok(overridden));
        assert!(merge("mergeMap", &Value::Nil, &src, false).unwrap_err().contains("expected map"));
    }

    #[test]
    fn explode_nests_keys_with_slashes() {
        let flat = m(&[("a/b", s("1")), ("a/c/d", s("2")), ("e", s("3")), ("f/", s("4"))]);
        let nested = m(&[("a", m(&[("b", s("1")), ("c", m(&[("d", s("2"))]))])), ("e", s("3")), ("f", m(&[]))]);
        assert_eq!(explode(&flat), Ok(nested));
        assert!(explode(&m(&[("a", s("1")), ("a/b", s("2"))])).unwrap_err().contains("not a map"));
    }
}
