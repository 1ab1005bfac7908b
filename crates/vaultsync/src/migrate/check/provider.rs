//! A store's (or a generator's) Vault provider: providers vaultsync does
//! not have, and what vaultsync refuses or does differently at login:
//! the audiences of ServiceAccount tokens, plain http, JWTs kept in
//! Secrets. The audience rules are the operator's (crates/controller,
//! `vault_clients/audiences.rs`), with its wording.

use serde_json::Value;

use super::finding::Finding;

/// Audience vaultsync asks for when a store names none: the default of
/// `vaultsync run --default-audience`.
const DEFAULT_AUDIENCE: &str = "vault";

/// The names under which clusters know their API server, which the
/// operator refuses as audiences whatever the cluster says (its
/// `WELL_KNOWN`); a cluster's own issuer is refused too, but only the
/// running operator can learn it.
const API_AUDIENCES: [&str; 4] = [
    "https://kubernetes.default.svc",
    "https://kubernetes.default.svc.cluster.local",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

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
    let names: Vec<&str> = list.as_array().into_iter().flatten().map(|a| a.as_str().unwrap_or_default()).collect();
    if names.is_empty() || names.iter().any(|a| a.trim().is_empty()) {
        return Some(Finding::fail(
            format!(
                "{at}.audiences: an empty audience list (or an empty audience) asks for a token the Kubernetes API \
                 server accepts; name the audience Vault's role expects, e.g. `vault`"
            ),
            fix,
        ));
    }
    names.iter().find(|a| API_AUDIENCES.contains(a)).map(|audience| {
        Finding::fail(
            format!(
                "{at}.audiences: audience {audience:?} is accepted by the Kubernetes API server itself, so the token \
                 would let whoever runs the Vault server act as that ServiceAccount in the cluster; vaultsync requests \
                 tokens for Vault only: use an audience that only Vault accepts, e.g. `vault`"
            ),
            fix,
        )
    })
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
