//! Progress as bytes leave for the registry, not as they are read. The producer reads ahead of
//! the request by the body's channel (a few chunks), and compression by the blocks in flight;
//! counted at the read, progress ran that far ahead of the wire, which under `--limit-rate`
//! meant seconds (1 MiB ahead at 1 MiB/s, and a small blob shown done long before it was).
//!
//! So the producer marks each chunk it hands over with how many source bytes it had consumed
//! to make everything up to that chunk's end ([`SourceMarks`]), and the body reports a chunk's
//! source bytes only when the request takes the chunk, after the rate limit
//! ([`report_as_sent`]). Progress stays in source bytes, as the [`crate::Reporter`] expects.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use futures_util::{Stream, StreamExt};
use ocipush_registry::BodyChunk;

/// The producer's side: source bytes consumed so far, and a mark per chunk handed over.
#[derive(Debug, Default)]
pub(crate) struct SourceMarks {
    consumed: AtomicU64,
    /// (bytes of body up to a chunk's end, source bytes consumed to make them), oldest first.
    marks: Mutex<VecDeque<(u64, u64)>>,
}

impl SourceMarks {
    /// `bytes` more of the source went into what has been written to the body so far.
    pub fn consumed(&self, bytes: u64) {
        self.consumed.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A chunk ending at body offset `sent_end` is handed to the request.
    pub fn chunk_sent(&self, sent_end: u64) {
        let consumed = self.consumed.load(Ordering::Relaxed);
        self.lock().push_back((sent_end, consumed));
    }

    /// The source bytes behind the body's first `taken` bytes (those of the last chunk that
    /// ends within them).
    fn source_behind(&self, taken: u64) -> Option<u64> {
        let mut marks = self.lock();
        let mut behind = None;
        while let Some(&(end, consumed)) = marks.front() {
            if end > taken {
                break;
            }
            behind = Some(consumed);
            marks.pop_front();
        }
        behind
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, u64)>> {
        // Nothing panics under the lock: a poisoned one still holds whole marks.
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The body, calling `progress` with source bytes as the request takes its chunks. The body
/// starts `offset` bytes in (a resumed upload): those bytes are already in the registry.
pub(crate) fn report_as_sent(
    body: impl Stream<Item = BodyChunk> + Send + 'static,
    marks: std::sync::Arc<SourceMarks>,
    offset: u64,
    progress: impl Fn(u64) + Send + 'static,
) -> impl Stream<Item = BodyChunk> + Send + 'static {
    let mut taken = offset;
    let mut reported = 0u64;
    body.inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            taken += bytes.len() as u64;
            if let Some(behind) = marks.source_behind(taken) {
                if behind > reported {
                    progress(behind - reported);
                    reported = behind;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::{Arc, Mutex};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn source_bytes_are_reported_when_their_chunk_is_taken() {
        let marks = Arc::new(SourceMarks::default());
        // Three chunks of 10 body bytes, made from 40, 40 and 20 source bytes.
        for (i, source) in [40, 40, 20].into_iter().enumerate() {
            marks.consumed(source);
            marks.chunk_sent(10 * (i as u64 + 1));
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let chunks = (0..3).map(|_| Ok(Bytes::from(vec![0u8; 10])));
        let body = report_as_sent(futures_util::stream::iter(chunks), marks, 0, move |n| {
            log.lock().unwrap().push(n)
        });
        let mut body = Box::pin(body);
        block_on(async {
            // Nothing is reported before the request takes a chunk.
            assert!(seen.lock().unwrap().is_empty());
            body.next().await;
            assert_eq!(*seen.lock().unwrap(), [40]);
            while body.next().await.is_some() {}
        });
        assert_eq!(*seen.lock().unwrap(), [40, 40, 20]);
    }

    #[test]
    fn a_resumed_body_reports_what_it_skipped_with_its_first_chunk() {
        let marks = Arc::new(SourceMarks::default());
        marks.consumed(50);
        marks.chunk_sent(10);
        marks.consumed(50);
        marks.chunk_sent(20);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        // The registry had the first 15 bytes: the body starts with the last 5 of chunk 2.
        let body = report_as_sent(
            futures_util::stream::iter([Ok(Bytes::from(vec![0u8; 5]))]),
            marks,
            15,
            move |n| log.lock().unwrap().push(n),
        );
        block_on(body.for_each(|_| async {}));
        assert_eq!(*seen.lock().unwrap(), [100]);
    }

    /// Source bytes behind each chunk the body hands out, as the request would take them, for
    /// 3 MiB of random bytes produced whole into a roomy channel first (as if the request had
    /// stalled while the producer read on).
    fn reported_per_chunk(data: Vec<u8>, transform: crate::producer::Transform) -> Vec<u64> {
        use crate::producer::produce;
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let marks = Arc::new(SourceMarks::default());
        produce(
            Box::new(std::io::Cursor::new(data)),
            &transform,
            "blob",
            tx,
            Arc::clone(&marks),
        )
        .unwrap();
        let total = Arc::new(Mutex::new(0u64));
        let sum = Arc::clone(&total);
        let body = report_as_sent(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            marks,
            0,
            move |n| *sum.lock().unwrap() += n,
        );
        let mut body = Box::pin(body);
        let mut seen = Vec::new();
        block_on(async {
            while body.next().await.is_some() {
                seen.push(*total.lock().unwrap());
            }
        });
        seen
    }

    #[test]
    fn progress_follows_the_chunks_taken_not_the_bytes_read() {
        use crate::producer::{Transform, CHUNK};
        let chunk = CHUNK as u64;
        let data = crate::producer::random_bytes(3 << 20);
        // Read and sent chunk by chunk: each chunk is its own source bytes.
        let verbatim = reported_per_chunk(
            data.clone(),
            Transform::Verbatim {
                digest: ocipush_oci::sha256_of(&data),
                size: data.len() as u64,
            },
        );
        let expected: Vec<u64> = (1..=12).map(|k| k * chunk).collect();
        assert_eq!(verbatim, expected);
        // Random blocks are stored: a member is a block and a few bytes, so chunk k holds all
        // of block k-1's member but not yet block k's.
        let gzip = reported_per_chunk(
            data,
            Transform::Gzip {
                diff_id: None,
                level: 1,
            },
        );
        assert!(gzip.len() >= 12, "{gzip:?}");
        for (k, reported) in gzip.iter().enumerate().take(gzip.len() - 1) {
            assert!(*reported <= k as u64 * chunk, "chunk {k}: {gzip:?}");
        }
        assert_eq!(gzip.last(), Some(&(3 << 20)), "all of it, in the end");
    }
}
