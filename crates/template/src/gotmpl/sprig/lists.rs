//! Sprig's list helpers (`list.go`) and `all`/`any`/`compact`. A list
//! argument must be a list; anything else fails as sprig panics (or, for
//! the `must*` versions, returns an error). Every result is built from
//! values the render already holds, so it is no larger than its arguments.

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
            let mut kept: Vec<Value> = Vec::new();
            for item in list {
                // Quadratic, as sprig is; bounded by the clock between calls.
                if !kept.iter().any(|k| deep_equal(k, &item)) {
                    kept.push(item);
                }
            }
            Ok(Value::List(kept))
        })(),
        "without" => (|| {
            at_least(args, 1)?;
            let omit = args.split_off(1);
            let list = take_list(args.pop().unwrap_or(Value::Nil), "find without on")?;
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
