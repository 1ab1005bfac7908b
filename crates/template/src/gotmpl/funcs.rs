//! The function table: which names exist, and argument checks shared by
//! `builtins` and `sprig`. Reasons returned here describe types and counts,
//! never values, because they end up in error messages.

use std::borrow::Cow;

use super::value::Value;
use super::{builtins, consul, pki, sprig};

pub use builtins::index;

pub type CallResult = Result<Value, String>;

/// Which function names a template sees. Go's builtins are in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// External Secrets: sprig's names (ESO's subset) and ESO's PKI helpers.
    Eso,
    /// Vault agent (consul-template): its own helpers, sprig only as
    /// `sprig_<name>`. See `consul`.
    VaultAgent,
}

pub fn exists(dialect: Dialect, name: &str) -> bool {
    if builtins::NAMES.contains(&name) {
        return true;
    }
    match dialect {
        Dialect::Eso => sprig::NAMES.contains(&name) || pki::NAMES.contains(&name),
        Dialect::VaultAgent => consul::exists(name),
    }
}

/// Why `name` is refused in `dialect`, for names the dialect knows of but
/// will not run (reading the environment, running programs); checked at
/// parse time so such a template fails before it renders anything.
pub fn refused(dialect: Dialect, name: &str) -> Option<&'static str> {
    match dialect {
        Dialect::Eso => sprig::refused(name),
        Dialect::VaultAgent => consul::refused(name).or_else(|| name.strip_prefix("sprig_").and_then(sprig_v3_2)),
    }
}

/// Why a `sprig_<name>` is refused in Vault agent templates: what ESO's
/// sprig refuses, and what the sprig v3.2 that consul-template registers
/// lacks or computes differently from ESO's.
fn sprig_v3_2(name: &str) -> Option<&'static str> {
    match name {
        "sha512sum" => Some("sprig v3.2, which the Vault agent uses, has no sha512sum"),
        "hexdec" => Some("hexdec is ESO's own function, not sprig's"),
        "semverCompare" => Some(
            "sprig v3.2's Masterminds/semver (v3.2) matches prereleases differently from ESO's v3.4, which is the one \
             reproduced here",
        ),
        "camelcase" => {
            Some("sprig v3.2's camelcase depends on the xstrings version built into the agent; it is not reproduced")
        }
        _ => sprig::refused(name),
    }
}

/// Whether `name` changes the map given as its first argument in Go
/// (sprig's `set`, `unset`, `merge`...): `exec` writes its result back into
/// the variable that map came from.
pub fn mutates(dialect: Dialect, name: &str) -> bool {
    match dialect {
        Dialect::Eso => sprig::mutates(name),
        Dialect::VaultAgent => name.strip_prefix("sprig_").is_some_and(sprig::mutates),
    }
}

/// `literal_message`: the first argument was a string literal in the
/// template, so `fail`/`required` may show it.
pub fn call(dialect: Dialect, name: &str, args: Vec<Value>, literal_message: bool) -> CallResult {
    if builtins::NAMES.contains(&name) {
        return builtins::call(name, args);
    }
    match dialect {
        Dialect::Eso if pki::NAMES.contains(&name) => pki::call(name, args),
        Dialect::Eso => sprig::call(name, args, literal_message),
        Dialect::VaultAgent if matches!(name, "sprig_mergeOverwrite" | "sprig_mustMergeOverwrite") => {
            sprig::merge_overwrite_v3_2(args)
        }
        Dialect::VaultAgent => consul::call(name, args, literal_message),
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
