//! One authenticated Vault client per store identity, so a reconcile never
//! logs in by itself: the client logs in once and renews its token.

use std::collections::HashMap;
use std::sync::Mutex;

use vaultsync_vault::Client;

use crate::store::Credentials;

#[derive(Default)]
pub(crate) struct VaultCache {
    clients: Mutex<HashMap<String, (String, Client)>>,
    /// Logins and reads of clients replaced since, so totals never shrink.
    retired: Mutex<(u64, u64)>,
}

impl VaultCache {
    /// The cached client for these credentials, or a new one when there is
    /// none or the store's settings or credential material changed.
    pub fn client(&self, credentials: Credentials) -> Result<Client, vaultsync_vault::Error> {
        let mut clients = self.clients.lock().expect("vault cache lock");
        if let Some((fingerprint, client)) = clients.get(&credentials.cache_key)
            && *fingerprint == credentials.fingerprint
        {
            return Ok(client.clone());
        }
        let client = Client::new(credentials.server, credentials.auth)?;
        if let Some((_, old)) = clients.insert(credentials.cache_key, (credentials.fingerprint, client.clone())) {
            let mut retired = self.retired.lock().expect("vault cache lock");
            retired.0 += old.login_count();
            retired.1 += old.read_count();
        }
        Ok(client)
    }

    /// Total logins, total read requests, and the number of cached clients.
    pub fn totals(&self) -> (u64, u64, usize) {
        let clients = self.clients.lock().expect("vault cache lock");
        let retired = *self.retired.lock().expect("vault cache lock");
        let logins = retired.0 + clients.values().map(|(_, c)| c.login_count()).sum::<u64>();
        let reads = retired.1 + clients.values().map(|(_, c)| c.read_count()).sum::<u64>();
        (logins, reads, clients.len())
    }
}
