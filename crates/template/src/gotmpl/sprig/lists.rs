//! Sprig's list helpers (`list.go`) and `all`/`any`/`compact`. A list
//! argument must be a list; anything else fails as sprig panics (or, for
//! the `must*` versions, returns an error). Every result is built from
//! values the render already holds, so it is no larger than its arguments.

use std::collections::HashSet;

use super::super::funcs::{CallResult, arity, at_least, int};
use super::super::value::Value;
use super::numeric::to_int64;
use super::reflection::{deep_equal, kind};

pub(super) fn call(name: &str, args: &mut Vec<Value>) -> Option<CallResult> {
    let name = name.strip_prefix("must").map_or(name.to_string(), lower_first);
    Some(match name.as_str() {
        "tuple" => {
            if let Err(e) = super::nests(args) {
                return Some(Err(e));
            }
            Ok(Value::List(std::mem::take(args)))
        }
        "append" | "push" | "prepend" => (|| {
            arity(args, 2)?;
            // The list holds its items already; the new one must fit.
            super::nests(&args[1..])?;
            let item = args.pop().unwrap_or(Value::Nil);
            let what = if name == "prepend" { "prepend on" } else { "push on" };
            let mut list = take_list(args.pop().unwrap_or(Value::Nil), what)?;
            if name == "prepend" {
                list.insert(0, item);
            } else {
                list.push(item);
            }
            Ok(Value::List(list))
        })(),
        "first" | "last" => (|| {
            arity(args, 1)?;
            let list = take_list(args.pop().unwrap_or(Value::Nil), &format!("find {name} on"))?;
            let item = if name == "first" { list.into_iter().next() } else { list.into_iter().next_back() };
            Ok(item.unwrap_or(Value::Nil))
        })(),
        "rest" | "initial" => (|| {
            arity(args, 1)?;
            let mut list = take_list(args.pop().unwrap_or(Value::Nil), &format!("find {name} on"))?;
            if !list.is_empty() {
                if name == "rest" {
                    list.remove(0);
                } else {
                    list.pop();
                }
            }
            Ok(Value::List(list))
        })(),
        "reverse" => (|| {
            arity(args, 1)?;
            let mut list = take_list(args.pop().unwrap_or(Value::Nil), "find reverse on")?;
            list.reverse();
            Ok(Value::List(list))
        })(),
        "compact" => (|| {
            arity(args, 1)?;
            let list = take_list(args.pop().unwrap_or(Value::Nil), "compact on")?;
            Ok(Value::List(list.into_iter().filter(Value::truthy).collect()))
        })(),
        "uniq" => (|| {
            arity(args, 1)?;
            let list = take_list(args.pop().unwrap_or(Value::Nil), "find uniq on")?;
            Ok(Value::List(uniq(list)?))
        })(),
        "without" => (|| {
            at_least(args, 1)?;
            let omit = args.split_off(1);
            let list = take_list(args.pop().unwrap_or(Value::Nil), "find without on")?;
            searching(list.len(), omit.len())?;
            Ok(Value::List(list.into_iter().filter(|item| !omit.iter().any(|o| deep_equal(o, item))).collect()))
        })(),
        "has" => (|| {
            arity(args, 2)?;
            match &args[1] {
                Value::Nil => Ok(Value::Bool(false)),
                Value::List(items) => Ok(Value::Bool(items.iter().any(|item| deep_equal(&args[0], item)))),
                other => Err(format!("Cannot find has on type {}", kind(other))),
            }
        })(),
        "slice" => (|| {
            at_least(args, 1)?;
            let indices = args.split_off(1);
            let list = match args.pop().unwrap_or(Value::Nil) {
                Value::List(list) => list,
                other => return Err(format!("list should be type of slice or array but {}", kind(&other))),
            };
            if list.is_empty() {
                return Ok(Value::Nil);
            }
            let start = indices.first().map_or(0, to_int64);
            let end = if indices.len() < 2 { list.len() as i64 } else { to_int64(&indices[1]) };
            if start < 0 || end < start || end > list.len() as i64 {
                return Err("slice bounds out of range".into());
            }
            Ok(Value::List(list[start as usize..end as usize].to_vec()))
        })(),
        "concat" => (|| {
            let mut out = Vec::new();
            for list in std::mem::take(args) {
                match list {
                    Value::List(items) => out.extend(items),
                    other => return Err(format!("Cannot concat type {} as list", kind(&other))),
                }
            }
            Ok(Value::List(out))
        })(),
        "chunk" => (|| {
            arity(args, 2)?;
            let size = int(&args[0])?;
            let list = take_list(args.pop().unwrap_or(Value::Nil), "chunk")?;
            if size <= 0 {
                return Err("chunk size must be positive".into());
            }
            if list.iter().any(|item| item.deeper_than(super::MAX_VALUE_DEPTH - 2)) {
                return Err(format!("lists and maps nest more than {} levels deep", super::MAX_VALUE_DEPTH));
            }
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            let mut chunks = Vec::new();
            let mut items = list.into_iter().peekable();
            while items.peek().is_some() {
                chunks.push(Value::List(items.by_ref().take(size).collect()));
            }
            Ok(Value::List(chunks))
        })(),
        "all" => Ok(Value::Bool(args.iter().all(Value::truthy))),
        "any" => Ok(Value::Bool(args.iter().any(Value::truthy))),
        _ => return None,
    })
}

/// What one call may compare, item against item: a call runs without
/// looking at the clock.
const MAX_SEARCH: usize = 100_000_000;

fn searching(items: usize, against: usize) -> Result<(), String> {
    if items.saturating_mul(against) > MAX_SEARCH {
        return Err(format!("comparing {items} items with {against} is too much searching"));
    }
    Ok(())
}

/// Sprig's `uniq` (the first of each, by `reflect.DeepEqual`, in order):
/// strings and integers are looked up in sets, other values compared one
/// by one, within `MAX_SEARCH`.
fn uniq(list: Vec<Value>) -> Result<Vec<Value>, String> {
    let mut strings: HashSet<Vec<u8>> = HashSet::new();
    let mut ints: HashSet<i64> = HashSet::new();
    let mut others: Vec<Value> = Vec::new();
    let mut compared = 0usize;
    let mut kept = Vec::new();
    for item in list {
        let new = match &item {
            Value::Str(_) | Value::Bytes(_) => strings.insert(item.as_bytes().unwrap_or_default().to_vec()),
            Value::Int(i) => ints.insert(*i),
            other => {
                compared = compared.saturating_add(others.len());
                if compared > MAX_SEARCH {
                    return Err("uniq: too much searching".into());
                }
                let new = !others.iter().any(|k| deep_equal(k, other));
                if new {
                    others.push(other.clone());
                }
                new
            }
        };
        if new {
            kept.push(item);
        }
    }
    Ok(kept)
}

fn lower_first(rest: &str) -> String {
    let mut chars = rest.chars();
    chars.next().map(|c| c.to_ascii_lowercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// A list argument; anything else fails with Go's kind for it.
fn take_list(value: Value, what: &str) -> Result<Vec<Value>, String> {
    match value {
        Value::List(list) => Ok(list),
        other => Err(format!("Cannot {what} type {}", kind(&other))),
    }
}
