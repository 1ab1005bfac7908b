//! Sprig's dict helpers (`dict.go`). Go's maps are references, so `set`,
//! `unset` and the `merge`s change the map they are given; here values are
//! copies, and `exec` writes the result back into the variable the map
//! came from (`{{ $_ := set $d "k" "v" }}` then changes `$d`), which is
//! how templates use them. `keys` and `values` come in key order, one of
//! the orders Go's randomised map iteration gives.

use std::collections::BTreeMap;

use super::super::funcs::{CallResult, arity, at_least, text};
use super::super::value::Value;
use super::map_arg;

/// The functions whose first argument Go changes in place.
pub const MUTATING: &[&str] = &["set", "unset", "merge", "mergeOverwrite", "mustMerge", "mustMergeOverwrite"];

/// `mergeOverwrite` as the Vault agent's sprig v3.2 (old mergo) does it.
pub fn merge_overwrite_v3_2(args: Vec<Value>) -> CallResult {
    at_least(&args, 1)?;
    let mut args = args.into_iter();
    let mut dst = take_map(args.next().unwrap_or(Value::Nil))?;
    for src in args {
        merge_into(&mut dst, map_arg(&src)?, true, true);
    }
    Ok(Value::Map(dst))
}

pub(super) fn call(name: &str, args: &mut Vec<Value>) -> Option<CallResult> {
    Some(match name {
        "set" => (|| {
            arity(args, 3)?;
            super::nests(args)?;
            let value = args.pop().unwrap_or(Value::Nil);
            let key = text(&args[1])?.into_owned();
            let mut map = take_map(args.swap_remove(0))?;
            map.insert(key, value);
            Ok(Value::Map(map))
        })(),
        "unset" => (|| {
            arity(args, 2)?;
            let key = text(&args[1])?.into_owned();
            let mut map = take_map(args.swap_remove(0))?;
            map.remove(&key);
            Ok(Value::Map(map))
        })(),
        "pluck" => (|| {
            at_least(args, 1)?;
            let key = text(&args[0])?.into_owned();
            let mut out = Vec::new();
            for dict in args.drain(1..) {
                if let Some(value) = take_map(dict)?.remove(&key) {
                    out.push(value);
                }
            }
            Ok(Value::List(out))
        })(),
        "pick" | "omit" => (|| {
            at_least(args, 1)?;
            let keys = args[1..].iter().map(|k| text(k).map(|k| k.into_owned())).collect::<Result<Vec<_>, _>>()?;
            let map = take_map(args.swap_remove(0))?;
            let keep = |k: &String| keys.contains(k) == (name == "pick");
            Ok(Value::Map(map.into_iter().filter(|(k, _)| keep(k)).collect()))
        })(),
        "values" => (|| {
            arity(args, 1)?;
            Ok(Value::List(take_map(args.swap_remove(0))?.into_values().collect()))
        })(),
        "merge" | "mergeOverwrite" | "mustMerge" | "mustMergeOverwrite" => (|| {
            at_least(args, 1)?;
            let overwrite = name.ends_with("Overwrite");
            let srcs = args.split_off(1);
            let mut dst = take_map(args.swap_remove(0))?;
            for src in &srcs {
                merge_into(&mut dst, map_arg(src)?, overwrite, false);
            }
            Ok(Value::Map(dst))
        })(),
        "dig" => (|| {
            at_least(args, 3)?;
            let map = args.pop().unwrap_or(Value::Nil);
            let default = args.pop().unwrap_or(Value::Nil);
            let keys = args.iter().map(|k| match k {
                Value::Str(_) | Value::Bytes(_) => Ok(k.as_text().unwrap_or_default()),
                other => Err(format!("dig: keys must be strings, got {}", other.type_name())),
            });
            let keys = keys.collect::<Result<Vec<_>, _>>()?;
            let mut current = map_arg(&map)?;
            for (i, key) in keys.iter().enumerate() {
                let Some(step) = current.get(key.as_ref()) else { return Ok(default) };
                if i + 1 == keys.len() {
                    return Ok(step.clone());
                }
                current = match step {
                    Value::Map(next) => next,
                    other => return Err(format!("dig: expected map, got {}", other.type_name())),
                };
            }
            Ok(default)
        })(),
        "deepCopy" | "mustDeepCopy" => (|| {
            arity(args, 1)?;
            Ok(args.swap_remove(0))
        })(),
        _ => return None,
    })
}

fn take_map(value: Value) -> Result<BTreeMap<String, Value>, String> {
    match value {
        Value::Map(map) => Ok(map),
        other => Err(format!("expected map[string]interface {{}}, got {}", other.type_name())),
    }
}

/// mergo's `Merge` (`WithOverride` when `overwrite`) of one
/// `map[string]interface{}` into another: a key `dst` lacks or holds empty
/// takes `src`'s value, maps under the same key merge key by key, and with
/// `overwrite` `src`'s value wins. mergo before v1 (`old`, what the Vault
/// agent's sprig v3.2 builds with) never lets a map replace a non-empty
/// value that is not one; v1.0.2 (ESO's) does when overwriting. Recurses
/// once per level of nesting, which `nests` keeps to 128.
pub(crate) fn merge_into(dst: &mut BTreeMap<String, Value>, src: &BTreeMap<String, Value>, overwrite: bool, old: bool) {
    for (key, value) in src {
        let current = dst.get_mut(key);
        match (value, current) {
            (Value::Nil, _) => {
                if overwrite {
                    dst.insert(key.clone(), Value::Nil);
                }
            }
            (Value::Map(from), Some(Value::Map(into))) => merge_into(into, from, overwrite, old),
            (Value::Map(_), Some(current)) if old && current.truthy() => {}
            (_, Some(current)) if !overwrite && current.truthy() => {}
            _ => {
                dst.insert(key.clone(), value.clone());
            }
        }
    }
}
