//! `toYaml` and `fromYaml`, as ESO (and Helm) provide them, for templates
//! that build YAML config files. Through serde_json's value, so maps keep
//! their sorted keys as in Go's YAML output.

use super::json::from_json;
use super::value::{Bounded, Value};

/// Like Helm's `toYaml`: no trailing newline, so `| nindent 4` lines up.
pub fn encode(value: &Value) -> Result<String, String> {
    // Written through a bounded writer: a value that would make more than
    // 1 MiB of YAML stops there instead of being built whole.
    let mut out = Bounded::new(super::MAX_OUTPUT);
    if serde_saphyr::to_fmt_writer(&mut out, &to_json(value)?).is_err() {
        return Err(if out.overflowed { super::TOO_LARGE } else { "value cannot be written as YAML" }.into());
    }
    let mut yaml = out.out;
    yaml.truncate(yaml.trim_end_matches('\n').len());
    Ok(yaml)
}

/// A YAML document as a value. The reason never quotes the input, nor says
/// where in it the parser stopped: the input is often a secret, and the
/// place of a `:` or `#` in it is a piece of it.
pub fn decode(text: &str) -> Result<Value, String> {
    let parsed: serde_json::Value = serde_saphyr::from_str(text).map_err(|_| "input is not valid YAML".to_string())?;
    Ok(from_json(parsed))
}

fn to_json(value: &Value) -> Result<serde_json::Value, String> {
    Ok(match value {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .ok_or("NaN and infinities have no YAML form here")?,
        Value::Number(n) => n
            .parse::<serde_json::Number>()
            .map_or_else(|_| serde_json::Value::String(n.clone()), serde_json::Value::Number),
        Value::Str(_) | Value::Bytes(_) => serde_json::Value::String(value.as_text().unwrap_or_default().into_owned()),
        Value::List(items) => serde_json::Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Map(map) => serde_json::Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), to_json(v)?))).collect::<Result<_, String>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_nested_maps() {
        let doc = "db:\n  hosts:\n  - a\n  - b\n  port: 5432\nname: app\n";
        let value = decode(doc).unwrap();
        let Value::Map(map) = &value else { panic!("{value:?}") };
        assert_eq!(map["name"], Value::Str("app".into()));
        let again = encode(&value).unwrap();
        assert!(!again.ends_with('\n'));
        assert_eq!(decode(&again).unwrap(), value);
    }

    #[test]
    fn errors_do_not_quote_the_input() {
        let err = decode("key: [unclosed s3cret").unwrap_err();
        assert_eq!(err, "input is not valid YAML", "neither the text nor where in it");
    }
}
