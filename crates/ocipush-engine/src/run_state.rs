//! What a push run shares while it runs: the budget, the stop, the digest cache and rate
//! limit, and — for the layers a daemon's export streams by, whose digests are learnt only
//! then — which compressed digest each turned out to have, which repositories hold which
//! blobs (for mounts), and the one push of each into each repository.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ocipush_oci::Digest;
use tokio::sync::{OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::cache::DigestCache;
use crate::compress::CompressionSettings;
use crate::error::PushError;
use crate::job::PushedBlob;
use crate::rate::RateLimit;
use crate::send_turns::SendTurns;

pub(crate) type SharedPush = Arc<OnceCell<Result<PushedBlob, Arc<PushError>>>>;
pub(crate) type SharedDigest = Arc<OnceCell<(Digest, u64)>>;

/// Run-wide blob knowledge.
pub(crate) struct RunState {
    /// Big blobs in flight at once (`-j`), across every image of the run.
    pub budget: Arc<Semaphore>,
    /// MiB that small blobs produced into memory may hold at once (see `small_upload`).
    pub in_memory: Arc<Semaphore>,
    /// Blobs up to this size go the small way (`PushOptions::small_blob`).
    pub small_blob: u64,
    /// Small blobs produced (read, compressed, hashed) at once: one per core.
    pub producing: Semaphore,
    /// Set on Ctrl-C: uploads stop and cancel their sessions, no manifest is written.
    pub cancel: CancellationToken,
    next_id: AtomicU64,
    pub cache: DigestCache,
    pub compression: CompressionSettings,
    /// `--limit-rate`, shared by every upload body of the run.
    pub rate: Option<Arc<RateLimit>>,
    /// Turns to stream stored blobs into a registry on this machine.
    pub send_turns: SendTurns,
    /// Blob key -> the digest and size of the bytes it produces, once known in this run.
    digests: Mutex<HashMap<String, SharedDigest>>,
    /// (registry, digest) -> repositories on that registry that hold the blob.
    holders: Mutex<HashMap<(String, Digest), Vec<String>>>,
    /// (registry/repository, blob key) -> the push of that blob into that repository.
    pushes: Mutex<HashMap<(String, String), SharedPush>>,
}

impl RunState {
    pub fn new(
        jobs: usize,
        cache: DigestCache,
        compression: CompressionSettings,
        cancel: CancellationToken,
        limit_rate: Option<u64>,
        small_blob: u64,
    ) -> RunState {
        // Stored blobs streaming at once into a registry on this machine: one per core it may
        // use (see `send_turns`).
        let local_sends = std::thread::available_parallelism().map_or(1, |n| n.get());
        RunState {
            budget: Arc::new(Semaphore::new(jobs.max(1))),
            in_memory: Arc::new(Semaphore::new(crate::small_upload::IN_MEMORY_MIB as usize)),
            small_blob,
            producing: Semaphore::new(local_sends),
            cancel,
            next_id: AtomicU64::new(0),
            cache,
            compression,
            rate: limit_rate.map(|rate| Arc::new(RateLimit::new(rate))),
            send_turns: SendTurns::new(local_sends),
            digests: Mutex::default(),
            holders: Mutex::default(),
            pushes: Mutex::default(),
        }
    }

    /// Remembers in the digest cache what a layer ocipush compressed turned out to be under
    /// the run's settings, and how big it is uncompressed, so the next run knows both before
    /// reading it.
    pub fn remember_layer(&self, diff_id: &Digest, digest: &Digest, size: u64, layer_size: u64) {
        self.cache.put(diff_id, &self.compression, digest, size);
        self.cache.put_layer_size(diff_id, layer_size);
    }

    /// A new id for a blob transfer, for the reporter.
    pub fn next_blob_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn digest_cell(&self, key: &str) -> SharedDigest {
        self.digests
            .lock()
            .expect("digests lock")
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    pub fn push_cell(&self, repository: &str, key: &str) -> SharedPush {
        self.pushes
            .lock()
            .expect("pushes lock")
            .entry((repository.to_string(), key.to_string()))
            .or_default()
            .clone()
    }

    /// Forgets pushes that failed, so a later attempt (a daemon's next export) can try again;
    /// whoever waited on them has already seen the failure.
    pub fn forget_failures(&self) {
        self.pushes
            .lock()
            .expect("pushes lock")
            .retain(|_, cell| !matches!(cell.get(), Some(Err(_))));
    }

    /// Records that `repository` on `registry` holds `digest`.
    pub fn add_holder(&self, registry: &str, repository: &str, digest: &Digest) {
        let mut holders = self.holders.lock().expect("holders lock");
        let list = holders
            .entry((registry.to_string(), digest.clone()))
            .or_default();
        if !list.iter().any(|r| r == repository) {
            list.push(repository.to_string());
        }
    }

    /// Another repository on `registry` known to hold `digest`, to mount from.
    pub fn holder_other_than(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> Option<String> {
        self.holders
            .lock()
            .expect("holders lock")
            .get(&(registry.to_string(), digest.clone()))?
            .iter()
            .find(|r| *r != repository)
            .cloned()
    }
}
