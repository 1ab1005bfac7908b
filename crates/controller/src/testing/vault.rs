//! An in-memory Vault behind the reads trait: KV secrets by `mount/path`,
//! a count of reads, and a switch that makes every read fail as a server
//! that is down or refuses would.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use vaultsync_vault::{Error, Freshness, KvSecret, KvVersion, Result};

use crate::vault_clients::reads::KvRead;

/// How every read fails while set.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Failure {
    /// No answer: an outage.
    Unreachable,
    /// The token may not read the path.
    Denied,
}

#[derive(Default)]
pub(crate) struct FakeVault {
    secrets: Mutex<BTreeMap<String, Map<String, Value>>>,
    failure: Mutex<Option<Failure>>,
    reads: AtomicUsize,
}

impl FakeVault {
    /// Puts a KV secret at `mount/path`, e.g. `secret/app/db`.
    pub fn put(&self, at: &str, data: Value) {
        let Value::Object(data) = data else { panic!("a KV secret is an object") };
        self.secrets.lock().expect("fake vault lock").insert(at.to_owned(), data);
    }

    /// Deletes the secret at `mount/path`.
    pub fn remove(&self, at: &str) {
        self.secrets.lock().expect("fake vault lock").remove(at);
    }

    /// Makes every read fail (`None`: answer again).
    pub fn fail(&self, failure: Option<Failure>) {
        *self.failure.lock().expect("fake vault lock") = failure;
    }

    /// How many secrets were read (or tried) so far.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    fn read(&self, mount: &str, path: &str) -> Result<KvSecret> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        match *self.failure.lock().expect("fake vault lock") {
            Some(Failure::Unreachable) => {
                return Err(Error::Unreachable {
                    address: "http://127.0.0.1:1".into(),
                    reason: "connection refused".into(),
                });
            }
            Some(Failure::Denied) => {
                return Err(Error::PermissionDenied { operation: "read", path: format!("{mount}/{path}") });
            }
            None => {}
        }
        let secrets = self.secrets.lock().expect("fake vault lock");
        match secrets.get(&format!("{mount}/{path}")) {
            Some(data) => Ok(KvSecret { data: data.clone(), version: Some(1) }),
            None => Err(Error::NotFound { mount: mount.to_owned(), path: path.to_owned() }),
        }
    }
}

impl KvRead for FakeVault {
    fn read_kv<'a>(
        &'a self,
        mount: &'a str,
        path: &'a str,
        _kv: KvVersion,
        _version: Option<&'a str>,
        _freshness: Freshness,
    ) -> BoxFuture<'a, Result<KvSecret>> {
        Box::pin(async move { self.read(mount, path) })
    }

    fn read_custom_metadata<'a>(&'a self, mount: &'a str, path: &'a str) -> BoxFuture<'a, Result<KvSecret>> {
        Box::pin(async move { self.read(mount, path) })
    }

    fn list_secrets<'a>(
        &'a self,
        mount: &'a str,
        prefix: &'a str,
        _kv: KvVersion,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        let start = format!("{mount}/{prefix}");
        let paths = self
            .secrets
            .lock()
            .expect("fake vault lock")
            .keys()
            .filter_map(|k| k.strip_prefix(&start).map(|rest| format!("{prefix}{rest}")))
            .collect();
        Box::pin(async move { Ok(paths) })
    }
}
