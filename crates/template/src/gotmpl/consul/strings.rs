//! consul-template's string helpers that differ from sprig's: Go's simple
//! case mapping, `indent` that skips empty lines, `split` that trims first,
//! and Go's `strconv` parsers.

use super::super::funcs::{CallResult, int, text};
use super::super::sprig::{self, fits};
use super::super::value::Value;

/// consul-template's `indent`: `spaces` before every line that is not
/// empty; a negative count is an error.
pub(super) fn indent(spaces: &Value, s: &Value) -> CallResult {
    let spaces = usize::try_from(int(spaces)?).map_err(|_| "indent value must be a positive integer")?;
    let s = text(s)?;
    let mut starts = 0usize;
    let mut at_start = true;
    for b in s.bytes() {
        if at_start && b != b'\n' {
            starts += 1;
        }
        at_start = b == b'\n';
    }
    fits(starts.checked_mul(spaces).and_then(|pad| pad.checked_add(s.len())))?;
    let pad = " ".repeat(spaces);
    let mut out = String::with_capacity(s.len() + starts * spaces);
    for line in s.split_inclusive('\n') {
        if !line.starts_with('\n') {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    Ok(Value::Str(out))
}

/// Go's `strings.ToUpper`/`ToLower` map each character to one character
/// (Unicode's simple case mapping), so `ß` stays `ß`; where Rust's full
/// mapping gives several, the character is kept (upper) or the first one
/// taken (lower: only `İ`, whose simple mapping is `i`).
pub(super) fn case(s: &str, upper: bool) -> CallResult {
    let mut out = String::with_capacity(s.len().min(super::super::MAX_OUTPUT));
    for c in s.chars() {
        let mapped = if upper {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        } else {
            c.to_lowercase().next().unwrap_or(c)
        };
        if out.len() + mapped.len_utf8() > super::super::MAX_OUTPUT {
            return Err(super::super::TOO_LARGE.into());
        }
        out.push(mapped);
    }
    Ok(Value::Str(out))
}

/// consul-template's `split`: the input trimmed of white space, an empty
/// list for an empty one, else Go's `strings.Split`.
pub(super) fn split(sep: &str, s: &str) -> Result<Vec<Value>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    sprig::split(sep, s)
}

/// Go's `strconv.ParseBool`.
pub(super) fn parse_bool(s: &str) -> CallResult {
    match s {
        "" | "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
        _ => Err("invalid syntax".into()),
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`, with "" as 0.
pub(super) fn parse_int(s: &str) -> CallResult {
    if s.is_empty() {
        return Ok(Value::Int(0));
    }
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax".into());
    }
    s.parse::<i64>().map(Value::Int).map_err(|_| "value out of range".into())
}

/// Go's `strconv.ParseUint(s, 10, 64)`, with "" as 0. Above the largest
/// int64 it is out of range here (values are int64).
pub(super) fn parse_uint(s: &str) -> CallResult {
    if s.is_empty() {
        return Ok(Value::Int(0));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax".into());
    }
    s.parse::<i64>().map(Value::Int).map_err(|_| "value out of range".into())
}

/// Go's `strconv.ParseFloat(s, 64)` in decimal, with "" as 0. Go's hex
/// floats and digit separators are not read.
pub(super) fn parse_float(s: &str) -> CallResult {
    if s.is_empty() {
        return Ok(Value::Float(0.0));
    }
    let f: f64 = s.parse().map_err(|_| "invalid syntax".to_string())?;
    let unsigned = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
    if f.is_infinite() && unsigned != "inf" && unsigned != "infinity" {
        return Err("value out of range".into());
    }
    Ok(Value::Float(f))
}
