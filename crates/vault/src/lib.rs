//! A Vault / OpenBao HTTP client for vaultsync: login (token, Kubernetes,
//! AppRole, JWT), token renewal, KV v1/v2 reads, custom CA bundles and
//! namespaces. It knows nothing about Kubernetes, so it is tested alone.
//!
//! Credentials are wrapped in [`Sensitive`] and KV data never reaches a
//! `Debug` or error string: errors name the mount, the path and the HTTP
//! status, never a value.
#![forbid(unsafe_code)]

mod auth;
mod client;
mod dynamic;
mod error;
mod kv;
pub mod lease_timing;
mod origin;
mod path;
mod sensitive;
mod telemetry;

pub use auth::{Auth, JwtSource, PasswordMethod};
pub use client::{Client, Freshness, Retry, ServerConfig};
pub use dynamic::{IssueMethod, Issued, Lease};
pub use error::{Error, Result};
pub use kv::{KvSecret, KvVersion};
pub use origin::check_server;
pub use path::{Location, check_auth_mount, check_engine_path, check_mount, locate, locate_folder};
pub use sensitive::Sensitive;
pub use telemetry::{LoginOutcome, Observer, Operation};
