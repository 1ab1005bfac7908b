//! How a refused Secret write is told: the API server's message may quote
//! the data, so only its code, reason, the fields it names and a fixed
//! explanation per cause reach status, Events and logs.

use crate::error::Error;

/// The fields a server-side apply conflict names, from its causes (the
/// message is not quoted: see [`write_failure`]).
pub(super) fn conflicting_fields(status: &kube::core::Status) -> Vec<String> {
    causes(status).filter_map(|cause| field_path(&cause.field)).collect()
}

fn causes(status: &kube::core::Status) -> impl Iterator<Item = &kube::core::response::StatusCause> {
    status.details.iter().flat_map(|details| details.causes.iter()).take(MAX_CAUSES)
}

/// Causes told per refused write; the rest are counted.
const MAX_CAUSES: usize = 8;

/// A refused write of Secret `name`, told without the API server's message.
/// That message may quote the data (Go's JSON parser says "invalid character
/// 'd' looking for beginning of object key string" about a
/// `.dockerconfigjson`), and status, Events and logs are readable by people
/// who may not read the Secret: one ExternalSecret per character would
/// rebuild a value. What stays: the HTTP code and reason, the fields the
/// causes name (keys, never values), and a fixed explanation per cause.
pub(crate) fn write_failure(name: &str, secret_type: Option<&str>, error: &kube::Error) -> Error {
    let detail = match error {
        kube::Error::Api(status) => refusal(status, secret_type),
        other => crate::error::kube_reason(other),
    };
    Error::SecretWrite { name: name.to_owned(), detail }
}

fn refusal(status: &kube::core::Status, secret_type: Option<&str>) -> String {
    let reason = token(&status.reason);
    let mut text = format!("HTTP {}", status.code);
    if !reason.is_empty() {
        text = format!("{text} {reason}");
    }
    let explained: Vec<String> = causes(status)
        .map(|cause| {
            let field = field_path(&cause.field);
            let why = explain_cause(secret_type, field.as_deref(), &token(&cause.reason));
            match field {
                Some(field) => format!("{field}: {why}"),
                None => why,
            }
        })
        .collect();
    let total = status.details.as_ref().map_or(0, |d| d.causes.len());
    if explained.is_empty() {
        return format!("{text}: {}", explain_status(status));
    }
    let more = if total > explained.len() { format!(" (and {} more)", total - explained.len()) } else { String::new() };
    format!("{text}: {}{more}", explained.join("; "))
}

/// A machine-readable word of the API server's (a reason such as `Invalid`
/// or `FieldValueInvalid`), kept only if it is one.
fn token(text: &str) -> String {
    if text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric()) { text.to_owned() } else { String::new() }
}

/// A field path such as `data[.dockerconfigjson]` or `metadata.labels`: the
/// characters of keys and paths only, so nothing else can ride along.
fn field_path(field: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.[]/".contains(c);
    (!field.is_empty() && field.len() <= 256 && field.chars().all(allowed)).then(|| field.to_owned())
}

/// A fixed explanation for one cause of a refused write.
fn explain_cause(secret_type: Option<&str>, field: Option<&str>, reason: &str) -> String {
    let key = field.and_then(|f| f.strip_prefix("data[")).and_then(|f| f.strip_suffix(']'));
    let of_type = secret_type.map(|t| format!(" for a Secret of type {t}")).unwrap_or_default();
    match (secret_type, key, reason) {
        (Some("kubernetes.io/dockerconfigjson"), Some(".dockerconfigjson"), "FieldValueInvalid") => {
            ".dockerconfigjson must be valid JSON of a docker config ({\"auths\": {...}})".into()
        }
        (Some("kubernetes.io/dockercfg"), Some(".dockercfg"), "FieldValueInvalid") => {
            ".dockercfg must be valid JSON of a legacy docker config".into()
        }
        (_, _, "FieldValueRequired") => format!("required{of_type}"),
        (_, _, "FieldValueTooLong" | "FieldValueTooMany") => {
            "too large (a Secret's data may hold at most 1 MiB; a label value 63 characters; annotations 256 KiB)"
                .into()
        }
        (_, _, "FieldValueForbidden") => "may not be set or changed here (for example: the Secret is immutable)".into(),
        (_, _, "FieldValueDuplicate") => "duplicated".into(),
        _ if field.is_some_and(|f| f.starts_with("metadata.labels")) => {
            "a label key must be a qualified name and its value at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
                .into()
        }
        _ if field.is_some_and(|f| f.starts_with("metadata.annotations")) => {
            "an annotation key must be a qualified name, and all annotations together at most 256 KiB".into()
        }
        _ if key.is_some() => format!("the API server does not accept this key's value{of_type}"),
        _ => format!("the API server does not accept this field's value{of_type}"),
    }
}

/// A fixed explanation for a refused write that names no field.
fn explain_status(status: &kube::core::Status) -> &'static str {
    // Read only to choose a text; nothing of it is shown.
    let message = status.message.as_str();
    match status.code {
        _ if message.starts_with("admission webhook") => {
            "an admission webhook denied it (its message is not shown: it may quote the data)"
        }
        _ if message.contains("ValidatingAdmissionPolicy") => {
            "a ValidatingAdmissionPolicy denied it (its message is not shown: it may quote the data)"
        }
        _ if message.contains("too large") => "the Secret is too large (at most 1 MiB)",
        403 => "vaultsync may not write this Secret (RBAC of the operator's ServiceAccount, or an admission policy)",
        404 => "the namespace is gone",
        409 => "the Secret changed during the write; the next sync writes it again",
        413 => "the Secret is too large (at most 1 MiB)",
        422 => "the API server does not accept the Secret's content",
        429 | 500..=599 => "the API server could not write it now; the next sync tries again",
        _ => "the API server refused the write",
    }
}

/// The field managers a server-side apply conflict names: the API server
/// says `conflict with "MANAGER"` for each contested field.
pub(super) fn conflicting_managers(message: &str) -> Vec<&str> {
    message.split("conflict with \"").skip(1).filter_map(|rest| rest.split('"').next()).collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Secret;

    use super::*;

    fn status(code: u16, reason: &str, message: &str, causes: &[(&str, &str, &str)]) -> kube::Error {
        let causes = causes
            .iter()
            .map(|(reason, message, field)| kube::core::response::StatusCause {
                reason: (*reason).into(),
                message: (*message).into(),
                field: (*field).into(),
            })
            .collect();
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            reason: reason.into(),
            message: message.into(),
            details: Some(kube::core::response::StatusDetails {
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                causes,
                retry_after_seconds: 0,
            }),
            ..Default::default()
        }))
    }

    #[test]
    fn a_refused_dockerconfigjson_is_told_without_the_character_the_api_server_quotes() {
        let quoted = r#"Invalid value: "<secret contents redacted>": invalid character 'd' looking for beginning of object key string"#;
        let error = status(
            422,
            "Invalid",
            &format!(r#"Secret "pull" is invalid: data[.dockerconfigjson]: {quoted}"#),
            &[("FieldValueInvalid", quoted, "data[.dockerconfigjson]")],
        );
        let text = write_failure("pull", Some("kubernetes.io/dockerconfigjson"), &error).to_string();
        assert!(!text.contains("'d'") && !text.contains("invalid character") && !text.contains("redacted"), "{text}");
        assert!(text.contains("HTTP 422 Invalid"), "{text}");
        assert!(
            text.contains("data[.dockerconfigjson]: .dockerconfigjson must be valid JSON of a docker config"),
            "{text}"
        );
    }

    #[test]
    fn a_refused_write_keeps_the_kind_of_failure_and_the_fields_only() {
        let label =
            r#"Invalid value: "hunter2!": a valid label must be an empty string or consist of alphanumeric characters"#;
        let error = status(
            422,
            "Invalid",
            label,
            &[
                ("FieldValueInvalid", label, "metadata.labels"),
                ("FieldValueRequired", "Required value", "data[tls.key]"),
                ("FieldValueInvalid", "hunter2", "data[\"hunter2\"]"),
                ("Hunter 2!", "hunter2", ""),
            ],
        );
        let text = write_failure("web", Some("kubernetes.io/tls"), &error).to_string();
        assert!(!text.contains("hunter2") && !text.contains("Hunter"), "{text}");
        assert!(text.contains("metadata.labels: a label key"), "{text}");
        assert!(text.contains("data[tls.key]: required for a Secret of type kubernetes.io/tls"), "{text}");

        // No causes: the code and a fixed text, whatever the message says.
        for (code, message, want) in [
            (
                403,
                r#"admission webhook "policy.example" denied the request: value "hunter2" is weak"#,
                "admission webhook",
            ),
            (403, r#"secrets "web" is forbidden: hunter2"#, "may not write this Secret"),
            (409, "Operation cannot be fulfilled: hunter2", "changed during the write"),
            (500, "etcdserver: request is too large hunter2", "too large"),
        ] {
            let text = write_failure("web", None, &status(code, "", message, &[])).to_string();
            assert!(
                text.contains(&format!("HTTP {code}")) && text.contains(want) && !text.contains("hunter2"),
                "{text}"
            );
        }
    }

    #[test]
    fn an_unreadable_answer_is_told_without_its_text() {
        let serde = serde_json::from_str::<Secret>(r#"{"data": {"k": "hunter2!"}}"#).unwrap_err();
        let text = write_failure("web", None, &kube::Error::SerdeError(serde)).to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("cannot read the API server's answer"), "{text}");
    }
}
