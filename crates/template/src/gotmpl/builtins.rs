//! Go text/template's own functions. `and`/`or` short-circuit in `exec`;
//! the versions here only serve calls without arguments to skip.

use std::cmp::Ordering;

use super::funcs::{CallResult, arity, at_least, text};
use super::printf::sprintf;
use super::value::Value;

pub const NAMES: &[&str] =
    &["and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "print", "printf", "println"];

pub fn call(name: &str, args: Vec<Value>) -> CallResult {
    match name {
        "and" | "or" => {
            at_least(&args, 1)?;
            let decided = |v: &&Value| (name == "and") != v.truthy();
            Ok(args.iter().find(decided).or(args.last()).cloned().unwrap_or(Value::Nil))
        }
        "not" => {
            arity(&args, 1)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "eq" => {
            if args.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            for other in &args[1..] {
                if equal(&args[0], other)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            arity(&args, 2)?;
            Ok(Value::Bool(!equal(&args[0], &args[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(&args, 2)?;
            let ord = ordering(&args[0], &args[1])?;
            Ok(Value::Bool(match name {
                "lt" => ord == Ordering::Less,
                "le" => ord != Ordering::Greater,
                "gt" => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }))
        }
        "len" => {
            arity(&args, 1)?;
            let n = match &args[0] {
                Value::List(l) => l.len(),
                Value::Map(m) => m.len(),
                other => other.string_kind_bytes().ok_or_else(|| format!("len of type {}", other.type_name()))?.len(),
            };
            Ok(Value::Int(n as i64))
        }
        "index" => {
            at_least(&args, 1)?;
            let mut args = args.into_iter();
            let mut item = args.next().unwrap_or(Value::Nil);
            for key in args {
                item = index(item, &key)?;
            }
            Ok(item)
        }
        "print" => Ok(Value::Str(sprint(&args)?)),
        "println" => {
            let mut line = String::new();
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    line.push(' ');
                }
                push_bounded(&mut line, &arg.display()?)?;
            }
            line.push('\n');
            Ok(Value::Str(line))
        }
        "printf" => {
            at_least(&args, 1)?;
            Ok(Value::Str(sprintf(&text(&args[0])?, &args[1..])?))
        }
        _ => Err("not defined".into()),
    }
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut previous_string = true;
    for arg in args {
        if !previous_string && !arg.is_string_kind() {
            out.push(' ');
        }
        previous_string = arg.is_string_kind();
        push_bounded(&mut out, &arg.display()?)?;
    }
    Ok(out)
}

/// Appends unless that makes `out` larger than 1 MiB.
pub fn push_bounded(out: &mut String, s: &str) -> Result<(), String> {
    if out.len().saturating_add(s.len()) > super::MAX_OUTPUT {
        return Err(super::TOO_LARGE.into());
    }
    out.push_str(s);
    Ok(())
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Go's `eq`, loosened where our model differs: ints and floats compare by
/// value (fromJson gives ints here, float64 in Go), and a missing key (Nil)
/// equals "".
fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    use Value::*;
    match (a, b) {
        (List(_) | Map(_), _) | (_, List(_) | Map(_)) => Err("invalid type for comparison".into()),
        (Nil, Nil) => Ok(true),
        (Nil, x) | (x, Nil) => Ok(x.string_kind_bytes().is_some_and(<[u8]>::is_empty)),
        (Bool(x), Bool(y)) => Ok(x == y),
        (Int(x), Int(y)) => Ok(x == y),
        (Int(_) | Float(_), Int(_) | Float(_)) => Ok(number(a) == number(b)),
        // Go compares string kinds by their text: a json.Number equals the
        // string "5432", and is incompatible with the int 5432.
        (x, y) if x.is_string_kind() && y.is_string_kind() => Ok(x.string_kind_bytes() == y.string_kind_bytes()),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn ordering(a: &Value, b: &Value) -> Result<Ordering, String> {
    use Value::*;
    match (a, b) {
        (Int(x), Int(y)) => Ok(x.cmp(y)),
        (Int(_) | Float(_), Int(_) | Float(_)) => {
            number(a).partial_cmp(&number(b)).ok_or_else(|| "NaN is not ordered".to_string())
        }
        (Str(_) | Bytes(_) | Number(_) | Nil, Str(_) | Bytes(_) | Number(_) | Nil) => {
            Ok(a.string_kind_bytes().cmp(&b.string_kind_bytes()))
        }
        (List(_) | Map(_) | Bool(_), _) | (_, List(_) | Map(_) | Bool(_)) => Err("invalid type for comparison".into()),
        _ => Err("incompatible types for comparison".into()),
    }
}

pub const OUT_OF_RANGE: &str = "index out of range";

pub fn index(item: Value, key: &Value) -> CallResult {
    match (item, key) {
        // Neither the length nor the index is told: a list split from a
        // value, or an index computed from one, would give the value away.
        (Value::List(mut list), Value::Int(i)) => {
            let len = list.len();
            usize::try_from(*i)
                .ok()
                .filter(|i| *i < len)
                .map(|i| list.swap_remove(i))
                .ok_or_else(|| OUT_OF_RANGE.to_owned())
        }
        (Value::Map(mut map), key) if key.is_stringish() => {
            Ok(map.remove(key.as_text().unwrap_or_default().as_ref()).unwrap_or(Value::Nil))
        }
        (item @ (Value::Str(_) | Value::Bytes(_) | Value::Number(_)), Value::Int(i)) => {
            let bytes = item.string_kind_bytes().unwrap_or_default();
            usize::try_from(*i)
                .ok()
                .and_then(|i| bytes.get(i))
                .map(|b| Value::Int(i64::from(*b)))
                .ok_or_else(|| OUT_OF_RANGE.to_owned())
        }
        (Value::Nil, _) => Err("index of nil".into()),
        (item, key) => Err(format!("can't index item of type {} with {}", item.type_name(), key.type_name())),
    }
}
