//! The e2e scenarios, one module per area. Run by `make e2e` against the
//! real control plane and OpenBao that `scripts/e2e.sh` starts.

mod argocd;
mod auth_lifecycle;
mod chart;
mod cluster_external_secret;
mod database_env;
mod examples;
mod failures;
mod fault_isolation;
mod fencing;
mod find;
mod generators;
mod handover;
mod health;
mod injection;
mod kubernetes_auth;
mod leader;
mod lifecycle;
mod policies;
mod readme;
mod remote_ref;
mod render_cli;
mod requests;
mod rollout_restart;
mod schema;
mod scoped;
mod sealed;
mod security;
mod store_events;
mod stores;
mod sync;
mod templates;
mod tls;
mod token_lifecycle;
mod user_roles;
mod vault_outage;
