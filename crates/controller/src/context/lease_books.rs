//! What this process remembers of the leases generators issued, between
//! reconciles. It lives with the `Context` that holds it, apart from the
//! generators that fill it, so the generators can read the `Context` without
//! an import circle.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use kube::runtime::reflector::ObjectRef;
use vaultsync_api::{ExternalSecret, IssuedLease};

use crate::secret_data::SecretData;

/// What this process knows of each ExternalSecret's leases: the status as
/// last written (the watch cache may lag behind it) and the values.
#[derive(Default)]
pub(crate) struct LeaseBooks {
    books: Mutex<HashMap<ObjectRef<ExternalSecret>, Book>>,
    revoke_tries: Mutex<HashMap<ObjectRef<ExternalSecret>, u32>>,
}

#[derive(Clone, Default)]
pub(crate) struct Book {
    pub leases: Vec<IssuedLease>,
    pub data: BTreeMap<usize, SecretData>,
}

impl LeaseBooks {
    /// The leases to report in status: this process's record when it has
    /// one, else what the status already says.
    pub(crate) fn recorded(&self, key: &ObjectRef<ExternalSecret>) -> Option<Vec<IssuedLease>> {
        self.books.lock().expect("lease lock").get(key).map(|b| b.leases.clone())
    }

    pub(crate) fn get(&self, key: &ObjectRef<ExternalSecret>) -> Option<Book> {
        self.books.lock().expect("lease lock").get(key).cloned()
    }

    pub(crate) fn put(&self, key: &ObjectRef<ExternalSecret>, book: Book) {
        self.books.lock().expect("lease lock").insert(key.clone(), book);
    }

    /// Forgets every record (a new term of leadership).
    pub(crate) fn clear(&self) {
        self.books.lock().expect("lease lock").clear();
        self.revoke_tries.lock().expect("lease lock").clear();
    }

    pub(crate) fn forget(&self, key: &ObjectRef<ExternalSecret>) {
        self.books.lock().expect("lease lock").remove(key);
        self.revoke_tries.lock().expect("lease lock").remove(key);
    }

    /// Counts a failed revocation round; returns how many there were.
    pub(crate) fn revoke_failed(&self, key: &ObjectRef<ExternalSecret>) -> u32 {
        let mut tries = self.revoke_tries.lock().expect("lease lock");
        let count = tries.entry(key.clone()).or_insert(0);
        *count += 1;
        *count
    }
}
