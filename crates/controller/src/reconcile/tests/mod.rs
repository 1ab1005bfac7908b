//! Reconcile decisions, run against the fixture API server and the
//! in-memory Vault of `crate::testing`.

mod cluster_external_secret;
mod controller_class;
mod eso_fields;
mod external_secret;
mod store_health;
