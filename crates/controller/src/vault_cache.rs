//! One authenticated Vault client per store identity, so a reconcile never
//! logs in by itself: the client logs in once and renews its token.

use std::collections::HashMap;
use std::sync::Mutex;

use vaultsync_vault::Client;

use crate::store::Credentials;

#[derive(Default)]
pub(crate) struct VaultCache {
    clients: Mutex<HashMap<String, (String, Client)>>,
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
        clients.insert(credentials.cache_key, (credentials.fingerprint, client.clone()));
        Ok(client)
    }
}
