//! Injection into Pods, no Secret object: `vaultsync webhook` registered
//! with the real API server (the shared `vaultsync_e2e::Webhook`), and
//! `vaultsync agent` run as a local process with a real projected token of
//! the Pod's ServiceAccount (TokenRequest bound to the stored Pod), logging
//! in through OpenBao's Kubernetes auth. One file per scenario; `agent`,
//! `oracle` and `sidecar` are what the scenarios share.

mod agent;
mod agent_modes;
mod annotated_pod;
mod certificates;
mod corpus;
mod dynamic_lease;
mod notify;
mod oracle;
mod rotation;
mod sidecar;
