//! consul-template's arithmetic (`add`, `subtract`, `multiply`, `divide`,
//! `modulo`, `minimum`, `maximum`), subject last as in a pipeline:
//! `{{ 10 | subtract 3 }}` is 7. Integers stay integers (division
//! truncates); a float on either side gives a float; anything else is an
//! error naming the type, as in consul-template.

use super::super::funcs::CallResult;
use super::super::value::Value;

pub const NAMES: &[&str] = &["add", "subtract", "multiply", "divide", "modulo", "minimum", "maximum"];

/// `name` applied to `a` (the subject, last) and `b`.
pub fn call(name: &str, b: &Value, a: &Value) -> CallResult {
    let unknown = |v: &Value| format!("{name}: unknown type for {}", v.type_name());
    match (a, b) {
        (Value::Int(a), Value::Int(b)) => ints(name, *a, *b),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) if name == "modulo" => {
            Err(unknown(if matches!(a, Value::Float(_)) { a } else { b }))
        }
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            Ok(Value::Float(floats(name, as_float(a), as_float(b))))
        }
        (Value::Int(_) | Value::Float(_), other) | (other, _) => Err(unknown(other)),
    }
}

fn as_float(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

fn ints(name: &str, a: i64, b: i64) -> CallResult {
    let overflow = || format!("{name}: integer overflow");
    Ok(Value::Int(match name {
        "add" => a.checked_add(b).ok_or_else(overflow)?,
        "subtract" => a.checked_sub(b).ok_or_else(overflow)?,
        "multiply" => a.checked_mul(b).ok_or_else(overflow)?,
        "divide" if b == 0 => return Err("divide: integer divide by zero".into()),
        "divide" => a.checked_div(b).ok_or_else(overflow)?,
        "modulo" if b == 0 => return Err("modulo: integer divide by zero".into()),
        "modulo" => a.checked_rem(b).ok_or_else(overflow)?,
        "minimum" => a.min(b),
        _ => a.max(b),
    }))
}

fn floats(name: &str, a: f64, b: f64) -> f64 {
    match name {
        "add" => a + b,
        "subtract" => a - b,
        "multiply" => a * b,
        "divide" => a / b,
        "minimum" => a.min(b),
        _ => a.max(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_comes_last_and_types_are_kept() {
        assert_eq!(call("subtract", &Value::Int(3), &Value::Int(10)), Ok(Value::Int(7)));
        assert_eq!(call("divide", &Value::Int(2), &Value::Int(7)), Ok(Value::Int(3)));
        assert_eq!(call("divide", &Value::Float(2.0), &Value::Int(7)), Ok(Value::Float(3.5)));
        assert_eq!(call("modulo", &Value::Int(3), &Value::Int(10)), Ok(Value::Int(1)));
        assert_eq!(call("minimum", &Value::Int(3), &Value::Int(10)), Ok(Value::Int(3)));
        assert_eq!(call("maximum", &Value::Float(3.5), &Value::Int(3)), Ok(Value::Float(3.5)));
        assert!(call("add", &Value::Int(1), &Value::Str("2".into())).unwrap_err().contains("add: unknown type"));
        assert!(call("modulo", &Value::Float(1.5), &Value::Int(3)).is_err());
        assert!(call("divide", &Value::Int(0), &Value::Int(3)).unwrap_err().contains("divide by zero"));
        assert!(call("add", &Value::Int(1), &Value::Int(i64::MAX)).unwrap_err().contains("overflow"));
    }
}
