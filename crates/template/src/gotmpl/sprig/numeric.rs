//! Sprig's conversions and arithmetic. `add`, `sub`, `mul`, `max`... take
//! any value through spf13/cast (v1.10.0, what ESO builds with): a string
//! is parsed as Go source would read an integer (`0x1f`, `0o17`, `017`
//! octal, `1_000`), a decimal's fraction dropped (`1.9` is 1), and what
//! does not parse is 0.
//! Integer arithmetic wraps as Go's int64 does.

use super::super::builtins::push_bounded;
use super::super::funcs::{CallResult, arity, at_least, int};
use super::super::value::Value;
use super::split_count_fits;

pub(super) fn call(name: &str, args: &mut [Value]) -> Option<CallResult> {
    Some(match name {
        "atoi" => (|| {
            arity(args, 1)?;
            let s = super::strings::bytes(&args[0])?;
            let n = match parse_int(&String::from_utf8_lossy(s), 10) {
                Ok(n) | Err(Some(n)) => n,
                Err(None) => 0,
            };
            Ok(Value::Int(n))
        })(),
        "int" | "int64" => (|| {
            arity(args, 1)?;
            Ok(Value::Int(to_int64(&args[0])))
        })(),
        "float64" => (|| {
            arity(args, 1)?;
            Ok(Value::Float(to_float64(&args[0])))
        })(),
        "toDecimal" => (|| {
            arity(args, 1)?;
            let s = super::super::funcs::to_string(&args[0])?;
            Ok(Value::Int(parse_int(&s, 8).unwrap_or(0)))
        })(),
        "add1" => (|| {
            arity(args, 1)?;
            Ok(Value::Int(to_int64(&args[0]).wrapping_add(1)))
        })(),
        "add" => Ok(Value::Int(args.iter().fold(0i64, |sum, v| sum.wrapping_add(to_int64(v))))),
        "sub" | "div" | "mod" => (|| {
            arity(args, 2)?;
            let (a, b) = (to_int64(&args[0]), to_int64(&args[1]));
            if name != "sub" && b == 0 {
                return Err("integer divide by zero".into());
            }
            Ok(Value::Int(match name {
                "sub" => a.wrapping_sub(b),
                "div" => a.wrapping_div(b),
                _ => a.wrapping_rem(b),
            }))
        })(),
        "mul" => (|| {
            at_least(args, 1)?;
            Ok(Value::Int(args[1..].iter().fold(to_int64(&args[0]), |acc, v| acc.wrapping_mul(to_int64(v)))))
        })(),
        "max" | "biggest" | "min" => (|| {
            at_least(args, 1)?;
            let values = args.iter().map(to_int64);
            let n = if name == "min" { values.min() } else { values.max() };
            Ok(Value::Int(n.unwrap_or(0)))
        })(),
        "maxf" | "minf" => (|| {
            at_least(args, 1)?;
            let first = to_float64(&args[0]);
            let pick = if name == "maxf" { go_max } else { go_min };
            Ok(Value::Float(args[1..].iter().fold(first, |acc, v| pick(acc, to_float64(v)))))
        })(),
        "ceil" => (|| {
            arity(args, 1)?;
            Ok(Value::Float(to_float64(&args[0]).ceil()))
        })(),
        "floor" => (|| {
            arity(args, 1)?;
            Ok(Value::Float(to_float64(&args[0]).floor()))
        })(),
        "round" => (|| {
            if !(2..=3).contains(&args.len()) {
                return Err(format!("wrong number of args: want 2 or 3 got {}", args.len()));
            }
            let places = int(&args[1])?;
            let on = match args.get(2) {
                None => 0.5,
                Some(Value::Float(f)) => *f,
                Some(Value::Int(i)) => *i as f64,
                Some(other) => return Err(format!("expected float64, got {}", other.type_name())),
            };
            Ok(Value::Float(round(to_float64(&args[0]), places, on)))
        })(),
        "until" => (|| {
            arity(args, 1)?;
            let count = int(&args[0])?;
            until_step(0, count, if count < 0 { -1 } else { 1 }).map(ints)
        })(),
        "untilStep" => (|| {
            arity(args, 3)?;
            until_step(int(&args[0])?, int(&args[1])?, int(&args[2])?).map(ints)
        })(),
        "seq" => (|| {
            let params = args.iter().map(int).collect::<Result<Vec<_>, _>>()?;
            let numbers = match params[..] {
                [end] => {
                    let inc = if end < 1 { -1 } else { 1 };
                    until_step(1, end.wrapping_add(inc), inc)?
                }
                [start, end] => {
                    let step = if end < start { -1 } else { 1 };
                    until_step(start, end.wrapping_add(step), step)?
                }
                [start, step, end] => {
                    let inc = if end < start { -1 } else { 1 };
                    if end < start && step > 0 { Vec::new() } else { until_step(start, end.wrapping_add(inc), step)? }
                }
                _ => Vec::new(),
            };
            let mut out = String::new();
            for (i, n) in numbers.iter().enumerate() {
                if i > 0 {
                    push_bounded(&mut out, " ")?;
                }
                push_bounded(&mut out, &n.to_string())?;
            }
            Ok(Value::Str(out))
        })(),
        _ => return None,
    })
}

fn ints(numbers: Vec<i64>) -> Value {
    Value::List(numbers.into_iter().map(Value::Int).collect())
}

/// Sprig's `untilStep`, its length checked before building it.
fn until_step(start: i64, stop: i64, step: i64) -> Result<Vec<i64>, String> {
    let (start, stop, step) = (i128::from(start), i128::from(stop), i128::from(step));
    let count = if stop < start {
        if step >= 0 { 0 } else { (start - stop + (-step) - 1) / -step }
    } else if step <= 0 {
        0
    } else {
        (stop - start + step - 1) / step
    };
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    split_count_fits(count, 0)?;
    Ok((0..count).map(|i| (start + step * i as i128) as i64).collect())
}

/// cast's `ToInt64`: what it cannot convert is 0.
pub(super) fn to_int64(value: &Value) -> i64 {
    match value {
        Value::Nil => 0,
        Value::Bool(b) => i64::from(*b),
        Value::Int(i) => *i,
        Value::Float(f) => go_float_to_int(*f),
        Value::Str(_) | Value::Bytes(_) | Value::Number(_) => {
            let s = value.string_kind_bytes().map(String::from_utf8_lossy).unwrap_or_default();
            parse_int(&trim_decimal(&s), 0).unwrap_or(0)
        }
        Value::List(_) | Value::Map(_) => 0,
    }
}

/// cast's `ToFloat64`: what it cannot convert is 0.
pub(super) fn to_float64(value: &Value) -> f64 {
    match value {
        Value::Nil => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Str(_) | Value::Bytes(_) | Value::Number(_) => {
            let s = value.string_kind_bytes().map(String::from_utf8_lossy).unwrap_or_default();
            parse_float(&s).unwrap_or(0.0)
        }
        Value::List(_) | Value::Map(_) => 0.0,
    }
}

/// Go's `int64(f)` on amd64: out of range (and NaN) is the smallest int64.
fn go_float_to_int(f: f64) -> i64 {
    // 2^63, exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() || !(-LIMIT..LIMIT).contains(&f) {
        return i64::MIN;
    }
    f as i64
}

/// cast's `trimDecimal`: a decimal number (`[-+]?\d*(\.\d*)?`) without
/// its fraction, `.5` being 0.
fn trim_decimal(s: &str) -> String {
    let Some((int, fraction)) = s.split_once('.') else { return s.to_string() };
    let digits = int.strip_prefix(['+', '-']).unwrap_or(int);
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return s.to_string();
    }
    match int {
        "" => "0".to_string(),
        "-" | "+" => format!("{int}0"),
        _ => int.to_string(),
    }
}

/// Go's `strconv.ParseInt(s, base, 64)` for base 0 (Go's literal syntax,
/// underscores allowed), 8 or 10. `Err(Some(n))` is a range error with
/// Go's clamped value, `Err(None)` a syntax error.
pub(super) fn parse_int(s: &str, base: u32) -> Result<i64, Option<i64>> {
    let original = s;
    let (negative, s) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if s.is_empty() {
        return Err(None);
    }
    let (base, digits, underscores) = if base == 0 {
        let lower = |i: usize| s.as_bytes().get(i).map(u8::to_ascii_lowercase);
        match (s.as_bytes()[0], lower(1)) {
            (b'0', Some(b'b')) if s.len() >= 3 => (2, &s[2..], true),
            (b'0', Some(b'o')) if s.len() >= 3 => (8, &s[2..], true),
            (b'0', Some(b'x')) if s.len() >= 3 => (16, &s[2..], true),
            (b'0', _) => (8, &s[1..], true),
            _ => (10, s, true),
        }
    } else {
        (base, s, false)
    };
    let mut value: u64 = 0;
    let mut saw_underscore = false;
    for c in digits.chars() {
        if c == '_' && underscores {
            saw_underscore = true;
            continue;
        }
        let d = c.to_digit(base).ok_or(None)?;
        match value.checked_mul(u64::from(base)).and_then(|v| v.checked_add(u64::from(d))) {
            Some(v) => value = v,
            // Go stops at the overflow, before any later syntax error.
            None => return Err(Some(if negative { i64::MIN } else { i64::MAX })),
        }
    }
    if saw_underscore && !underscore_ok(original) {
        return Err(None);
    }
    let cutoff = 1u64 << 63;
    if (!negative && value >= cutoff) || (negative && value > cutoff) {
        return Err(Some(if negative { i64::MIN } else { i64::MAX }));
    }
    Ok(if negative { (value as i64).wrapping_neg() } else { value as i64 })
}

/// Go's `underscoreOK`: underscores only between digits, or after a base
/// prefix.
fn underscore_ok(s: &str) -> bool {
    let mut s = s.as_bytes();
    if let Some(b'+' | b'-') = s.first() {
        s = &s[1..];
    }
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = s[1].eq_ignore_ascii_case(&b'x');
    }
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c.is_ascii_digit() || hex && c.is_ascii_hexdigit() {
            saw = b'0';
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal input: `None` where Go
/// reports an error (out of range included).
pub(super) fn parse_float(s: &str) -> Option<f64> {
    if s.bytes().any(|b| b.is_ascii_whitespace()) || s.contains('_') && !underscore_ok(s) {
        return None;
    }
    let value: f64 = s.replace('_', "").parse().ok()?;
    let literal_infinity = {
        let t = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
        t == "inf" || t == "infinity"
    };
    if value.is_infinite() && !literal_infinity {
        return None;
    }
    Some(value)
}

/// Go's `math.Max`: NaN wins, +0 over -0.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_infinite() && a > 0.0 || b.is_infinite() && b > 0.0 {
        return f64::INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    if a > b { a } else { b }
}

/// Go's `math.Min`: NaN wins, -0 over +0.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_infinite() && a < 0.0 || b.is_infinite() && b < 0.0 {
        return f64::NEG_INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    if a < b { a } else { b }
}

/// Sprig's `round`.
fn round(value: f64, places: i64, on: f64) -> f64 {
    let pow = go_pow10(places);
    let digit = pow * value;
    let fraction = digit.fract();
    let rounded = if fraction >= on { digit.ceil() } else { digit.floor() };
    rounded / pow
}

/// Go's `math.Pow(10, y)` for an integer `y`: repeated squaring of the
/// mantissa with the exponent kept apart, as Go computes it.
fn go_pow10(y: i64) -> f64 {
    if y == 0 {
        return 1.0;
    }
    let (mut x1, mut xe) = (0.625f64, 4i64); // frexp(10)
    let mut a1 = 1.0f64;
    let mut ae = 0i64;
    let mut i = y.unsigned_abs();
    while i != 0 {
        if !(-(1 << 12)..=(1 << 12)).contains(&xe) {
            ae += xe;
            break;
        }
        if i & 1 == 1 {
            a1 *= x1;
            ae += xe;
        }
        x1 *= x1;
        xe <<= 1;
        if x1 < 0.5 {
            x1 += x1;
            xe -= 1;
        }
        i >>= 1;
    }
    if y < 0 {
        a1 = 1.0 / a1;
        ae = -ae;
    }
    ldexp(a1, ae)
}

/// `frac × 2^exp`, in steps that stay exact until the last.
fn ldexp(mut frac: f64, mut exp: i64) -> f64 {
    while exp > 1000 {
        frac *= 2f64.powi(1000);
        exp -= 1000;
        if frac.is_infinite() {
            return frac;
        }
    }
    while exp < -1000 {
        frac *= 2f64.powi(-1000);
        exp += 1000;
        if frac == 0.0 {
            return frac;
        }
    }
    frac * 2f64.powi(exp as i32)
}
