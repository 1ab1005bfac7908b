//! Templates parsed with vaultsync's own engine (crates/template), so a
//! function it lacks or syntax it does not take (`define`, `block`) is
//! found before a sync fails. Only parse errors count: an execution with
//! no data says nothing about one with the real values.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use vaultsync_template::{TemplateError, render_template_with_budget};

use super::finding::Finding;

/// Every template of the `target.template` at `at` (`spec.target.template`
/// or the one inside a ClusterExternalSecret): `data` and `metadata`
/// values, `templateFrom[].literal`. Templates kept in ConfigMaps and
/// Secrets are read at sync time and not seen here.
pub fn check(template: &Value, at: &str) -> Vec<Finding> {
    let mut found = Vec::new();
    // The error names the template by its key; the path says where it is.
    let mut one = |path: String, name: &str, text: &str| {
        if let Some(error) = parse_error(name, text) {
            found.push(Finding::fail(
                format!("{path}: {error}"),
                "use the functions listed in docs/templates.md (define, template and block are not supported)",
            ));
        }
    };
    for (key, text) in template["data"].as_object().into_iter().flatten() {
        one(format!("{at}.data.{key}"), key, text.as_str().unwrap_or_default());
    }
    for part in ["labels", "annotations"] {
        for (key, text) in template["metadata"][part].as_object().into_iter().flatten() {
            one(format!("{at}.metadata.{part}.{key}"), key, text.as_str().unwrap_or_default());
        }
    }
    for (i, from) in template["templateFrom"].as_array().into_iter().flatten().enumerate() {
        if let Some(literal) = from["literal"].as_str() {
            one(format!("{at}.templateFrom[{i}].literal"), "literal", literal);
        }
    }
    found
}

/// The parse error of `text`, if any. The template is run on no data with a
/// short budget: parsing comes first, and its error is the only one kept.
fn parse_error(name: &str, text: &str) -> Option<TemplateError> {
    let error = render_template_with_budget(name, text, &BTreeMap::new(), Duration::from_millis(50)).err()?;
    matches!(error, TemplateError::Parse { .. }).then_some(error)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_functions_and_define_are_found_with_their_place() {
        let template = json!({
            "data": {"ok": "{{ .password | b64enc }}", "bad": "{{ .x | notAFunction }}"},
            "metadata": {"labels": {"l": "{{ define \"x\" }}y{{ end }}"}},
            "templateFrom": [{"literal": "{{ .a | upper }}: b"}],
        });
        let found: Vec<_> = check(&template, "spec.target.template").into_iter().map(|f| f.problem).collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("spec.target.template.data.bad: template \"bad\": parse error"), "{}", found[0]);
        assert!(found[0].contains("notAFunction"), "{}", found[0]);
        assert!(found[1].starts_with("spec.target.template.metadata.labels.l:"), "{}", found[1]);
    }

    #[test]
    fn a_template_failing_only_on_missing_data_is_fine() {
        assert!(check(&json!({"data": {"k": "{{ .cert | b64dec | upper }}"}}), "t").is_empty());
    }
}
