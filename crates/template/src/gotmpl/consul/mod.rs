//! consul-template's own helper functions, for Vault agent templates
//! (`render_vault_template`). Names, argument order and results follow
//! consul-template (`template/funcs.go`), which is not sprig's: `split`
//! returns a list, `contains` also searches lists, `indent` skips empty
//! lines. Sprig is there only under a `sprig_` prefix (`sprig_b64enc`), as
//! consul-template registers its hermetic sprig map.
//!
//! Functions that would reach outside the render (the environment,
//! programs, files, Consul) are refused at parse time with a reason.
//! Reasons returned here describe types and counts, never values.
//!
//! The dispatch and the names live here; the helpers behind them are split
//! by family: [`encoding`] (base64, JSON, hashes), [`strings`] (case,
//! `indent`, `split`, Go's number parsers) and [`collections`] (`in`,
//! `contains*`, list arguments).

mod collections;
mod encoding;
mod maps;
mod math;
mod strings;
#[cfg(test)]
mod tests;
mod toml;
mod yaml_v2;

use std::collections::BTreeMap;

use super::builtins::push_bounded;
use super::funcs::{CallResult, arity, text};
use super::json;
use super::sprig::{self, nests, string};
use super::value::Value;
use collections::{MAX_SEARCH, counted, holds, list};
use encoding::{STD, URL, bytes, decode64, encode64, hex, hmac_sha256, md5, sha256, to_json};
use strings::{case, indent, parse_bool, parse_float, parse_int, parse_uint, split};

pub const NAMES: &[&str] = &[
    "base64Decode",
    "base64Encode",
    "base64URLDecode",
    "base64URLEncode",
    "contains",
    "containsAll",
    "containsAny",
    "containsNone",
    "containsNotAll",
    "explodeMap",
    "hmacSHA256Hex",
    "in",
    "indent",
    "join",
    "loop",
    "md5sum",
    "mergeMap",
    "mergeMapWithOverride",
    "parseBool",
    "parseFloat",
    "parseInt",
    "parseJSON",
    "parseUint",
    "parseYAML",
    "regexMatch",
    "regexReplaceAll",
    "replaceAll",
    "sha256Hex",
    "split",
    "splitToMap",
    "toJSON",
    "toJSONPretty",
    "toLower",
    "toTOML",
    "toUnescapedJSON",
    "toUnescapedJSONPretty",
    "toUpper",
    "toYAML",
    "trim",
    "trimPrefix",
    "trimSpace",
    "trimSuffix",
];

/// A template's regular expression (Go's RE2 syntax, which Rust's regex
/// crate shares for what templates use), bounded in size.
fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("error parsing regexp: {}", e.to_string().lines().last().unwrap_or_default()))
}

/// `re` replaced by `replacement` (`$1`, `${name}` expanded) in `subject`,
/// built match by match and stopped past the output budget: an expansion
/// of a whole capture per `$` could otherwise grow without bound before
/// anything looked at its size.
fn replace_bounded(re: &regex::Regex, subject: &str, replacement: &str) -> Result<String, String> {
    let too_long = || "the replacement's result is too long".to_string();
    // What one expansion can be at most: every `$` a whole subject.
    let one = replacement.len().saturating_add(replacement.matches('$').count().saturating_mul(subject.len()));
    if one > super::MAX_OUTPUT {
        return Err(too_long());
    }
    let mut out = String::new();
    let mut last = 0;
    for captures in re.captures_iter(subject) {
        let whole = captures.get(0).expect("a match has its whole text");
        out.push_str(&subject[last..whole.start()]);
        captures.expand(replacement, &mut out);
        last = whole.end();
        if out.len() > super::MAX_OUTPUT {
            return Err(too_long());
        }
    }
    out.push_str(&subject[last..]);
    if out.len() > super::MAX_OUTPUT {
        return Err(too_long());
    }
    Ok(out)
}

/// How consul-template names sprig's functions.
const SPRIG_PREFIX: &str = "sprig_";

/// Names in `sprig::NAMES` that come from Helm, not sprig, so that
/// consul-template has no `sprig_` version of them.
const HELM_ONLY: &[&str] = &["toYaml", "fromYaml", "required"];

/// The sprig function behind a `sprig_<name>`.
fn sprig_name(name: &str) -> Option<&str> {
    name.strip_prefix(SPRIG_PREFIX).filter(|n| sprig::NAMES.contains(n) && !HELM_ONLY.contains(n))
}

pub fn exists(name: &str) -> bool {
    NAMES.contains(&name) || math::NAMES.contains(&name) || sprig_name(name).is_some()
}

/// consul-template functions this dialect will not run, and why.
pub fn refused(name: &str) -> Option<&'static str> {
    Some(match name {
        "env" | "mustEnv" | "envOrDefault" => "templates may not read the environment of the process rendering them",
        "plugin" => "templates may not run programs",
        "writeToFile" => "templates may not write files",
        "file" => "templates may not read files",
        "sockaddr" => "templates may not read the host's network configuration",
        "timestamp" => {
            "its result changes on every render, so the file would be rewritten (and the app signalled) at every poll"
        }
        "executeTemplate" => "named templates (`define`) are not supported",
        "secret" => "`secret` takes its path as a literal string, e.g. secret \"secret/data/app\"",
        "secrets" => "listing secrets is not supported; read each path with `secret`",
        "pkiCert" => {
            "use secret \"pki/issue/<role>\" \"common_name=...\" instead: the sidecar issues it anew at 2/3 of its life"
        }
        "scratch" => "scratch storage is not supported",
        "spew_dump" | "spew_sdump" | "spew_printf" | "spew_sprintf" => {
            "go-spew's dumps of Go values are not reproduced; print with printf \"%v\" or toJSON"
        }
        "toTitle" => "Go's Unicode title casing is not reproduced",
        "key" | "keyExists" | "keyOrDefault" | "ls" | "safeLs" | "tree" | "safeTree" | "service" | "services"
        | "connect" | "node" | "nodes" | "datacenters" | "partitions" | "peerings" | "exportedServices"
        | "importedServices" | "caRoots" | "caLeaf" | "nomadServices" | "nomadService" | "nomadVarList"
        | "nomadVarListSafe" | "nomadVar" | "nomadVarExists" => "templates here read Vault only, not Consul or Nomad",
        _ => return None,
    })
}

pub fn call(name: &str, args: Vec<Value>, literal_message: bool) -> CallResult {
    if let Some(sprig_name) = sprig_name(name) {
        return match sprig_name {
            // sprig marshals with Go's encoding/json: the same escapes.
            "toJson" | "toPrettyJson" | "toRawJson" => {
                arity(&args, 1)?;
                to_json(&args[0], sprig_name == "toPrettyJson", sprig_name != "toRawJson")
            }
            _ => sprig::call(sprig_name, args, literal_message),
        };
    }
    let one = |args: &[Value]| arity(args, 1);
    let two = |args: &[Value]| arity(args, 2);
    match name {
        "base64Encode" => {
            one(&args)?;
            encode64(&STD, &args[0])
        }
        "base64Decode" => {
            one(&args)?;
            decode64(&STD, &args[0])
        }
        "base64URLEncode" => {
            one(&args)?;
            encode64(&URL, &args[0])
        }
        "base64URLDecode" => {
            one(&args)?;
            decode64(&URL, &args[0])
        }
        "contains" => {
            two(&args)?;
            Ok(Value::Bool(holds(&args[1], &args[0])))
        }
        "in" => {
            two(&args)?;
            Ok(Value::Bool(holds(&args[0], &args[1])))
        }
        "containsAll" | "containsAny" | "containsNone" | "containsNotAll" => {
            two(&args)?;
            let needles = list(&args[0])?;
            // Each needle scans the haystack: bound the product, as one
            // call runs without looking at the clock.
            let size = match &args[1] {
                Value::List(items) => items.len(),
                other => other.as_bytes().map_or(0, <[u8]>::len),
            };
            if needles.len().saturating_mul(size) > MAX_SEARCH {
                return Err(format!("{} needles in a haystack of size {size} is too much searching", needles.len()));
            }
            let held = |needle: &Value| holds(&args[1], needle);
            Ok(Value::Bool(match name {
                "containsAll" => needles.iter().all(held),
                "containsAny" => needles.iter().any(held),
                "containsNone" => !needles.iter().any(held),
                _ => !needles.iter().all(held),
            }))
        }
        "indent" => {
            two(&args)?;
            indent(&args[0], &args[1])
        }
        "join" => {
            two(&args)?;
            let sep = text(&args[0])?;
            let mut joined = String::new();
            for (i, item) in list(&args[1])?.iter().enumerate() {
                if !item.is_stringish() {
                    return Err(format!("expected list of strings, got an element of type {}", item.type_name()));
                }
                if i > 0 {
                    push_bounded(&mut joined, &sep)?;
                }
                push_bounded(&mut joined, &item.as_text().unwrap_or_default())?;
            }
            Ok(Value::Str(joined))
        }
        // The same as sprig's, subject last: `trim` is sprig's `trimAll`.
        "trim" => sprig::call("trimAll", args, false),
        "trimPrefix" | "trimSuffix" => sprig::call(name, args, false),
        "trimSpace" => {
            one(&args)?;
            string(text(&args[0])?.trim())
        }
        "parseBool" => {
            one(&args)?;
            parse_bool(&text(&args[0])?)
        }
        "parseInt" => {
            one(&args)?;
            parse_int(&text(&args[0])?)
        }
        "parseFloat" => {
            one(&args)?;
            parse_float(&text(&args[0])?)
        }
        "parseUint" => {
            one(&args)?;
            parse_uint(&text(&args[0])?)
        }
        "parseYAML" => {
            one(&args)?;
            let s = text(&args[0])?;
            if s.is_empty() {
                return Ok(Value::Map(BTreeMap::new()));
            }
            let value = super::yaml::decode(&s)?;
            nests(std::slice::from_ref(&value))?;
            Ok(value)
        }
        "md5sum" => {
            one(&args)?;
            string(hex(&md5(text(&args[0])?.as_bytes())))
        }
        "loop" => counted(&args),
        "mergeMap" | "mergeMapWithOverride" => {
            two(&args)?;
            let merged = maps::merge(name, &args[0], &args[1], name == "mergeMapWithOverride")?;
            nests(std::slice::from_ref(&merged))?;
            Ok(merged)
        }
        "explodeMap" => {
            one(&args)?;
            let exploded = maps::explode(&args[0])?;
            nests(std::slice::from_ref(&exploded))?;
            Ok(exploded)
        }
        "parseJSON" => {
            one(&args)?;
            let s = text(&args[0])?;
            if s.is_empty() {
                return Ok(Value::Map(BTreeMap::new()));
            }
            // json.Unmarshal into interface{}: every number a float64.
            let parsed: serde_json::Value =
                serde_json::from_str(&s).map_err(|_| "input is not valid JSON".to_string())?;
            let value = json::from_json_as_float(&parsed);
            nests(std::slice::from_ref(&value))?;
            Ok(value)
        }
        _ if math::NAMES.contains(&name) => {
            two(&args)?;
            math::call(name, &args[0], &args[1])
        }
        "regexReplaceAll" => {
            arity(&args, 3)?;
            let (pattern, replacement, subject) = (text(&args[0])?, text(&args[1])?, text(&args[2])?);
            let re = compile(&pattern)?;
            replace_bounded(&re, &subject, &replacement).map(Value::Str)
        }
        "regexMatch" => {
            two(&args)?;
            let (pattern, subject) = (text(&args[0])?, text(&args[1])?);
            Ok(Value::Bool(compile(&pattern)?.is_match(&subject)))
        }
        "replaceAll" => {
            arity(&args, 3)?;
            sprig::replace(&text(&args[0])?, &text(&args[1])?, &text(&args[2])?)
        }
        "sha256Hex" => {
            one(&args)?;
            Ok(Value::Str(hex(&sha256(bytes(&args[0])?))))
        }
        "hmacSHA256Hex" => {
            two(&args)?;
            Ok(Value::Str(hex(&hmac_sha256(bytes(&args[1])?, bytes(&args[0])?))))
        }
        "split" => {
            two(&args)?;
            Ok(Value::List(split(&text(&args[0])?, &text(&args[1])?)?))
        }
        "splitToMap" => {
            arity(&args, 3)?;
            let (sep1, sep2, s) = (text(&args[0])?, text(&args[1])?, text(&args[2])?);
            let mut map = BTreeMap::new();
            for item in split(&sep1, &s)? {
                let item = item.as_text().unwrap_or_default().into_owned();
                if let Some((k, v)) = item.split_once(sep2.as_ref()) {
                    map.insert(k.to_string(), Value::Str(v.to_string()));
                }
            }
            Ok(Value::Map(map))
        }
        "toJSON" | "toJSONPretty" | "toUnescapedJSON" | "toUnescapedJSONPretty" => {
            one(&args)?;
            to_json(&args[0], name.ends_with("Pretty"), !name.starts_with("toUnescaped"))
        }
        "toUpper" => {
            one(&args)?;
            case(&text(&args[0])?, true)
        }
        // yaml.v2's and BurntSushi/toml's encoders, byte for byte.
        "toYAML" => {
            one(&args)?;
            nests(&args)?;
            string(yaml_v2::to_yaml(&args[0])?)
        }
        "toTOML" => {
            one(&args)?;
            nests(&args)?;
            toml::to_toml(&args[0])
        }
        "toLower" => {
            one(&args)?;
            case(&text(&args[0])?, false)
        }
        _ => Err("not defined".into()),
    }
}
