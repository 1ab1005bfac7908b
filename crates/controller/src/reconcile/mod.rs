//! The reconcilers, one per kind vaultsync watches: each reads its object,
//! calls on `sync`, `stores` and `generators`, and reports in status.

pub(crate) mod cluster_external_secret;
mod eso_finalizer;
pub(crate) mod external_secret;
pub(crate) mod store_health;

#[cfg(test)]
mod tests;
