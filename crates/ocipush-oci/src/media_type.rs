//! Media type names for OCI and Docker manifests, configs and layers.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index: manifests for several platforms.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer, uncompressed tar.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzipped tar.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd-compressed tar.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Docker image manifest, schema 2: what `docker push` writes.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list: Docker's counterpart of an OCI index.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config, as referenced by a Docker manifest.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer, gzipped tar.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Is this the media type of an index (OCI index or Docker manifest list)?
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Is this the media type of a single-image manifest?
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Every manifest media type ocipush understands, for `Accept` headers.
pub const ACCEPTED_MANIFESTS: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// Is this a layer that must not be copied between registries: Docker's foreign layers and
/// OCI's non-distributable ones, which live at the URLs their descriptors name?
pub fn is_non_distributable(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.image.rootfs.foreign.")
        || media_type.starts_with("application/vnd.oci.image.layer.nondistributable.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_and_non_distributable_layers() {
        assert!(is_non_distributable(
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        ));
        assert!(is_non_distributable(
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        ));
        assert!(!is_non_distributable(OCI_LAYER_GZIP));
        assert!(!is_non_distributable(DOCKER_LAYER_GZIP));
    }
}
