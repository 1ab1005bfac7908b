//! JSON in and out with Go's `encoding/json` conventions, so `toJson`
//! output is byte-identical to what ESO would write.

use std::collections::BTreeMap;

use super::value::{Value, digits_exponent, digits_fixed, shortest_digits};

pub struct Style {
    /// `toPrettyJson` indents by two spaces.
    pub pretty: bool,
    /// `json.Marshal` escapes `<`, `>` and `&`; `toRawJson` does not.
    pub escape_html: bool,
    /// Backspace and form feed as `\b` and `\f`, as Go 1.22 and later
    /// write them, rather than `\u0008` and `\u000c`.
    pub short_escapes: bool,
}

pub fn encode(value: &Value, style: &Style) -> Result<String, String> {
    let mut out = String::new();
    write(value, style, 0, &mut out)?;
    if out.len() > super::MAX_OUTPUT {
        return Err(super::TOO_LARGE.into());
    }
    Ok(out)
}

fn newline(out: &mut String, style: &Style, depth: usize) {
    if style.pretty {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    }
}

/// Fails as soon as `out` outgrows 1 MiB, so no larger string is built.
fn write(value: &Value, style: &Style, depth: usize, out: &mut String) -> Result<(), String> {
    if out.len() > super::MAX_OUTPUT {
        return Err(super::TOO_LARGE.into());
    }
    match value {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&float(*f)?),
        // encoding/json writes a json.Number as it is, once it checks it
        // is a number (it came from one here).
        Value::Number(n) => out.push_str(n),
        Value::Str(_) | Value::Bytes(_) => string(&value.as_text().unwrap_or_default(), style, out)?,
        Value::List(items) if items.is_empty() => out.push_str("[]"),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, style, depth + 1);
                write(item, style, depth + 1, out)?;
            }
            newline(out, style, depth);
            out.push(']');
        }
        Value::Map(map) if map.is_empty() => out.push_str("{}"),
        Value::Map(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, style, depth + 1);
                string(k, style, out)?;
                out.push_str(if style.pretty { ": " } else { ":" });
                write(v, style, depth + 1, out)?;
            }
            newline(out, style, depth);
            out.push('}');
        }
    }
    Ok(())
}

/// Go writes floats without exponent in [1e-6, 1e21), else as `1e-07`
/// trimmed to `1e-7`; shortest digits, Go's ties included.
fn float(f: f64) -> Result<String, String> {
    if !f.is_finite() {
        return Err("unsupported float value".into());
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let (digits, point) = shortest_digits(f);
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        return Ok(format!("{sign}{}", digits_fixed(&digits, point)));
    }
    let exponent = digits_exponent(&digits, point, 2);
    // encoding/json's clean-up: e-07 is written e-7.
    let exponent = match exponent.split_once("e-0") {
        Some((mantissa, exp)) if exp.len() == 1 => format!("{mantissa}e-{exp}"),
        _ => exponent,
    };
    Ok(format!("{sign}{exponent}"))
}

fn string(s: &str, style: &Style, out: &mut String) -> Result<(), String> {
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
            '\u{8}' if style.short_escapes => out.push_str("\\b"),
            '\u{c}' if style.short_escapes => out.push_str("\\f"),
            '<' | '>' | '&' if style.escape_html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(())
}

/// Parses JSON. Integers stay ints (Go would make them float64; they print
/// the same, and `eq` compares ints with floats by value).
pub fn decode(text: &str) -> Result<Value, String> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|_| "input is not valid JSON".to_string())?;
    Ok(from_json(json))
}

pub fn from_json(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => n.as_i64().map(Value::Int).unwrap_or(Value::Float(n.as_f64().unwrap_or(0.0))),
        serde_json::Value::String(s) => Value::Str(s),
        serde_json::Value::Array(items) => Value::List(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(map) => {
            Value::Map(map.into_iter().map(|(k, v)| (k, from_json(v))).collect::<BTreeMap<_, _>>())
        }
    }
}

/// As `from_json`, but numbers kept as their text ([`Value::Number`]), as
/// consul-template sees the data of a Vault answer.
pub fn from_json_numbers_as_text(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Number(n) => Value::Number(n.to_string()),
        serde_json::Value::Array(items) => Value::List(items.into_iter().map(from_json_numbers_as_text).collect()),
        serde_json::Value::Object(map) => {
            Value::Map(map.into_iter().map(|(k, v)| (k, from_json_numbers_as_text(v))).collect::<BTreeMap<_, _>>())
        }
        other => from_json(other),
    }
}

/// As `from_json`, but every number a float64, as Go decodes into `any`.
pub fn from_json_as_float(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or_default()),
        serde_json::Value::Array(items) => Value::List(items.iter().map(from_json_as_float).collect()),
        serde_json::Value::Object(map) => {
            Value::Map(map.iter().map(|(k, v)| (k.clone(), from_json_as_float(v))).collect::<BTreeMap<_, _>>())
        }
        other => from_json(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPACT: Style = Style { pretty: false, escape_html: true, short_escapes: false };

    #[test]
    fn encodes_like_go() {
        let v = decode(r#"{"b":[1,2.5,"<&>"],"a":null,"c":{"d":true}}"#).unwrap();
        assert_eq!(encode(&v, &COMPACT).unwrap(), r#"{"a":null,"b":[1,2.5,"\u003c\u0026\u003e"],"c":{"d":true}}"#);
        let pretty = Style { pretty: true, escape_html: false, short_escapes: false };
        assert_eq!(
            encode(&v, &pretty).unwrap(),
            "{\n  \"a\": null,\n  \"b\": [\n    1,\n    2.5,\n    \"<&>\"\n  ],\n  \"c\": {\n    \"d\": true\n  }\n}"
        );
    }

    #[test]
    fn floats_like_go() {
        assert_eq!(float(1e21).unwrap(), "1e+21");
        assert_eq!(float(1e-7).unwrap(), "1e-7");
        assert_eq!(float(0.5).unwrap(), "0.5");
        assert_eq!(float(3.0).unwrap(), "3");
        assert_eq!(float(123456.0).unwrap(), "123456");
    }
}
