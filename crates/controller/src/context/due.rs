//! The depth of the ExternalSecret work queue: how many ExternalSecrets
//! have a reconcile due (a change seen, a retry or a refresh whose time has
//! come) that has not started yet. kube-runtime keeps its scheduler to
//! itself, so this mirrors it from what the controller sees: every trigger
//! fed to it, every requeue a reconcile asks for, every reconcile start.
//! A backlog behind `--concurrency`, or after a Vault server returns,
//! shows here.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct DueTracker<K> {
    due: Mutex<HashMap<K, Instant>>,
}

impl<K> Default for DueTracker<K> {
    fn default() -> Self {
        Self { due: Mutex::default() }
    }
}

impl<K: Hash + Eq> DueTracker<K> {
    /// A trigger reached the controller: `key` is due now.
    pub fn triggered(&self, key: K) {
        self.due_at(key, Instant::now());
    }

    /// A reconcile of `key` asked to run again after `after`. A trigger
    /// that arrived while it ran stays due: the controller runs it next.
    pub fn requeued(&self, key: K, after: Duration) {
        self.due_at(key, Instant::now() + after);
    }

    /// A reconcile of `key` started.
    pub fn started(&self, key: &K) {
        self.lock().remove(key);
    }

    /// `key` is gone: nothing more is due for it.
    pub fn forget(&self, key: &K) {
        self.lock().remove(key);
    }

    /// Leadership ended: the next term starts from its own triggers.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many keys are due and not started.
    pub fn depth(&self) -> usize {
        let now = Instant::now();
        self.lock().values().filter(|at| **at <= now).count()
    }

    fn due_at(&self, key: K, at: Instant) {
        let mut due = self.lock();
        let entry = due.entry(key).or_insert(at);
        *entry = (*entry).min(at);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Instant>> {
        self.due.lock().expect("due tracker lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_until_started() {
        let due = DueTracker::default();
        due.triggered("a");
        due.triggered("b");
        due.triggered("a");
        assert_eq!(due.depth(), 2, "one entry per key, however many triggers");
        due.started(&"a");
        assert_eq!(due.depth(), 1);
        due.forget(&"b");
        assert_eq!(due.depth(), 0);
    }

    #[test]
    fn a_requeue_is_due_when_its_time_comes() {
        let due = DueTracker::default();
        due.requeued("a", Duration::from_secs(3600));
        assert_eq!(due.depth(), 0);
        due.requeued("b", Duration::ZERO);
        assert_eq!(due.depth(), 1);
    }

    #[test]
    fn a_trigger_during_a_reconcile_outlasts_its_requeue() {
        let due = DueTracker::default();
        due.triggered("a");
        due.started(&"a");
        // A change arrives while the reconcile runs ...
        due.triggered("a");
        // ... which then asks for its next refresh in an hour: the change
        // is still due.
        due.requeued("a", Duration::from_secs(3600));
        assert_eq!(due.depth(), 1);
        // A trigger for a key scheduled later makes it due now.
        due.started(&"a");
        due.requeued("a", Duration::from_secs(3600));
        due.triggered("a");
        assert_eq!(due.depth(), 1);
        due.clear();
        assert_eq!(due.depth(), 0);
    }
}
