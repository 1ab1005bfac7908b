//! A store's (or a generator's) Vault provider: providers vaultsync does
//! not have, and what vaultsync refuses or does differently at login:
//! the audiences of ServiceAccount tokens, plain http, JWTs kept in
//! Secrets. The audience rule is the operator's own
//! ([`vaultsync_controller::refused_audience`]), so the wording is too.

use serde_json::Value;
use vaultsync_controller::{WELL_KNOWN_API_AUDIENCES, refused_audience};

use super::finding::Finding;

/// Audience vaultsync asks for when a store names none: the default of
/// `vaultsync run --default-audience`.
const DEFAULT_AUDIENCE: &str = "vault";

/// Providers of a store's `spec.provider` other than Vault and OpenBao.
pub fn other_providers(provider: &Value) -> Vec<String> {
    let names = provider.as_object().into_iter().flat_map(|p| p.keys());
    names.filter(|k| *k != "vault" && *k != "openBao").cloned().collect()
}

/// The finding for a store whose provider vaultsync lacks.
pub fn unsupported_provider(names: &[String]) -> Finding {
    Finding::fail(
        format!("provider {} is not supported (vaultsync serves Vault and OpenBao only)", names.join(", ")),
        "keep this store and its ExternalSecrets with ESO (ESO serves a store whose spec.controller is unset or names its class)",
    )
}

/// What a store's own fields (outside the provider) mean under vaultsync:
/// its controller class, and its `refreshInterval` as the operator reads it.
pub fn store(spec: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    let class = spec["controller"].as_str();
    if !vaultsync_api::serves_store_class(class, vaultsync_api::DEFAULT_CONTROLLER_CLASS) {
        let class = class.unwrap_or_default();
        out.push(Finding::warn(
            format!(
                "spec.controller {class:?}: vaultsync serves a store whose class is unset or its --controller-class \
                 (default {:?}), and leaves this one and its ExternalSecrets alone",
                vaultsync_api::DEFAULT_CONTROLLER_CLASS
            ),
            format!("remove spec.controller, or run vaultsync with --controller-class {class}"),
        ));
    }
    if let Some(interval) = spec.get("refreshInterval")
        && let Ok(interval) = serde_json::from_value(interval.clone())
        && let Err(reason) = vaultsync_api::store_refresh_interval(Some(&interval))
    {
        out.push(Finding::fail(format!("spec.refreshInterval: {reason}"), "give seconds or a Go duration (5m)"));
    }
    out
}

/// Checks of a Vault provider found at `at` (e.g. `spec.provider.vault`).
pub fn vault(provider: &Value, at: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let server = provider["server"].as_str().unwrap_or_default();
    if server.starts_with("http://") && provider["allowInsecureHttp"] != Value::Bool(true) {
        out.push(Finding::warn(
            format!("{at}.server is plain http: tokens and values would cross the network unencrypted (vaultsync works, with the condition InsecureTransport and a Warning Event)"),
            "serve Vault over https, or set allowInsecureHttp: true (vaultsync's group only)",
        ));
    }
    let auth = &provider["auth"];
    if let Some(k) = auth.get("kubernetes") {
        let mount = k["mountPath"].as_str().unwrap_or("kubernetes");
        let role = k["role"].as_str().unwrap_or("<role>");
        let role_fix = format!("vault write auth/{mount}/role/{role} audience={DEFAULT_AUDIENCE}");
        if let Some(sa) = k.get("serviceAccountRef") {
            out.extend(audiences(sa.get("audiences"), &format!("{at}.auth.kubernetes.serviceAccountRef"), &role_fix));
        }
        if k.get("secretRef").is_some() {
            out.push(token_in_secret(&format!("{at}.auth.kubernetes.secretRef")));
        }
    }
    if let Some(j) = auth.get("jwt") {
        let path = j["path"].as_str().unwrap_or("jwt");
        let role = j["role"].as_str().unwrap_or("<role>");
        let role_fix = format!("vault write auth/{path}/role/{role} bound_audiences={DEFAULT_AUDIENCE}");
        if let Some(t) = j.get("kubernetesServiceAccountToken") {
            let list = t.get("audiences").or_else(|| t["serviceAccountRef"].get("audiences"));
            out.extend(audiences(list, &format!("{at}.auth.jwt.kubernetesServiceAccountToken"), &role_fix));
        }
        if j.get("secretRef").is_some() {
            out.push(token_in_secret(&format!("{at}.auth.jwt.secretRef")));
        }
    }
    out
}

/// What vaultsync does with the audiences a store asks for.
fn audiences(list: Option<&Value>, at: &str, role_fix: &str) -> Option<Finding> {
    let fix = format!("set {at}.audiences: [{DEFAULT_AUDIENCE}] and let the Vault role accept it: {role_fix}");
    let Some(list) = list.filter(|l| !l.is_null()) else {
        return Some(Finding::warn(
            format!(
                "{at} names no audiences: vaultsync requests the token for audience \"{DEFAULT_AUDIENCE}\" (ESO for the API server's own)"
            ),
            format!("let the Vault role accept it: {role_fix}"),
        ));
    };
    let names: Vec<String> =
        list.as_array().into_iter().flatten().map(|a| a.as_str().unwrap_or_default().to_owned()).collect();
    // The names every cluster's API server goes by; a cluster's own issuer
    // is refused too, but only the running operator can learn it.
    let reason = refused_audience(&names, |a| WELL_KNOWN_API_AUDIENCES.contains(&a))?;
    Some(Finding::fail(format!("{at}.audiences: {reason}"), fix))
}

fn token_in_secret(at: &str) -> Finding {
    Finding::warn(
        format!(
            "{at}: a JWT kept in a Secret is refused when the Kubernetes API server accepts it (a legacy \
             kubernetes.io/service-account-token Secret always is; every JWT is checked by a TokenReview)"
        ),
        "keep a token for Vault's audience in an ordinary Secret, or better use serviceAccountRef",
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::migrate::check::finding::Severity;

    fn store(auth: Value) -> Value {
        json!({"server": "https://vault:8200", "auth": auth})
    }

    #[test]
    fn no_audiences_warns_with_the_role_change() {
        let found = vault(
            &store(json!({"kubernetes": {"mountPath": "k8s", "role": "app", "serviceAccountRef": {"name": "sa"}}})),
            "spec.provider.vault",
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Warn);
        assert_eq!(found[0].fix, "let the Vault role accept it: vault write auth/k8s/role/app audience=vault");
    }

    #[test]
    fn api_server_and_empty_audiences_fail() {
        for audiences in [json!(["https://kubernetes.default.svc.cluster.local"]), json!([]), json!([" "])] {
            let auth =
                json!({"kubernetes": {"role": "r", "serviceAccountRef": {"name": "sa", "audiences": audiences}}});
            let found = vault(&store(auth), "spec.provider.vault");
            assert_eq!(found[0].severity, Severity::Fail, "{audiences}");
            assert!(found[0].fix.ends_with("vault write auth/kubernetes/role/r audience=vault"));
        }
        let ok = json!({"kubernetes": {"role": "r", "serviceAccountRef": {"name": "sa", "audiences": ["vault"]}}});
        assert_eq!(vault(&store(ok), "p"), []);
    }

    #[test]
    fn jwt_token_audiences_override_the_service_account_ones() {
        let auth = json!({"jwt": {"role": "r", "kubernetesServiceAccountToken": {
            "serviceAccountRef": {"name": "sa", "audiences": ["vault"]}, "audiences": ["kubernetes.default.svc"]}}});
        let found = vault(&store(auth), "p");
        assert_eq!(found[0].severity, Severity::Fail);
        assert!(found[0].fix.ends_with("vault write auth/jwt/role/r bound_audiences=vault"), "{}", found[0].fix);
    }

    #[test]
    fn other_providers_are_named() {
        assert_eq!(other_providers(&json!({"aws": {}})), ["aws"]);
        assert!(other_providers(&json!({"openBao": {}})).is_empty());
    }
}
