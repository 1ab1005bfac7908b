//! The vaultsync controllers: ExternalSecret sync, store health, the Vault
//! client cache and the Secret writer.
#![forbid(unsafe_code)]

mod audiences;
mod cluster_external_secret;
mod conditions;
mod context;
mod due;
mod error;
mod events;
mod external_secret;
pub mod fence;
mod generated;
pub mod leader;
mod metrics;
mod outage;
mod preview;
mod process_metrics;
mod render;
mod rollout_restart;
mod run;
mod secret_store;
mod secret_writer;
mod store;
mod templating;
mod vault_cache;

pub use context::{Config, Context};
pub use error::{Error, Result};
pub use preview::{StoreOverride, preview};
pub use run::run;
pub use store::parse_label_selector;
pub use templating::Shaped;

/// Label vaultsync puts on every Secret it writes; the Secret watch selects on it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "vaultsync";
/// Annotation naming the ExternalSecret that manages a Secret.
pub const EXTERNAL_SECRET_ANNOTATION: &str = "vaultsync.dev/external-secret";
/// Annotation holding the hash of the data vaultsync last wrote.
pub const DATA_HASH_ANNOTATION: &str = "vaultsync.dev/data-hash";
/// Annotation holding the hash of what a template rendered from.
pub const TEMPLATE_INPUT_HASH_ANNOTATION: &str = "vaultsync.dev/template-input-hash";
