//! Read sharing: callers asking for the same secret while a read is in
//! flight, or within the read window of its answer, share that one request
//! and its answer (errors included), so a burst of reconciles costs Vault
//! one read.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::OnceCell;

use super::Client;
use crate::{KvSecret, Result};

/// One read of a secret, shared by everyone asking within the window.
pub(super) type SharedRead = OnceCell<(Instant, Result<KvSecret>)>;

/// Whether a read may be answered by one that is in flight or just done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Freshness {
    /// Share a read in flight, or one answered within the read window.
    #[default]
    Shared,
    /// Start a new read. For a caller asked to see Vault as it is now (a
    /// force-sync): a read that began before the request may predate the
    /// change the person is waiting for. Later callers share this one.
    Now,
}

impl Client {
    /// The answer of `read` for `key`, or of the read of `key` in flight or
    /// answered within the read window (unless `freshness` is
    /// [`Freshness::Now`]). `read` runs only when no such read exists.
    pub(super) async fn coalesce(
        &self,
        key: String,
        freshness: Freshness,
        read: impl Future<Output = Result<KvSecret>>,
    ) -> Result<KvSecret> {
        let window = self.inner.read_window;
        let cell = {
            let mut reads = self.inner.reads.lock().expect("read cache lock");
            // Answers older than the window are dropped, so memory holds
            // only what is being or was just read.
            reads.retain(|_, cell| cell.get().is_none_or(|(at, _)| at.elapsed() < window));
            match freshness {
                Freshness::Shared => reads.entry(key).or_default().clone(),
                Freshness::Now => {
                    let cell = Arc::new(SharedRead::new());
                    reads.insert(key, cell.clone());
                    cell
                }
            }
        };
        let mut asked = false;
        let (_, answer) = cell
            .get_or_init(|| async {
                asked = true;
                (Instant::now(), read.await)
            })
            .await;
        if !asked {
            self.inner.coalesced.fetch_add(1, Ordering::Relaxed);
        }
        answer.clone()
    }
}
