//! One sync of an ExternalSecret's data, in order: read the remote values,
//! apply the template, write the Secret (or `target.manifest` object), restart the workloads that read it.
//! `vaultsync render` runs the same steps without the writing.

pub(crate) mod manifest_target;
pub(crate) mod preview;
pub(crate) mod remote;
pub(crate) mod rollout_restart;
pub(crate) mod secret_writer;
pub(crate) mod sync_windows;
pub(crate) mod templating;
pub(crate) mod write_failure;
