//! consul-template's `toTOML`: BurntSushi/toml v1.5.0's `Encoder.Encode`
//! (what OpenBao's agent links), surrounding whitespace trimmed. A port of
//! its `encode.go` for the values a template has:
//!
//! * In each table, keys holding values come first, then those holding
//!   tables (maps, and lists whose items are all maps), each group sorted
//!   by bytes. A table is a `[a.b]` header, an extra blank line before
//!   top-level ones; a list of maps is `[[a.b]]` per item; whatever is
//!   inside a table is indented by two spaces per level.
//! * A nil map value is left out; a nil anywhere in a list is an error,
//!   as is a nil or a list of maps at the top.
//! * Strings are always double-quoted, with `\"`, `\\`, `\b`, `\t`, `\n`,
//!   `\f`, `\r` and `\u00XX` for other control characters and DEL; keys
//!   are bare when made of `A-Za-z0-9_-` only.
//! * Floats print in full (`1000000.0`, never an exponent) with at least
//!   one decimal; a `json.Number` (Vault's numbers) is an int if `Int64()`
//!   reads it, else a float.
//! * A list is inline (`[1, "a"]`), and so are maps inside it
//!   (`{a = 1}`).
//!
//! A value that is neither a map nor a list of maps is written alone
//! (`"text"`, `5`), as the Go encoder does for a top-level non-table.

use std::collections::BTreeMap;

use super::super::value::{Value, digits_fixed, shortest_digits};
use super::super::{MAX_OUTPUT, TOO_LARGE};
use super::yaml_v2::go_parse_float;

const NIL_ELEMENT: &str = "toml: cannot encode array with nil element";
const NO_KEY: &str = "toml: top-level values must be Go maps or structs";

/// `toTOML`: the TOML of `value`, trimmed; a string, or bytes when a
/// string in it was not UTF-8 (Go copies such bytes as they are).
pub fn to_toml(value: &Value) -> Result<Value, String> {
    let mut encoder = Encoder { out: Vec::new() };
    match value {
        Value::Nil => return Err("toml: cannot encode a nil value".into()),
        Value::Map(map) => encoder.map(&[], map, false)?,
        Value::List(items) if all_tables(items)? => return Err(NO_KEY.into()),
        other => encoder.element(other)?,
    }
    let out = encoder.out;
    let start = out.iter().position(|b| !is_go_space(*b)).unwrap_or(out.len());
    let end = out.iter().rposition(|b| !is_go_space(*b)).map_or(start, |i| i + 1);
    Ok(Value::from_bytes(&out[start..end]))
}

/// `bytes.TrimSpace`'s ASCII spaces; the output starts and ends with
/// ASCII (a key, a bracket, a quote, a digit or a line break).
fn is_go_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ')
}

/// `isTableArray`: a non-empty list of maps only. A nil item, here or in
/// a list inside, is an error, as Go checks every item's type.
fn all_tables(items: &[Value]) -> Result<bool, String> {
    let mut tables = !items.is_empty();
    for item in items {
        match item {
            Value::Nil => return Err(NIL_ELEMENT.into()),
            Value::List(inner) => {
                all_tables(inner)?;
                tables = false;
            }
            Value::Map(_) => {}
            _ => tables = false,
        }
    }
    Ok(tables)
}

/// Whether a map's value is written as a table (`typeIsTable`).
fn is_table(value: &Value) -> Result<bool, String> {
    match value {
        Value::Map(_) => Ok(true),
        Value::List(items) => all_tables(items),
        _ => Ok(false),
    }
}

fn bare(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

struct Encoder {
    out: Vec<u8>,
}

type Step = Result<(), String>;

impl Encoder {
    fn push(&mut self, bytes: &[u8]) -> Step {
        if self.out.len().saturating_add(bytes.len()) > MAX_OUTPUT {
            return Err(TOO_LARGE.into());
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// A line break, unless nothing was written yet.
    fn newline(&mut self) -> Step {
        if self.out.is_empty() { Ok(()) } else { self.push(b"\n") }
    }

    fn indent(&mut self, key: &[&str]) -> Step {
        for _ in 1..key.len() {
            self.push(b"  ")?;
        }
        Ok(())
    }

    /// `dblQuotedReplacer` inside double quotes.
    fn quoted(&mut self, s: &[u8]) -> Step {
        self.push(b"\"")?;
        let mut from = 0;
        for (i, &c) in s.iter().enumerate() {
            let escape: &[u8] = match c {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                0x08 => b"\\b",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                0x0C => b"\\f",
                b'\r' => b"\\r",
                0..0x20 | 0x7F => b"",
                _ => continue,
            };
            self.push(&s[from..i])?;
            if escape.is_empty() {
                self.push(format!("\\u{c:04x}").as_bytes())?;
            } else {
                self.push(escape)?;
            }
            from = i + 1;
        }
        self.push(&s[from..])?;
        self.push(b"\"")
    }

    /// `Key.String()`: the dotted name of a table.
    fn key_path(&mut self, key: &[&str]) -> Step {
        for (i, part) in key.iter().enumerate() {
            if i > 0 {
                self.push(b".")?;
            }
            self.key_part(part)?;
        }
        Ok(())
    }

    /// `Key.maybeQuoted`: bare, or quoted (`""` for the empty key).
    fn key_part(&mut self, part: &str) -> Step {
        if bare(part) { self.push(part.as_bytes()) } else { self.quoted(part.as_bytes()) }
    }

    /// `eMap`: the values of a table (or of an inline table), then its
    /// tables.
    fn map(&mut self, key: &[&str], map: &BTreeMap<String, Value>, inline: bool) -> Step {
        let mut direct = Vec::new();
        let mut sub = Vec::new();
        for (k, v) in map {
            if is_table(v)? {
                sub.push((k.as_str(), v));
            } else {
                direct.push((k.as_str(), v));
            }
        }
        if inline {
            self.push(b"{")?;
        }
        let trailing_comma = !sub.is_empty();
        self.entries(key, &direct, inline, trailing_comma)?;
        self.entries(key, &sub, inline, false)?;
        if inline {
            self.push(b"}")?;
        }
        Ok(())
    }

    /// `writeMapKeys`. A nil value is skipped after the comma of the one
    /// before it was written, as in Go (`{a = 1, }`).
    fn entries(&mut self, key: &[&str], entries: &[(&str, &Value)], inline: bool, trailing_comma: bool) -> Step {
        for (i, (k, v)) in entries.iter().enumerate() {
            if **v == Value::Nil {
                continue;
            }
            if inline {
                self.key_part(k)?;
                self.push(b" = ")?;
                self.element(v)?;
                if trailing_comma || i != entries.len() - 1 {
                    self.push(b", ")?;
                }
            } else {
                let mut path = key.to_vec();
                path.push(k);
                self.encode(&path, v)?;
            }
        }
        Ok(())
    }

    /// `encode` for a key inside the document.
    fn encode(&mut self, key: &[&str], value: &Value) -> Step {
        match value {
            Value::Map(map) => {
                if key.len() == 1 {
                    self.newline()?;
                }
                self.indent(key)?;
                self.push(b"[")?;
                self.key_path(key)?;
                self.push(b"]")?;
                self.newline()?;
                self.map(key, map, false)
            }
            Value::List(items) if all_tables(items)? => {
                for item in items {
                    let Value::Map(map) = item else { unreachable!("a list of tables holds maps") };
                    self.newline()?;
                    self.indent(key)?;
                    self.push(b"[[")?;
                    self.key_path(key)?;
                    self.push(b"]]")?;
                    self.newline()?;
                    self.map(key, map, false)?;
                }
                Ok(())
            }
            other => {
                self.indent(key)?;
                self.key_part(key.last().copied().unwrap_or_default())?;
                self.push(b" = ")?;
                self.element(other)?;
                self.newline()
            }
        }
    }

    /// `eElement`: a value on the right of `=`, or inside a list.
    fn element(&mut self, value: &Value) -> Step {
        match value {
            Value::Nil => Err(NIL_ELEMENT.into()),
            Value::Bool(b) => self.push(if *b { b"true" } else { b"false" }),
            Value::Int(i) => self.push(i.to_string().as_bytes()),
            Value::Float(f) => self.push(float(*f).as_bytes()),
            Value::Str(s) => self.quoted(s.as_bytes()),
            Value::Bytes(b) => self.quoted(b),
            Value::Number(n) => {
                if n.is_empty() {
                    return self.push(b"0");
                }
                if let Ok(i) = n.parse::<i64>() {
                    return self.push(i.to_string().as_bytes());
                }
                match go_parse_float(n) {
                    Some(f) => self.push(float(f).as_bytes()),
                    None => Err("toml: unable to convert a json.Number to int64 or float64".into()),
                }
            }
            Value::List(items) => {
                self.push(b"[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.push(b", ")?;
                    }
                    self.element(item)?;
                }
                self.push(b"]")
            }
            Value::Map(map) => self.map(&[], map, true),
        }
    }
}

/// `strconv.FormatFloat(f, 'f', -1, 64)` with `.0` added when there is no
/// decimal point; `nan` and `inf` with their signs.
fn float(f: f64) -> String {
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f.is_nan() {
        return format!("{sign}nan");
    }
    if f.is_infinite() {
        return format!("{sign}inf");
    }
    let (digits, point) = shortest_digits(f);
    let text = digits_fixed(&digits, point);
    if text.contains('.') { format!("{sign}{text}") } else { format!("{sign}{text}.0") }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The expected outputs in these tests were produced by BurntSushi toml
    // v1.5.0 (`toml.NewEncoder(buf).Encode`, then `bytes.TrimSpace`, as
    // consul-template's `toTOML` does), with strings as Go strings and
    // Vault numbers as `json.Number`s.

    fn toml(value: &Value) -> String {
        match to_toml(value).expect("encodes") {
            Value::Str(s) => s,
            other => panic!("{other:?}"),
        }
    }

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    fn n(text: &str) -> Value {
        Value::Number(text.into())
    }

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    #[test]
    fn scalars() {
        let data = map(&[
            ("n", n("5432")),
            ("f", n("1.5")),
            ("g", n("2.0")),
            ("h", n("1e21")),
            ("i", n("1000000.0")),
            ("k", n("0.0001")),
            ("l", n("1e-05")),
            ("m", n("-0.0")),
            ("big", n("1.8446744073709552e19")),
            ("neg", n("-5")),
            ("s", s("a\"b\\c\n\t\u{1}\u{7f}é😀")),
            ("t", Value::Bool(true)),
        ]);
        assert_eq!(
            toml(&data),
            "big = 18446744073709552000.0\nf = 1.5\ng = 2.0\nh = 1000000000000000000000.0\ni = 1000000.0\n\
             k = 0.0001\nl = 0.00001\nm = -0.0\nn = 5432\nneg = -5\ns = \"a\\\"b\\\\c\\n\\t\\u0001\\u007fé😀\"\n\
             t = true"
        );
        // parseJSON's float64s.
        let floats = map(&[("n", Value::Float(5432.0)), ("l", Value::Float(0.00001))]);
        assert_eq!(toml(&floats), "l = 0.00001\nn = 5432.0");
        assert_eq!(toml(&Value::Float(f64::NAN)), "nan");
        assert_eq!(toml(&Value::Float(f64::NEG_INFINITY)), "-inf");
        // Two 17-digit forms are as close; Go (Ryū) takes the even one.
        assert_eq!(toml(&Value::Float(1064329076044834.2)), "1064329076044834.2");
        assert_eq!(toml(&n("1e-7")), "0.0000001");
    }

    #[test]
    fn tables_after_values_indented() {
        let data = map(&[
            (
                "a",
                map(&[
                    (
                        "b",
                        map(&[("c", Value::List(vec![n("1"), map(&[("d", n("2"))])])), ("x", n("1")), ("y", map(&[]))]),
                    ),
                    ("z", s("q")),
                ]),
            ),
            ("empty_map", map(&[])),
            ("empty_list", Value::List(vec![])),
            ("nil", Value::Nil),
            ("t", Value::Bool(true)),
            (
                "aot",
                Value::List(vec![
                    map(&[
                        ("k", n("1")),
                        ("sub", map(&[("q", n("1"))])),
                        ("inner", Value::List(vec![map(&[("m", n("1"))])])),
                    ]),
                    map(&[("k", n("2"))]),
                ]),
            ),
            ("zz", n("1")),
        ]);
        assert_eq!(
            toml(&data),
            "empty_list = []\nt = true\nzz = 1\n\n[a]\n  z = \"q\"\n  [a.b]\n    c = [1, {d = 2}]\n    x = 1\n\
             \x20   [a.b.y]\n\n[[aot]]\n  k = 1\n\n  [[aot.inner]]\n    m = 1\n  [aot.sub]\n    q = 1\n\n[[aot]]\n\
             \x20 k = 2\n\n[empty_map]"
        );
    }

    #[test]
    fn nils() {
        for bad in [
            map(&[("l", Value::List(vec![n("1"), Value::Nil]))]),
            map(&[("l", Value::List(vec![Value::List(vec![n("1"), Value::Nil])]))]),
            Value::Nil,
        ] {
            assert!(to_toml(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(toml(&map(&[("l", Value::List(vec![map(&[("a", Value::Nil)])]))])), "[[l]]");
        assert_eq!(toml(&map(&[("a", map(&[("b", Value::Nil)])), ("c", Value::Nil)])), "[a]");
    }

    #[test]
    fn inline_tables_in_lists() {
        let data = map(&[(
            "l",
            Value::List(vec![
                n("1"),
                map(&[("a", n("1")), ("b", Value::Nil)]),
                map(&[
                    ("b", Value::Nil),
                    ("c", map(&[("d", n("1"))])),
                    ("e", Value::List(vec![map(&[("f", n("1"))])])),
                ]),
                Value::List(vec![]),
                map(&[]),
            ]),
        )]);
        assert_eq!(toml(&data), "l = [1, {a = 1, }, {c = {d = 1}, e = [{f = 1}]}, [], {}]");
        let nested = map(&[(
            "a",
            Value::List(vec![Value::List(vec![map(&[("x", n("1"))])]), Value::List(vec![map(&[("y", n("2"))])])]),
        )]);
        assert_eq!(toml(&nested), "a = [[{x = 1}], [{y = 2}]]");
    }

    #[test]
    fn keys() {
        let data = map(&[
            ("a b", n("1")),
            ("", n("2")),
            ("é", n("3")),
            ("a.b", map(&[("c\"d", map(&[("e", n("1"))]))])),
            ("x-y_Z9", n("4")),
        ]);
        assert_eq!(
            toml(&data),
            "\"\" = 2\n\"a b\" = 1\nx-y_Z9 = 4\n\"é\" = 3\n\n[\"a.b\"]\n  [\"a.b\".\"c\\\"d\"]\n    e = 1"
        );
    }

    #[test]
    fn top_level_non_tables() {
        assert_eq!(toml(&s("str")), "\"str\"");
        assert_eq!(toml(&n("5")), "5");
        assert_eq!(toml(&n("1.5")), "1.5");
        assert_eq!(toml(&Value::Bool(true)), "true");
        assert_eq!(toml(&Value::List(vec![n("1"), s("a")])), "[1, \"a\"]");
        assert_eq!(toml(&Value::List(vec![])), "[]");
        assert_eq!(toml(&map(&[])), "");
        assert_eq!(to_toml(&Value::List(vec![map(&[("a", n("1"))])])).unwrap_err(), NO_KEY);
    }

    #[test]
    fn bytes_pass_through_and_output_is_bounded() {
        let data = map(&[("b", Value::Bytes(vec![0xff, b'\n']))]);
        assert_eq!(to_toml(&data).unwrap(), Value::Bytes(b"b = \"\xff\\n\"".to_vec()));
        let big = Value::List(vec![s(&"x".repeat(1 << 19)); 3]);
        assert_eq!(to_toml(&big).unwrap_err(), TOO_LARGE);
    }
}
