//! Turns the JSON of a remote secret into the bytes of Kubernetes Secret
//! keys: property selection, decoding and extraction. No I/O, so every rule
//! here is tested alone.
//!
//! Errors name properties and strategies, never values.
#![forbid(unsafe_code)]

mod decode;
mod gotmpl;
mod keys;
mod property;
mod rewrite;

pub use decode::{Decoding, decode};
#[doc(hidden)]
pub use gotmpl::fuzzing;
pub use gotmpl::{
    AgentTemplateOptions, Delims, Limits, TemplateError, VaultCall, render_template, render_template_with_budget,
    render_template_with_limits, render_vault_template, render_vault_template_with, vault_template_calls,
    vault_template_calls_delimited, vault_template_paths,
};
pub use keys::{path_to_key, unescape_unicode};
pub use property::{extract, select_property};
pub use rewrite::{Merge, MergeStrategy, RewriteStep, rewrite_keys};

use serde_json::{Map, Value};

/// The JSON object a KV read returns.
pub type RemoteSecret = Map<String, Value>;

/// Why a remote secret could not be turned into Secret data.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("property {property:?} not found in the secret (its keys are: {keys})")]
    PropertyNotFound { property: String, keys: String },
    #[error("property {property:?} is not a JSON object, so it cannot be extracted")]
    NotAnObject { property: String },
    #[error("value is not valid {strategy} (decodingStrategy {strategy})")]
    Decode { strategy: &'static str },
    #[error("{field} {pattern:?} is not a valid regular expression: {reason}")]
    BadRegexp { field: &'static str, pattern: String, reason: String },
    #[error(
        "rewrite turned key {from:?} into {to:?}, which is not a valid Secret key (letters, digits, '-', '_', '.')"
    )]
    InvalidKey { from: String, to: String },
    #[error(
        "rewrite[{index}].merge made key {key:?}, which is not a valid Secret key (letters, digits, '-', '_', '.')"
    )]
    InvalidMergedKey { index: usize, key: String },
    #[error("rewrite[{index}]: transform of key {key:?} failed: {source}")]
    Transform { index: usize, key: String, source: Box<gotmpl::TemplateError> },
    #[error("rewrite[{index}]: merge failed: {reason}")]
    Merge { index: usize, reason: String },
}

/// Bytes for one Secret key: strings as they are, anything else as JSON.
fn value_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    }
}
