//! What the operator's `/ready` and `/metrics` say (the admin server in
//! vaultsync_serve answers them): ready when its watches are synced or it
//! is a healthy standby, and the controller's series.

use std::sync::Arc;

use vaultsync_controller::Context;
use vaultsync_serve::admin::Probe;

pub struct OperatorProbe(pub Arc<Context>);

impl Probe for OperatorProbe {
    fn not_ready(&self) -> Option<String> {
        (!self.0.standing().is_ready()).then(|| "watches not synced yet".to_owned())
    }

    fn encode_metrics(&self, out: &mut String) {
        self.0.encode_metrics(out);
    }
}
