//! Turns to send a stored blob to a registry that runs on this machine: at most one blob per
//! core streams at once, the others wait their turn, in the order they asked.
//!
//! Why: such a registry works on the same cores as ocipush. CNCF distribution hashes each
//! upload on one core and fsyncs each blob as it commits it. With more blobs streaming than
//! there are cores, the blobs only share the cores, all arrive at the very end together and
//! the registry commits them all at once, with the cores idle while the disk catches up. With
//! one blob per core, the cores stay as busy, the first blobs end earlier, and their commits
//! overlap with the sending of the rest. A turn is handed back when the body's last byte has
//! been taken, not when the registry answers, for that overlap. On the bench's 2 cores, a cold
//! push of a 1 GiB OCI layout of 4 blobs into `docker-registry` took 1.07–1.16x the curl
//! limit before and 0.99–1.06x after in three side-by-side sets, the registry itself spending
//! about 5% less CPU (BENCHMARKS.md, 2026-12-03).
//!
//! Only for a registry on this machine: across a network, each connection may be held to its
//! own rate (a window over a long round trip, a storage service's per-request limit), where
//! blobs sent in parallel add up. And only for the blobs of OCI layouts and oci-archives, sent
//! byte for byte: a layer ocipush compresses is paced by the compression pool, which orders
//! layers its own way; an already compressed layer of a docker archive or a daemon's export is
//! decompressed on the way to check its diffID, which paces it too (and a daemon's layers come
//! in the order of its one export stream, which a wait for a turn could stall).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use ocipush_registry::BodyChunk;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Blobs smaller than this stream in a few milliseconds: they gain nothing from waiting their
/// turn (an image's config would wait for whole layers), so they go at once.
pub(crate) const TURN_MIN_SIZE: u64 = 4 << 20;

/// The turns of a run, shared by every upload to a registry on this machine.
#[derive(Debug)]
pub(crate) struct SendTurns {
    turns: Arc<Semaphore>,
}

/// One blob's turn to send; the next blob's starts when this is dropped.
#[derive(Debug)]
pub(crate) struct Turn {
    _permit: OwnedSemaphorePermit,
}

impl SendTurns {
    /// `count` blobs may stream at once (at least one).
    pub fn new(count: usize) -> SendTurns {
        SendTurns {
            turns: Arc::new(Semaphore::new(count.max(1))),
        }
    }

    /// A turn, if one is free now.
    pub fn try_take(&self) -> Option<Turn> {
        let permit = Arc::clone(&self.turns).try_acquire_owned().ok()?;
        Some(Turn { _permit: permit })
    }

    /// Waits for a turn; turns go in the order they were asked for.
    pub async fn take(&self) -> Turn {
        let permit = Arc::clone(&self.turns)
            .acquire_owned()
            .await
            .expect("the turns' semaphore is never closed");
        Turn { _permit: permit }
    }
}

/// The body, handing `turn` back once its last chunk has been taken (or when the body is
/// dropped: a failed or cancelled request).
pub(crate) fn holding_turn<S>(body: S, turn: Option<Turn>) -> HoldingTurn<S> {
    HoldingTurn { body, turn }
}

pub(crate) struct HoldingTurn<S> {
    body: S,
    turn: Option<Turn>,
}

impl<S: Stream<Item = BodyChunk> + Unpin> Stream for HoldingTurn<S> {
    type Item = BodyChunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BodyChunk>> {
        let next = Pin::new(&mut self.body).poll_next(cx);
        if let Poll::Ready(None) = next {
            self.turn = None;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures_util::StreamExt;

    fn chunks(n: usize) -> impl Stream<Item = BodyChunk> + Unpin {
        futures_util::stream::iter((0..n).map(|_| Ok(Bytes::from_static(b"abc"))))
    }

    #[tokio::test]
    async fn a_turn_comes_back_when_the_last_chunk_is_taken_not_when_the_body_is_dropped() {
        let turns = SendTurns::new(1);
        let mut body = holding_turn(chunks(2), turns.try_take());
        assert!(turns.try_take().is_none(), "the one turn is taken");
        body.next().await.expect("a chunk").expect("bytes");
        body.next().await.expect("a chunk").expect("bytes");
        assert!(turns.try_take().is_none(), "the body has not ended yet");
        assert!(body.next().await.is_none());
        // The request still holds the body (it waits for the registry's answer), but the
        // next blob may start streaming.
        assert!(
            turns.try_take().is_some(),
            "the turn came back at the body's end"
        );
        drop(body);
    }

    #[tokio::test]
    async fn a_dropped_body_hands_its_turn_back() {
        let turns = SendTurns::new(1);
        let mut body = holding_turn(chunks(3), turns.try_take());
        body.next().await.expect("a chunk").expect("bytes");
        drop(body);
        assert!(turns.try_take().is_some());
    }

    #[tokio::test]
    async fn turns_go_in_the_order_they_were_asked_for() {
        let turns = Arc::new(SendTurns::new(1));
        let first = turns.try_take().expect("a free turn");
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for i in 0..3 {
            let (turns, order) = (Arc::clone(&turns), Arc::clone(&order));
            waiting.push(tokio::spawn(async move {
                let turn = turns.take().await;
                order.lock().expect("not poisoned").push(i);
                drop(turn);
            }));
            // On this single-threaded runtime, the waiter runs (and asks) before this goes on.
            tokio::task::yield_now().await;
        }
        drop(first);
        for task in waiting {
            task.await.expect("the waiter ran");
        }
        assert_eq!(*order.lock().expect("not poisoned"), vec![0, 1, 2]);
    }
}
