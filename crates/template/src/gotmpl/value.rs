//! The values a template computes with, and how Go's `fmt` prints them.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// A template value. `Bytes` only exists so that Secret data which is not
/// UTF-8 (a decoded keystore, say) survives `b64enc` byte for byte; every
/// other use treats it as a string.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// A number in a Vault answer, kept as its text: consul-template
    /// decodes Vault's JSON with `UseNumber`, so a template sees Go's
    /// `json.Number`, a string type. It prints as written (`5432`,
    /// `1.0`), compares with strings, and is no number to `printf "%d"`
    /// or the math functions, and no string to a function taking one.
    Number(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    pub fn from_bytes(bytes: &[u8]) -> Value {
        match String::from_utf8(bytes.to_vec()) {
            Ok(s) => Value::Str(s),
            Err(e) => Value::Bytes(e.into_bytes()),
        }
    }

    /// Go's truthiness: the zero value of any kind is false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Number(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
        }
    }

    /// The string behind a string-like value. `Nil` counts as "" because a
    /// missing key is how users spell "empty" (see `exec::fields`).
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Nil => Some(Cow::Borrowed("")),
            Value::Str(s) => Some(Cow::Borrowed(s)),
            Value::Bytes(b) => Some(String::from_utf8_lossy(b)),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Nil => Some(b""),
            Value::Str(s) => Some(s.as_bytes()),
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn is_stringish(&self) -> bool {
        matches!(self, Value::Str(_) | Value::Bytes(_))
    }

    /// Whether Go's reflection sees a string kind here: a string, or a
    /// `json.Number`. What `eq`, `lt`, `len` and `fmt.Sprint` go by.
    pub fn is_string_kind(&self) -> bool {
        matches!(self, Value::Str(_) | Value::Bytes(_) | Value::Number(_))
    }

    /// The bytes of a string-kind value (`is_string_kind`), `Nil` as none.
    pub fn string_kind_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Number(s) => Some(s.as_bytes()),
            other => other.as_bytes(),
        }
    }

    /// About the bytes this value holds, with a fixed cost per node: what
    /// the memory budget counts. Linear in the value's size, like the
    /// clone or the function call that made it.
    pub fn weight(&self) -> usize {
        const NODE: usize = std::mem::size_of::<Value>();
        match self {
            Value::Str(s) | Value::Number(s) => NODE.saturating_add(s.len()),
            Value::Bytes(b) => NODE.saturating_add(b.len()),
            Value::List(items) => items.iter().fold(NODE, |sum, item| sum.saturating_add(item.weight())),
            Value::Map(map) => map
                .iter()
                .fold(NODE, |sum, (k, v)| sum.saturating_add(NODE).saturating_add(k.len()).saturating_add(v.weight())),
            Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) => NODE,
        }
    }

    /// Whether lists and maps nest more than `levels` deep here. Stops at
    /// `levels`, so it never recurses deeper than that.
    pub fn deeper_than(&self, levels: usize) -> bool {
        let mut children: Box<dyn Iterator<Item = &Value>> = match self {
            Value::List(items) => Box::new(items.iter()),
            Value::Map(map) => Box::new(map.values()),
            _ => return false,
        };
        match levels.checked_sub(1) {
            None => true,
            Some(rest) => children.any(|child| child.deeper_than(rest)),
        }
    }

    /// `%v` (the `Display` form), or an error once it outgrows 1 MiB.
    pub fn display(&self) -> Result<String, String> {
        let mut out = Bounded::new(super::MAX_OUTPUT);
        fmt::write(&mut out, format_args!("{self}")).map_err(|_| super::TOO_LARGE.to_string())?;
        Ok(out.out)
    }

    /// Go's name for the type, used in messages instead of the value itself.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Bytes(_) => "[]uint8",
            Value::Number(_) => "json.Number",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
        }
    }
}

/// Prints like Go's `%v`, except that a `Nil` on its own prints nothing
/// (an action decides what nothing prints as; see `exec::write`). Inside a
/// list or map it is Go's `<nil>`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_nested(f, false)
    }
}

impl Value {
    fn fmt_nested(&self, f: &mut fmt::Formatter<'_>, nested: bool) -> fmt::Result {
        match self {
            Value::Nil if nested => f.write_str("<nil>"),
            Value::Nil => Ok(()),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&go_float(*x)),
            Value::Str(s) | Value::Number(s) => f.write_str(s),
            Value::Bytes(b) => f.write_str(&String::from_utf8_lossy(b)),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    item.fmt_nested(f, true)?;
                }
                f.write_str("]")
            }
            Value::Map(map) => {
                f.write_str("map[")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:")?;
                    v.fmt_nested(f, true)?;
                }
                f.write_str("]")
            }
        }
    }
}

/// A `fmt::Write` that fails instead of growing past `limit` bytes.
pub struct Bounded {
    pub out: String,
    pub limit: usize,
    /// Whether a write was refused for the limit.
    pub overflowed: bool,
}

impl Bounded {
    pub fn new(limit: usize) -> Bounded {
        Bounded { out: String::new(), limit, overflowed: false }
    }
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.out.len().saturating_add(s.len()) > self.limit {
            self.overflowed = true;
            return Err(fmt::Error);
        }
        self.out.push_str(s);
        Ok(())
    }
}

/// Go's `%v` (and `%g`) for a float64: shortest digits, exponent form
/// when the decimal exponent is below -4 or 6 and above, as strconv's
/// shortest `'g'` (Go prints `1234567.0` as `1.234567e+06`, `999999.0` as
/// `999999`; JSON's own rule, exponent form from 1e21, is `json.rs`'s).
pub fn go_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let (digits, point) = shortest_digits(x);
    if digits.is_empty() || (-4..6).contains(&(point - 1)) {
        format!("{sign}{}", digits_fixed(&digits, point))
    } else {
        format!("{sign}{}", digits_exponent(&digits, point, 2))
    }
}

/// The shortest decimal digits that read back as `f` (finite), without
/// leading or trailing zeros ("" for zero), and where the point goes: `f`
/// is ±0.DIGITS × 10^point. Go's `FormatFloat(f, _, -1, 64)` uses Ryū,
/// which picks the even digit when two are as close (1064329076044834.2);
/// Rust's own `{}` may pick the other (…834.3), so the digits come from
/// serde_json, which writes floats with Ryū too.
pub fn shortest_digits(f: f64) -> (String, i32) {
    let text = serde_json::to_string(&f.abs()).unwrap_or_default();
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text.as_str(), 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{int}{frac}");
    let digits = all.trim_start_matches('0');
    let leading = (all.len() - digits.len()) as i32;
    let digits = digits.trim_end_matches('0').to_string();
    let point = if digits.is_empty() { 0 } else { int.len() as i32 + exp - leading };
    (digits, point)
}

/// `digits` (of [`shortest_digits`]) with the point at `point`, as `FormatFloat(_, 'f', -1, _)`
/// writes them: `0` for no digits, no exponent.
pub fn digits_fixed(digits: &str, point: i32) -> String {
    if digits.is_empty() {
        return "0".into();
    }
    let len = digits.len() as i32;
    if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point >= len {
        format!("{digits}{}", "0".repeat((point - len) as usize))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    }
}

/// `digits` (of [`shortest_digits`]) in Go's exponent form, `d.ddde+XX`,
/// with at least `exp_digits` exponent digits.
pub fn digits_exponent(digits: &str, point: i32, exp_digits: usize) -> String {
    let digits = if digits.is_empty() { "0" } else { digits };
    let (first, rest) = digits.split_at(1);
    let dot = if rest.is_empty() { "" } else { "." };
    let exp = if digits == "0" { 0 } else { point - 1 };
    let exp_sign = if exp < 0 { '-' } else { '+' };
    format!("{first}{dot}{rest}e{exp_sign}{:0>exp_digits$}", exp.unsigned_abs())
}

/// Rewrites Rust's `1.5e-7` into Go's `1.5e-07`: a sign always, and at
/// least `digits` exponent digits.
pub fn go_exponent(rust: &str, digits: usize) -> String {
    let Some((mantissa, exp)) = rust.split_once('e') else { return rust.to_string() };
    let (sign, num) = match exp.strip_prefix('-') {
        Some(n) => ('-', n),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{num:0>digits$}")
}

/// Go's `strconv.Quote`; an error if the result would outgrow 1 MiB.
pub fn go_quote(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len().min(super::MAX_OUTPUT) + 2);
    out.push('"');
    for c in s.chars() {
        if out.len() > super::MAX_OUTPUT {
            return Err(super::TOO_LARGE.into());
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' || c == '\u{feff}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    if out.len() > super::MAX_OUTPUT {
        return Err(super::TOO_LARGE.into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(3.0), "3");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(-0.0), "-0");
        // Ryū's tie to the even digit, as Go's strconv; Rust's own `{}`
        // writes ...834.3 here. Exponent form from 1e6, as Go's
        // text/template and fmt.Println print them.
        assert_eq!(go_float(1064329076044834.2), "1.0643290760448342e+15");
        assert_eq!(go_float(999999.0), "999999");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(1e20), "1e+20");
        assert_eq!(go_float(1.5e-7), "1.5e-07");
    }

    #[test]
    fn quote_escapes_like_strconv() {
        assert_eq!(go_quote("a\"b\\c\n\x01").unwrap(), "\"a\\\"b\\\\c\\n\\x01\"");
        assert_eq!(go_quote("é").unwrap(), "\"é\"");
    }

    #[test]
    fn collections_print_like_go() {
        let list = Value::List(vec![Value::Int(1), Value::Str("a".into())]);
        assert_eq!(list.to_string(), "[1 a]");
        let map = Value::Map([("b".to_string(), Value::Bool(true)), ("a".into(), list)].into_iter().collect());
        assert_eq!(map.to_string(), "map[a:[1 a] b:true]");
    }
}
