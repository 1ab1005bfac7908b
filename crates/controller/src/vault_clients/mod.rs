//! Talking to Vault servers cheaply and safely: one logged-in client per
//! store identity, one prober per server that is down, and no token sent to
//! Vault that the Kubernetes API server would accept. Nothing here reads the
//! shared `Context`, so the `Context` can hold these.

pub(crate) mod audiences;
pub(crate) mod cache;
pub(crate) mod identity;
pub(crate) mod outage;
pub(crate) mod reads;
