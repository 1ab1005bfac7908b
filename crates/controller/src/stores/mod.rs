//! SecretStores and ClusterSecretStores as an ExternalSecret sees them:
//! which store it names, whether it may use it, and the Vault credentials
//! the store's auth spec stands for.

mod credentials;
mod resolve;

pub(crate) use credentials::{credentials, refs_need_namespace};
pub use resolve::parse_label_selector;
pub(crate) use resolve::{ResolvedStore, resolve, selector_matches, serves};
