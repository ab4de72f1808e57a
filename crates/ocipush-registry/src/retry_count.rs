//! Whose retries these are: a push counts the retries of each image apart, but the requests of
//! one image run in several tasks and share clients with other images. A task-local counter
//! follows an image's work — set around its push, carried into the tasks it spawns — so each
//! retry counts once, for the image whose work it was.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

tokio::task_local! {
    static COUNTER: Arc<AtomicU64>;
}

/// Runs `work` with every retry made within it counted into `counter`.
pub async fn counting_retries<F: Future>(counter: Arc<AtomicU64>, work: F) -> F::Output {
    COUNTER.scope(counter, work).await
}

/// Wraps `work` (about to be spawned) so its retries count where the spawning task's do.
pub fn in_current_count<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let counter = COUNTER.try_with(Arc::clone).ok();
    async move {
        match counter {
            Some(counter) => COUNTER.scope(counter, work).await,
            None => work.await,
        }
    }
}

/// Counts one retry (a request sent again, an upload started over or resumed) for whoever's
/// work this is; nothing outside [`counting_retries`].
pub fn note_retry() {
    let _ = COUNTER.try_with(|counter| counter.fetch_add(1, Ordering::Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_count_for_the_work_that_made_them_and_its_spawned_tasks() {
        let mine = Arc::new(AtomicU64::new(0));
        let theirs = Arc::new(AtomicU64::new(0));
        let (_, _) = tokio::join!(
            counting_retries(mine.clone(), async {
                note_retry();
                tokio::spawn(in_current_count(async { note_retry() }))
                    .await
                    .unwrap();
                // Spawned without carrying the counter: not counted.
                tokio::spawn(async { note_retry() }).await.unwrap();
            }),
            counting_retries(theirs.clone(), async { note_retry() }),
        );
        note_retry();
        assert_eq!(mine.load(Ordering::Relaxed), 2);
        assert_eq!(theirs.load(Ordering::Relaxed), 1);
    }
}
