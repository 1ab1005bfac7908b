//! Every annotation of the Vault agent injector (hashicorp/vault-k8s,
//! `agent-inject/agent/annotations.go`), and what vaultsync does with it:
//! applied with the injector's meaning, admitted with a warning naming it
//! (the Pod runs correctly without it), or refused naming it (it would
//! not). No `vault.hashicorp.com/` annotation goes unanswered.

use std::collections::BTreeMap;

use crate::Refused;

const PREFIX: &str = "vault.hashicorp.com/";

/// What vaultsync does with one annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Applied with the injector's meaning (see `annotations::read`).
    Applied,
    /// Applied when it holds the value given (the injector's default, or
    /// what vaultsync does anyway); any other value: `Otherwise`.
    AppliedWhen(&'static [&'static str], Otherwise),
    /// Not applied; the Pod runs correctly without it: a warning.
    Warned(&'static str),
    /// Not applied, and the Pod would not run as written: refused.
    Refused(&'static str),
}

/// What another value of an [`Support::AppliedWhen`] annotation gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Otherwise {
    Warned(&'static str),
    Refused(&'static str),
}

/// One annotation; `per_secret`: it is written `<name>-<secret name>`
/// (and, for some, also bare).
#[derive(Clone, Copy, Debug)]
pub struct Known {
    pub name: &'static str,
    pub per_secret: bool,
    pub support: Support,
}

const fn known(name: &'static str, per_secret: bool, support: Support) -> Known {
    Known { name, per_secret, support }
}

use Support::{Applied, AppliedWhen, Refused as No, Warned};

const TUNING: &str =
    "a tuning of HashiCorp's agent that vaultsync's agent has no counterpart for; it runs as well without";
const CACHE: &str = "vaultsync's agent runs no cache or listener: the app reads files (or its environment), not a local Vault proxy; remove it, or keep this Pod on the Vault agent injector";

/// The injector's annotations (vault-k8s, annotations.go), in its order.
pub const ANNOTATIONS: &[Known] = &[
    known("agent-inject-status", false, Applied),
    known("agent-inject", false, Applied),
    known("agent-inject-secret", true, Applied),
    known("agent-inject-file", true, Applied),
    known("agent-inject-perms", true, Applied),
    known("agent-inject-template", true, Applied),
    known("agent-inject-containers", false, Applied),
    known(
        "agent-inject-default-template",
        false,
        AppliedWhen(&["map", "json"], Otherwise::Refused("the injector's default templates are `map` and `json`")),
    ),
    known(
        "agent-inject-template-file",
        true,
        No(
            "vaultsync's agent has no template files of its own image or volumes; put the template in agent-inject-template-<name>",
        ),
    ),
    known("agent-template-left-delim", true, Applied),
    known("agent-template-right-delim", true, Applied),
    known(
        "agent-inject-token",
        false,
        AppliedWhen(
            &["false"],
            Otherwise::Refused(
                "vaultsync's agent never writes its Vault token where the app can read it; let the app read its secrets from the rendered files",
            ),
        ),
    ),
    known("agent-inject-command", true, Applied),
    known(
        "agent-image",
        false,
        Warned(
            "the injected agent is vaultsync's own image (the webhook's --agent-image, or vaultsync.dev/agent-image for one built on it)",
        ),
    ),
    known("agent-request-namespace", false, Warned(TUNING)),
    known("agent-init-first", false, AppliedWhen(&["true", "false"], Otherwise::Warned("not a boolean"))),
    known(
        "agent-pre-populate",
        false,
        AppliedWhen(
            &["true"],
            Otherwise::Warned(
                "vaultsync always renders the files before the app starts (an init container); the sidecar keeps them current after",
            ),
        ),
    ),
    known("agent-pre-populate-only", false, Applied),
    known(
        "agent-configmap",
        false,
        No(
            "a whole Vault agent configuration cannot be run by vaultsync's agent; express it with annotations, or keep this Pod on the Vault agent injector",
        ),
    ),
    known(
        "agent-extra-secret",
        false,
        No(
            "vaultsync's agent reads no extra Secret volume (CA certificates come from the webhook's --vault-ca-file); remove it, or keep this Pod on the Vault agent injector",
        ),
    ),
    known("agent-limits-cpu", false, Applied),
    known("agent-limits-mem", false, Applied),
    known("agent-limits-ephemeral", false, Applied),
    known("agent-requests-cpu", false, Applied),
    known("agent-requests-mem", false, Applied),
    known("agent-requests-ephemeral", false, Applied),
    known(
        "agent-revoke-on-shutdown",
        false,
        Warned(
            "vaultsync's agent leaves its token and leases to expire at their TTL (its sidecar keeps leased credentials for the app until then)",
        ),
    ),
    known("agent-revoke-grace", false, Warned(TUNING)),
    known("namespace", false, Applied),
    known("agent-run-as-user", false, Applied),
    known("agent-run-as-group", false, Applied),
    known("agent-run-as-same-user", false, Applied),
    known("agent-share-process-namespace", false, Applied),
    known("agent-set-security-context", false, Applied),
    known(
        "agent-service-account-token-volume-name",
        false,
        Warned("vaultsync's agent logs in with a token projected for it (audience of the webhook's --audience)"),
    ),
    known("service", false, Applied),
    known(
        "proxy-address",
        false,
        No(
            "vaultsync's agent reaches Vault directly, not through an HTTP proxy; remove it, or keep this Pod on the Vault agent injector",
        ),
    ),
    known(
        "tls-skip-verify",
        false,
        AppliedWhen(
            &["false"],
            Otherwise::Refused(
                "vaultsync's agent always verifies Vault's certificate; give the webhook the CA (--vault-ca-file) instead",
            ),
        ),
    ),
    known(
        "tls-secret",
        false,
        Warned("the agent trusts the CA the webhook is given (--vault-ca-file), not a Secret of the Pod's"),
    ),
    known("tls-server-name", false, Warned("the agent checks Vault's certificate against the host of its address")),
    known(
        "ca-cert",
        false,
        Warned("the agent trusts the CA the webhook is given (--vault-ca-file), not a file of the Pod's"),
    ),
    known(
        "ca-key",
        false,
        Warned("the agent trusts the CA the webhook is given (--vault-ca-file), not a file of the Pod's"),
    ),
    known(
        "client-cert",
        false,
        No(
            "client certificates (mTLS) to Vault are not supported by vaultsync's agent; remove it, or keep this Pod on the Vault agent injector",
        ),
    ),
    known(
        "client-key",
        false,
        No(
            "client certificates (mTLS) to Vault are not supported by vaultsync's agent; remove it, or keep this Pod on the Vault agent injector",
        ),
    ),
    known("client-max-retries", false, Warned(TUNING)),
    known("client-timeout", false, Warned(TUNING)),
    known("go-max-procs", false, Warned(TUNING)),
    known("log-level", false, Applied),
    known("log-format", false, Applied),
    known("role", false, Applied),
    known(
        "auth-type",
        false,
        AppliedWhen(
            &["kubernetes"],
            Otherwise::Refused("vaultsync's agent logs in with Kubernetes auth only (the Pod's ServiceAccount token)"),
        ),
    ),
    known("auth-path", false, Applied),
    known(
        "auth-config",
        true,
        Warned(
            "vaultsync's agent logs in with Kubernetes auth as the role annotation says, with the Pod's own projected token",
        ),
    ),
    known("secret-volume-path", true, Applied),
    known("preserve-secret-case", true, Applied),
    known("agent-cache-enable", false, AppliedWhen(&["false"], Otherwise::Refused(CACHE))),
    known("agent-cache-use-auto-auth-token", false, AppliedWhen(&["false"], Otherwise::Refused(CACHE))),
    known("agent-cache-listener-port", false, No(CACHE)),
    known("agent-cache-exit-on-err", false, Warned(TUNING)),
    known(
        "agent-copy-volume-mounts",
        false,
        No(
            "vaultsync's agent mounts none of the app's volumes; remove it, or keep this Pod on the Vault agent injector",
        ),
    ),
    known("template-config-exit-on-retry-failure", false, Warned(TUNING)),
    known("template-static-secret-render-interval", false, Applied),
    known("template-max-connections-per-host", false, Warned(TUNING)),
    known(
        "template-lease-renewal-threshold",
        false,
        Warned("vaultsync's sidecar renews a lease at about two thirds of its TTL"),
    ),
    known("agent-enable-quit", false, Warned(TUNING)),
    known("auth-min-backoff", false, Warned(TUNING)),
    known("auth-max-backoff", false, Warned(TUNING)),
    known("agent-disable-idle-connections", false, Warned(TUNING)),
    known("agent-disable-keep-alives", false, Warned(TUNING)),
    known(
        "agent-json-patch",
        false,
        No(
            "JSON patches of the agent container are not applied; set what you need with annotations, or keep this Pod on the Vault agent injector",
        ),
    ),
    known(
        "agent-init-json-patch",
        false,
        No(
            "JSON patches of the agent container are not applied; set what you need with annotations, or keep this Pod on the Vault agent injector",
        ),
    ),
    known("agent-auto-auth-exit-on-err", false, Warned(TUNING)),
    known("agent-telemetry", true, Warned("vaultsync's agent has no telemetry stanza; it logs each render")),
    known("error-on-missing-key", true, Applied),
];

/// The table entry of annotation `key` (a `vault.hashicorp.com/` one).
pub fn lookup(key: &str) -> Option<&'static Known> {
    let name = key.strip_prefix(PREFIX)?;
    // The longest match: `agent-inject-template-file-x` is not a template.
    ANNOTATIONS
        .iter()
        .filter(|k| name == k.name || (k.per_secret && name.starts_with(&format!("{}-", k.name))))
        .max_by_key(|k| k.name.len())
}

/// Warnings for the annotations that are not applied; a refusal, naming
/// every annotation that cannot be, when one would leave the Pod unable
/// to run as written.
pub fn review(annotations: &BTreeMap<String, String>) -> Result<Vec<String>, Refused> {
    let mut warnings = Vec::new();
    let mut refusals = Vec::new();
    for (key, value) in annotations.iter().filter(|(k, _)| k.starts_with(PREFIX)) {
        let Some(known) = lookup(key) else {
            warnings.push(format!("{key} is not an annotation of the Vault agent injector; vaultsync ignores it"));
            continue;
        };
        let value = value.trim();
        match known.support {
            Support::Applied => {}
            Support::AppliedWhen(values, _) if values.contains(&value) => {}
            Support::AppliedWhen(_, Otherwise::Warned(why)) | Support::Warned(why) => {
                warnings.push(format!("{key} is not applied: {why}"));
            }
            Support::AppliedWhen(_, Otherwise::Refused(why)) | Support::Refused(why) => {
                refusals.push(format!("{key}: {why}"));
            }
        }
    }
    if refusals.is_empty() { Ok(warnings) } else { Err(Refused(refusals.join("; "))) }
}

/// The table as docs/injection.md shows it (a test keeps the two equal).
pub fn markdown_table() -> String {
    let mut out = String::from("| Annotation | vaultsync |\n|---|---|\n");
    for known in ANNOTATIONS {
        let name =
            if known.per_secret { format!("{PREFIX}{}-<name>", known.name) } else { format!("{PREFIX}{}", known.name) };
        let status = match known.support {
            Support::Applied => "applied".to_owned(),
            Support::AppliedWhen(values, otherwise) => {
                let values = values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(" or ");
                match otherwise {
                    Otherwise::Warned(why) => format!("applied as {values}; another value: warning ({why})"),
                    Otherwise::Refused(why) => format!("applied as {values}; another value: refused ({why})"),
                }
            }
            Support::Warned(why) => format!("warning: {why}"),
            Support::Refused(why) => format!("refused: {why}"),
        };
        out.push_str(&format!("| `{name}` | {} |\n", status.replace('|', "\\|")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_show_this_table() {
        let docs = include_str!("../../../docs/injection.md");
        let table = markdown_table();
        assert!(
            docs.contains(&table),
            "docs/injection.md must hold the annotation table as markdown_table() writes it:\n{table}"
        );
    }

    #[test]
    fn the_longest_name_wins_and_secret_names_follow_a_dash() {
        assert_eq!(
            lookup("vault.hashicorp.com/agent-inject-template-db").map(|k| k.name),
            Some("agent-inject-template")
        );
        assert_eq!(
            lookup("vault.hashicorp.com/agent-inject-template-file-db").map(|k| k.name),
            Some("agent-inject-template-file")
        );
        assert_eq!(lookup("vault.hashicorp.com/agent-inject").map(|k| k.name), Some("agent-inject"));
        assert_eq!(lookup("vault.hashicorp.com/role-x").map(|k| k.name), None);
        assert_eq!(
            lookup("vault.hashicorp.com/agent-telemetry-prometheus_retention_time").map(|k| k.name),
            Some("agent-telemetry")
        );
    }

    #[test]
    fn defaults_pass_other_values_are_answered_by_name() {
        let annotations = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned())).collect()
        };
        assert_eq!(review(&annotations(&[("auth-type", "kubernetes"), ("tls-skip-verify", "false")])), Ok(vec![]));
        let warned = review(&annotations(&[("go-max-procs", "2"), ("typo-annotation", "x")])).unwrap();
        assert!(warned[0].starts_with("vault.hashicorp.com/go-max-procs is not applied"), "{warned:?}");
        assert!(warned[1].contains("typo-annotation is not an annotation"), "{warned:?}");
        let refused = review(&annotations(&[("auth-type", "aws"), ("agent-configmap", "cm")])).unwrap_err().0;
        assert!(
            refused.contains("vault.hashicorp.com/agent-configmap:")
                && refused.contains("vault.hashicorp.com/auth-type:"),
            "{refused}"
        );
    }
}
