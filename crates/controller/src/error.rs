//! What a reconcile can fail with, and the API server's failures as text
//! that is safe to show. A leaf: it imports nothing from the rest of the
//! crate, so every module can return its errors.

use vaultsync_api::StoreKind;

/// Everything a reconcile can fail with. Messages are written for the person
/// reading `kubectl describe`, and never contain a secret value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind:?} {name:?} not found{hint}")]
    StoreNotFound { kind: StoreKind, name: String, hint: &'static str },
    #[error("ClusterSecretStore {store:?} does not allow namespace {namespace:?} (see its spec.conditions)")]
    NamespaceNotAllowed { store: String, namespace: String },
    #[error(
        "ClusterSecretStore {store:?} is not available: this vaultsync install is scoped to namespace {namespace:?} and serves no cluster stores; use a SecretStore in this namespace"
    )]
    ClusterStoreOutOfScope { store: String, namespace: String },
    #[error("{store} is misconfigured: {reason}")]
    StoreConfig { store: String, reason: String },
    /// The store belongs to another controller class: not an error to
    /// report on the ExternalSecret, whose owner is that controller, but a
    /// reason to leave it alone (see the reconciler).
    #[error("{store} is served by controller class {store_class:?}, not by this operator's {class:?}")]
    OtherClass { store: String, store_class: String, class: String },
    #[error(
        "{store}: refused to request a token for ServiceAccount {service_account}: its namespace does not match \
         the operator's --token-namespace-selector"
    )]
    ServiceAccountNotAllowed { store: String, service_account: String },
    #[error("{store}: refused to request a token for ServiceAccount {service_account}: {reason}")]
    RefusedAudience { store: String, service_account: String, reason: String },
    #[error("{store}: {source}")]
    Vault {
        store: String,
        #[source]
        source: vaultsync_vault::Error,
    },
    #[error("secretKey {secret_key:?} (key {key:?}): {source}")]
    Render {
        secret_key: String,
        key: String,
        #[source]
        source: vaultsync_template::Error,
    },
    /// A template that cannot be loaded or rendered; names the template and
    /// the position, never a value.
    #[error("target.template: {0}")]
    Template(String),
    #[error("{0}")]
    Target(String),
    /// `nullBytePolicy: Fail` and a value with a NUL byte: names the key,
    /// never the value.
    #[error(
        "the value for key {key:?} contains a NUL byte and nullBytePolicy is Fail: store it in a text-safe form \
         (PEM, or base64 with a decodingStrategy) or leave nullBytePolicy unset to allow binary data"
    )]
    NullByte { key: String },
    /// A generator (`dataFrom[].sourceRef`) that cannot be used, or whose
    /// leases could not be handled.
    #[error("{0}")]
    Generator(String),
    /// A bug in vaultsync met while handling this object (a panic, caught
    /// so that it hurts this object only).
    #[error("internal error: {0}")]
    Internal(String),
    /// The API server refused to write a Secret. `detail` is built from the
    /// kind of failure, the fields concerned and a fixed explanation, never
    /// from the API server's message: that may quote the data.
    #[error("writing Secret {name:?} failed: {detail}")]
    SecretWrite { name: String, detail: String },
    #[error("Kubernetes API: {}", crate::error::kube_reason(.0))]
    Kube(#[from] kube::Error),
}

impl Error {
    /// A short, stable label for metrics and event reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::StoreNotFound { .. } => "store_not_found",
            Error::NamespaceNotAllowed { .. } => "namespace_not_allowed",
            Error::ClusterStoreOutOfScope { .. } => "cluster_store_out_of_scope",
            Error::StoreConfig { .. } => "store_config",
            Error::OtherClass { .. } => "other_class",
            Error::RefusedAudience { .. } => "refused_audience",
            Error::ServiceAccountNotAllowed { .. } => "service_account_not_allowed",
            Error::Vault { source, .. } => source.metric_label(),
            Error::Render { .. } => "render",
            Error::Template(_) => "template",
            Error::Target(_) => "target",
            Error::NullByte { .. } => "null_byte",
            Error::Generator(_) => "generator",
            Error::Internal(_) => "internal",
            Error::Kube(_) | Error::SecretWrite { .. } => "kube",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The API server's own words for a failed call, without request details.
/// Only for requests that carry no secret data: the API server's message
/// about a write may quote what was written, so a refused Secret write is
/// told by [`crate::sync::write_failure::write_failure`] instead.
pub(crate) fn kube_reason(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        // serde quotes the text it could not read, and the answer to a
        // Secret request holds the Secret's data.
        kube::Error::SerdeError(e) => {
            format!(
                "cannot read the API server's answer ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        }
        kube::Error::FromUtf8(_) => "the API server's answer is not UTF-8".to_owned(),
        other => other.to_string(),
    }
}
