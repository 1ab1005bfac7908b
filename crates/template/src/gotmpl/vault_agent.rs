//! Vault agent (consul-template) templates: which `secret` calls a template
//! makes, and rendering it from the answers read beforehand. The template
//! itself never does I/O: each `secret "<path>" ["k=v" ...]` is rewritten
//! into a lookup of that call's answer.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use super::funcs::Dialect;
use super::lexer::{self, Delims};
use super::value::Value;
use super::{Limits, TemplateError, exec, json, line_column, parse_delimited};

/// Where [`render_vault_template`] keeps the answers it was given.
const SECRETS_ROOT: &str = "__vaultsync_secrets";

/// One `secret` call: a read of `path`, or, with parameters, a write of
/// them to `path` (`secret "pki/issue/web" "common_name=a.example.com"`),
/// whose answer is what the template sees, as consul-template does it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultCall {
    pub path: String,
    /// `key=value` parameters, in the template's order; empty for a read.
    pub params: Vec<(String, String)>,
}

impl VaultCall {
    pub fn is_write(&self) -> bool {
        !self.params.is_empty()
    }

    /// The name of this call's answer in the map [`render_vault_template`]
    /// takes: the path for a read, `path?k=v&...` for a write (a Vault path
    /// holds no `?`).
    pub fn key(&self) -> String {
        if self.params.is_empty() {
            return self.path.clone();
        }
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}?{}", self.path, params.join("&"))
    }

    /// The write's body: each parameter as a string, as consul-template
    /// sends it.
    pub fn body(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.params.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect(),
        )
    }
}

/// A Go string literal.
const STRING_LITERAL: &str = r#""(?:[^"\\]|\\.)*""#;

/// One string literal (a parameter).
static PARAMETER: LazyLock<regex::Regex> = LazyLock::new(|| regex::Regex::new(STRING_LITERAL).expect("valid regex"));

/// `secret "<path>"` and its literal parameters.
static SECRET_CALL: LazyLock<regex::Regex> = LazyLock::new(|| {
    let s = STRING_LITERAL;
    regex::Regex::new(&format!(r#"\bsecret\s+({s})((?:\s+{s})*)"#)).expect("valid regex")
});

fn unquote(quoted: &str) -> String {
    serde_json::from_str::<String>(quoted).unwrap_or_else(|_| quoted.trim_matches('"').to_string())
}

/// Where `template` calls `secret`: the offsets of that identifier in its
/// actions. The same words in its text, a comment or a string are not a
/// call, and are left as they are.
fn secret_calls_at(name: &str, template: &str, delims: Delims<'_>) -> Result<BTreeSet<usize>, TemplateError> {
    let tokens = lexer::lex(template, delims).map_err(|f| {
        let (line, column) = line_column(template, f.pos);
        TemplateError::Parse { name: name.to_string(), line, column, reason: f.reason }
    })?;
    Ok(tokens
        .into_iter()
        .filter(|token| matches!(&token.tok, lexer::Tok::Ident(word) if word == "secret"))
        .map(|token| token.start)
        .collect())
}

/// Each `secret` call of `template`, in order of first use. Parameters
/// must be literal `key=value` strings: anything else after the path
/// (a variable, a field) is refused rather than ignored.
pub fn vault_template_calls(name: &str, template: &str) -> Result<Vec<VaultCall>, TemplateError> {
    vault_template_calls_delimited(name, template, Delims::default())
}

/// As [`vault_template_calls`], for a template written with other action
/// delimiters (the injector's `agent-template-left-delim-<name>`).
pub fn vault_template_calls_delimited(
    name: &str,
    template: &str,
    delims: Delims<'_>,
) -> Result<Vec<VaultCall>, TemplateError> {
    let refused = |reason: String| TemplateError::Parse { name: name.to_string(), line: 0, column: 0, reason };
    let starts = secret_calls_at(name, template, delims)?;
    let mut calls: Vec<VaultCall> = Vec::new();
    for captures in SECRET_CALL.captures_iter(template) {
        let whole = captures.get(0).expect("match");
        if !starts.contains(&whole.start()) {
            continue;
        }
        let path = unquote(&captures[1]);
        let rest = template[whole.end()..].trim_start();
        let trimmed_close = format!("-{}", delims.right);
        if ![delims.right, trimmed_close.as_str(), ")", "|"].iter().any(|end| rest.starts_with(end)) {
            return Err(refused(format!(
                "`secret {:?}` takes literal \"key=value\" strings as parameters, nothing else",
                path
            )));
        }
        let mut params = Vec::new();
        for literal in PARAMETER.find_iter(&captures[2]) {
            let param = unquote(literal.as_str());
            let Some((key, value)) = param.split_once('=') else {
                return Err(refused(format!(
                    "`secret {path:?}`: parameter {:?} is not key=value",
                    param.chars().take(40).collect::<String>()
                )));
            };
            if key.is_empty() {
                return Err(refused(format!("`secret {path:?}`: a parameter has no key")));
            }
            params.push((key.to_string(), value.to_string()));
        }
        let call = VaultCall { path, params };
        if !calls.contains(&call) {
            calls.push(call);
        }
    }
    Ok(calls)
}

/// The Vault API paths a template reads or writes, in order of first use.
pub fn vault_template_paths(template: &str) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for call in vault_template_calls("paths", template).unwrap_or_default() {
        if !paths.contains(&call.path) {
            paths.push(call.path);
        }
    }
    paths
}

/// Renders a Vault agent template: `{{ with secret "secret/data/app" }}{{
/// .Data.data.password }}{{ end }}`. `secrets` holds each call's answer
/// under [`VaultCall::key`] (for a read, its path); `secret` returns it as
/// consul-template does (`.Data`, `.LeaseID`, `.LeaseDuration`,
/// `.Renewable`, `.Warnings`, `.RequestID`).
///
/// Functions are consul-template's (see `consul`): its own helpers with
/// its argument order, Go's builtins, and sprig only as `sprig_<name>`.
/// Those that would read the environment, files or run programs are
/// refused when the template is parsed.
pub fn render_vault_template(
    name: &str,
    template: &str,
    secrets: &BTreeMap<String, serde_json::Value>,
) -> Result<Vec<u8>, TemplateError> {
    render_vault_template_with(name, template, secrets, AgentTemplateOptions::default())
}

/// What the Vault agent's template stanza sets beyond the text: the
/// injector's `agent-template-left-delim-<name>` (and right) and
/// `error-on-missing-key-<name>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentTemplateOptions<'a> {
    pub delims: Delims<'a>,
    /// Go's `missingkey=error`: a missing map key fails the render rather
    /// than printing `<no value>`.
    pub error_on_missing_key: bool,
}

/// As [`render_vault_template`], with the template stanza's options.
pub fn render_vault_template_with(
    name: &str,
    template: &str,
    secrets: &BTreeMap<String, serde_json::Value>,
    options: AgentTemplateOptions<'_>,
) -> Result<Vec<u8>, TemplateError> {
    let delims = options.delims;
    let refused =
        |reason: &str| TemplateError::Parse { name: name.to_string(), line: 0, column: 0, reason: reason.into() };
    for call in vault_template_calls_delimited(name, template, delims)? {
        if !secrets.contains_key(&call.key()) {
            return Err(refused(&format!("no answer was read for `secret {:?}`", call.path)));
        }
    }
    let starts = secret_calls_at(name, template, delims)?;
    let rewritten = SECRET_CALL
        .replace_all(template, |captures: &regex::Captures| {
            let whole = captures.get(0).expect("match");
            if !starts.contains(&whole.start()) {
                return whole.as_str().to_owned();
            }
            let path = unquote(&captures[1]);
            let params = PARAMETER
                .find_iter(&captures[2])
                .filter_map(|literal| {
                    let param = unquote(literal.as_str());
                    param.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect();
            let key = VaultCall { path, params }.key();
            format!("index $.{SECRETS_ROOT} {}", serde_json::to_string(&key).unwrap_or_default())
        })
        .into_owned();
    let consul = secrets
        .iter()
        .map(|(key, response)| {
            let field = |name: &str| json::from_json(response.get(name).cloned().unwrap_or(serde_json::Value::Null));
            // Data as consul-template decodes it (UseNumber); the lease
            // fields are Go ints and bools in its Secret.
            let data = json::from_json_numbers_as_text(response.get("data").cloned().unwrap_or_default());
            let secret = BTreeMap::from([
                ("Data".to_string(), data),
                ("LeaseID".to_string(), field("lease_id")),
                ("LeaseDuration".to_string(), field("lease_duration")),
                ("Renewable".to_string(), field("renewable")),
                // A []string in consul-template: none prints as `[]`.
                (
                    "Warnings".to_string(),
                    match field("warnings") {
                        Value::Nil => Value::List(Vec::new()),
                        warnings => warnings,
                    },
                ),
                ("RequestID".to_string(), field("request_id")),
            ]);
            (key.clone(), Value::Map(secret))
        })
        .collect();
    let root = Value::Map(BTreeMap::from([(SECRETS_ROOT.to_string(), Value::Map(consul))]));
    catch_unwind(AssertUnwindSafe(|| {
        let budget = exec::Budget::new(Limits::default());
        let tree = parse_delimited(name, &rewritten, Dialect::VaultAgent, delims)?;
        exec::render_checked(&tree, root, budget, Dialect::VaultAgent, options.error_on_missing_key).map_err(|f| {
            let (line, column) = line_column(&rewritten, f.pos);
            TemplateError::Exec { name: name.to_string(), line, column, reason: f.reason }
        })
    }))
    .unwrap_or_else(|_| Err(refused("internal error in the template engine (a bug; please report it)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_calls_with_parameters() {
        let template = r#"{{ with secret "pki/issue/web" "common_name=a.example.com" "ttl=30s" }}{{ .Data.certificate }}{{ end }}{{ with secret "secret/data/x" }}{{ .Data.data.v }}{{ end }}"#;
        let calls = vault_template_calls("t", template).unwrap();
        assert_eq!(calls.len(), 2);
        assert!(calls[0].is_write() && !calls[1].is_write());
        assert_eq!(calls[0].key(), "pki/issue/web?common_name=a.example.com&ttl=30s");
        assert_eq!(calls[0].body(), serde_json::json!({"common_name": "a.example.com", "ttl": "30s"}));
        let secrets = BTreeMap::from([
            (calls[0].key(), serde_json::json!({"data": {"certificate": "CERT"}})),
            (calls[1].key(), serde_json::json!({"data": {"data": {"v": "V"}}})),
        ]);
        assert_eq!(render_vault_template("t", template, &secrets).unwrap(), b"CERTV");
        assert_eq!(vault_template_paths(template), ["pki/issue/web", "secret/data/x"]);
    }

    #[test]
    fn error_on_missing_key_fails_where_go_fails() {
        let template = r#"{{ with secret "kv/x" }}{{ .Data.v }}{{ .Data.nope }}{{ index .Data "nope" }}{{ end }}"#;
        let secrets = BTreeMap::from([("kv/x".to_string(), serde_json::json!({"data": {"v": "V"}}))]);
        let out = render_vault_template("t", template, &secrets).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "V<no value><no value>");
        let strict = AgentTemplateOptions { error_on_missing_key: true, ..Default::default() };
        let error = render_vault_template_with("t", template, &secrets, strict).unwrap_err().to_string();
        assert!(error.contains("map has no entry for key \"nope\""), "{error}");
        let indexed = r#"{{ with secret "kv/x" }}{{ index .Data "nope" }}{{ end }}"#;
        assert!(render_vault_template_with("t", indexed, &secrets, strict).is_ok(), "index is not a field");
    }

    #[test]
    fn secret_in_text_comments_and_strings_is_no_call() {
        let template = "the secret \"db\" below {{/* secret \"c\" */}}{{ with secret \"kv/x\" }}{{ .Data.v }} {{ print \"secret \\\"s\\\"\" }}{{ end }}";
        let calls = vault_template_calls("t", template).unwrap();
        assert_eq!(calls.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["kv/x"]);
        let secrets = BTreeMap::from([("kv/x".to_string(), serde_json::json!({"data": {"v": "V"}}))]);
        let out = String::from_utf8(render_vault_template("t", template, &secrets).unwrap()).unwrap();
        assert_eq!(out, "the secret \"db\" below V secret \"s\"");
    }

    #[test]
    fn other_delimiters_are_the_templates_own() {
        let delims = Delims { left: "[[", right: "]]" };
        let template = "[[ with secret \"kv/x\" -]]\n{{ literal }} [[ .Data.v ]][[/* c */]][[- end ]]";
        let calls = vault_template_calls_delimited("t", template, delims).unwrap();
        assert_eq!(calls[0].path, "kv/x");
        let secrets = BTreeMap::from([("kv/x".to_string(), serde_json::json!({"data": {"v": "V"}}))]);
        let options = AgentTemplateOptions { delims, error_on_missing_key: false };
        let out = render_vault_template_with("t", template, &secrets, options).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "{{ literal }} V");
        assert!(render_vault_template("t", template, &secrets).is_err(), "{{ literal }} is an action with {{");
    }

    #[test]
    fn numbers_in_vault_data_are_json_numbers() {
        let template = r#"{{ with secret "kv/x" }}{{ .Data.port }} {{ .Data.whole }} {{ printf "%d|%v|%s|%q|%T" .Data.port .Data.port .Data.port .Data.port .Data.port }} {{ print .Data.port .Data.port }} {{ eq .Data.port "5432" }} {{ len .Data.port }} {{ .Data | toJSON }} {{ .LeaseDuration | add 1 }}{{ end }}"#;
        let secrets = BTreeMap::from([(
            "kv/x".to_string(),
            serde_json::json!({"data": {"port": 5432, "whole": 2.0}, "lease_duration": 60}),
        )]);
        assert_eq!(
            String::from_utf8(render_vault_template("t", template, &secrets).unwrap()).unwrap(),
            r#"5432 2.0 %!d(json.Number=5432)|5432|5432|"5432"|json.Number 54325432 true 4 {"port":5432,"whole":2.0} 61"#
        );
        for (template, says) in [
            (r#"{{ with secret "kv/x" }}{{ .Data.port | add 1 }}{{ end }}"#, "unknown type for json.Number"),
            (r#"{{ with secret "kv/x" }}{{ eq .Data.port 5432 }}{{ end }}"#, "incompatible types"),
            (r#"{{ with secret "kv/x" }}{{ .Data.port | toUpper }}{{ end }}"#, "json.Number"),
        ] {
            let error = render_vault_template("t", template, &secrets).unwrap_err().to_string();
            assert!(error.contains(says), "{template}: {error}");
        }
    }

    #[test]
    fn parameters_are_literal_key_value_strings() {
        for (template, says) in [
            (r#"{{ secret "pki/issue/web" .cn }}"#, "literal"),
            (r#"{{ secret "pki/issue/web" "common_name" }}"#, "not key=value"),
            (r#"{{ secret "pki/issue/web" "=x" }}"#, "no key"),
        ] {
            let error = render_vault_template("t", template, &BTreeMap::new()).unwrap_err().to_string();
            assert!(error.contains(says), "{template}: {error}");
        }
        // A pipeline or a parenthesised call after the parameters is fine.
        let template = r#"{{ (secret "p/x" "a=b").Data.v }}{{ secret "p/y" | print }}"#;
        assert_eq!(vault_template_calls("t", template).unwrap().len(), 2);
    }
}
