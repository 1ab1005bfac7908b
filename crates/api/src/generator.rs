//! Generators (`generators.vaultsync.dev/v1alpha1`, ESO's
//! `generators.external-secrets.io`): objects that issue a new credential
//! when asked, referenced from `dataFrom[].sourceRef.generatorRef`.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::store::VaultProvider;
use crate::vault_path::{
    GENERATOR_PATH_MESSAGE, GENERATOR_PATH_RULE, GENERATOR_SYSTEM_MOUNT_MESSAGE, GENERATOR_SYSTEM_MOUNT_RULE, MAX_PATH,
};

/// API group of the generator kinds.
pub const GENERATOR_GROUP: &str = "generators.vaultsync.dev";
/// `apiVersion` of the generator kinds.
pub const GENERATOR_API_VERSION: &str = "generators.vaultsync.dev/v1alpha1";

/// Issues a credential from a Vault dynamic secrets engine (database,
/// PKI, AWS, ...) for the ExternalSecrets that reference it. ESO's kind and
/// field names; vaultsync keeps each credential's lease: it reuses the
/// credential while the lease is valid (across restarts), renews it,
/// replaces it before it ends and revokes what it no longer needs.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "generators.vaultsync.dev",
    version = "v1alpha1",
    kind = "VaultDynamicSecret",
    namespaced,
    shortname = "vsvds",
    category = "vaultsync",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Path","type":"string","jsonPath":".spec.path"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.resultType != 'Certificate' || self.method in ['POST', 'PUT']").message("resultType Certificate needs method POST or PUT (pki/issue/<role> is a write)"))]
pub struct VaultDynamicSecretSpec {
    /// ESO's controller class. Accepted so ESO manifests apply unchanged;
    /// in vaultsync's group every generator is served whatever it says. In
    /// ESO's group (`--eso-api`) it decides who serves the generator, as a
    /// store's `controller` does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// HTTP method of the request: `GET` (default, a read such as
    /// `database/creds/<role>`), `POST` or `PUT` (a write with
    /// `parameters`, such as `pki/issue/<role>`), `LIST` or `DELETE`.
    #[serde(default)]
    pub method: DynamicMethod,
    /// JSON body of a `POST` or `PUT` request, e.g.
    /// `{"common_name": "app.example.com", "ttl": "24h"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json")]
    pub parameters: Option<serde_json::Value>,
    /// Query-string parameters of a `GET` request; a key may repeat.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub get_parameters: BTreeMap<String, Vec<String>>,
    /// Which part of Vault's answer becomes the Secret's keys: `Data`
    /// (default: the `data` block, e.g. `username` and `password`), `Auth`
    /// (the `auth` block, for `auth/token/create`), `Raw` (the whole
    /// answer), or `Certificate` (a vaultsync extension for `pki/issue`:
    /// `tls.crt` with the leaf first and then the chain, `tls.key`,
    /// `ca.crt`; the Secret's type becomes `kubernetes.io/tls` unless the
    /// template sets another).
    #[serde(default)]
    pub result_type: DynamicResultType,
    /// Retries of a request that got no answer or a 5xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_settings: Option<RetrySettings>,
    /// The Vault server and how to log in: the fields of a SecretStore's
    /// `provider.vault` (`path` and `version` are not used here).
    pub provider: VaultProvider,
    /// Path of the request, e.g. `database/creds/app` or `pki/issue/web`
    /// (a leading `/` is allowed).
    #[schemars(length(min = 1, max = MAX_PATH))]
    #[x_kube(validation = Rule::new(GENERATOR_PATH_RULE).message(GENERATOR_PATH_MESSAGE))]
    #[x_kube(validation = Rule::new(GENERATOR_SYSTEM_MOUNT_RULE).message(GENERATOR_SYSTEM_MOUNT_MESSAGE))]
    pub path: String,
    /// Accept an answer with no data (e.g. a `DELETE`) instead of failing.
    #[serde(default)]
    pub allow_empty_response: bool,
    /// vaultsync extension: when a credential is renewed, replaced and
    /// revoked.
    #[serde(default)]
    pub lease: LeasePolicy,
}

fn any_json(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// HTTP method of a generator's request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DynamicMethod {
    #[default]
    Get,
    Post,
    Put,
    List,
    Delete,
}

/// Which part of the answer a generator hands on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DynamicResultType {
    #[default]
    Data,
    Auth,
    Raw,
    Certificate,
}

/// ESO's retry settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrySettings {
    /// Retries after the first attempt (at most 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub max_retries: Option<i32>,
    /// Pause between attempts, a Go duration (default `1s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"))]
    pub retry_interval: Option<String>,
}

/// vaultsync extension: the life of each issued credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeasePolicy {
    /// When, as a percentage of its lifetime, a credential is renewed (a
    /// lease) or replaced (a certificate, by its notBefore/notAfter; a lease
    /// Vault will not renew). Jittered by up to 5 points so that many do not
    /// fall due together. Default 67.
    #[serde(default = "default_renew_percent")]
    #[schemars(range(min = 10, max = 90))]
    pub renew_at_percent: i32,
    /// How long a replaced credential keeps working after its successor is
    /// written (time for consumers to roll) before it is revoked, a Go
    /// duration. Default `5m`; never past the old lease's own end.
    #[serde(default = "default_grace")]
    #[schemars(regex(pattern = r"^(0|([0-9]+(\.[0-9]+)?(ms|s|m|h))+)$"))]
    pub rotation_grace_period: String,
    /// Also revoke a replaced certificate (its serial joins the CRL) after
    /// the grace period. Default false: certificates simply expire.
    #[serde(default)]
    pub revoke_certificates: bool,
}

impl Default for LeasePolicy {
    fn default() -> Self {
        Self {
            renew_at_percent: default_renew_percent(),
            rotation_grace_period: default_grace(),
            revoke_certificates: false,
        }
    }
}

fn default_renew_percent() -> i32 {
    67
}

fn default_grace() -> String {
    "5m".into()
}

/// Where a `dataFrom` entry's values come from instead of
/// `spec.secretStoreRef`: another store, or a generator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.storeRef) ? 1 : 0) + (has(self.generatorRef) ? 1 : 0) == 1").message("sourceRef needs exactly one of storeRef or generatorRef"))]
pub struct StoreGeneratorSourceRef {
    /// The store this entry's `extract` or `find` reads from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<crate::SecretStoreRef>,
    /// A generator that issues the values (then the entry has no `extract`
    /// or `find`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<GeneratorRef>,
}

/// A generator in the ExternalSecret's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorRef {
    /// `generators.vaultsync.dev/v1alpha1` (the default).
    #[serde(default = "default_generator_api_version")]
    #[schemars(regex(pattern = r"^generators\.vaultsync\.dev/v1alpha1$"))]
    pub api_version: String,
    /// `VaultDynamicSecret`.
    pub kind: GeneratorKind,
    /// Name of the generator.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

fn default_generator_api_version() -> String {
    GENERATOR_API_VERSION.into()
}

/// Generator kinds vaultsync serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GeneratorKind {
    VaultDynamicSecret,
}
