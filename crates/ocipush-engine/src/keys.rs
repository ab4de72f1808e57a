//! The names the engine keys its decisions by: a repository on a registry, and a blob as it is
//! known before it is produced. Typed so that two views of one thing cannot disagree on how it
//! is spelled.

use std::fmt;

use ocipush_oci::{Compression, Digest};
use ocipush_registry::Reference;
use serde::Serialize;

use crate::compress::Algorithm;

/// One repository on one registry: where a blob is pushed, held or mounted from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RepoKey {
    /// `host[:port]`, as in [`Reference::registry`].
    pub registry: String,
    /// The repository path inside the registry (`team/app`).
    pub repository: String,
}

impl RepoKey {
    /// The repository a reference points into.
    pub fn of(reference: &Reference) -> RepoKey {
        RepoKey {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
        }
    }
}

impl fmt::Display for RepoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

/// A blob as the plan knows it: two plan entries with the same key produce the same bytes, so
/// the run pushes it once per repository and uploads it once per registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BlobKey {
    /// Its digest is known before anything is read: a stored blob, a config, or a layer whose
    /// compressed digest the digest cache remembers.
    Digest(Digest),
    /// A layer stored uncompressed that ocipush compresses: the same diffID with the same
    /// settings gives the same blob (compression is deterministic).
    Compressed {
        /// The uncompressed layer's digest.
        diff_id: Digest,
        /// The compressor.
        algorithm: Algorithm,
        /// Its level.
        level: u32,
    },
    /// A layer stored compressed, sent as it is; its digest is learnt by reading it.
    StoredCompressed {
        /// The uncompressed layer's digest.
        diff_id: Digest,
        /// How it is stored.
        compression: Compression,
        /// Its stored size (two compressions of one layer differ in size, almost always).
        size: u64,
    },
}

impl BlobKey {
    /// The digest, when it is known before the blob is produced.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            BlobKey::Digest(digest) => Some(digest),
            _ => None,
        }
    }
}
