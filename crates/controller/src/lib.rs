//! The vaultsync controllers: ExternalSecret sync, store health, the Vault
//! client cache and the Secret writer.
//!
//! A folder per behaviour, each importing only the ones below it (so each
//! can be read and tested without the ones above; `scripts/module-check.sh`
//! fails on a circle): `run` wires the watches to `reconcile`, which calls on
//! `generators`, `sync` (read, template, write, restart) and `stores`; they
//! share the `context`, which holds `observe` (metrics) and `vault_clients`;
//! `leadership` elects and fences; `process` (readiness and leadership
//! standing), `rate_limit` (the API client's token bucket), `error` and
//! `secret_data` are leaves.
//! `testing` (tests only) holds the reconcilers' fixtures: an in-process
//! API server and an in-memory Vault behind `vault_clients::reads`.
#![forbid(unsafe_code)]

mod context;
mod error;
mod eso;
mod generators;
mod leadership;
mod mapping;
mod observe;
mod process;
pub mod rate_limit;
mod reconcile;
mod run;
mod secret_data;
pub mod served;
mod stores;
mod sync;
#[cfg(test)]
mod testing;
mod vault_clients;

pub use context::{Config, Context};
pub use error::{Error, Result};
pub use leadership::{fence, leader, term};
pub use process::Standing;
pub use run::run;
pub use stores::parse_label_selector;
pub use sync::manifest_target::parse_generic_target;
pub use sync::preview::{StoreOverride, preview};
pub use sync::templating::Shaped;
pub use vault_clients::audiences::{WELL_KNOWN_API_AUDIENCES, refused_audience};

/// Label vaultsync puts on every Secret it writes; the Secret watch selects on it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "vaultsync";
/// Annotation naming the ExternalSecret that manages a Secret.
pub const EXTERNAL_SECRET_ANNOTATION: &str = "vaultsync.dev/external-secret";
/// Annotation naming the ESO-group (`external-secrets.io`) ExternalSecret
/// that vaultsync writes a Secret for (`--eso-api`).
pub const ESO_EXTERNAL_SECRET_ANNOTATION: &str = "eso.vaultsync.dev/external-secret";
/// Annotation holding the hash of the data vaultsync last wrote.
pub const DATA_HASH_ANNOTATION: &str = "vaultsync.dev/data-hash";
/// Annotation holding the hash of what a template rendered from.
pub const TEMPLATE_INPUT_HASH_ANNOTATION: &str = "vaultsync.dev/template-input-hash";
