//! The sprig functions ESO templates use, with sprig's argument order (the
//! subject last) so that `{{ .s | trimPrefix "x" }}` reads naturally.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::funcs::{CallResult, arity, at_least, int, text, to_string};
use super::json::{self, Style};
use super::value::{Value, go_quote};
use super::yaml;

pub const NAMES: &[&str] = &[
    "b64enc",
    "b64dec",
    "toJson",
    "toPrettyJson",
    "toRawJson",
    "fromJson",
    "toYaml",
    "fromYaml",
    "upper",
    "lower",
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "replace",
    "quote",
    "squote",
    "indent",
    "nindent",
    "default",
    "empty",
    "coalesce",
    "ternary",
    "required",
    "fail",
    "list",
    "dict",
    "get",
    "hasKey",
    "keys",
    "sortAlpha",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "split",
    "splitList",
    "join",
    "toString",
    "repeat",
    "nospace",
];

fn string(s: impl Into<String>) -> CallResult {
    Ok(Value::Str(s.into()))
}

/// Author-written messages are shown; computed ones might hold a secret.
fn message(args: &[Value], literal: bool) -> String {
    match args.first() {
        Some(msg) if literal => to_string(msg),
        _ => "message withheld because it is not a string literal in the template".into(),
    }
}

fn map_arg(value: &Value) -> Result<&BTreeMap<String, Value>, String> {
    match value {
        Value::Map(map) => Ok(map),
        other => Err(format!("expected map, got {}", other.type_name())),
    }
}

fn split(sep: &str, s: &str) -> Vec<Value> {
    // Go splits "" into UTF-8 characters; Rust would add empty ends.
    if sep.is_empty() {
        return s.chars().map(|c| Value::Str(c.to_string())).collect();
    }
    s.split(sep).map(|part| Value::Str(part.to_string())).collect()
}

fn indent(n: &Value, s: &Value) -> Result<String, String> {
    let pad = " ".repeat(usize::try_from(int(n)?).unwrap_or(0));
    Ok(format!("{pad}{}", text(s)?.replace('\n', &format!("\n{pad}"))))
}

pub fn call(name: &str, args: Vec<Value>, literal_message: bool) -> CallResult {
    let one = |args: &[Value]| arity(args, 1);
    let two = |args: &[Value]| arity(args, 2);
    match name {
        "b64enc" => {
            one(&args)?;
            let bytes = args[0].as_bytes().ok_or_else(|| format!("expected string, got {}", args[0].type_name()))?;
            string(STANDARD.encode(bytes))
        }
        "b64dec" => {
            one(&args)?;
            let decoded = STANDARD.decode(text(&args[0])?.as_bytes()).map_err(|_| "input is not valid base64")?;
            Ok(Value::from_bytes(&decoded))
        }
        "toJson" | "toPrettyJson" | "toRawJson" => {
            one(&args)?;
            let style = Style { pretty: name == "toPrettyJson", escape_html: name != "toRawJson" };
            string(json::encode(&args[0], &style)?)
        }
        "fromJson" => {
            one(&args)?;
            json::decode(&text(&args[0])?)
        }
        "toYaml" => {
            one(&args)?;
            string(yaml::encode(&args[0])?)
        }
        "fromYaml" => {
            one(&args)?;
            yaml::decode(&text(&args[0])?)
        }
        "upper" => {
            one(&args)?;
            string(text(&args[0])?.to_uppercase())
        }
        "lower" => {
            one(&args)?;
            string(text(&args[0])?.to_lowercase())
        }
        "trim" => {
            one(&args)?;
            string(text(&args[0])?.trim())
        }
        "nospace" => {
            one(&args)?;
            string(text(&args[0])?.chars().filter(|c| !c.is_whitespace()).collect::<String>())
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
            string(text(&args[2])?.replace(text(&args[0])?.as_ref(), &text(&args[1])?))
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
            let quoted: Vec<String> = args
                .iter()
                .filter(|v| **v != Value::Nil)
                .map(|v| if name == "quote" { go_quote(&to_string(v)) } else { format!("'{}'", to_string(v)) })
                .collect();
            string(quoted.join(" "))
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
        "list" => Ok(Value::List(args)),
        "dict" => {
            let mut map = BTreeMap::new();
            for pair in args.chunks(2) {
                let value = pair.get(1).cloned().unwrap_or(Value::Str(String::new()));
                map.insert(to_string(&pair[0]), value);
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
            let mut items: Vec<String> = match &args[0] {
                Value::List(items) => items.iter().map(to_string).collect(),
                other => vec![to_string(other)],
            };
            items.sort();
            Ok(Value::List(items.into_iter().map(Value::Str).collect()))
        }
        "split" => {
            two(&args)?;
            let parts = split(&text(&args[0])?, &text(&args[1])?);
            Ok(Value::Map(parts.into_iter().enumerate().map(|(i, v)| (format!("_{i}"), v)).collect()))
        }
        "splitList" => {
            two(&args)?;
            Ok(Value::List(split(&text(&args[0])?, &text(&args[1])?)))
        }
        "join" => {
            two(&args)?;
            let sep = text(&args[0])?;
            let parts: Vec<String> = match &args[1] {
                Value::List(items) => items.iter().filter(|v| **v != Value::Nil).map(to_string).collect(),
                other => vec![to_string(other)],
            };
            string(parts.join(sep.as_ref()))
        }
        "toString" => {
            one(&args)?;
            string(to_string(&args[0]))
        }
        "repeat" => {
            two(&args)?;
            let count = usize::try_from(int(&args[0])?).map_err(|_| "negative repeat count")?;
            if count.saturating_mul(text(&args[1])?.len()) > super::MAX_OUTPUT {
                return Err("result too large".into());
            }
            string(text(&args[1])?.repeat(count))
        }
        _ => Err("not defined".into()),
    }
}
