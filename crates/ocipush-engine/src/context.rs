//! What a blob push needs from its surroundings: the repository, the source's files, the
//! reporter, and what the run shares. Every step of a blob's push takes one.

use std::sync::Arc;

use ocipush_oci::Digest;
use ocipush_registry::Repository;
use ocipush_source::BlobReader;

use crate::reporter::Reporter;
use crate::run_state::RunState;

/// Everything a blob push needs from its surroundings.
#[derive(Clone)]
pub(crate) struct BlobContext {
    pub repository: Repository,
    pub blobs: Arc<dyn BlobReader>,
    pub reporter: Arc<dyn Reporter>,
    pub retries: u32,
    pub state: Arc<RunState>,
}

impl BlobContext {
    pub(crate) fn registry(&self) -> &str {
        self.repository.client().registry()
    }

    /// Records that this repository now holds `digest`, for other repositories to mount from.
    /// Called the moment the blob is confirmed — before a waiting image can learn its digest —
    /// so that image finds a repository to mount from.
    pub(crate) fn now_holds(&self, digest: &Digest) {
        self.state
            .add_holder(self.registry(), self.repository.name(), digest);
    }

    pub(crate) fn repository_key(&self) -> String {
        format!("{}/{}", self.registry(), self.repository.name())
    }
}
