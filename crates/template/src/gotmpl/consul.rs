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

use std::collections::BTreeMap;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::builtins::push_bounded;
use super::funcs::{CallResult, arity, int, text};
use super::json::{self, Style};
use super::sprig::{self, fits, nests, string};
use super::value::Value;

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
    "hmacSHA256Hex",
    "in",
    "indent",
    "join",
    "parseBool",
    "parseFloat",
    "parseInt",
    "parseJSON",
    "replaceAll",
    "sha256Hex",
    "split",
    "splitToMap",
    "toJSON",
    "toJSONPretty",
    "toLower",
    "toUnescapedJSON",
    "toUnescapedJSONPretty",
    "toUpper",
    "trim",
    "trimPrefix",
    "trimSpace",
    "trimSuffix",
];

/// Needles times haystack size one `containsAll` (etc.) may search.
const MAX_SEARCH: usize = 100_000_000;

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
    NAMES.contains(&name) || sprig_name(name).is_some()
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
        "toTitle" => "Go's Unicode title casing is not reproduced",
        "key" | "keyExists" | "keyOrDefault" | "ls" | "safeLs" | "tree" | "safeTree" | "service" | "services"
        | "connect" | "node" | "nodes" | "datacenters" | "partitions" | "peerings" | "exportedServices"
        | "importedServices" | "caRoots" | "caLeaf" | "nomadServices" | "nomadService" | "nomadVarList"
        | "nomadVarListSafe" | "nomadVar" | "nomadVarExists" => "templates here read Vault only, not Consul or Nomad",
        _ => return None,
    })
}

/// Go's `base64.StdEncoding` / `URLEncoding` decoders: padding required,
/// non-zero trailing bits accepted (Go's encodings are not `Strict`).
const fn go_base64(alphabet: &'static alphabet::Alphabet) -> GeneralPurpose {
    let config = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical);
    GeneralPurpose::new(alphabet, config)
}

const STD: GeneralPurpose = go_base64(&alphabet::STANDARD);
const URL: GeneralPurpose = go_base64(&alphabet::URL_SAFE);

fn bytes(value: &Value) -> Result<&[u8], String> {
    value.as_bytes().ok_or_else(|| format!("expected string, got {}", value.type_name()))
}

fn encode64(engine: &GeneralPurpose, value: &Value) -> CallResult {
    let input = bytes(value)?;
    fits(input.len().div_ceil(3).checked_mul(4))?;
    string(engine.encode(input))
}

/// Go's decoder skips `\r` and `\n` anywhere in the input.
fn decode64(engine: &GeneralPurpose, value: &Value) -> CallResult {
    let input: Vec<u8> = bytes(value)?.iter().copied().filter(|b| *b != b'\r' && *b != b'\n').collect();
    let decoded = engine.decode(input).map_err(|_| "input is not valid base64".to_string())?;
    Ok(Value::from_bytes(&decoded))
}

/// `json.Marshal` (`escape_html`) or an `Encoder` with HTML escaping off,
/// compact or indented by two spaces.
fn to_json(value: &Value, pretty: bool, escape_html: bool) -> CallResult {
    string(json::encode(value, &Style { pretty, escape_html, short_escapes: true })?)
}

/// consul-template's `in`: a list holds `needle` when an element of the
/// same kind (int, float, string) is equal to it; a string holds it when
/// `needle` is a string and a substring. Anything else holds nothing.
fn holds(haystack: &Value, needle: &Value) -> bool {
    match haystack {
        Value::List(items) => items.iter().any(|item| match (item, needle) {
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (a, b) if a.is_stringish() && b.is_stringish() => a.as_bytes() == b.as_bytes(),
            _ => false,
        }),
        h if h.is_stringish() && needle.is_stringish() => {
            let (h, n) = (h.as_text().unwrap_or_default(), needle.as_text().unwrap_or_default());
            h.contains(n.as_ref())
        }
        _ => false,
    }
}

/// A `[]interface{}` parameter: a list, or nothing for a missing key.
fn list(value: &Value) -> Result<&[Value], String> {
    match value {
        Value::List(items) => Ok(items),
        Value::Nil => Ok(&[]),
        other => Err(format!("expected list, got {}", other.type_name())),
    }
}

/// consul-template's `indent`: `spaces` before every line that is not
/// empty; a negative count is an error.
fn indent(spaces: &Value, s: &Value) -> CallResult {
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
fn case(s: &str, upper: bool) -> CallResult {
    let mut out = String::with_capacity(s.len().min(super::MAX_OUTPUT));
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
        if out.len() + mapped.len_utf8() > super::MAX_OUTPUT {
            return Err(super::TOO_LARGE.into());
        }
        out.push(mapped);
    }
    Ok(Value::Str(out))
}

/// consul-template's `split`: the input trimmed of white space, an empty
/// list for an empty one, else Go's `strings.Split`.
fn split(sep: &str, s: &str) -> Result<Vec<Value>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    sprig::split(sep, s)
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> CallResult {
    match s {
        "" | "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
        _ => Err("invalid syntax".into()),
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`, with "" as 0.
fn parse_int(s: &str) -> CallResult {
    if s.is_empty() {
        return Ok(Value::Int(0));
    }
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax".into());
    }
    s.parse::<i64>().map(Value::Int).map_err(|_| "value out of range".into())
}

/// Go's `strconv.ParseFloat(s, 64)` in decimal, with "" as 0. Go's hex
/// floats and digit separators are not read.
fn parse_float(s: &str) -> CallResult {
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
        "parseJSON" => {
            one(&args)?;
            let s = text(&args[0])?;
            if s.is_empty() {
                return Ok(Value::Map(BTreeMap::new()));
            }
            let value = json::decode(&s)?;
            nests(std::slice::from_ref(&value))?;
            Ok(value)
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
        "toLower" => {
            one(&args)?;
            case(&text(&args[0])?, false)
        }
        _ => Err("not defined".into()),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [DIGITS[usize::from(b >> 4)] as char, DIGITS[usize::from(b & 15)] as char]).collect()
}

/// HMAC (RFC 2104) over SHA-256: the construction is a few lines over
/// the `sha2` crate, which the workspace already uses.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |with: u8| block.iter().map(|b| b ^ with).collect::<Vec<u8>>();
    let mut inner = pad(0x36);
    inner.extend_from_slice(message);
    let mut outer = pad(0x5c);
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

fn sha256(message: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(message).into()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::super::{TemplateError, render_template, render_vault_template};

    const SECRET: &str = "s3cr3t-Value!";

    fn secrets(data: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
        BTreeMap::from([("secret/data/app".to_string(), json!({ "data": { "data": data } }))])
    }

    fn wrap(body: &str) -> String {
        format!("{{{{ with secret \"secret/data/app\" }}}}{body}{{{{ end }}}}")
    }

    /// Renders `body` inside `with secret "secret/data/app"`, so `.Data.data`
    /// is `data`.
    fn vault(body: &str, data: serde_json::Value) -> String {
        let out = render_vault_template("t", &wrap(body), &secrets(&data)).unwrap_or_else(|e| panic!("{body:?}: {e}"));
        String::from_utf8(out).expect("text")
    }

    fn vault_error(body: &str, data: serde_json::Value) -> TemplateError {
        match render_vault_template("t", &wrap(body), &secrets(&data)) {
            Ok(out) => panic!("{body:?} rendered {:?}", String::from_utf8_lossy(&out)),
            Err(e) => e,
        }
    }

    fn eso(template: &str) -> Result<String, TemplateError> {
        let data = BTreeMap::from([("s".to_string(), b"a,b".to_vec())]);
        render_template("k", template, &data).map(|out| String::from_utf8(out).expect("text"))
    }

    #[test]
    fn to_json_is_go_json_marshal() {
        assert_eq!(vault("{{ .Data.data | toJSON }}", json!({"b": "<1>", "a": 2})), r#"{"a":2,"b":"\u003c1\u003e"}"#);
        let data = json!({"s": "a&b", "n": 2, "f": 2.5, "c": "\u{8}\u{c}\u{1}\n\u{2028}", "l": [true, null]});
        assert_eq!(vault("{{ toJSON .Data.data.s }}", data.clone()), r#""a\u0026b""#);
        assert_eq!(vault("{{ toJSON .Data.data.n }}", data.clone()), "2");
        assert_eq!(vault("{{ toJSON .Data.data.f }}", data.clone()), "2.5");
        assert_eq!(vault("{{ toJSON .Data.data.c }}", data.clone()), r#""\b\f\u0001\n\u2028""#);
        assert_eq!(vault("{{ toJSON .Data.data.l }}", data.clone()), "[true,null]");
        assert_eq!(vault("{{ toJSON .Data.data.missing }}", data), "null");
    }

    #[test]
    fn to_json_pretty_indents_by_two_spaces() {
        let data = json!({"b": [1, "<x>"], "a": {}, "c": []});
        assert_eq!(
            vault("{{ .Data.data | toJSONPretty }}", data.clone()),
            "{\n  \"a\": {},\n  \"b\": [\n    1,\n    \"\\u003cx\\u003e\"\n  ],\n  \"c\": []\n}"
        );
        assert_eq!(vault("{{ toJSONPretty .Data.data.b }}", data), "[\n  1,\n  \"\\u003cx\\u003e\"\n]");
    }

    #[test]
    fn unescaped_json_keeps_html_characters() {
        let data = json!({"a": "<&>", "b": [1]});
        assert_eq!(vault("{{ .Data.data | toUnescapedJSON }}", data.clone()), r#"{"a":"<&>","b":[1]}"#);
        assert_eq!(
            vault("{{ .Data.data | toUnescapedJSONPretty }}", data),
            "{\n  \"a\": \"<&>\",\n  \"b\": [\n    1\n  ]\n}"
        );
    }

    #[test]
    fn case_mapping_is_one_character_each_as_in_go() {
        let data = json!({"s": "héllo straße", "t": "ÀB İ"});
        assert_eq!(vault("{{ .Data.data.s | toUpper }}", data.clone()), "HÉLLO STRAßE");
        assert_eq!(vault("{{ .Data.data.t | toLower }}", data), "àb i");
    }

    #[test]
    fn trims() {
        let data = json!({"s": " \t x y \n", "p": "xxaxx"});
        assert_eq!(vault("[{{ .Data.data.s | trimSpace }}]", data.clone()), "[x y]");
        assert_eq!(vault("{{ .Data.data.p | trim \"x\" }}", data.clone()), "a");
        assert_eq!(vault("{{ .Data.data.p | trimPrefix \"x\" }}", data.clone()), "xaxx");
        assert_eq!(vault("{{ .Data.data.p | trimSuffix \"xx\" }}", data), "xxa");
    }

    #[test]
    fn replace_all_is_strings_replace_all() {
        let data = json!({"s": "a-b-c"});
        assert_eq!(vault("{{ .Data.data.s | replaceAll \"-\" \"_\" }}", data.clone()), "a_b_c");
        assert_eq!(vault("{{ replaceAll \"\" \"-\" \"abc\" }}", data), "-a-b-c-");
    }

    #[test]
    fn split_trims_and_returns_a_list() {
        let data = json!({"csv": "a,b,,c", "blank": "  ", "padded": " a,b \n"});
        assert_eq!(vault("{{ split \",\" .Data.data.csv }}", data.clone()), "[a b  c]");
        assert_eq!(vault("{{ index (split \",\" .Data.data.csv) 3 }}", data.clone()), "c");
        assert_eq!(vault("{{ split \",\" .Data.data.blank }} {{ len (split \",\" \"\") }}", data.clone()), "[] 0");
        assert_eq!(vault("{{ range split \",\" .Data.data.padded }}[{{ . }}]{{ end }}", data.clone()), "[a][b]");
        assert_eq!(vault("{{ split \"\" \"ab\" }}", data.clone()), "[a b]");
        assert_eq!(vault("{{ .Data.data.csv | split \",\" | join \";\" }}", data), "a;b;;c");
    }

    #[test]
    fn split_to_map_keeps_pairs_with_the_separator() {
        assert_eq!(vault("{{ splitToMap \",\" \"=\" \"a=1,b=x=2,c\" }}", json!({})), "map[a:1 b:x=2]");
        assert_eq!(vault("{{ len (splitToMap \",\" \"=\" \" \") }}", json!({})), "0");
    }

    #[test]
    fn join_takes_a_list_of_strings() {
        let data = json!({"l": ["x", "y"], "n": [1, 2], "s": SECRET});
        assert_eq!(vault("{{ .Data.data.l | join \", \" }}", data.clone()), "x, y");
        assert_eq!(vault("[{{ .Data.data.missing | join \",\" }}]", data.clone()), "[]");
        let e = vault_error("{{ .Data.data.n | join \",\" }}", data.clone()).to_string();
        assert!(e.contains("expected list of strings, got an element of type int"), "{e}");
        let e = vault_error("{{ .Data.data.s | join \",\" }}", data).to_string();
        assert!(e.contains("expected list, got string") && !e.contains(SECRET), "{e}");
    }

    #[test]
    fn contains_searches_lists_and_strings() {
        let data = json!({"roles": ["dev", "admin"], "s": "hello", "nums": [1, 2], "fl": [1.5]});
        assert_eq!(vault("{{ .Data.data.roles | contains \"admin\" }}", data.clone()), "true");
        assert_eq!(vault("{{ .Data.data.roles | contains \"adm\" }}", data.clone()), "false");
        assert_eq!(vault("{{ .Data.data.s | contains \"ell\" }}", data.clone()), "true");
        assert_eq!(
            vault("{{ contains 2 .Data.data.nums }} {{ contains \"2\" .Data.data.nums }}", data.clone()),
            "true false"
        );
        assert_eq!(
            vault("{{ contains 1.5 .Data.data.fl }} {{ contains 1 .Data.data.fl }}", data.clone()),
            "true false"
        );
        assert_eq!(vault("{{ contains \"x\" .Data.data.missing }}", data.clone()), "false");
        assert_eq!(vault("{{ in .Data.data.roles \"dev\" }}", data), "true");
    }

    #[test]
    fn contains_some_of_a_list() {
        let data = json!({"roles": ["dev", "admin"], "some": ["admin", "ops"], "all": ["dev", "admin"]});
        let body = "{{ $r := .Data.data.roles }}{{ $s := .Data.data.some }}{{ $a := .Data.data.all }}\
            {{ $r | containsAll $s }} {{ $r | containsAll $a }} \
            {{ $r | containsAny $s }} {{ $r | containsAny (split \",\" \"x,y\") }} \
            {{ $r | containsNone $s }} {{ $r | containsNone (split \",\" \"x\") }} \
            {{ $r | containsNotAll $s }} {{ $r | containsNotAll $a }}";
        assert_eq!(vault(body, data.clone()), "false true true false false true true false");
        let e = vault_error("{{ containsAny \"a\" .Data.data.roles }}", data).to_string();
        assert!(e.contains("expected list, got string"), "{e}");
    }

    #[test]
    fn base64_like_go_encoding() {
        let data = json!({"s": "hello?>", "std": "aGVsbG8/Pg==", "url": "aGVsbG8_Pg==", "wrapped": "aGVs\r\nbG8=", "secret": SECRET});
        assert_eq!(vault("{{ .Data.data.s | base64Encode }}", data.clone()), "aGVsbG8/Pg==");
        assert_eq!(vault("{{ .Data.data.s | base64URLEncode }}", data.clone()), "aGVsbG8_Pg==");
        assert_eq!(vault("{{ .Data.data.std | base64Decode }}", data.clone()), "hello?>");
        assert_eq!(vault("{{ .Data.data.url | base64URLDecode }}", data.clone()), "hello?>");
        // Go skips line breaks and, not being Strict, non-zero trailing bits.
        assert_eq!(vault("{{ .Data.data.wrapped | base64Decode }}", data.clone()), "hello");
        assert_eq!(vault("{{ base64Decode \"YR==\" }}", data.clone()), "a");
        for bad in [
            "{{ base64Decode \"YQ\" }}",
            "{{ base64URLDecode .Data.data.std }}",
            "{{ base64Decode .Data.data.secret }}",
        ] {
            let e = vault_error(bad, data.clone()).to_string();
            assert!(e.contains("not valid base64") && !e.contains(SECRET), "{e}");
        }
        let e = vault_error("{{ base64Encode 3 }}", data).to_string();
        assert!(e.contains("expected string, got int"), "{e}");
    }

    #[test]
    fn parse_json_and_scalars() {
        let data = json!({"j": "{\"k\":[1,2],\"s\":\"x\"}", "bad": SECRET});
        assert_eq!(
            vault("{{ (parseJSON .Data.data.j).k }} {{ (.Data.data.j | parseJSON).s }}", data.clone()),
            "[1 2] x"
        );
        assert_eq!(vault("{{ parseJSON \"\" }}", data.clone()), "map[]");
        let e = vault_error("{{ parseJSON .Data.data.bad }}", data.clone()).to_string();
        assert!(e.contains("not valid JSON") && !e.contains(SECRET), "{e}");
        assert_eq!(
            vault(
                "{{ parseInt \"-42\" }} {{ parseInt \"+7\" }} {{ parseInt \"\" }} {{ parseBool \"T\" }} {{ parseBool \"\" }} {{ parseFloat \"2.5\" }}",
                data.clone()
            ),
            "-42 7 0 true false 2.5"
        );
        assert_eq!(vault("{{ if gt (parseInt \"10\") 9 }}big{{ end }}", data.clone()), "big");
        for bad in [
            "{{ parseInt .Data.data.bad }}",
            "{{ parseInt \"99999999999999999999\" }}",
            "{{ parseBool .Data.data.bad }}",
            "{{ parseFloat .Data.data.bad }}",
            "{{ parseFloat \"1e400\" }}",
        ] {
            let e = vault_error(bad, data.clone()).to_string();
            assert!(!e.contains(SECRET) && (e.contains("invalid syntax") || e.contains("out of range")), "{e}");
        }
    }

    #[test]
    fn indent_skips_empty_lines() {
        let data = json!({"s": "a\n\nb\n", "secret": SECRET});
        assert_eq!(vault("{{ indent 2 .Data.data.s }}", data.clone()), "  a\n\n  b\n");
        assert_eq!(vault("{{ .Data.data.s | indent 0 }}", data.clone()), "a\n\nb\n");
        assert_eq!(vault("[{{ indent 4 \"\" }}]", data.clone()), "[]");
        let e = vault_error("{{ indent -1 .Data.data.secret }}", data.clone()).to_string();
        assert!(e.contains("indent value must be a positive integer") && !e.contains(SECRET), "{e}");
        let e = vault_error("{{ indent 2000000 .Data.data.s }}", data).to_string();
        assert!(e.contains("larger than 1 MiB"), "{e}");
    }

    #[test]
    fn hashes() {
        let data = json!({"empty": "", "abc": "abc", "k": "k".repeat(100), "a1000": "a".repeat(1000), "x55": "x".repeat(55), "x56": "x".repeat(56), "x64": "x".repeat(64)});
        let cases = [
            ("empty", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ("a1000", "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"),
            ("x55", "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"),
            ("x56", "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"),
            ("x64", "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"),
        ];
        for (key, want) in cases {
            assert_eq!(vault(&format!("{{{{ .Data.data.{key} | sha256Hex }}}}"), data.clone()), want, "{key}");
        }
        assert_eq!(
            vault("{{ hmacSHA256Hex \"The quick brown fox jumps over the lazy dog\" \"key\" }}", data.clone()),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        assert_eq!(
            vault("{{ hmacSHA256Hex \"msg\" .Data.data.k }}", data),
            "bd56a1782c2830e8abc6ed866a57a1230661e650b84c62f7ee3accc5fa5af491"
        );
    }

    #[test]
    fn go_builtins_stay() {
        let data = json!({"s": "x", "l": ["a", "b"]});
        let body = "{{ printf \"%s-%d\" .Data.data.s 3 }} {{ index .Data.data.l 1 }} {{ len .Data.data.l }} \
            {{ if and (eq .Data.data.s \"x\") (not false) (ne 1 2) }}ok{{ end }} {{ print 1 2 }} {{ or \"\" \"y\" }}";
        assert_eq!(vault(body, data), "x-3 b 2 ok 1 2 y");
    }

    #[test]
    fn sprig_only_with_its_prefix() {
        let data = json!({"a": "<x>"});
        assert_eq!(vault("{{ \"hi\" | sprig_b64enc }} {{ sprig_upper \"a\" }}", data.clone()), "aGk= A");
        assert_eq!(
            vault("{{ sprig_split \",\" \"a,b\" }} {{ sprig_indent 2 \"\" }}|", data.clone()),
            "map[_0:a _1:b]   |"
        );
        assert_eq!(vault("{{ .Data.data | sprig_toJson }}", data.clone()), r#"{"a":"\u003cx\u003e"}"#);
        assert_eq!(vault("{{ .Data.data | sprig_toRawJson }}", data.clone()), r#"{"a":"<x>"}"#);
        for name in ["b64enc", "upper", "toJson", "sprig_toYaml", "sprig_required", "sprig_env", "filterPEM", "sprig_"]
        {
            let e = vault_error(&format!("{{{{ {name} \"x\" }}}}"), data.clone());
            assert!(matches!(&e, TemplateError::Parse { reason, .. } if reason.contains("not defined")), "{name}: {e}");
        }
    }

    #[test]
    fn reaching_outside_is_refused_at_parse() {
        for (body, why) in [
            ("{{ env \"HOME\" }}", "environment"),
            ("{{ if false }}{{ mustEnv \"HOME\" }}{{ end }}", "environment"),
            ("{{ plugin \"/bin/sh\" \"-c\" \"id\" }}", "run programs"),
            ("{{ writeToFile \"/tmp/x\" \"\" \"\" \"0644\" }}", "write files"),
            ("{{ file \"/etc/passwd\" }}", "read files"),
            ("{{ timestamp }}", "every render"),
            ("{{ toTitle \"a\" }}", "title casing"),
            ("{{ key \"a/b\" }}", "not Consul"),
            ("{{ $p := \"secret/data/app\" }}{{ secret $p }}", "literal string"),
        ] {
            let e = vault_error(body, json!({}));
            assert!(
                matches!(&e, TemplateError::Parse { reason, .. } if reason.contains("is not supported") && reason.contains(why)),
                "{body}: {e}"
            );
        }
    }

    #[test]
    fn large_inputs_fail_without_panicking() {
        let big = "a,".repeat(600_000);
        let data = json!({"big": big, "mid": "abcdefg,".repeat(100_000), "mib": "é".repeat(400_000)});
        let e = vault_error("{{ .Data.data.big | base64Encode }}", data.clone()).to_string();
        assert!(e.contains("larger than 1 MiB"), "{e}");
        let e = vault_error("{{ .Data.data.big | split \"\" }}", data.clone()).to_string();
        assert!(e.contains("more than"), "{e}");
        assert_eq!(vault("{{ len (.Data.data.mid | split \",\") }}", data.clone()), "100001");
        assert_eq!(vault("{{ len (.Data.data.mib | toUpper) }}", data.clone()), "800000");
        let e = vault_error("{{ .Data.data.big | replaceAll \",\" \"-----\" }}", data.clone()).to_string();
        assert!(e.contains("larger than 1 MiB"), "{e}");
        let search = "{{ $n := .Data.data.mid | split \",\" }}{{ .Data.data.big | containsAny $n }}";
        let e = vault_error(search, data).to_string();
        assert!(e.contains("100001 needles in a haystack of size 1200000 is too much searching"), "{e}");
    }

    #[test]
    fn eso_dialect_is_unchanged() {
        assert_eq!(eso("{{ .s | split \",\" }}").unwrap(), "map[_0:a _1:b]");
        assert_eq!(eso("{{ \"x\" | b64enc }} {{ indent 2 \"\" }}|").unwrap(), "eA==   |");
        assert_eq!(eso("{{ \"a\" | contains \"a\" }}").unwrap(), "true");
        assert_eq!(eso("{{ list \"a\" \"b\" | join \",\" }}").unwrap(), "a,b");
        for name in ["toJSON", "base64Encode", "trimSpace", "sprig_b64enc", "env", "plugin", "sha256Hex"] {
            let e = eso(&format!("{{{{ {name} \"x\" }}}}")).unwrap_err();
            assert!(matches!(&e, TemplateError::Parse { reason, .. } if reason.contains("not defined")), "{name}: {e}");
        }
        // toJson keeps Go's pre-1.22 escapes there, as before.
        assert_eq!(eso("{{ printf \"%c\" 8 | toJson }}").unwrap(), r#""\u0008""#);
    }
}
