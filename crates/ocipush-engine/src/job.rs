//! What one blob push is: where the bytes come from, how they are turned into the blob, and
//! what came of it.

use ocipush_oci::{Compression, Digest};
use ocipush_source::LayerFile;

use crate::compress::{Algorithm, CompressionSettings};
use crate::producer::Transform;
use crate::reporter::BlobOutcome;

/// One blob to push, and how to produce it from the source.
#[derive(Debug, Clone)]
pub(crate) struct BlobJob {
    /// For messages: `layer 2/4 (sha256:…)`.
    pub label: String,
    /// The file inside the source.
    pub path: String,
    pub transform: Transform,
    /// Bytes read from the source (the progress total).
    pub input_size: u64,
}

impl BlobJob {
    /// A blob pushed byte for byte.
    pub fn verbatim(label: String, path: String, digest: Digest, size: u64) -> BlobJob {
        BlobJob {
            label,
            path,
            transform: Transform::Verbatim { digest, size },
            input_size: size,
        }
    }

    /// A docker-archive layer: compressed on the way unless it already is.
    pub fn layer(label: String, layer: &LayerFile, settings: &CompressionSettings) -> BlobJob {
        let diff_id = layer.diff_id.clone();
        let transform = match (layer.compression, settings.algorithm) {
            (Compression::None, Algorithm::Gzip) => Transform::Gzip {
                diff_id,
                level: settings.level,
            },
            (Compression::None, Algorithm::Zstd) => Transform::Zstd {
                diff_id,
                level: settings.level,
            },
            (Compression::Gzip, _) => Transform::GzipPassthrough { diff_id },
            (Compression::Zstd, _) => Transform::ZstdPassthrough { diff_id },
        };
        BlobJob {
            label,
            path: layer.path.clone(),
            transform,
            input_size: layer.size,
        }
    }

    /// Identifies the blob this job produces, before its digest is known: two jobs with the
    /// same key produce the same bytes.
    pub fn key(&self) -> String {
        match &self.transform {
            Transform::Verbatim { digest, .. } => digest.to_string(),
            Transform::Gzip { diff_id, level } => format!("gzip-l{level}:{diff_id}"),
            Transform::Zstd { diff_id, level } => format!("zstd-l{level}:{diff_id}"),
            Transform::GzipPassthrough { diff_id } => {
                format!("stored-gzip:{diff_id}:{}", self.input_size)
            }
            Transform::ZstdPassthrough { diff_id } => {
                format!("stored-zstd:{diff_id}:{}", self.input_size)
            }
        }
    }
}

/// What happened to a pushed blob.
#[derive(Debug, Clone)]
pub(crate) struct PushedBlob {
    pub digest: Digest,
    pub size: u64,
    pub outcome: BlobOutcome,
}
