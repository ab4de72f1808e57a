//! Writes the Docker v2 manifest for an image from a `docker save` archive, once its layers
//! are compressed and their digests known — the manifest `docker push` would have written.

use ocipush_oci::media_type::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
    OCI_MANIFEST,
};
use ocipush_oci::{Compression, Digest, Document};
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

/// Builds the manifest document for a config and the pushed layers, in order: a Docker v2
/// manifest when every layer is gzip (what `docker push` writes, pullable by every client), an
/// OCI manifest when a layer is zstd (which Docker v2 manifests cannot describe).
pub(crate) fn image_manifest(
    config_digest: &Digest,
    config_size: u64,
    layers: &[(Digest, u64, Compression)],
) -> Result<Document, PushError> {
    let oci = layers.iter().any(|(_, _, c)| *c == Compression::Zstd);
    let (manifest_type, config_type) = if oci {
        (OCI_MANIFEST, OCI_CONFIG)
    } else {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    };
    let mut descriptors = Vec::with_capacity(layers.len());
    for (digest, size, compression) in layers {
        let media_type = match (compression, oci) {
            (Compression::Gzip, false) => DOCKER_LAYER_GZIP,
            (Compression::Gzip, true) => OCI_LAYER_GZIP,
            (Compression::Zstd, _) => OCI_LAYER_ZSTD,
            (Compression::None, _) => {
                return Err(PushError::Internal(format!(
                    "layer {digest} was not compressed"
                )))
            }
        };
        descriptors.push(Descriptor {
            media_type,
            size: *size,
            digest: digest.to_string(),
        });
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: manifest_type,
        config: Descriptor {
            media_type: config_type,
            size: config_size,
            digest: config_digest.to_string(),
        },
        layers: descriptors,
    };
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| PushError::Internal(format!("cannot serialise a manifest: {e}")))?;
    Document::parse(bytes, Some(manifest_type), "manifest")
        .map_err(|e| PushError::Internal(format!("assembled manifest does not parse: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocipush_oci::sha256_of;

    #[test]
    fn manifest_lists_config_and_layers_in_order() {
        let doc = image_manifest(
            &sha256_of(b"config"),
            6,
            &[
                (sha256_of(b"a"), 1, Compression::Gzip),
                (sha256_of(b"b"), 2, Compression::Gzip),
            ],
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

    #[test]
    fn zstd_layers_make_an_oci_manifest() {
        let doc = image_manifest(
            &sha256_of(b"config"),
            6,
            &[
                (sha256_of(b"a"), 1, Compression::Gzip),
                (sha256_of(b"b"), 2, Compression::Zstd),
            ],
        )
        .unwrap();
        assert_eq!(doc.media_type(), OCI_MANIFEST);
        let json: serde_json::Value = serde_json::from_slice(doc.bytes()).unwrap();
        assert_eq!(json["config"]["mediaType"], OCI_CONFIG);
        assert_eq!(json["layers"][0]["mediaType"], OCI_LAYER_GZIP);
        assert_eq!(json["layers"][1]["mediaType"], OCI_LAYER_ZSTD);
    }
}
