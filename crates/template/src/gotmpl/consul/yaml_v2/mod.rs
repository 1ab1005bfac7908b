//! consul-template's `toYAML`: `yaml.Marshal` of gopkg.in/yaml.v2 v2.4.0
//! (what OpenBao's agent links), surrounding whitespace trimmed
//! (`bytes.TrimSpace`). Byte for byte, so this is a port of the parts of
//! yaml.v2 a template value reaches:
//!
//! * `encode.go`: which style a value asks for. A string that would read
//!   back as something else (`true`, `yes`, `~`, `12`, `0x1F`, `1e3`,
//!   `2024-01-15`, `12:30`, "") is double-quoted; one with a line break is
//!   a literal block (`|-`); others plain. A `json.Number` (Vault's
//!   numbers) is an int if `Int64()` reads it, else a float if
//!   `Float64()` does; floats print as `strconv.FormatFloat(f, 'g', -1)`
//!   (`1e+06`, `2`). A string that is not UTF-8 is `!!binary` base64.
//! * `resolve.go`: what a plain string would read back as.
//! * `emitterc.go`: libyaml's emitter, which may overrule the style asked
//!   for (plain → single-quoted → double-quoted, literal → double-quoted),
//!   escapes, indents (two spaces, lists under a key not indented) and
//!   folds plain and quoted strings at spaces past column 80.
//! * `sorter.go`: map keys in yaml.v2's "natural" order (`a2` before
//!   `a10`, non-letters before letters).
//!
//! The output is built within `MAX_OUTPUT`; recursion follows the value,
//! whose depth the caller checks (`nests`).

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use regex::Regex;

use super::super::value::{Value, digits_exponent, digits_fixed, shortest_digits};
use super::super::{MAX_OUTPUT, TOO_LARGE};

mod emitter;
mod keys;
mod resolve;
#[cfg(test)]
mod tests;

use emitter::*;
use keys::*;
use resolve::*;

/// yaml.v2's line width (`best_width`) and indentation (`best_indent`).
pub(super) const WIDTH: usize = 80;
pub(super) const INDENT: i64 = 2;

/// A simple key (`key: value`) is at most this many bytes; longer keys
/// are written as `? key` / `: value`.
pub(super) const SIMPLE_KEY_MAX: usize = 128;

/// `toYAML`: the YAML of `value`, trimmed. Fails only past `MAX_OUTPUT`.
pub fn to_yaml(value: &Value) -> Result<String, String> {
    let mut emitter = Emitter::new();
    emitter.node(value, false, false)?;
    // The document end (`write_indent` at indent 0), then TrimSpace.
    let out = emitter.out;
    Ok(out.trim().to_string())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

/// A scalar as `encode.go` hands it to the emitter: its text, the style
/// it asks for, and whether it carries the `!!binary` tag.
pub(super) struct Scalar<'a> {
    text: std::borrow::Cow<'a, str>,
    style: Style,
    binary: bool,
}

impl<'a> Scalar<'a> {
    fn plain(text: impl Into<std::borrow::Cow<'a, str>>) -> Scalar<'a> {
        Scalar { text: text.into(), style: Style::Plain, binary: false }
    }

    /// `encoder.stringv` with no tag.
    fn string(s: &'a str) -> Scalar<'a> {
        let can_use_plain = resolves_to_str(s) && !is_base60_float(s);
        let style = if s.contains('\n') {
            Style::Literal
        } else if can_use_plain {
            Style::Plain
        } else {
            Style::DoubleQuoted
        };
        Scalar { text: s.into(), style, binary: false }
    }

    /// `encoder.stringv` for a string that is not UTF-8: `!!binary`.
    fn binary(bytes: &[u8]) -> Result<Scalar<'a>, String> {
        let text = encode_base64(bytes)?;
        let style = if text.contains('\n') { Style::Literal } else { Style::Plain };
        Ok(Scalar { text: text.into(), style, binary: true })
    }

    fn of(value: &'a Value) -> Result<Scalar<'a>, String> {
        Ok(match value {
            Value::Nil => Scalar::plain("null"),
            Value::Bool(b) => Scalar::plain(if *b { "true" } else { "false" }),
            Value::Int(i) => Scalar::plain(i.to_string()),
            Value::Float(f) => Scalar::plain(format_g(*f)),
            Value::Str(s) => Scalar::string(s),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => Scalar::string(s),
                Err(_) => Scalar::binary(b)?,
            },
            // yaml.v2 asks a json.Number for Int64(), then Float64(), and
            // falls back to its text.
            Value::Number(n) => match n.parse::<i64>() {
                Ok(i) => Scalar::plain(i.to_string()),
                Err(_) => match go_parse_float(n) {
                    Some(f) => Scalar::plain(format_g(f)),
                    None => Scalar::string(n),
                },
            },
            Value::List(_) | Value::Map(_) => unreachable!("collections are not scalars"),
        })
    }
}

/// `strconv.FormatFloat(f, 'g', -1, 64)` as `encoder.floatv` writes it:
/// shortest digits, exponent form (`1e+06`) below 1e-4 or from 1e6, and
/// YAML's names for NaN and the infinities.
pub(super) fn format_g(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let (digits, point) = shortest_digits(f);
    let exp = point - 1;
    if digits.is_empty() || (-4..6).contains(&exp) {
        return format!("{sign}{}", digits_fixed(&digits, point));
    }
    format!("{sign}{}", digits_exponent(&digits, point, 2))
}

/// `strconv.ParseFloat(s, 64)` for the texts a `json.Number` holds: an
/// overflow (`1e400`) is an error there, not an infinity.
pub(super) fn go_parse_float(s: &str) -> Option<f64> {
    let f: f64 = s.parse().ok()?;
    if f.is_infinite() {
        let word = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
        if word != "inf" && word != "infinity" {
            return None;
        }
    }
    Some(f)
}

/// `encodeBase64`: standard base64, in lines of 70 characters each ended
/// by a line break once there is more than one line's worth.
pub(super) fn encode_base64(bytes: &[u8]) -> Result<String, String> {
    const LINE: usize = 70;
    let encoded_len = bytes.len().div_ceil(3).saturating_mul(4);
    if encoded_len.saturating_add(encoded_len / LINE + 1) > MAX_OUTPUT {
        return Err(TOO_LARGE.into());
    }
    let encoded = STANDARD.encode(bytes);
    if encoded.len() < LINE {
        return Ok(encoded);
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    for chunk in encoded.as_bytes().chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    Ok(out)
}
