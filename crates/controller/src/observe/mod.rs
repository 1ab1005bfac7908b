//! What vaultsync tells the people running it: metrics, Events and status
//! conditions. Nothing here reads the shared `Context`, so it can hold the
//! metrics.

pub(crate) mod conditions;
pub(crate) mod events;
pub(crate) mod metrics;
