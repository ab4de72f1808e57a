//! What one blob push is: where the bytes come from, how they are turned into the blob, and
//! what came of it.

use ocipush_oci::{Compression, Digest};
use ocipush_source::LayerFile;

use crate::compress::{Algorithm, CompressionSettings};
use crate::producer::{DiffId, Transform};
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
        BlobJob::layer_at(
            label,
            layer.path.clone(),
            Some(layer.diff_id.clone()),
            layer.compression,
            layer.size,
            settings,
        )
    }

    /// A layer file as stored (`compression`), `size` bytes, whose diffID may be known or not
    /// (a daemon's export streams layers by before the manifest that names them).
    pub fn layer_at(
        label: String,
        path: String,
        diff_id: DiffId,
        compression: Compression,
        size: u64,
        settings: &CompressionSettings,
    ) -> BlobJob {
        let transform = match (compression, settings.algorithm) {
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
            path,
            transform,
            input_size: size,
        }
    }

    /// Identifies the blob this job produces, before its digest is known: two jobs with the
    /// same key produce the same bytes.
    pub fn key(&self) -> String {
        // A layer whose diffID is still unknown is only ever pushed from its one stream.
        let id = |diff_id: &DiffId| match diff_id {
            Some(d) => d.to_string(),
            None => format!("stream:{}", self.path),
        };
        match &self.transform {
            Transform::Verbatim { digest, .. } => digest.to_string(),
            Transform::Gzip { diff_id, level } => format!("gzip-l{level}:{}", id(diff_id)),
            Transform::Zstd { diff_id, level } => format!("zstd-l{level}:{}", id(diff_id)),
            Transform::GzipPassthrough { diff_id } => {
                format!("stored-gzip:{}:{}", id(diff_id), self.input_size)
            }
            Transform::ZstdPassthrough { diff_id } => {
                format!("stored-zstd:{}:{}", id(diff_id), self.input_size)
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
    /// The layer's diffID when this push verified or learnt it by reading the layer.
    pub diff_id: Option<Digest>,
}
