//! The CRDs' validation rules, checked in code.
//!
//! For vaultsync's own API group the API server enforces the CEL rules
//! (`x-kubernetes-validations`) and schema constraints of the generated
//! CRDs. The same objects served under ESO's group (`external-secrets.io`)
//! come from CRDs that carry none of them, so the operator checks them here
//! and refuses a breaking object with the message the API server would have
//! given. Each function returns the first violation it finds.
//!
//! Regular expressions of CEL rules are taken from the rule constants the
//! CRDs are generated from, so a rule and its check cannot drift apart; the
//! messages of rules written inline in the types are repeated here, and
//! `tests/checks.rs` compares them (both ways) with the generated CRDs.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::external_secret::{OBJECT_NAME_MESSAGE, OBJECT_NAME_RULE};
use crate::store::{HEADERS_MESSAGE, SERVER_DOT_RULE, SERVER_MESSAGE, SERVER_RULE};
use crate::vault_path::{
    FOLDER_MESSAGE, FOLDER_RULE, GENERATOR_PATH_MESSAGE, GENERATOR_PATH_RULE, GENERATOR_SYSTEM_MOUNT_MESSAGE,
    GENERATOR_SYSTEM_MOUNT_RULE, KEY_MESSAGE, KEY_RULE, MAX_PATH, MOUNT_MESSAGE, MOUNT_RULE, RESERVED_SEGMENT_MESSAGE,
    RESERVED_SEGMENT_RULE,
};
use crate::{
    AppRoleAuth, ClusterExternalSecretSpec, DynamicMethod, DynamicResultType, ExternalSecretData,
    ExternalSecretDataFrom, ExternalSecretSpec, FindRef, GeneratorRef, JwtAuth, KubernetesAuth, LeasePolicy, Provider,
    RemoteRef, RetrySettings, RolloutRestartTarget, SecretKeySelector, SecretStoreSpec, SecretTemplate,
    ServiceAccountSelector, TemplateFrom, TemplateRef, VaultAuth, VaultDynamicSecretSpec, VaultProvider,
};

/// Why an object is refused: the field (as a user writes its JSON path) and
/// the message the API server gives for the same violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for Refusal {}

type Checked = Result<(), Refusal>;

fn refuse(path: &str, message: impl Into<String>) -> Checked {
    Err(Refusal { path: path.to_owned(), message: message.into() })
}

fn require(ok: bool, path: &str, message: &str) -> Checked {
    if ok { Ok(()) } else { refuse(path, message) }
}

fn exactly_one(present: &[bool]) -> bool {
    present.iter().filter(|p| **p).count() == 1
}

// Messages of the CEL rules written inline in the types (the others are
// constants shared with the types).
const STORE_REF_MESSAGE: &str = "secretStoreRef is required unless every entry names its own source (data[].sourceRef.storeRef, dataFrom[].sourceRef)";
const SOME_DATA_MESSAGE: &str = "set at least one entry in data or dataFrom, or target.template.data or templateFrom";
const DATA_FROM_ONE_MESSAGE: &str = "each dataFrom entry needs exactly one of extract, find or sourceRef.generatorRef";
const SOURCE_REF_ONE_MESSAGE: &str = "sourceRef needs exactly one of storeRef or generatorRef";
const REWRITE_ONE_MESSAGE: &str = "each rewrite entry needs exactly one of regexp, transform or merge";
const FIND_MESSAGE: &str = "find needs a path, a name regexp or tags";
const TOKEN_TYPE_MESSAGE: &str = "type kubernetes.io/service-account-token is refused: vaultsync never writes Secrets that Kubernetes fills with API tokens";
const TOKEN_ANNOTATIONS_MESSAGE: &str = "annotations kubernetes.io/service-account.name and .uid are refused: vaultsync never writes Secrets that Kubernetes fills with API tokens";
const TEMPLATE_KEYS_MESSAGE: &str = "template.data keys must be valid Secret keys: letters, digits, '-', '_' and '.'";
const TEMPLATE_FROM_ONE_MESSAGE: &str = "each templateFrom entry needs exactly one of configMap, secret or literal";
const NAMESPACES_MESSAGE: &str =
    "select namespaces with namespaceSelectors (or namespaceSelector), namespaces, or both";
const CONDITIONS_MESSAGE: &str = "spec.conditions is only allowed on a ClusterSecretStore";
const ONE_PROVIDER_MESSAGE: &str = "set exactly one of provider.vault or provider.openBao";
const ONE_CA_MESSAGE: &str = "set at most one of caBundle or caProvider";
const ONE_AUTH_MESSAGE: &str =
    "set exactly one auth method: tokenSecretRef, kubernetes, appRole, jwt, userPass, ldap or cert";
const KUBERNETES_TOKEN_MESSAGE: &str = "set exactly one of serviceAccountRef or secretRef";
const APPROLE_ROLE_MESSAGE: &str = "set exactly one of roleId or roleRef";
const JWT_TOKEN_MESSAGE: &str = "set exactly one of kubernetesServiceAccountToken or secretRef";
const CLIENT_TLS_MESSAGE: &str = "tls: set both certSecretRef and keySecretRef";
const CERTIFICATE_METHOD_MESSAGE: &str =
    "resultType Certificate needs method POST or PUT (pki/issue/<role> is a write)";

/// Every message of a CEL rule these checks can give: exactly the
/// `x-kubernetes-validations` messages of the CRDs.
pub const MESSAGES: &[&str] = &[
    STORE_REF_MESSAGE,
    SOME_DATA_MESSAGE,
    DATA_FROM_ONE_MESSAGE,
    SOURCE_REF_ONE_MESSAGE,
    REWRITE_ONE_MESSAGE,
    FIND_MESSAGE,
    TOKEN_TYPE_MESSAGE,
    TOKEN_ANNOTATIONS_MESSAGE,
    TEMPLATE_KEYS_MESSAGE,
    TEMPLATE_FROM_ONE_MESSAGE,
    NAMESPACES_MESSAGE,
    CONDITIONS_MESSAGE,
    ONE_PROVIDER_MESSAGE,
    ONE_CA_MESSAGE,
    ONE_AUTH_MESSAGE,
    KUBERNETES_TOKEN_MESSAGE,
    APPROLE_ROLE_MESSAGE,
    JWT_TOKEN_MESSAGE,
    CERTIFICATE_METHOD_MESSAGE,
    CLIENT_TLS_MESSAGE,
    HEADERS_MESSAGE,
    KEY_MESSAGE,
    FOLDER_MESSAGE,
    RESERVED_SEGMENT_MESSAGE,
    MOUNT_MESSAGE,
    GENERATOR_PATH_MESSAGE,
    GENERATOR_SYSTEM_MOUNT_MESSAGE,
    SERVER_MESSAGE,
    OBJECT_NAME_MESSAGE,
];

// Schema `pattern`s. The types write them in `#[schemars]` attributes,
// which cannot name a constant; `tests/checks.rs` compares this list with
// the generated CRDs.
const SECRET_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";
const VERSION_PATTERN: &str = r"^[0-9]+$";
const GO_DURATION_PATTERN: &str = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$";
const GENERATOR_API_VERSION_PATTERN: &str = r"^generators\.vaultsync\.dev/v1alpha1$";
const RETRY_INTERVAL_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$";
const GRACE_PERIOD_PATTERN: &str = r"^(0|([0-9]+(\.[0-9]+)?(ms|s|m|h))+)$";
const WINDOW_DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// Every schema `pattern` these checks enforce.
pub const PATTERNS: &[&str] = &[
    SECRET_KEY_PATTERN,
    VERSION_PATTERN,
    GO_DURATION_PATTERN,
    GENERATOR_API_VERSION_PATTERN,
    RETRY_INTERVAL_PATTERN,
    GRACE_PERIOD_PATTERN,
    crate::SYNC_WINDOW_SCHEDULE_PATTERN,
    WINDOW_DURATION_PATTERN,
];

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("pattern {pattern:?} does not compile: {e}"))
}

static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| compile(SECRET_KEY_PATTERN));
static VERSION: LazyLock<Regex> = LazyLock::new(|| compile(VERSION_PATTERN));
static GO_DURATION: LazyLock<Regex> = LazyLock::new(|| compile(GO_DURATION_PATTERN));
static GENERATOR_API_VERSION: LazyLock<Regex> = LazyLock::new(|| compile(GENERATOR_API_VERSION_PATTERN));
static RETRY_INTERVAL: LazyLock<Regex> = LazyLock::new(|| compile(RETRY_INTERVAL_PATTERN));
static GRACE_PERIOD: LazyLock<Regex> = LazyLock::new(|| compile(GRACE_PERIOD_PATTERN));
static WINDOW_SCHEDULE: LazyLock<Regex> = LazyLock::new(|| compile(crate::SYNC_WINDOW_SCHEDULE_PATTERN));
static WINDOW_DURATION: LazyLock<Regex> = LazyLock::new(|| compile(WINDOW_DURATION_PATTERN));

/// A CEL rule of the form `self.matches('re')` or `!self.matches('re')`.
struct CelMatch {
    regex: Regex,
    negated: bool,
    message: &'static str,
}

impl CelMatch {
    /// Panics on a rule of another form: the rules are constants, and every
    /// one is exercised by the tests.
    fn new(rule: &'static str, message: &'static str) -> Self {
        let (negated, call) = match rule.strip_prefix('!') {
            Some(call) => (true, call),
            None => (false, rule),
        };
        let literal = call
            .strip_prefix("self.matches('")
            .and_then(|rest| rest.strip_suffix("')"))
            .unwrap_or_else(|| panic!("not a self.matches rule: {rule}"));
        CelMatch { regex: compile(&go_to_rust_regex(&unescape_cel(literal))), negated, message }
    }

    fn check(&self, path: &str, value: &str) -> Checked {
        require(self.regex.is_match(value) != self.negated, path, self.message)
    }
}

/// The value of a single-quoted CEL string literal; the rules use only the
/// escapes `\\` and `\'`.
fn unescape_cel(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    let mut chars = literal.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(escaped @ ('\\' | '\'')) => out.push(escaped),
                other => panic!("unexpected CEL escape \\{other:?} in {literal}"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// CEL's `matches` is Go's RE2 syntax, which the regex crate reads the same
/// except for `\s`: ASCII `[\t\n\f\r ]` in Go, Unicode whitespace in Rust.
/// (Nested classes are Rust syntax, so the replacement works inside `[...]`.)
fn go_to_rust_regex(go: &str) -> String {
    let mut out = String::with_capacity(go.len());
    let mut chars = go.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push_str(r"[\t\n\f\r ]"),
            Some(escaped) => {
                out.push('\\');
                out.push(escaped);
            }
            None => out.push('\\'),
        }
    }
    out
}

static KEY: LazyLock<CelMatch> = LazyLock::new(|| CelMatch::new(KEY_RULE, KEY_MESSAGE));
static FOLDER: LazyLock<CelMatch> = LazyLock::new(|| CelMatch::new(FOLDER_RULE, FOLDER_MESSAGE));
static RESERVED_SEGMENT: LazyLock<CelMatch> =
    LazyLock::new(|| CelMatch::new(RESERVED_SEGMENT_RULE, RESERVED_SEGMENT_MESSAGE));
static MOUNT: LazyLock<CelMatch> = LazyLock::new(|| CelMatch::new(MOUNT_RULE, MOUNT_MESSAGE));
static GENERATOR_PATH: LazyLock<CelMatch> =
    LazyLock::new(|| CelMatch::new(GENERATOR_PATH_RULE, GENERATOR_PATH_MESSAGE));
static GENERATOR_SYSTEM_MOUNT: LazyLock<CelMatch> =
    LazyLock::new(|| CelMatch::new(GENERATOR_SYSTEM_MOUNT_RULE, GENERATOR_SYSTEM_MOUNT_MESSAGE));
static SERVER: LazyLock<CelMatch> = LazyLock::new(|| CelMatch::new(SERVER_RULE, SERVER_MESSAGE));
static SERVER_DOT: LazyLock<CelMatch> = LazyLock::new(|| CelMatch::new(SERVER_DOT_RULE, SERVER_MESSAGE));
static OBJECT_NAME: LazyLock<CelMatch> = LazyLock::new(|| CelMatch::new(OBJECT_NAME_RULE, OBJECT_NAME_MESSAGE));

// Schema constraints. Lengths count characters, as the API server does.

fn min_length(path: &str, value: &str, min: usize) -> Checked {
    match min {
        1 => require(!value.is_empty(), path, "must not be empty"),
        _ => require(value.chars().count() >= min, path, &format!("must be at least {min} characters")),
    }
}

fn max_length(path: &str, value: &str, max: usize) -> Checked {
    require(value.chars().count() <= max, path, &format!("must be at most {max} characters"))
}

fn length(path: &str, value: &str, min: usize, max: usize) -> Checked {
    min_length(path, value, min)?;
    max_length(path, value, max)
}

fn max_items<T>(path: &str, items: &[T], max: usize) -> Checked {
    require(items.len() <= max, path, &format!("must have at most {max} items"))
}

fn pattern(path: &str, value: &str, regex: &Regex) -> Checked {
    require(regex.is_match(value), path, &format!("must match '{}'", regex.as_str()))
}

fn range(path: &str, value: i32, min: i32, max: i32) -> Checked {
    require((min..=max).contains(&value), path, &format!("must be between {min} and {max}"))
}

mod external_secrets;
pub use external_secrets::{cluster_external_secret, external_secret};

// SecretStore and ClusterSecretStore

/// The rules of a store's spec; `cluster` tells a ClusterSecretStore from a
/// namespaced SecretStore.
pub fn store(spec: &SecretStoreSpec, cluster: bool) -> Result<(), Refusal> {
    require(cluster || spec.conditions.is_none(), "spec", CONDITIONS_MESSAGE)?;
    if let Some(controller) = &spec.controller {
        max_length("spec.controller", controller, 253)?;
    }
    if let Some(retry) = &spec.retry_settings {
        retry_settings("spec.retrySettings", retry)?;
    }
    provider("spec.provider", &spec.provider)
}

fn provider(at: &str, provider: &Provider) -> Checked {
    require(provider.vault.is_some() != provider.open_bao.is_some(), at, ONE_PROVIDER_MESSAGE)?;
    if let Some(vault) = &provider.vault {
        vault_provider(&format!("{at}.vault"), vault)?;
    }
    if let Some(open_bao) = &provider.open_bao {
        vault_provider(&format!("{at}.openBao"), open_bao)?;
    }
    Ok(())
}

/// The two patterns of `HEADERS_RULE`: a name's form, and the names a store
/// may not set (a test keeps them equal to the rule's).
const HEADER_NAME_PATTERN: &str = "^[A-Za-z0-9-]{1,64}$";
const HEADER_RESERVED_PATTERN: &str = "^(?i)(x-vault-.*|authorization|proxy-authorization|cookie|host|content-length|content-type|content-encoding|connection|keep-alive|transfer-encoding|te|trailer|upgrade|expect)$";
static HEADER_NAME: LazyLock<regex::Regex> = LazyLock::new(|| compile(HEADER_NAME_PATTERN));
static HEADER_RESERVED: LazyLock<regex::Regex> = LazyLock::new(|| compile(HEADER_RESERVED_PATTERN));

fn headers(at: &str, headers: &std::collections::BTreeMap<String, String>) -> Checked {
    let allowed = |name: &String| HEADER_NAME.is_match(name) && !HEADER_RESERVED.is_match(name);
    require(headers.len() <= 32, at, "must have at most 32 items")?;
    require(headers.keys().all(allowed), at, HEADERS_MESSAGE)
}

fn vault_provider(at: &str, vault: &VaultProvider) -> Checked {
    require(!(vault.ca_bundle.is_some() && vault.ca_provider.is_some()), at, ONE_CA_MESSAGE)?;
    if let Some(tls) = &vault.tls {
        let tls_at = format!("{at}.tls");
        require(tls.cert_secret_ref.is_some() == tls.key_secret_ref.is_some(), &tls_at, CLIENT_TLS_MESSAGE)?;
        for (field, selector) in [("certSecretRef", &tls.cert_secret_ref), ("keySecretRef", &tls.key_secret_ref)] {
            if let Some(selector) = selector {
                secret_key_selector(&format!("{tls_at}.{field}"), selector)?;
            }
        }
    }
    if let Some(map) = &vault.headers {
        headers(&format!("{at}.headers"), map)?;
    }
    let server_path = format!("{at}.server");
    max_length(&server_path, &vault.server, 512)?;
    SERVER.check(&server_path, &vault.server)?;
    SERVER_DOT.check(&server_path, &vault.server)?;
    if let Some(path) = &vault.path {
        let path_path = format!("{at}.path");
        max_length(&path_path, path, MAX_PATH)?;
        FOLDER.check(&path_path, path)?;
        MOUNT.check(&path_path, path)?;
    }
    vault_auth(&format!("{at}.auth"), &vault.auth)
}

fn vault_auth(at: &str, auth: &VaultAuth) -> Checked {
    let methods = [
        auth.token_secret_ref.is_some(),
        auth.kubernetes.is_some(),
        auth.app_role.is_some(),
        auth.jwt.is_some(),
        auth.user_pass.is_some(),
        auth.ldap.is_some(),
        auth.cert.is_some(),
    ];
    require(exactly_one(&methods), at, ONE_AUTH_MESSAGE)?;
    if let Some(namespace) = &auth.namespace {
        max_length(&format!("{at}.namespace"), namespace, MAX_PATH)?;
    }
    if let Some(user_pass) = &auth.user_pass {
        password_auth(&format!("{at}.userPass"), &user_pass.path, &user_pass.username, &user_pass.secret_ref)?;
    }
    if let Some(ldap) = &auth.ldap {
        password_auth(&format!("{at}.ldap"), &ldap.path, &ldap.username, &ldap.secret_ref)?;
    }
    if let Some(cert) = &auth.cert {
        auth_mount(&format!("{at}.cert.path"), &cert.path)?;
        if let Some(role) = &cert.vault_role {
            max_length(&format!("{at}.cert.vaultRole"), role, 256)?;
        }
        secret_key_selector(&format!("{at}.cert.clientCert"), &cert.client_cert)?;
        secret_key_selector(&format!("{at}.cert.secretRef"), &cert.secret_ref)?;
    }
    if let Some(token) = &auth.token_secret_ref {
        secret_key_selector(&format!("{at}.tokenSecretRef"), token)?;
    }
    if let Some(kubernetes) = &auth.kubernetes {
        kubernetes_auth(&format!("{at}.kubernetes"), kubernetes)?;
    }
    if let Some(app_role) = &auth.app_role {
        app_role_auth(&format!("{at}.appRole"), app_role)?;
    }
    if let Some(jwt) = &auth.jwt {
        jwt_auth(&format!("{at}.jwt"), jwt)?;
    }
    Ok(())
}

fn auth_mount(path: &str, mount: &str) -> Checked {
    max_length(path, mount, MAX_PATH)?;
    FOLDER.check(path, mount)
}

/// userPass and ldap: a mount, a user's name, the Secret of the password.
fn password_auth(at: &str, mount: &str, username: &str, password: &SecretKeySelector) -> Checked {
    auth_mount(&format!("{at}.path"), mount)?;
    min_length(&format!("{at}.username"), username, 1)?;
    max_length(&format!("{at}.username"), username, 256)?;
    secret_key_selector(&format!("{at}.secretRef"), password)
}

fn kubernetes_auth(at: &str, kubernetes: &KubernetesAuth) -> Checked {
    let tokens = kubernetes.service_account_ref.is_some() != kubernetes.secret_ref.is_some();
    require(tokens, at, KUBERNETES_TOKEN_MESSAGE)?;
    auth_mount(&format!("{at}.mountPath"), &kubernetes.mount_path)?;
    min_length(&format!("{at}.role"), &kubernetes.role, 1)?;
    if let Some(account) = &kubernetes.service_account_ref {
        service_account_selector(&format!("{at}.serviceAccountRef"), account)?;
    }
    if let Some(secret) = &kubernetes.secret_ref {
        secret_key_selector(&format!("{at}.secretRef"), secret)?;
    }
    Ok(())
}

fn app_role_auth(at: &str, app_role: &AppRoleAuth) -> Checked {
    require(app_role.role_id.is_some() != app_role.role_ref.is_some(), at, APPROLE_ROLE_MESSAGE)?;
    auth_mount(&format!("{at}.path"), &app_role.path)?;
    if let Some(role) = &app_role.role_ref {
        secret_key_selector(&format!("{at}.roleRef"), role)?;
    }
    secret_key_selector(&format!("{at}.secretRef"), &app_role.secret_ref)
}

fn jwt_auth(at: &str, jwt: &JwtAuth) -> Checked {
    let tokens = jwt.kubernetes_service_account_token.is_some() != jwt.secret_ref.is_some();
    require(tokens, at, JWT_TOKEN_MESSAGE)?;
    auth_mount(&format!("{at}.path"), &jwt.path)?;
    if let Some(token) = &jwt.kubernetes_service_account_token {
        let account_path = format!("{at}.kubernetesServiceAccountToken.serviceAccountRef");
        service_account_selector(&account_path, &token.service_account_ref)?;
    }
    if let Some(secret) = &jwt.secret_ref {
        secret_key_selector(&format!("{at}.secretRef"), secret)?;
    }
    Ok(())
}

fn secret_key_selector(at: &str, selector: &SecretKeySelector) -> Checked {
    length(&format!("{at}.name"), &selector.name, 1, 253)
}

fn service_account_selector(at: &str, selector: &ServiceAccountSelector) -> Checked {
    min_length(&format!("{at}.name"), &selector.name, 1)
}

// VaultDynamicSecret

/// The rules of a VaultDynamicSecret generator's spec.
pub fn vault_dynamic_secret(spec: &VaultDynamicSecretSpec) -> Result<(), Refusal> {
    let writes = matches!(spec.method, DynamicMethod::Post | DynamicMethod::Put);
    require(spec.result_type != DynamicResultType::Certificate || writes, "spec", CERTIFICATE_METHOD_MESSAGE)?;
    if let Some(retry) = &spec.retry_settings {
        retry_settings("spec.retrySettings", retry)?;
    }
    vault_provider("spec.provider", &spec.provider)?;
    length("spec.path", &spec.path, 1, MAX_PATH)?;
    GENERATOR_PATH.check("spec.path", &spec.path)?;
    GENERATOR_SYSTEM_MOUNT.check("spec.path", &spec.path)?;
    lease_policy("spec.lease", &spec.lease)
}

fn retry_settings(at: &str, retry: &RetrySettings) -> Checked {
    if let Some(max_retries) = retry.max_retries {
        range(&format!("{at}.maxRetries"), max_retries, 0, 10)?;
    }
    if let Some(interval) = &retry.retry_interval {
        pattern(&format!("{at}.retryInterval"), interval, &RETRY_INTERVAL)?;
    }
    Ok(())
}

fn lease_policy(at: &str, lease: &LeasePolicy) -> Checked {
    range(&format!("{at}.renewAtPercent"), lease.renew_at_percent, 10, 90)?;
    pattern(&format!("{at}.rotationGracePeriod"), &lease.rotation_grace_period, &GRACE_PERIOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cel_literals_become_the_regexes_the_api_server_runs() {
        assert_eq!(unescape_cel(r"a\\.b\\\\c\'"), r"a\.b\\c'");
        assert_eq!(go_to_rust_regex(r"[^a\\\s]\s"), r"[^a\\[\t\n\f\r ]][\t\n\f\r ]");
        // Go's \s leaves out the vertical tab; Rust's would take it.
        assert!(
            crate::store::HEADERS_RULE.contains(&format!("k.matches('{HEADER_NAME_PATTERN}')"))
                && crate::store::HEADERS_RULE.contains(&format!("!k.matches('{HEADER_RESERVED_PATTERN}')")),
            "the code's header patterns are the CRD rule's"
        );
        let map = |names: &[&str]| names.iter().map(|n| (n.to_string(), "v".to_string())).collect();
        assert!(headers("h", &map(&["X-Team", "x-request-id"])).is_ok());
        for bad in ["X-Vault-Token", "x-vault-namespace", "Authorization", "HOST", "bad name", "Content-Length"] {
            assert!(headers("h", &map(&[bad])).is_err(), "{bad}");
        }
        let server = CelMatch::new(SERVER_RULE, SERVER_MESSAGE);
        assert!(server.check("s", "https://a\u{b}b").is_ok());
        assert!(server.check("s", "https://a b").is_err());
        assert!(server.check("s", "https://a\u{a0}b").is_ok());
    }
}
