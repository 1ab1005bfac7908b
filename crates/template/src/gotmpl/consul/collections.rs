//! consul-template's view of lists and membership: what `in` and the
//! `contains*` family count as holding a value, and list arguments.

use super::super::value::Value;

/// Needles times haystack size one `containsAll` (etc.) may search.
pub(super) const MAX_SEARCH: usize = 100_000_000;

/// consul-template's `in`: a list holds `needle` when an element of the
/// same kind (int, float, string) is equal to it; a string holds it when
/// `needle` is a string and a substring. Anything else holds nothing.
pub(super) fn holds(haystack: &Value, needle: &Value) -> bool {
    match haystack {
        Value::List(items) => items.iter().any(|item| match (item, needle) {
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            // Go's `in` wants the same type: a json.Number is not the string.
            (Value::Number(a), Value::Number(b)) => a == b,
            (a, b) if a.is_stringish() && b.is_stringish() => a.as_bytes() == b.as_bytes(),
            _ => false,
        }),
        Value::Number(h) => matches!(needle, Value::Number(n) if h.contains(n.as_str())),
        h if h.is_stringish() && needle.is_stringish() => {
            let (h, n) = (h.as_text().unwrap_or_default(), needle.as_text().unwrap_or_default());
            h.contains(n.as_ref())
        }
        _ => false,
    }
}

/// Iterations one `loop` may make: its list is built whole here.
const MAX_LOOP: i64 = 100_000;

/// consul-template's `loop`: `loop 3` is 0, 1, 2; `loop 2 5` is 2, 3, 4.
/// Bounds are ints, or strings of one (a number in Vault's data too).
pub(super) fn counted(args: &[Value]) -> Result<Value, String> {
    let bound = |value: &Value| match value {
        Value::Int(i) => Ok(*i),
        Value::Str(_) | Value::Bytes(_) | Value::Number(_) => {
            match super::strings::parse_int(&String::from_utf8_lossy(value.string_kind_bytes().unwrap_or_default())) {
                Ok(Value::Int(i)) => Ok(i),
                _ => Err("loop: an argument is not an integer".to_string()),
            }
        }
        other => Err(format!("loop: bad argument type: {}", other.type_name())),
    };
    let (start, stop) = match args {
        [stop] => (0, bound(stop)?),
        [start, stop] => (bound(start)?, bound(stop)?),
        _ => return Err(format!("loop: wrong number of arguments, expected 1 or 2, but got {}", args.len())),
    };
    if stop.saturating_sub(start) > MAX_LOOP {
        return Err(format!("loop: more than {MAX_LOOP} iterations"));
    }
    Ok(Value::List((start..stop).map(Value::Int).collect()))
}

/// A `[]interface{}` parameter: a list, or nothing for a missing key.
pub(super) fn list(value: &Value) -> Result<&[Value], String> {
    match value {
        Value::List(items) => Ok(items),
        Value::Nil => Ok(&[]),
        other => Err(format!("expected list, got {}", other.type_name())),
    }
}
