//! Go `text/template` with the sprig functions ESO users rely on, so a
//! `target.template.data` written for External Secrets renders the same here.
//!
//! Pipeline: `lexer` (text → tokens) → `parser` (tokens → tree, names and
//! variables checked) → `exec` (tree + data → string), with functions in
//! `builtins` (Go's own), `sprig`, `yaml`, and `pki` with `jwk` (ESO's
//! PEM, PKCS#12 and JWK helpers, over `der`), and `printf` for Go's `fmt`
//! verbs. Vault agent templates see another set (`funcs::Dialect`):
//! consul-template's helpers in `consul`.
//!
//! Errors carry positions and template text only, never a data value, since
//! they end up in events and logs while the data is secret.

mod builtins;
mod consul;
mod der;
mod exec;
mod funcs;
mod json;
mod jwk;
mod lexer;
mod parser;
mod pki;
mod printf;
mod sprig;
mod value;
mod vault_agent;
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use funcs::Dialect;
pub use lexer::Delims;
use value::Value;
pub use vault_agent::{
    AgentTemplateOptions, VaultCall, render_vault_template, render_vault_template_with, vault_template_calls,
    vault_template_calls_delimited, vault_template_paths,
};

/// A Secret holds at most 1 MiB, so anything bigger is a runaway template;
/// stopping there keeps one bad template from starving the operator. Every
/// string a function builds is bounded by it too, checked before building.
const MAX_OUTPUT: usize = 1 << 20;

/// The reason for any value that would outgrow `MAX_OUTPUT`.
const TOO_LARGE: &str = "result would be larger than 1 MiB";

/// A list or map a single function may build, in `Value::weight` bytes:
/// a 1 MiB input split into words must fit, a split into characters not.
const MAX_VALUE_WEIGHT: usize = 16 << 20;

/// How deep lists and maps may nest. Printing, encoding, comparing and
/// dropping a value recurse per level, so this keeps the stack bounded.
const MAX_VALUE_DEPTH: usize = 128;

/// What one render may spend. One tenant's template must not hold the
/// others' syncs for long, nor take the operator's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for parse and execution.
    pub time: Duration,
    /// Bytes of values created during execution, added up (see
    /// `Value::weight`); what is freed again is not given back.
    pub memory: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { time: Duration::from_secs(1), memory: 64 << 20 }
    }
}

/// Why a template could not be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("template {name:?}: parse error at {line}:{column}: {reason}")]
    Parse { name: String, line: usize, column: usize, reason: String },
    #[error("template {name:?}: execution error at {line}:{column}: {reason}")]
    Exec { name: String, line: usize, column: usize, reason: String },
}

/// An error before it knows the template's name: `pos` is a byte offset
/// into the source, turned into line:column only once, here.
#[derive(Debug, PartialEq)]
struct Failure {
    pos: usize,
    reason: String,
}

impl Failure {
    fn new(pos: usize, reason: impl Into<String>) -> Failure {
        Failure { pos, reason: reason.into() }
    }
}

/// Renders `template`; `.name` is the bytes of Secret key `name` as a
/// string. A missing key renders as "" (Go would print `<no value>`).
/// The output is bytes because a template may pass binary data through.
pub fn render_template(name: &str, template: &str, data: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>, TemplateError> {
    render_template_with_limits(name, template, data, Limits::default())
}

/// `render_template` with `budget` of wall-clock time instead of 1 s.
pub fn render_template_with_budget(
    name: &str,
    template: &str,
    data: &BTreeMap<String, Vec<u8>>,
    budget: Duration,
) -> Result<Vec<u8>, TemplateError> {
    render_template_with_limits(name, template, data, Limits { time: budget, ..Limits::default() })
}

/// `render_template` within `limits`. A panic inside the engine (a bug: no
/// input should cause one) becomes an error for this template instead of
/// taking down the operator; the fuzz targets call `render` directly so
/// that they still see it.
pub fn render_template_with_limits(
    name: &str,
    template: &str,
    data: &BTreeMap<String, Vec<u8>>,
    limits: Limits,
) -> Result<Vec<u8>, TemplateError> {
    catch_unwind(AssertUnwindSafe(|| render(name, template, data, limits))).unwrap_or_else(|_| {
        Err(TemplateError::Exec {
            name: name.to_string(),
            line: 0,
            column: 0,
            reason: "internal error in the template engine (a bug; please report it)".into(),
        })
    })
}

/// Parse and execute, without the panic guard.
fn render(
    name: &str,
    template: &str,
    data: &BTreeMap<String, Vec<u8>>,
    limits: Limits,
) -> Result<Vec<u8>, TemplateError> {
    let budget = exec::Budget::new(limits);
    let tree = parse(name, template, Dialect::Eso)?;
    let root = Value::Map(data.iter().map(|(k, v)| (k.clone(), Value::from_bytes(v))).collect());
    exec::render(&tree, root, budget, Dialect::Eso).map_err(|f| {
        let (line, column) = line_column(template, f.pos);
        TemplateError::Exec { name: name.to_string(), line, column, reason: f.reason }
    })
}

fn parse(name: &str, template: &str, dialect: Dialect) -> Result<Vec<parser::Node>, TemplateError> {
    parse_delimited(name, template, dialect, Delims::default())
}

fn parse_delimited(
    name: &str,
    template: &str,
    dialect: Dialect,
    delims: Delims<'_>,
) -> Result<Vec<parser::Node>, TemplateError> {
    parser::parse(template, dialect, delims).map_err(|f| {
        let (line, column) = line_column(template, f.pos);
        TemplateError::Parse { name: name.to_string(), line, column, reason: f.reason }
    })
}

/// `value` as Go's `encoding/json` writes what `json.Unmarshal` read into
/// an `any` (numbers are float64): compact, keys sorted, `<>&` escaped as
/// `json.Marshal` does when `escape_html`.
pub(crate) fn go_json_marshal(value: &serde_json::Value, escape_html: bool) -> Result<String, String> {
    json::encode(&json::from_json_as_float(value), &json::Style { pretty: false, escape_html, short_escapes: true })
}

/// The fuzz targets' logic, shared with the corpus replay test so that
/// `cargo test` re-runs every input the fuzzer kept. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::{Limits, TemplateError};

    /// The time budget the fuzz target renders with: short, so that
    /// inputs which run into it do not slow the fuzzer down.
    pub const BUDGET: Duration = Duration::from_millis(50);

    /// Parses arbitrary bytes as a template (lossily as UTF-8).
    pub fn parse_input(input: &[u8]) {
        let template = String::from_utf8_lossy(input);
        let _ = super::parse("fuzz", &template, super::Dialect::Eso);
    }

    /// Renders arbitrary bytes: up to the first NUL byte is the template,
    /// the rest is data, `key=value` entries separated by NUL bytes (a
    /// value may hold any other byte). Returns the result, so a replay can
    /// check it finished within the budget.
    pub fn render_input(input: &[u8], budget: Duration) -> Result<Vec<u8>, TemplateError> {
        let mut parts = input.split(|b| *b == 0);
        let template = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let mut data = BTreeMap::new();
        for entry in parts.take(8) {
            let (key, value) = match entry.iter().position(|b| *b == b'=') {
                Some(i) => (&entry[..i], &entry[i + 1..]),
                None => (entry, &b""[..]),
            };
            data.insert(String::from_utf8_lossy(key).into_owned(), value.to_vec());
        }
        let limits = Limits { time: budget, ..Limits::default() };
        super::render("fuzz", &template, &data, limits)
    }

    /// Renders arbitrary bytes as a Vault agent template (the Vault agent
    /// dialect: consul-template's functions, `secret` calls), split as
    /// [`render_input`] splits them; every `secret` call the template
    /// makes answers with the data as a KV v2 read would. Uses the
    /// default limits (a second), as the agent does.
    pub fn render_vault_input(input: &[u8]) -> Result<Vec<u8>, TemplateError> {
        let mut parts = input.split(|b| *b == 0);
        let template = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let mut data = serde_json::Map::new();
        for entry in parts.take(8) {
            let (key, value) = match entry.iter().position(|b| *b == b'=') {
                Some(i) => (&entry[..i], &entry[i + 1..]),
                None => (entry, &b""[..]),
            };
            let value = String::from_utf8_lossy(value).into_owned();
            data.insert(String::from_utf8_lossy(key).into_owned(), serde_json::Value::String(value));
        }
        let answer = serde_json::json!({"data": {"data": data, "metadata": {"version": 1}}, "lease_duration": 0});
        let calls = super::vault_template_calls("fuzz", &template).unwrap_or_default();
        let secrets = calls.iter().map(|call| (call.key(), answer.clone())).collect();
        super::render_vault_template("fuzz", &template, &secrets)
    }
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_column(src: &str, pos: usize) -> (usize, usize) {
    let before = src.get(..pos.min(src.len())).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}
