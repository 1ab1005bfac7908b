//! The CRDs' CEL rules, evaluated here the way the API server would, so
//! `migrate check` refuses exactly what applying to vaultsync's group would
//! refuse, with the CRD's own message. The rules are read from the schema
//! vaultsync generates (`vaultsync_api::crds()`), never copied, so the two
//! cannot drift. Only the forms vaultsync's CRDs use are understood: a
//! regular expression on a string or on a map's keys, and "how many of
//! these fields are set"; any other rule is skipped (`None`).

use regex::Regex;
use serde_json::Value;

/// A rule in a form this module evaluates.
#[derive(Debug)]
pub enum Rule {
    /// `self.matches('re')`, or with `!` in front.
    Matches { regex: Regex, negated: bool },
    /// `self.all(k, k.matches('re'))` on a map.
    AllKeysMatch(Regex),
    /// A bound on how many of `fields` are set.
    Count { fields: Vec<String>, bound: Bound },
}

/// How many fields a count rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    None,
    AtMostOne,
    ExactlyOne,
    AtLeastOne,
}

/// The rule `text` as something to evaluate, when it has a known form.
pub fn compile(text: &str) -> Option<Rule> {
    let text = text.trim();
    if let Some(re) = text.strip_prefix("!self.matches(").and_then(|r| r.strip_suffix(')')) {
        return Some(Rule::Matches { regex: Regex::new(&cel_string(re)?).ok()?, negated: true });
    }
    if let Some(re) = text.strip_prefix("self.matches(").and_then(|r| r.strip_suffix(')')) {
        return Some(Rule::Matches { regex: Regex::new(&cel_string(re)?).ok()?, negated: false });
    }
    if let Some(re) = text.strip_prefix("self.all(k, k.matches(").and_then(|r| r.strip_suffix("))")) {
        return Some(Rule::AllKeysMatch(Regex::new(&cel_string(re)?).ok()?));
    }
    count_rule(text)
}

/// The count forms: `has(a) != has(b)`, `!(has(a) && has(b))`,
/// `[has(a), ...].filter(x, x).size() == 1`, `(has(a) ? 1 : 0) + ... == 1`,
/// `has(a) || has(b)` and `!has(a)`.
fn count_rule(text: &str) -> Option<Rule> {
    let has = Regex::new(r"has\(self\.([A-Za-z0-9_]+)\)").expect("a valid regex");
    let fields: Vec<String> = has.captures_iter(text).map(|c| c[1].to_owned()).collect();
    // What is left once every `has(...)` is a placeholder tells the form,
    // so a rule with anything else in it is never misread.
    let shape = has.replace_all(text, "H");
    let bound = match shape.as_ref() {
        "H != H" => Bound::ExactlyOne,
        "!(H && H)" => Bound::AtMostOne,
        "H || H" => Bound::AtLeastOne,
        "!H" => Bound::None,
        s if s.starts_with('[') && s.ends_with("].filter(x, x).size() == 1") => Bound::ExactlyOne,
        s if s.ends_with(" == 1") && s.trim_end_matches(" == 1").split(" + ").all(|t| t == "(H ? 1 : 0)") => {
            Bound::ExactlyOne
        }
        _ => return None,
    };
    let expected = match shape.as_ref() {
        "!H" => 1,
        "H != H" | "!(H && H)" | "H || H" => 2,
        _ => fields.len(),
    };
    (fields.len() == expected && !fields.is_empty()).then_some(Rule::Count { fields, bound })
}

/// The content of a single-quoted CEL string literal (`'...'`), escapes
/// resolved.
fn cel_string(literal: &str) -> Option<String> {
    let inner = literal.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            other => out.push(other),
        }
    }
    Some(out)
}

impl Rule {
    /// Whether `value` passes; `None` when the rule does not apply to a
    /// value of this type (the schema's type check is another matter).
    pub fn holds(&self, value: &Value) -> Option<bool> {
        match self {
            Rule::Matches { regex, negated } => Some(regex.is_match(value.as_str()?) != *negated),
            Rule::AllKeysMatch(regex) => Some(value.as_object()?.keys().all(|k| regex.is_match(k))),
            Rule::Count { fields, bound } => {
                let object = value.as_object()?;
                let set = fields.iter().filter(|f| object.get(f.as_str()).is_some_and(|v| !v.is_null())).count();
                Some(match bound {
                    Bound::None => set == 0,
                    Bound::AtMostOne => set <= 1,
                    Bound::ExactlyOne => set == 1,
                    Bound::AtLeastOne => set >= 1,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The rules of the generated CRDs, by the JSON path of the field they
    /// sit on.
    fn crd_rule(kind: &str, message_start: &str) -> Rule {
        let crd = vaultsync_api::crds().into_iter().find(|c| c.spec.names.kind == kind).expect("a CRD of that kind");
        let text = serde_json::to_string(&crd).unwrap();
        let all: Vec<Value> = serde_json::from_str::<Value>(&text).map(|v| collect_rules(&v)).unwrap_or_default();
        let rule = all
            .iter()
            .find(|r| r["message"].as_str().is_some_and(|m| m.starts_with(message_start)))
            .unwrap_or_else(|| panic!("no rule whose message starts with {message_start:?}"));
        compile(rule["rule"].as_str().unwrap()).expect("a rule form this module knows")
    }

    fn collect_rules(v: &Value) -> Vec<Value> {
        let mut out = Vec::new();
        match v {
            Value::Object(o) => {
                if let Some(Value::Array(rules)) = o.get("x-kubernetes-validations") {
                    out.extend(rules.iter().cloned());
                }
                o.values().for_each(|c| out.extend(collect_rules(c)));
            }
            Value::Array(a) => a.iter().for_each(|c| out.extend(collect_rules(c))),
            _ => {}
        }
        out
    }

    #[test]
    fn the_key_rule_refuses_what_would_leave_the_mount() {
        let rule = crd_rule("ExternalSecret", "must be a path inside the store's mount");
        for good in ["app/db", "a.b/c-d_e", "team/x.y", "%41"] {
            assert_eq!(rule.holds(&json!(good)), Some(true), "{good}");
        }
        for bad in
            ["/abs", "a//b", "trailing/", "../up", "a/./b", "a/%2e%2E/b", "a%2fb", "q?x", "f#x", "b\\s", "c\u{1}"]
        {
            assert_eq!(rule.holds(&json!(bad)), Some(false), "{bad}");
        }
    }

    #[test]
    fn the_reserved_segment_rule_refuses_system_mounts_at_any_segment() {
        let rule = crd_rule("ExternalSecret", "must not have a segment named auth");
        for bad in ["sys/policy", "ns1/auth/token", "Identity/x", "cubbyhole"] {
            assert_eq!(rule.holds(&json!(bad)), Some(false), "{bad}");
        }
        for good in ["system/x", "authors/x", "kv/sysadmin"] {
            assert_eq!(rule.holds(&json!(good)), Some(true), "{good}");
        }
    }

    #[test]
    fn the_server_rules_and_count_rules_read_from_the_crd() {
        let server = crd_rule("SecretStore", "server must be scheme, host and port");
        assert_eq!(server.holds(&json!("https://vault.example.com:8200")), Some(true));
        assert_eq!(server.holds(&json!("https://vault.example.com/v1?x")), Some(false));
        let auth = crd_rule("SecretStore", "set exactly one auth method");
        assert_eq!(auth.holds(&json!({"kubernetes": {}})), Some(true));
        assert_eq!(auth.holds(&json!({"kubernetes": {}, "jwt": {}})), Some(false));
        assert_eq!(auth.holds(&json!({"userPass": {}})), Some(true));
        assert_eq!(auth.holds(&json!({"iam": {}})), Some(false));
        let ca = crd_rule("SecretStore", "set at most one of caBundle");
        assert_eq!(ca.holds(&json!({})), Some(true));
        assert_eq!(ca.holds(&json!({"caBundle": "x", "caProvider": {}})), Some(false));
        let keys = crd_rule("ExternalSecret", "template.data keys must be valid Secret keys");
        assert_eq!(keys.holds(&json!({"ok.key": "", "bad key": ""})), Some(false));
    }

    #[test]
    fn unknown_forms_are_skipped() {
        assert!(compile("self.resultType != 'Certificate' || self.method in ['POST', 'PUT']").is_none());
        assert!(compile("has(self.a) != has(self.b) && size(self.c) > 0").is_none());
    }
}
