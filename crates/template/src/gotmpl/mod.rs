//! Go `text/template` with the sprig functions ESO users rely on, so a
//! `target.template.data` written for External Secrets renders the same here.
//!
//! Pipeline: `lexer` (text → tokens) → `parser` (tokens → tree, names and
//! variables checked) → `exec` (tree + data → string), with functions in
//! `builtins` (Go's own), `sprig`, `yaml`, and `pki` with `jwk` (ESO's
//! PEM, PKCS#12 and JWK helpers, over `der`), and `printf` for Go's `fmt`
//! verbs.
//!
//! Errors carry positions and template text only, never a data value, since
//! they end up in events and logs while the data is secret.

mod builtins;
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
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use value::Value;

/// A Secret holds at most 1 MiB, so anything bigger is a runaway template;
/// stopping there keeps one bad template from starving the operator.
const MAX_OUTPUT: usize = 1 << 20;

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
    let tree = parser::parse(template).map_err(|f| {
        let (line, column) = line_column(template, f.pos);
        TemplateError::Parse { name: name.to_string(), line, column, reason: f.reason }
    })?;
    let root = Value::Map(data.iter().map(|(k, v)| (k.clone(), Value::from_bytes(v))).collect());
    exec::render(&tree, root).map_err(|f| {
        let (line, column) = line_column(template, f.pos);
        TemplateError::Exec { name: name.to_string(), line, column, reason: f.reason }
    })
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_column(src: &str, pos: usize) -> (usize, usize) {
    let before = src.get(..pos.min(src.len())).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}
