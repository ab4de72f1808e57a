//! Whether a registry stores a blob sent whole in the request that would open its upload —
//! `POST /v2/NAME/blobs/uploads/?digest=D` carrying the bytes, the spec's "single POST" — one
//! round trip where POST + PUT take two.
//!
//! Registries may ignore the body and open a session instead (distribution answers 202 and
//! never reads it), so the question is asked once per registry, by one small upload at a time
//! (its body, sent in vain, stays under what an HTTP server drains without closing the
//! connection); the answer holds for every later upload of the client.

use std::sync::atomic::{AtomicU8, Ordering};

/// Uploads of at most this many bytes may ask the question.
pub(crate) const ASKING_LIMIT: usize = 64 * 1024;

const UNKNOWN: u8 = 0;
const ASKING: u8 = 1;
const STORES: u8 = 2;
const IGNORES: u8 = 3;

/// What a registry was found to do with a single POST.
#[derive(Debug, Default)]
pub(crate) struct SinglePost(AtomicU8);

/// How an upload goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    /// POST, then PUT with the body.
    TwoRequests,
    /// One POST with the body: the registry stores such.
    SinglePost,
    /// One POST with the body, asking whether the registry stores it: the upload must
    /// [`SinglePost::learn`] the answer, or [`SinglePost::unlearnt`] if it got none.
    Asking,
}

impl SinglePost {
    /// The way an upload of `len` bytes goes.
    pub(crate) fn way(&self, len: usize) -> Way {
        match self.0.load(Ordering::Acquire) {
            STORES => Way::SinglePost,
            UNKNOWN
                if len <= ASKING_LIMIT
                    && self
                        .0
                        .compare_exchange(UNKNOWN, ASKING, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok() =>
            {
                Way::Asking
            }
            _ => Way::TwoRequests,
        }
    }

    /// The answer to the question: the registry stored the blob, or not.
    pub(crate) fn learn(&self, stores: bool) {
        self.0
            .store(if stores { STORES } else { IGNORES }, Ordering::Release);
    }

    /// The asking upload failed before an answer: the next small upload asks again.
    pub(crate) fn unlearnt(&self) {
        let _ = self
            .0
            .compare_exchange(ASKING, UNKNOWN, Ordering::AcqRel, Ordering::Acquire);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_small_upload_asks_and_the_answer_holds() {
        let post = SinglePost::default();
        assert_eq!(post.way(ASKING_LIMIT + 1), Way::TwoRequests);
        assert_eq!(post.way(100), Way::Asking);
        // One question at a time.
        assert_eq!(post.way(100), Way::TwoRequests);
        post.unlearnt();
        assert_eq!(post.way(100), Way::Asking);
        post.learn(true);
        assert_eq!(post.way(16 << 20), Way::SinglePost);

        let ignores = SinglePost::default();
        assert_eq!(ignores.way(10), Way::Asking);
        ignores.learn(false);
        assert_eq!(ignores.way(10), Way::TwoRequests);
        // Once learnt, a late `unlearnt` changes nothing.
        ignores.unlearnt();
        assert_eq!(ignores.way(10), Way::TwoRequests);
    }
}
