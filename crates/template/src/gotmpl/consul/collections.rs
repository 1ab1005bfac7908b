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

/// A `[]interface{}` parameter: a list, or nothing for a missing key.
pub(super) fn list(value: &Value) -> Result<&[Value], String> {
    match value {
        Value::List(items) => Ok(items),
        Value::Nil => Ok(&[]),
        other => Err(format!("expected list, got {}", other.type_name())),
    }
}
