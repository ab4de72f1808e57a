//! Whether a registry stores a blob sent whole in the request that would open its upload —
//! `POST /v2/NAME/blobs/uploads/?digest=D` carrying the bytes, the spec's "single POST" — one
//! round trip where POST + PUT take two.
//!
//! Registries may ignore the body and open a session instead (distribution answers 202 and
//! never reads it), so the question is asked once per registry, by one small upload at a time
//! (its body, sent in vain, stays under what an HTTP server drains without closing the
//! connection). An answer — 201 and the blob then found there, or 202, or a status that says
//! the request is not understood — is kept for the client's later uploads; a failure that says
//! nothing about single POSTs (a refused repository, a 5xx, a cut connection) leaves the
//! question to the next small upload. A registry that answered "stores" and later answers 202
//! is taken at its word: "ignores" from then on.

use std::sync::atomic::{AtomicU8, Ordering};

/// Uploads of at most this many bytes may ask the question.
pub(crate) const ASKING_LIMIT: usize = 64 * 1024;

const UNKNOWN: u8 = 0;
const ASKING: u8 = 1;
const STORES: u8 = 2;
const IGNORES: u8 = 3;

/// What a registry was found to do with a single POST.
#[derive(Debug, Default)]
pub(crate) struct SinglePost {
    state: AtomicU8,
}

/// How an upload goes.
#[derive(Debug)]
pub(crate) enum Way<'a> {
    /// POST, then PUT with the body.
    TwoRequests,
    /// One POST with the body: the registry stores such.
    SinglePost,
    /// One POST with the body, asking whether the registry stores it.
    Asking(Question<'a>),
}

/// The one upload asking the question. Dropped while the state still says "asking" (no
/// answer was learnt: the upload failed, or was stopped), it hands the question on to the next
/// small upload.
#[derive(Debug)]
pub(crate) struct Question<'a>(&'a SinglePost);

impl Drop for Question<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .state
            .compare_exchange(ASKING, UNKNOWN, Ordering::AcqRel, Ordering::Acquire);
    }
}

impl SinglePost {
    /// The way an upload of `len` bytes goes.
    pub(crate) fn way(&self, len: usize) -> Way<'_> {
        match self.state.load(Ordering::Acquire) {
            STORES => Way::SinglePost,
            UNKNOWN
                if len <= ASKING_LIMIT
                    && self
                        .state
                        .compare_exchange(UNKNOWN, ASKING, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok() =>
            {
                Way::Asking(Question(self))
            }
            _ => Way::TwoRequests,
        }
    }

    /// An answer, from the asking upload (before it drops its [`Question`]) or a later one.
    pub(crate) fn learn(&self, stores: bool) {
        self.state
            .store(if stores { STORES } else { IGNORES }, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asks(way: &Way<'_>) -> bool {
        matches!(way, Way::Asking(_))
    }

    #[test]
    fn one_small_upload_asks_and_the_answer_holds() {
        let post = SinglePost::default();
        assert!(matches!(post.way(ASKING_LIMIT + 1), Way::TwoRequests));
        let first = post.way(100);
        assert!(asks(&first));
        // One question at a time.
        assert!(matches!(post.way(100), Way::TwoRequests));
        // Unanswered (the upload failed or was stopped): the next one asks.
        drop(first);
        let Way::Asking(question) = post.way(100) else {
            panic!("the question was not handed on");
        };
        post.learn(true);
        drop(question);
        assert!(matches!(post.way(16 << 20), Way::SinglePost));

        let ignores = SinglePost::default();
        let Way::Asking(question) = ignores.way(10) else {
            panic!("nobody asked");
        };
        ignores.learn(false);
        drop(question);
        assert!(matches!(ignores.way(10), Way::TwoRequests));
        // A registry that stored and then ignores a body is believed the second time.
        post.learn(false);
        assert!(matches!(post.way(10), Way::TwoRequests));
    }
}
