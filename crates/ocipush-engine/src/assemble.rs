//! Writes the Docker v2 manifest for an image from a `docker save` archive, once its layers
//! are compressed and their digests known — the manifest `docker push` would have written.

use ocipush_oci::media_type::{DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST};
use ocipush_oci::{Digest, Document};
use serde::Serialize;

use crate::error::PushError;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'a str,
    size: u64,
    digest: String,
}

/// Builds the manifest document for a config and the pushed layers, in order.
pub(crate) fn docker_manifest(
    config_digest: &Digest,
    config_size: u64,
    layers: &[(Digest, u64)],
) -> Result<Document, PushError> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: DOCKER_MANIFEST,
        config: Descriptor {
            media_type: DOCKER_CONFIG,
            size: config_size,
            digest: config_digest.to_string(),
        },
        layers: layers
            .iter()
            .map(|(digest, size)| Descriptor {
                media_type: DOCKER_LAYER_GZIP,
                size: *size,
                digest: digest.to_string(),
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| PushError::Internal(format!("cannot serialise a manifest: {e}")))?;
    Document::parse(bytes, Some(DOCKER_MANIFEST), "manifest")
        .map_err(|e| PushError::Internal(format!("assembled manifest does not parse: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocipush_oci::sha256_of;

    #[test]
    fn manifest_lists_config_and_layers_in_order() {
        let doc = docker_manifest(
            &sha256_of(b"config"),
            6,
            &[(sha256_of(b"a"), 1), (sha256_of(b"b"), 2)],
        )
        .unwrap();
        assert_eq!(doc.media_type(), DOCKER_MANIFEST);
        let blobs = doc.blobs();
        assert_eq!(blobs.len(), 3);
        assert_eq!(blobs[0].digest(), &sha256_of(b"config"));
        assert_eq!(blobs[2].size(), 2);
        let json: serde_json::Value = serde_json::from_slice(doc.bytes()).unwrap();
        assert_eq!(json["layers"][0]["mediaType"], DOCKER_LAYER_GZIP);
    }
}
