//! A manifest or index as pushed: the exact bytes, their digest, the media type the registry
//! must be told, and the parsed form used to walk what it references.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::digest::{sha256_of, Digest};
use crate::media_type;

/// Why manifest bytes could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The bytes are not JSON, or not the JSON of the kind of document their media type says.
    #[error("malformed {what}: {source}")]
    Json {
        /// The document, as the caller named it for messages.
        what: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// Neither a manifest nor an index media type ocipush knows.
    #[error("{what} has unsupported media type `{media_type}`")]
    UnsupportedMediaType {
        /// The document, as the caller named it for messages.
        what: String,
        /// The media type it has or was declared with.
        media_type: String,
    },
    /// An index could not be narrowed to the wanted manifests.
    #[error("cannot narrow {what}: {reason}")]
    Rewrite {
        /// The index, by digest.
        what: String,
        /// Why the narrowing was refused.
        reason: String,
    },
}

/// What a document is, parsed.
#[derive(Debug, Clone)]
pub enum DocumentKind {
    /// A single-image manifest (OCI or Docker v2): a config and layers.
    Manifest(Box<ImageManifest>),
    /// An index (OCI index or Docker manifest list): one manifest per platform.
    Index(Box<ImageIndex>),
}

/// A manifest or index with its exact bytes.
#[derive(Debug, Clone)]
pub struct Document {
    bytes: Vec<u8>,
    digest: Digest,
    media_type: String,
    kind: DocumentKind,
}

/// Only the fields needed to tell what kind of document some JSON is.
#[derive(serde::Deserialize)]
struct Probe {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
}

impl Document {
    /// Parses manifest bytes. `declared` is the media type the referring descriptor gave, used
    /// when the document does not name its own (the field is optional in OCI).
    pub fn parse(
        bytes: Vec<u8>,
        declared: Option<&str>,
        what: &str,
    ) -> Result<Self, DocumentError> {
        let json_err = |source| DocumentError::Json {
            what: what.to_string(),
            source,
        };
        let probe: Probe = serde_json::from_slice(&bytes).map_err(json_err)?;
        let media_type = match (probe.media_type, declared) {
            (Some(own), _) => own,
            (None, Some(declared)) => declared.to_string(),
            (None, None) if probe.manifests.is_some() => media_type::OCI_INDEX.to_string(),
            (None, None) => media_type::OCI_MANIFEST.to_string(),
        };
        let kind = if media_type::is_index(&media_type) {
            DocumentKind::Index(serde_json::from_slice(&bytes).map_err(json_err)?)
        } else if media_type::is_manifest(&media_type) {
            DocumentKind::Manifest(serde_json::from_slice(&bytes).map_err(json_err)?)
        } else {
            return Err(DocumentError::UnsupportedMediaType {
                what: what.to_string(),
                media_type,
            });
        };
        Ok(Self {
            digest: sha256_of(&bytes),
            bytes,
            media_type,
            kind,
        })
    }

    /// The exact bytes, as read and as pushed.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The sha256 of [`Self::bytes`]: the document's identity in a registry.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The media type to send as `Content-Type` when pushing: the document's own, else the one
    /// declared for it, else inferred from its shape.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The parsed form, for walking what the document references.
    pub fn kind(&self) -> &DocumentKind {
        &self.kind
    }

    /// Length of [`Self::bytes`], as a descriptor states it.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The blobs an image manifest references: config first, then layers in order.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        match &self.kind {
            DocumentKind::Manifest(m) => std::iter::once(m.config()).chain(m.layers()).collect(),
            DocumentKind::Index(_) => Vec::new(),
        }
    }

    /// The manifests an index references.
    pub fn children(&self) -> &[Descriptor] {
        match &self.kind {
            DocumentKind::Index(i) => i.manifests(),
            DocumentKind::Manifest(_) => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;

    #[test]
    fn infers_oci_manifest_without_media_type_field() {
        let doc = Document::parse(MANIFEST.as_bytes().to_vec(), None, "test").unwrap();
        assert_eq!(doc.media_type(), media_type::OCI_MANIFEST);
        assert_eq!(doc.blobs().len(), 1);
        assert_eq!(doc.digest(), &sha256_of(MANIFEST.as_bytes()));
    }

    #[test]
    fn rejects_garbage_and_unknown_types() {
        assert!(matches!(
            Document::parse(b"{not json".to_vec(), None, "x"),
            Err(DocumentError::Json { .. })
        ));
        assert!(matches!(
            Document::parse(b"{}".to_vec(), Some("text/plain"), "x"),
            Err(DocumentError::UnsupportedMediaType { .. })
        ));
    }
}
