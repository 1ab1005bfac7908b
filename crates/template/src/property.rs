use std::collections::BTreeMap;

use serde_json::Value;

use crate::{Error, RemoteSecret, value_bytes};

/// The bytes of `property` of `secret`: a literal key first, else a dotted
/// path into nested JSON. Without a property, the whole secret as JSON.
pub fn select_property(secret: &RemoteSecret, property: Option<&str>) -> Result<Vec<u8>, Error> {
    match property {
        None => Ok(Value::Object(secret.clone()).to_string().into_bytes()),
        Some(property) => lookup(secret, property).map(value_bytes),
    }
}

/// Every top-level key of `secret` (or of the object at `property`) as a
/// Secret key; nested values are JSON-encoded.
pub fn extract(secret: &RemoteSecret, property: Option<&str>) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let object = match property {
        None => secret,
        Some(property) => match lookup(secret, property)? {
            Value::Object(object) => object,
            _ => {
                return Err(Error::NotAnObject { property: property.to_owned() });
            }
        },
    };
    Ok(object.iter().map(|(key, value)| (key.clone(), value_bytes(value))).collect())
}

fn lookup<'a>(secret: &'a RemoteSecret, property: &str) -> Result<&'a Value, Error> {
    // A key that literally contains dots wins over walking the path: Vault
    // users store keys like "tls.crt".
    if let Some(value) = secret.get(property) {
        return Ok(value);
    }
    let mut segments = property.split('.');
    let first = segments.next().unwrap_or_default();
    let mut current = secret.get(first);
    for segment in segments {
        current = match current {
            Some(Value::Object(object)) => object.get(segment),
            Some(Value::Array(items)) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
    }
    current.ok_or_else(|| Error::PropertyNotFound {
        property: property.to_owned(),
        keys: secret.keys().cloned().collect::<Vec<_>>().join(", "),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn secret(value: Value) -> RemoteSecret {
        value.as_object().cloned().expect("object")
    }

    #[test]
    fn literal_key_wins_over_path() {
        let s = secret(json!({"a.b": "literal", "a": {"b": "nested"}}));
        assert_eq!(select_property(&s, Some("a.b")).unwrap(), b"literal");
    }

    #[test]
    fn walks_nested_json_and_arrays() {
        let s = secret(json!({"db": {"hosts": ["h0", {"port": 5432}]}}));
        assert_eq!(select_property(&s, Some("db.hosts.0")).unwrap(), b"h0");
        assert_eq!(select_property(&s, Some("db.hosts.1.port")).unwrap(), b"5432");
        assert_eq!(select_property(&s, Some("db.hosts.1")).unwrap(), br#"{"port":5432}"#);
    }

    #[test]
    fn missing_property_names_keys_not_values() {
        let s = secret(json!({"user": "alice", "password": "hunter2"}));
        let err = select_property(&s, Some("pass")).unwrap_err().to_string();
        assert!(err.contains("\"pass\"") && err.contains("password"), "{err}");
        assert!(!err.contains("hunter2") && !err.contains("alice"), "{err}");
    }

    #[test]
    fn whole_secret_without_property() {
        let s = secret(json!({"k": "v"}));
        assert_eq!(select_property(&s, None).unwrap(), br#"{"k":"v"}"#);
    }

    #[test]
    fn extract_encodes_nested_values_as_json() {
        let s = secret(json!({"user": "u", "cfg": {"x": 1}, "n": 3}));
        let out = extract(&s, None).unwrap();
        assert_eq!(out["user"], b"u");
        assert_eq!(out["cfg"], br#"{"x":1}"#);
        assert_eq!(out["n"], b"3");
        let sub = extract(&s, Some("cfg")).unwrap();
        assert_eq!(sub["x"], b"1");
        assert!(matches!(extract(&s, Some("user")), Err(Error::NotAnObject { .. })));
    }
}
