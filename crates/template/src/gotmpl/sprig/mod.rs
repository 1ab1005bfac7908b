//! The sprig functions ESO templates use, with sprig's argument order (the
//! subject last) so that `{{ .s | trimPrefix "x" }}` reads naturally.
//!
//! ESO v2 vendors sprig (v3.3.1-0.20241028115027-8cb06fe3c8b0, without
//! `env`, `expandenv`, `getHostByName`, plus its own `hexdec`); every
//! deterministic function of it is here, byte for byte as Go renders it.
//! The helpers live by family: [`strings`], [`numeric`] (and [`decimal`]
//! for the float math), [`lists`], [`dicts`], [`reflection`], [`regex`],
//! [`hashes`] (and encodings, `decryptAES`), [`paths`], [`urls`],
//! [`semver`]. Functions whose result changes on every render (the clock,
//! randomness, fresh keys) are refused at parse time: see [`refused`].
//! The expected values of the tests are Go's own output (see `tests`).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::builtins::push_bounded;
use super::funcs::{CallResult, arity, at_least, int, text, to_string};
use super::json::{self, Style};
use super::value::{Value, go_quote};
use super::yaml;
use super::{MAX_OUTPUT, MAX_VALUE_DEPTH, MAX_VALUE_WEIGHT, TOO_LARGE};

mod decimal;
mod dicts;
mod unicode_case;
pub(crate) use dicts::merge_into;
mod hashes;
mod lists;
mod names;
mod numeric;
mod paths;
mod reflection;
mod regex;
mod semver;
mod strings;
#[cfg(test)]
mod tests;
mod urls;

pub use names::NAMES;

/// `sprig_mergeOverwrite` of the Vault agent (sprig v3.2, mergo v0.3).
pub fn merge_overwrite_v3_2(args: Vec<Value>) -> CallResult {
    dicts::merge_overwrite_v3_2(args)
}

/// Whether Go's version changes the map it is given: see `dicts`.
pub fn mutates(name: &str) -> bool {
    dicts::MUTATING.contains(&name)
}

/// Why a sprig function ESO knows is not run here; checked at parse time.
pub fn refused(name: &str) -> Option<&'static str> {
    Some(match name {
        "now" | "date" | "date_in_zone" | "dateInZone" | "date_modify" | "dateModify" | "must_date_modify"
        | "mustDateModify" | "ago" | "duration" | "durationRound" | "htmlDate" | "htmlDateInZone" | "toDate"
        | "mustToDate" | "unixEpoch" => {
            "dates and times are not supported: with now their result changes on every render, so the Secret \
             would be rewritten at every sync, and Go's time values have no counterpart here"
        }
        "randAlphaNum" | "randAlpha" | "randAscii" | "randNumeric" | "randInt" | "randBytes" | "shuffle" | "uuidv4" => {
            "its result is random: it changes on every render, so the Secret would be rewritten at every sync; \
             generate the value once and store it in Vault"
        }
        "bcrypt"
        | "htpasswd"
        | "genPrivateKey"
        | "genCA"
        | "genCAWithKey"
        | "genSelfSignedCert"
        | "genSelfSignedCertWithKey"
        | "genSignedCert"
        | "genSignedCertWithKey"
        | "buildCustomCert"
        | "encryptAES" => {
            "its result is salted or freshly generated: it changes on every render, so the Secret would be \
             rewritten at every sync; generate the value once and store it in Vault"
        }
        "derivePassword" => "this sprig function (an scrypt of 32 MiB per call) is not reproduced here",
        "semver" => {
            "semver returns a Go object whose methods templates call, which this engine does not have; \
             compare versions with semverCompare"
        }
        _ => return None,
    })
}

pub(super) fn string(s: impl Into<String>) -> CallResult {
    let s = s.into();
    if s.len() > MAX_OUTPUT {
        return Err(TOO_LARGE.into());
    }
    Ok(Value::Str(s))
}

/// Fails when a result of `len` bytes would outgrow 1 MiB: checked before
/// building it.
pub(super) fn fits(len: Option<usize>) -> Result<(), String> {
    match len {
        Some(len) if len <= MAX_OUTPUT => Ok(()),
        _ => Err(TOO_LARGE.into()),
    }
}

/// A list or map built from `args`, unless it would nest too deep.
pub(super) fn nests(args: &[Value]) -> Result<(), String> {
    if args.iter().any(|arg| arg.deeper_than(MAX_VALUE_DEPTH - 1)) {
        return Err(format!("lists and maps nest more than {MAX_VALUE_DEPTH} levels deep"));
    }
    Ok(())
}

/// Go's `strings.ToUpper`/`ToLower` of `s`: each character by Go's simple
/// mapping (`ß` and `ﬁ` stay, `İ` lowers to `i`), checked first when it
/// could outgrow 1 MiB (a character of two bytes can map to three).
fn case(s: &str, to_upper: bool) -> CallResult {
    let map = |c: char| if to_upper { unicode_case::upper(c) } else { unicode_case::lower(c) };
    if s.len() > MAX_OUTPUT / 2 {
        let len = s.chars().try_fold(0usize, |sum, c| sum.checked_add(map(c).len_utf8()));
        fits(len)?;
    }
    string(s.chars().map(map).collect::<String>())
}

/// Author-written messages are shown; computed ones might hold a secret.
fn message(args: &[Value], literal: bool) -> String {
    match args.first() {
        Some(msg) if literal => to_string(msg).unwrap_or_else(|e| e),
        _ => "message withheld because it is not a string literal in the template".into(),
    }
}

fn map_arg(value: &Value) -> Result<&BTreeMap<String, Value>, String> {
    match value {
        Value::Map(map) => Ok(map),
        other => Err(format!("expected map, got {}", other.type_name())),
    }
}

/// Fails when `parts` values holding `bytes` bytes in all would outgrow
/// what one function may build: checked before building them.
pub(super) fn split_count_fits(parts: usize, bytes: usize) -> Result<(), String> {
    let node = std::mem::size_of::<Value>() + std::mem::size_of::<(String, Value)>();
    if parts.saturating_mul(node).saturating_add(bytes) > MAX_VALUE_WEIGHT {
        return Err(format!("result would have more than {} parts", MAX_VALUE_WEIGHT / node));
    }
    Ok(())
}

pub(super) fn split(sep: &str, s: &str) -> Result<Vec<Value>, String> {
    // Counted first: splitting 1 MiB into characters would build a
    // million values.
    let parts = if sep.is_empty() { s.chars().count() } else { s.matches(sep).count() + 1 };
    split_count_fits(parts, s.len())?;
    // Go splits "" into UTF-8 characters; Rust would add empty ends.
    if sep.is_empty() {
        return Ok(s.chars().map(|c| Value::Str(c.to_string())).collect());
    }
    Ok(s.split(sep).map(|part| Value::Str(part.to_string())).collect())
}

fn indent(n: &Value, s: &Value) -> Result<String, String> {
    let width = usize::try_from(int(n)?).unwrap_or(0);
    let s = text(s)?;
    let lines = s.matches('\n').count() + 1;
    fits(width.checked_mul(lines).and_then(|pad| pad.checked_add(s.len() + 1)))?;
    let pad = " ".repeat(width);
    Ok(format!("{pad}{}", s.replace('\n', &format!("\n{pad}"))))
}

/// `s` with every `old` replaced, its size checked before building it.
pub(super) fn replace(old: &str, new: &str, s: &str) -> CallResult {
    let count = if old.is_empty() { s.chars().count() + 1 } else { s.matches(old).count() };
    let len = count.checked_mul(new.len()).and_then(|added| (s.len() - count * old.len()).checked_add(added));
    fits(len)?;
    string(s.replace(old, new))
}

pub fn call(name: &str, args: Vec<Value>, literal_message: bool) -> CallResult {
    let one = |args: &[Value]| arity(args, 1);
    let two = |args: &[Value]| arity(args, 2);
    match name {
        "b64enc" => {
            one(&args)?;
            let bytes = args[0].as_bytes().ok_or_else(|| format!("expected string, got {}", args[0].type_name()))?;
            fits(bytes.len().div_ceil(3).checked_mul(4))?;
            string(STANDARD.encode(bytes))
        }
        "b64dec" => {
            one(&args)?;
            let decoded = STANDARD.decode(text(&args[0])?.as_bytes()).map_err(|_| "input is not valid base64")?;
            Ok(Value::from_bytes(&decoded))
        }
        "toJson" | "toPrettyJson" | "toRawJson" => {
            one(&args)?;
            let style =
                Style { pretty: name == "toPrettyJson", escape_html: name != "toRawJson", short_escapes: false };
            string(json::encode(&args[0], &style)?)
        }
        "fromJson" => {
            one(&args)?;
            let value = json::decode(&text(&args[0])?)?;
            nests(std::slice::from_ref(&value))?;
            Ok(value)
        }
        "toYaml" => {
            one(&args)?;
            string(yaml::encode(&args[0])?)
        }
        "fromYaml" => {
            one(&args)?;
            let value = yaml::decode(&text(&args[0])?)?;
            nests(std::slice::from_ref(&value))?;
            Ok(value)
        }
        "upper" => {
            one(&args)?;
            case(&text(&args[0])?, true)
        }
        "lower" => {
            one(&args)?;
            case(&text(&args[0])?, false)
        }
        "trim" => {
            one(&args)?;
            string(text(&args[0])?.trim())
        }
        "trimAll" => {
            two(&args)?;
            let cutset = text(&args[0])?;
            string(text(&args[1])?.trim_matches(|c| cutset.contains(c)))
        }
        "trimPrefix" => {
            two(&args)?;
            let s = text(&args[1])?;
            string(s.strip_prefix(text(&args[0])?.as_ref()).unwrap_or(&s))
        }
        "trimSuffix" => {
            two(&args)?;
            let s = text(&args[1])?;
            string(s.strip_suffix(text(&args[0])?.as_ref()).unwrap_or(&s))
        }
        "replace" => {
            arity(&args, 3)?;
            replace(&text(&args[0])?, &text(&args[1])?, &text(&args[2])?)
        }
        "contains" | "hasPrefix" | "hasSuffix" => {
            two(&args)?;
            let (needle, s) = (text(&args[0])?, text(&args[1])?);
            Ok(Value::Bool(match name {
                "contains" => s.contains(needle.as_ref()),
                "hasPrefix" => s.starts_with(needle.as_ref()),
                _ => s.ends_with(needle.as_ref()),
            }))
        }
        "quote" | "squote" => {
            // Sprig skips nil arguments, so a missing key quotes to "".
            let mut quoted = String::new();
            for (i, v) in args.iter().filter(|v| **v != Value::Nil).enumerate() {
                if i > 0 {
                    push_bounded(&mut quoted, " ")?;
                }
                let v = to_string(v)?;
                let v = if name == "quote" { go_quote(&v)? } else { format!("'{v}'") };
                push_bounded(&mut quoted, &v)?;
            }
            string(quoted)
        }
        "indent" => {
            two(&args)?;
            string(indent(&args[0], &args[1])?)
        }
        "nindent" => {
            two(&args)?;
            string(format!("\n{}", indent(&args[0], &args[1])?))
        }
        "default" => {
            at_least(&args, 1)?;
            let mut args = args.into_iter();
            let fallback = args.next().unwrap_or(Value::Nil);
            Ok(args.next().filter(Value::truthy).unwrap_or(fallback))
        }
        "empty" => {
            one(&args)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "coalesce" => Ok(args.into_iter().find(Value::truthy).unwrap_or(Value::Nil)),
        "ternary" => {
            arity(&args, 3)?;
            let Value::Bool(cond) = args[2] else {
                return Err(format!("expected bool, got {}", args[2].type_name()));
            };
            let mut args = args.into_iter();
            Ok(if cond { args.next() } else { args.nth(1) }.unwrap_or(Value::Nil))
        }
        "required" => {
            two(&args)?;
            let missing = args[1] == Value::Nil || args[1].as_bytes().is_some_and(<[u8]>::is_empty);
            if missing {
                return Err(message(&args, literal_message));
            }
            Ok(args.into_iter().nth(1).unwrap_or(Value::Nil))
        }
        "fail" => {
            one(&args)?;
            Err(message(&args, literal_message))
        }
        "list" => {
            nests(&args)?;
            Ok(Value::List(args))
        }
        "dict" => {
            nests(&args)?;
            let mut map = BTreeMap::new();
            let mut args = args.into_iter();
            while let Some(key) = args.next() {
                let value = args.next().unwrap_or(Value::Str(String::new()));
                map.insert(to_string(&key)?, value);
            }
            Ok(Value::Map(map))
        }
        "get" => {
            two(&args)?;
            let found = map_arg(&args[0])?.get(text(&args[1])?.as_ref()).cloned();
            Ok(found.unwrap_or(Value::Str(String::new())))
        }
        "hasKey" => {
            two(&args)?;
            Ok(Value::Bool(map_arg(&args[0])?.contains_key(text(&args[1])?.as_ref())))
        }
        "keys" => {
            at_least(&args, 1)?;
            let mut keys = Vec::new();
            for map in &args {
                keys.extend(map_arg(map)?.keys().cloned());
            }
            // Sprig's order is random; sorted is one of its outcomes and stable.
            keys.sort();
            Ok(Value::List(keys.into_iter().map(Value::Str).collect()))
        }
        "sortAlpha" => {
            one(&args)?;
            // Sprig's strslice: nils in a list are skipped.
            let mut items: Vec<String> = match &args[0] {
                Value::List(_) => strings::to_strings(&args[0])?,
                other => vec![to_string(other)?],
            };
            items.sort();
            Ok(Value::List(items.into_iter().map(Value::Str).collect()))
        }
        "split" => {
            two(&args)?;
            let parts = split(&text(&args[0])?, &text(&args[1])?)?;
            Ok(Value::Map(parts.into_iter().enumerate().map(|(i, v)| (format!("_{i}"), v)).collect()))
        }
        "splitList" => {
            two(&args)?;
            Ok(Value::List(split(&text(&args[0])?, &text(&args[1])?)?))
        }
        "join" => {
            two(&args)?;
            let sep = text(&args[0])?;
            let items = match &args[1] {
                Value::List(items) => items.as_slice(),
                other => std::slice::from_ref(other),
            };
            let mut joined = String::new();
            for (i, item) in items.iter().filter(|v| **v != Value::Nil).enumerate() {
                if i > 0 {
                    push_bounded(&mut joined, &sep)?;
                }
                push_bounded(&mut joined, &to_string(item)?)?;
            }
            string(joined)
        }
        "toString" => {
            one(&args)?;
            string(to_string(&args[0])?)
        }
        "repeat" => {
            two(&args)?;
            let count = usize::try_from(int(&args[0])?).map_err(|_| "negative repeat count")?;
            let s = text(&args[1])?;
            if count.checked_mul(s.len()).is_none_or(|len| len > MAX_OUTPUT) {
                return Err("result too large".into());
            }
            string(s.repeat(count))
        }
        _ => {
            let mut args = args;
            strings::call(name, &mut args)
                .or_else(|| numeric::call(name, &mut args))
                .or_else(|| decimal::call(name, &mut args))
                .or_else(|| lists::call(name, &mut args))
                .or_else(|| dicts::call(name, &mut args))
                .or_else(|| reflection::call(name, &mut args))
                .or_else(|| regex::call(name, &mut args))
                .or_else(|| hashes::call(name, &mut args))
                .or_else(|| paths::call(name, &mut args))
                .or_else(|| urls::call(name, &mut args))
                .or_else(|| semver::call(name, &mut args))
                .or_else(|| json_must(name, &mut args, literal_message))
                .unwrap_or_else(|| Err("not defined".into()))
        }
    }
}

/// The `must*` JSON functions: sprig's versions that report errors, which
/// ours always do.
fn json_must(name: &str, args: &mut Vec<Value>, literal_message: bool) -> Option<CallResult> {
    let plain = match name {
        "mustFromJson" => "fromJson",
        "mustToJson" => "toJson",
        "mustToPrettyJson" => "toPrettyJson",
        "mustToRawJson" => "toRawJson",
        _ => return None,
    };
    Some(call(plain, std::mem::take(args), literal_message))
}
