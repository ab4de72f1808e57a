//! What a blob and a run are, as the engine tells of them: a blob's id, state and outcome, and
//! what a run is about to move. Both the ledger and the reporters speak in these.

/// Identifies one blob transfer within a run.
pub type BlobId = u64;

/// What happened to a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// The repository already had it.
    Existing,
    /// Mounted from another repository of the same registry: no bytes sent.
    Mounted,
    /// Sent to the registry.
    Uploaded,
    /// Did not get in; the image fails.
    Failed,
    /// Stopped by Ctrl-C before it was done; its upload session was cancelled.
    Interrupted,
}

/// What a blob is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobState {
    /// Asking the repository whether it has the blob (HEAD).
    Checking,
    /// Asking the registry to mount it from another repository.
    Mounting,
    /// Compressing while uploading (layers stored uncompressed).
    Compressing,
    /// Sending bytes as they are.
    Uploading,
    /// Waiting for its turn to stream into a registry on this machine, which already takes as
    /// many blobs at once as there are cores.
    Waiting,
}

/// What a run is about to move, known before the first blob starts: for an overall progress
/// figure. `bytes` counts source bytes, as [`Reporter::blob_progress`](crate::Reporter::blob_progress) does, once per blob and
/// repository; it is an estimate for daemon images (the daemon's uncompressed size), so a
/// reporter should let the real figures exceed it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunTotals {
    /// Images in the run.
    pub images: usize,
    /// Blobs, once per repository.
    pub blobs: usize,
    /// Source bytes of those blobs.
    pub bytes: u64,
}
