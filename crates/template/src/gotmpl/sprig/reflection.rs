//! Sprig's reflection helpers. Go's names for the engine's values: a
//! string is `string` (non-UTF-8 data included: it is a Go string in
//! ESO), a Vault number `json.Number`, a list `[]interface {}`, a map
//! `map[string]interface {}`, an integer `int` and a float `float64`.
//! Where Go keeps a narrower type (`[]string` from `splitList`, `int64`
//! from `add`) the engine has the general one: see the module docs.

use super::super::funcs::{CallResult, arity, text};
use super::super::value::Value;

pub(super) fn call(name: &str, args: &mut [Value]) -> Option<CallResult> {
    Some(match name {
        "typeOf" => arity(args, 1).map(|()| Value::Str(type_of(&args[0]).into())),
        "kindOf" => arity(args, 1).map(|()| Value::Str(kind(&args[0]).into())),
        "typeIs" | "typeIsLike" | "kindIs" => (|| {
            arity(args, 2)?;
            let target = text(&args[0])?;
            let actual = if name == "kindIs" { kind(&args[1]) } else { type_of(&args[1]) };
            let like = name == "typeIsLike" && actual.strip_prefix('*') == Some(target.as_ref());
            Ok(Value::Bool(target == actual || like))
        })(),
        "deepEqual" => arity(args, 2).map(|()| Value::Bool(deep_equal(&args[0], &args[1]))),
        _ => return None,
    })
}

/// `fmt.Sprintf("%T", v)`.
fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Bytes(_) => "string",
        other => other.type_name(),
    }
}

/// `reflect.ValueOf(v).Kind().String()`.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) | Value::Bytes(_) | Value::Number(_) => "string",
        Value::List(_) => "slice",
        Value::Map(_) => "map",
    }
}

/// `reflect.DeepEqual`: the same type and the same contents (a string's
/// bytes whichever way the engine holds them; NaN equals nothing).
/// Iterative, so a deep value costs no stack.
pub(super) fn deep_equal(a: &Value, b: &Value) -> bool {
    let mut pending = vec![(a, b)];
    while let Some((a, b)) = pending.pop() {
        let same = match (a, b) {
            (Value::Str(_) | Value::Bytes(_), Value::Str(_) | Value::Bytes(_)) => a.as_bytes() == b.as_bytes(),
            (Value::List(x), Value::List(y)) => {
                x.len() == y.len() && {
                    pending.extend(x.iter().zip(y));
                    true
                }
            }
            (Value::Map(x), Value::Map(y)) => {
                x.len() == y.len()
                    && x.iter().zip(y).all(|((kx, vx), (ky, vy))| {
                        pending.push((vx, vy));
                        kx == ky
                    })
            }
            _ => a == b,
        };
        if !same {
            return false;
        }
    }
    true
}
