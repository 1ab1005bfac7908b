//! Sprig's string helpers, after Go's `strings`, Masterminds/goutils and
//! huandu/xstrings (v1.5.0, what ESO builds with). Several of them work on
//! bytes, as Go does: `trunc` and `substr` cut at byte offsets, `nospace`
//! and `initials` read a byte at a time (a non-ASCII byte is written back
//! as the Latin-1 character of that number, which is what goutils does).
//!
//! Case mappings and character classes follow Go's `unicode` package: the
//! simple (one character to one character) mappings, and the general
//! categories (Lu, Ll, Lt, L) rather than Unicode's wider properties.

use super::super::builtins::push_bounded;
use super::super::funcs::{CallResult, arity, int, text, to_string};
use super::super::value::Value;
use super::unicode_case::*;
use super::{MAX_OUTPUT, fits, split_count_fits, string};

pub(super) fn call(name: &str, args: &mut Vec<Value>) -> Option<CallResult> {
    Some(match name {
        "abbrev" => (|| {
            arity(args, 2)?;
            let width = int(&args[0])?;
            let s = bytes(&args[1])?;
            if width < 4 {
                return Ok(Value::from_bytes(s));
            }
            Ok(Value::from_bytes(&abbreviate(s, 0, width)))
        })(),
        "abbrevboth" => (|| {
            arity(args, 3)?;
            let (left, right) = (int(&args[0])?, int(&args[1])?);
            let s = bytes(&args[2])?;
            if right < 4 || left > 0 && right < 7 {
                return Ok(Value::from_bytes(s));
            }
            Ok(Value::from_bytes(&abbreviate(s, left, right)))
        })(),
        "trunc" => (|| {
            arity(args, 2)?;
            let c = int(&args[0])?;
            let s = bytes(&args[1])?;
            let len = s.len() as i64;
            let cut = if c < 0 && len + c > 0 {
                &s[(len + c) as usize..]
            } else if c >= 0 && len > c {
                &s[..c as usize]
            } else {
                s
            };
            Ok(Value::from_bytes(cut))
        })(),
        "substr" => (|| {
            arity(args, 3)?;
            let (start, end) = (int(&args[0])?, int(&args[1])?);
            let s = bytes(&args[2])?;
            let len = s.len() as i64;
            // Go slices and panics out of range: the same cases fail here.
            let range = if start < 0 {
                (0, end)
            } else if end < 0 || end > len {
                (start, len)
            } else {
                (start, end)
            };
            if range.0 < 0 || range.1 < range.0 || range.1 > len {
                return Err("slice bounds out of range".into());
            }
            Ok(Value::from_bytes(&s[range.0 as usize..range.1 as usize]))
        })(),
        "trimall" => (|| {
            arity(args, 2)?;
            let cutset = text(&args[0])?;
            string(text(&args[1])?.trim_matches(|c| cutset.contains(c)))
        })(),
        "nospace" => (|| {
            arity(args, 1)?;
            Ok(nospace(bytes(&args[0])?))
        })(),
        "initials" => (|| {
            arity(args, 1)?;
            let mut out = String::new();
            let mut gap = true;
            for &b in bytes(&args[0])? {
                let c = char::from(b);
                if c.is_whitespace() {
                    gap = true;
                } else if gap {
                    out.push(c);
                    gap = false;
                }
            }
            string(out)
        })(),
        "title" => (|| {
            arity(args, 1)?;
            let s = text(&args[0])?;
            fits(s.len().checked_mul(2))?;
            let mut prev = ' ';
            Ok(Value::Str(
                s.chars()
                    .map(|c| {
                        let mapped = if title_separator(prev) { title(c) } else { c };
                        prev = c;
                        mapped
                    })
                    .collect(),
            ))
        })(),
        "untitle" => (|| {
            arity(args, 1)?;
            let s = text(&args[0])?;
            fits(s.len().checked_mul(2))?;
            let mut next = true;
            Ok(Value::Str(
                s.chars()
                    .map(|c| {
                        if c.is_whitespace() {
                            next = true;
                            c
                        } else if next {
                            next = false;
                            lower(c)
                        } else {
                            c
                        }
                    })
                    .collect(),
            ))
        })(),
        "swapcase" => (|| {
            arity(args, 1)?;
            let s = text(&args[0])?;
            fits(s.len().checked_mul(2))?;
            let mut out = String::with_capacity(s.len());
            let mut space = true;
            for c in s.chars() {
                if is_upper(c) || is_title(c) {
                    out.push(lower(c));
                    space = false;
                } else if is_lower(c) {
                    out.push(if space { title(c) } else { upper(c) });
                    space = false;
                } else {
                    out.push(c);
                    space = c.is_whitespace();
                }
            }
            Ok(Value::Str(out))
        })(),
        "camelcase" => (|| {
            arity(args, 1)?;
            let s = text(&args[0])?;
            fits(s.len().checked_mul(2))?;
            Ok(Value::Str(pascal_case(&s)))
        })(),
        "snakecase" | "kebabcase" => (|| {
            arity(args, 1)?;
            let s = text(&args[0])?;
            // A connector per character at most, each character up to 4 bytes.
            fits(s.len().checked_mul(3))?;
            Ok(Value::Str(lower_case_words(&s, if name == "snakecase" { '_' } else { '-' })))
        })(),
        "wrap" => (|| {
            arity(args, 2)?;
            let width = int(&args[0])?;
            wrap(bytes(&args[1])?, width, b"\n", false)
        })(),
        "wrapWith" => (|| {
            arity(args, 3)?;
            let width = int(&args[0])?;
            let sep = text(&args[1])?.into_owned();
            let sep = if sep.is_empty() { "\n".to_string() } else { sep };
            wrap(bytes(&args[2])?, width, sep.as_bytes(), true)
        })(),
        "cat" => (|| {
            let mut out = String::new();
            for (i, v) in args.iter().filter(|v| **v != Value::Nil).enumerate() {
                if i > 0 {
                    push_bounded(&mut out, " ")?;
                }
                push_bounded(&mut out, &v.display()?)?;
            }
            Ok(Value::Str(out))
        })(),
        "plural" => (|| {
            arity(args, 3)?;
            let count = int(&args[2])?;
            text(&args[0])?;
            text(&args[1])?;
            Ok(args.swap_remove(if count == 1 { 0 } else { 1 }))
        })(),
        "splitn" => (|| {
            arity(args, 3)?;
            let sep = text(&args[0])?;
            let n = int(&args[1])?;
            let s = text(&args[2])?;
            let parts = splitn(&sep, n, &s)?;
            Ok(Value::Map(parts.into_iter().enumerate().map(|(i, v)| (format!("_{i}"), Value::Str(v))).collect()))
        })(),
        "toStrings" => (|| {
            arity(args, 1)?;
            Ok(Value::List(to_strings(&args[0])?.into_iter().map(Value::Str).collect()))
        })(),
        _ => return None,
    })
}

/// The bytes of a string argument (a Go `string` parameter).
pub(super) fn bytes(value: &Value) -> Result<&[u8], String> {
    value.as_bytes().ok_or_else(|| format!("expected string, got {}", value.type_name()))
}

/// Sprig's `strslice`: a list's elements as strings (nils skipped), or
/// the one value as a string, or nothing for nil.
pub(super) fn to_strings(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::List(items) => items.iter().filter(|v| **v != Value::Nil).map(to_string).collect(),
        Value::Nil => Ok(Vec::new()),
        other => Ok(vec![to_string(other)?]),
    }
}

/// goutils' `DeleteWhiteSpace`: byte by byte, the input unchanged when it
/// has no whitespace byte.
fn nospace(s: &[u8]) -> Value {
    if !s.iter().any(|&b| char::from(b).is_whitespace()) {
        return Value::from_bytes(s);
    }
    Value::Str(s.iter().map(|&b| char::from(b)).filter(|c| !c.is_whitespace()).collect())
}

/// goutils' `AbbreviateFull` (a width below 4, or below 7 with an offset
/// past 4, was handled by the caller as sprig does).
fn abbreviate(s: &[u8], offset: i64, width: i64) -> Vec<u8> {
    let len = s.len() as i64;
    if s.is_empty() || len <= width {
        return s.to_vec();
    }
    let mut offset = offset.min(len);
    if len - offset < width - 3 {
        offset = len - (width - 3);
    }
    let marker = b"...";
    if offset <= 4 {
        return [&s[..(width - 3) as usize], marker].concat();
    }
    if width < 7 {
        return Vec::new();
    }
    if offset + width - 3 < len {
        let rest = abbreviate(&s[offset as usize..], 0, width - 3);
        return [marker, rest.as_slice()].concat();
    }
    [marker, &s[(len - (width - 3)) as usize..]].concat()
}

/// goutils' `WrapCustom`, in bytes; bounded as it grows.
fn wrap(s: &[u8], width: i64, newline: &[u8], long_words: bool) -> CallResult {
    if s.is_empty() {
        return Ok(Value::Str(String::new()));
    }
    let width = usize::try_from(width.max(1)).unwrap_or(usize::MAX);
    let len = s.len();
    let mut offset = 0;
    let mut out: Vec<u8> = Vec::new();
    let push = |out: &mut Vec<u8>, part: &[u8]| -> Result<(), String> {
        if out.len().saturating_add(part.len()) > MAX_OUTPUT {
            return Err(super::TOO_LARGE.into());
        }
        out.extend_from_slice(part);
        Ok(())
    };
    while len - offset > width {
        if s[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = width + offset + 1;
        match s[offset..end].iter().rposition(|&b| b == b' ') {
            Some(space) => {
                push(&mut out, &s[offset..offset + space])?;
                push(&mut out, newline)?;
                offset += space + 1;
            }
            None if long_words => {
                push(&mut out, &s[offset..width + offset])?;
                push(&mut out, newline)?;
                offset += width;
            }
            None => {
                let end = width + offset;
                match s[end..].iter().position(|&b| b == b' ') {
                    None => {
                        push(&mut out, &s[offset..])?;
                        offset = len;
                    }
                    Some(index) => {
                        push(&mut out, &s[offset..index + end])?;
                        push(&mut out, newline)?;
                        offset = index + end + 1;
                    }
                }
            }
        }
    }
    push(&mut out, &s[offset..])?;
    Ok(Value::from_bytes(&out))
}

/// Go's `strings.SplitN`, its part count checked first.
fn splitn(sep: &str, n: i64, s: &str) -> Result<Vec<String>, String> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    let all = if sep.is_empty() { s.chars().count() } else { s.matches(sep).count() + 1 };
    split_count_fits(all.min(limit), s.len())?;
    if sep.is_empty() {
        // Go explodes into characters, the last part holding the rest.
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            if parts.len() + 1 == limit {
                parts.push(rest.to_string());
                return Ok(parts);
            }
            parts.push(c.to_string());
            rest = &rest[c.len_utf8()..];
        }
        return Ok(parts);
    }
    Ok(s.splitn(limit, sep).map(str::to_string).collect())
}
