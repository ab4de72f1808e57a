//! The compression pool, and the order in which it takes blocks when several layers compress at
//! once.
//!
//! Why not first come, first served: with every layer's blocks interleaved, all the layers of an
//! image finish compressing in the same instant, so the registry commits them all at the very end,
//! and CNCF distribution fsyncs each blob as it commits it. On the bench machine that was 150 ms of
//! a 2.5 s push of a 1 GiB text image with both cores idle (iowait in `/proc/stat`), after
//! everything had been sent. So each layer that starts gets a head start of [`HEAD_START`] blocks
//! over the next one: the layers finish one after another, and the commit of one overlaps with the
//! compression of the ones after it. Only the last layer's commit is left at the end. (An
//! interrupted push also has whole layers in the registry sooner, which the next push skips.)
//!
//! It is a head start, not a strict priority: a layer waits for at most a few head starts' worth
//! of the pool's work before it gets its share. Its upload request is already open and idles
//! meanwhile; this keeps that idle time well under a proxy's body timeout (nginx: 60 s).
//!
//! Only the order in which blocks are compressed changes; each layer's bytes do not, because its
//! members are still written in block order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, MutexGuard};

use rayon::{ThreadPool, ThreadPoolBuilder};

/// How many blocks a layer that starts compressing gets ahead of the one started next: 64 MiB of
/// input. On the bench's text layers this spaces the layers' ends 250 blocks apart (about 140 ms
/// there), longer than the registry's fsync of a 67 MiB blob (about 40 ms).
pub(crate) const HEAD_START: u64 = 256;

type Job = Box<dyn FnOnce() + Send>;

/// A thread pool whose threads always take the waiting block with the smallest key.
pub(crate) struct CompressionPool {
    threads: ThreadPool,
    head_start: u64,
    state: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: BinaryHeap<Waiting>,
    /// The key of the last block taken: where the layers under way have got to.
    served: u64,
    /// The base of the layer started last.
    last_base: u64,
    /// Ties between equal keys go to the block queued first.
    queued: u64,
}

struct Waiting {
    key: u64,
    order: u64,
    job: Job,
}

/// One layer's blocks on their way into the pool: block `n` waits under the key `base + n`.
pub(crate) struct Stream {
    pool: Arc<CompressionPool>,
    base: u64,
    next_block: u64,
}

impl CompressionPool {
    /// A pool of `threads` threads (0: one per core).
    pub(crate) fn new(threads: usize, head_start: u64) -> Arc<Self> {
        let threads = ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("ocipush-gzip-{i}"))
            .build()
            .expect("the compression pool starts");
        Arc::new(CompressionPool {
            threads,
            head_start,
            state: Mutex::new(Queue::default()),
        })
    }

    pub(crate) fn threads(&self) -> usize {
        self.threads.current_num_threads()
    }

    /// Starts a layer: its first block waits one head start behind the layer started before
    /// it, or behind the work under way if that is further along.
    pub(crate) fn stream(self: &Arc<Self>) -> Stream {
        let mut queue = self.queue();
        let base = queue.served.max(queue.last_base) + self.head_start;
        queue.last_base = base;
        Stream {
            pool: Arc::clone(self),
            base,
            next_block: 0,
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A job that panicked cannot leave the queue half-changed: every change is one push or pop.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs the best waiting job. One call is spawned per queued job, so every job runs once,
    /// though not necessarily on the call spawned with it.
    fn run_best(&self) {
        let job = {
            let mut queue = self.queue();
            let best = queue.waiting.pop();
            if let Some(best) = &best {
                queue.served = queue.served.max(best.key);
            }
            best
        };
        if let Some(best) = job {
            (best.job)();
        }
    }
}

impl Stream {
    /// Queues the layer's next block.
    pub(crate) fn spawn(&mut self, job: impl FnOnce() + Send + 'static) {
        let key = self.base + self.next_block;
        self.next_block += 1;
        {
            let mut queue = self.pool.queue();
            let order = queue.queued;
            queue.queued += 1;
            queue.waiting.push(Waiting {
                key,
                order,
                job: Box::new(job),
            });
        }
        let pool = Arc::clone(&self.pool);
        self.pool.threads.spawn(move || pool.run_best());
    }
}

// `BinaryHeap` pops its greatest element: the greatest here is the smallest key, then the
// earliest queued.
impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.key, other.order).cmp(&(self.key, self.order))
    }
}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.key, self.order) == (other.key, other.order)
    }
}

impl Eq for Waiting {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Runs `streams` (name, blocks) on a one-thread pool whose thread is held until every
    /// block is queued, and returns the order the blocks ran in.
    fn run_order(head_start: u64, streams: &[(char, u64)]) -> Vec<String> {
        let pool = CompressionPool::new(1, head_start);
        let (release, held) = mpsc::channel::<()>();
        let (ran, order) = mpsc::channel::<String>();
        // Occupies the only thread: queued as a block of its own stream, it is taken first.
        pool.stream().spawn(move || {
            let _ = held.recv();
        });
        for &(name, blocks) in streams {
            let mut stream = pool.stream();
            for block in 0..blocks {
                let ran = ran.clone();
                stream.spawn(move || ran.send(format!("{name}{block}")).unwrap());
            }
        }
        drop(ran);
        release.send(()).unwrap();
        order.iter().collect()
    }

    #[test]
    fn each_layer_started_gets_a_head_start_over_the_next() {
        // Bases 2 and 3 (the holder's: 1): a runs alone for one block, then they alternate.
        assert_eq!(
            run_order(1, &[('a', 5), ('b', 4)]).join(" "),
            "a0 a1 b0 a2 b1 a3 b2 a4 b3"
        );
        // A head start longer than the layer: strictly one after the other.
        assert_eq!(
            run_order(10, &[('a', 3), ('b', 3), ('c', 2)]).join(" "),
            "a0 a1 a2 b0 b1 b2 c0 c1"
        );
        // No head start: the layers take turns (ties go to the block queued first).
        assert_eq!(run_order(0, &[('a', 2), ('b', 2)]).join(" "), "a0 b0 a1 b1");
    }

    #[test]
    fn a_layer_started_later_starts_behind_the_work_under_way() {
        let pool = CompressionPool::new(1, 4);
        let mut early = pool.stream();
        let (ran, done) = mpsc::channel();
        for _ in 0..20 {
            let ran = ran.clone();
            early.spawn(move || ran.send(()).unwrap());
        }
        for _ in 0..20 {
            done.recv().unwrap();
        }
        // The early layer's blocks were served up to key 4 + 19: the next layer starts one head
        // start beyond, not at the base it would have had if nothing had run.
        assert_eq!(pool.stream().base, 4 + 19 + 4);
    }
}
