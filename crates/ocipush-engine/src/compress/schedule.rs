//! The compression pool, and the order in which it takes blocks when several layers compress at
//! once.
//!
//! Why not first come, first served: with every layer's blocks interleaved, all the layers of an
//! image finish compressing in the same instant, so the registry commits them all at the very end,
//! and CNCF distribution fsyncs each blob as it commits it. On the bench machine that was 150 ms of
//! a 2.5 s push of a 1 GiB text image with both cores idle (iowait in `/proc/stat`), after
//! everything had been sent. So each layer that starts gets a head start over the next one
//! ([`HEAD_START_PER_THREAD`] blocks per pool thread): the layers finish one after another, and
//! the commit of one overlaps with the compression of the ones after it. Only the last layer's commit is left at the end. (An
//! interrupted push also has whole layers in the registry sooner, which the next push skips.)
//!
//! It is a head start, not a strict priority: a layer's first block never waits more than
//! [`MAX_LEAD`] head starts beyond the work under way, however many layers started before it,
//! so it waits for at most that many blocks of each layer under way. Its upload request is
//! already open and idles meanwhile: at the default `-j 4`, layers started together wait for at
//! most six head starts of the pool's work (384 MiB of input on 2 cores, under half a second at
//! level 1 here) and any layer for at most sixteen, far from a proxy's body timeout (nginx: 60
//! s). A layer whose upload held it back (a slow registry) keeps its place and catches up first
//! when it can go on.
//!
//! Only the order in which blocks are compressed changes; each layer's bytes do not, because its
//! members are still written in block order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, MutexGuard};

use rayon::{ThreadPool, ThreadPoolBuilder};

/// How many blocks per pool thread a layer that starts compressing gets ahead of the one
/// started next, so that a head start lasts about as long on any number of cores. On the bench's
/// 2 cores: 256 blocks, 64 MiB of input, which spaces its text layers' ends about 140 ms apart,
/// longer than the registry's fsync of one 67 MiB blob (about 40 ms).
pub(crate) const HEAD_START_PER_THREAD: u64 = 128;

/// The most head starts a layer's first block waits beyond the work under way: enough to space
/// the default `-j 4` layers started together one head start apart, a bound for any `-j`.
const MAX_LEAD: u64 = 4;

type Job = Box<dyn FnOnce() + Send>;

/// A thread pool whose threads always take the waiting block with the smallest key.
pub(crate) struct CompressionPool {
    workers: ThreadPool,
    head_start: u64,
    state: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: BinaryHeap<Waiting>,
    /// The greatest key taken so far: where the layers under way have got to.
    served: u64,
    /// The base of the layer started last.
    last_base: u64,
    /// The order number of the next block queued: ties between equal keys go to the block
    /// queued first.
    next_order: u64,
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
    /// A pool of `thread_count` threads (0: one per core), giving each layer started
    /// `head_start_per_thread` blocks per thread over the next.
    pub(crate) fn new(thread_count: usize, head_start_per_thread: u64) -> Arc<Self> {
        let workers = ThreadPoolBuilder::new()
            .num_threads(thread_count)
            .thread_name(|i| format!("ocipush-gzip-{i}"))
            .build()
            .expect("the compression pool starts");
        let head_start = head_start_per_thread * workers.current_num_threads() as u64;
        Arc::new(CompressionPool {
            workers,
            head_start,
            state: Mutex::new(Queue::default()),
        })
    }

    pub(crate) fn thread_count(&self) -> usize {
        self.workers.current_num_threads()
    }

    /// Starts a layer: its first block waits one head start behind the layer started before
    /// it, or behind the work under way if that is further along, but never more than
    /// [`MAX_LEAD`] head starts beyond the work under way.
    pub(crate) fn stream(self: &Arc<Self>) -> Stream {
        let mut queue = self.queue();
        let behind_the_last = queue.served.max(queue.last_base) + self.head_start;
        let base = behind_the_last.min(queue.served + MAX_LEAD * self.head_start);
        queue.last_base = base;
        Stream {
            pool: Arc::clone(self),
            base,
            next_block: 0,
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Nothing that can panic runs under the lock (jobs run after it is released), so a
        // poisoned lock still guards a whole queue.
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
            let order = queue.next_order;
            queue.next_order += 1;
            queue.waiting.push(Waiting {
                key,
                order,
                job: Box::new(job),
            });
        }
        let pool = Arc::clone(&self.pool);
        self.pool.workers.spawn(move || pool.run_best());
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

    #[test]
    fn no_layer_starts_more_than_max_lead_head_starts_ahead() {
        // Eight layers started together (as with -j 8): the first four one head start apart,
        // the others no further than MAX_LEAD head starts beyond the work under way (none yet).
        let pool = CompressionPool::new(1, 10);
        let bases: Vec<u64> = (0..8).map(|_| pool.stream().base).collect();
        assert_eq!(bases, [10, 20, 30, 40, 40, 40, 40, 40]);
        // The head start is per pool thread.
        let pool = CompressionPool::new(3, 10);
        assert_eq!(pool.head_start, 30);
        assert_eq!(pool.stream().base, 30);
    }
}
