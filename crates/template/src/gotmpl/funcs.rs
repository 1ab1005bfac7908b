//! The function table: which names exist, and argument checks shared by
//! `builtins` and `sprig`. Reasons returned here describe types and counts,
//! never values, because they end up in error messages.

use std::borrow::Cow;

use super::value::Value;
use super::{builtins, pki, sprig};

pub use builtins::index;

pub type CallResult = Result<Value, String>;

pub fn exists(name: &str) -> bool {
    builtins::NAMES.contains(&name) || sprig::NAMES.contains(&name) || pki::NAMES.contains(&name)
}

/// `literal_message`: the first argument was a string literal in the
/// template, so `fail`/`required` may show it.
pub fn call(name: &str, args: Vec<Value>, literal_message: bool) -> CallResult {
    if builtins::NAMES.contains(&name) {
        builtins::call(name, args)
    } else if pki::NAMES.contains(&name) {
        pki::call(name, args)
    } else {
        sprig::call(name, args, literal_message)
    }
}

pub fn arity(args: &[Value], want: usize) -> Result<(), String> {
    if args.len() == want {
        return Ok(());
    }
    Err(format!("wrong number of args: want {want} got {}", args.len()))
}

pub fn at_least(args: &[Value], want: usize) -> Result<(), String> {
    if args.len() >= want {
        return Ok(());
    }
    Err(format!("wrong number of args: want at least {want} got {}", args.len()))
}

pub fn text(value: &Value) -> Result<Cow<'_, str>, String> {
    value.as_text().ok_or_else(|| format!("expected string, got {}", value.type_name()))
}

pub fn int(value: &Value) -> Result<i64, String> {
    match value {
        Value::Int(i) => Ok(*i),
        other => Err(format!("expected int, got {}", other.type_name())),
    }
}

/// Sprig's `toString`/`strval`: strings as they are, anything else as `%v`.
/// An error once it would outgrow 1 MiB (a large list).
pub fn to_string(value: &Value) -> Result<String, String> {
    match value.as_text() {
        Some(s) => Ok(s.into_owned()),
        None => value.display(),
    }
}
