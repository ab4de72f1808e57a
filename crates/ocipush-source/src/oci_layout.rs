//! OCI image layouts (a directory, or the same tree inside an oci-archive tarball): `index.json`
//! names the images; their manifests are kept byte for byte, verified against their digests, and
//! every blob they reference is checked to exist before anything is pushed.

use std::path::Path;

use ocipush_oci::{media_type, parse_sha256, Descriptor, Digest, Document, DocumentKind};

use crate::error::SourceError;
use crate::name::ImageName;
use crate::referrers::attach_referrers;
use crate::store::BlobReader;
use crate::{ImageContent, LocalImage};

/// Upper bound for index.json and manifests: real ones are kilobytes.
const MAX_DOCUMENT: u64 = 8 * 1024 * 1024;
/// Upper bound for image configs (big histories make them hundreds of kilobytes at most).
const MAX_CONFIG: u64 = 32 * 1024 * 1024;
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Reads the images of a layout. `wanted` selects by ref name or tag; `fallback_name` is the
/// repository for images whose ref name is a bare tag (the layout's directory or file stem).
pub fn read_layout(
    store: &dyn BlobReader,
    origin: &Path,
    wanted: Option<&str>,
    fallback_name: &str,
    label_prefix: &str,
) -> Result<Vec<LocalImage>, SourceError> {
    if !store.exists("index.json") {
        return Err(SourceError::NotAnImage {
            path: origin.to_path_buf(),
            reason: "no index.json".into(),
        });
    }
    let index_bytes = store.read_small("index.json", MAX_DOCUMENT)?;
    let index = Document::parse(
        index_bytes,
        Some(ocipush_oci::media_type::OCI_INDEX),
        "index.json",
    )
    .map_err(|source| SourceError::Document {
        path: origin.to_path_buf(),
        source,
    })?;

    // Group index.json entries by manifest digest: one image, several names.
    let mut groups: Vec<(Descriptor, Vec<String>)> = Vec::new();
    for desc in index.children() {
        let names = entry_names(desc);
        match groups.iter_mut().find(|(d, _)| d.digest() == desc.digest()) {
            Some((_, existing)) => existing.extend(names),
            None => groups.push((desc.clone(), names)),
        }
    }
    let available: Vec<String> = groups.iter().flat_map(|(_, n)| n.clone()).collect();
    if let Some(wanted) = wanted {
        // Unnamed entries stay for now: signatures and SBOMs of the wanted image are among
        // them (attached below; the others are dropped).
        groups
            .retain(|(_, names)| names.is_empty() || names.iter().any(|n| ref_matches(n, wanted)));
        if !groups.iter().any(|(_, names)| !names.is_empty()) {
            return Err(SourceError::UnknownRef {
                path: origin.to_path_buf(),
                wanted: wanted.to_string(),
                available,
            });
        }
    }

    let mut images = Vec::new();
    for (desc, raw_names) in groups {
        let root = load_document(store, origin, &desc)?;
        let mut children = Vec::new();
        for child in root.children() {
            let doc = load_document(store, origin, child)?;
            if matches!(doc.kind(), DocumentKind::Index(_)) {
                return Err(SourceError::Unsupported {
                    what: format!("nested image index in {}", origin.display()),
                });
            }
            children.push(doc);
        }
        let mut blob_paths = Vec::new();
        for doc in std::iter::once(&root).chain(children.iter()) {
            for blob in doc.blobs() {
                let path = blob_path(origin, blob.digest())?;
                check_blob(store, origin, &path, blob)?;
                if !blob_paths.iter().any(|(d, _)| d == blob.digest()) {
                    blob_paths.push((blob.digest().clone(), path));
                }
            }
            if let DocumentKind::Manifest(manifest) = doc.kind() {
                check_config(store, origin, manifest.config())?;
            }
        }
        let mut names: Vec<ImageName> = raw_names
            .iter()
            .filter_map(|n| to_image_name(n, fallback_name))
            .collect();
        names.dedup();
        let label = match wanted.or(raw_names.first().map(String::as_str)) {
            Some(r) => format!("{label_prefix}:{r}"),
            None => format!("{label_prefix}@{}", desc.digest()),
        };
        images.push(LocalImage {
            names,
            label,
            content: ImageContent::Stored {
                root,
                children,
                blob_paths,
            },
            referrers: Vec::new(),
        });
    }
    let mut images = attach_referrers(images);
    if wanted.is_some() {
        // What is left unnamed refers to nothing that was asked for.
        images.retain(|image| !image.names.is_empty());
    }
    Ok(images)
}

/// The path of a blob inside a layout, from a validated sha256 digest (so it cannot climb).
pub fn blob_path(origin: &Path, digest: &Digest) -> Result<String, SourceError> {
    let digest = parse_sha256(digest.as_ref()).map_err(|source| SourceError::Digest {
        path: origin.to_path_buf(),
        source,
    })?;
    Ok(format!("blobs/sha256/{}", digest.digest()))
}

fn load_document(
    store: &dyn BlobReader,
    origin: &Path,
    desc: &Descriptor,
) -> Result<Document, SourceError> {
    let path = blob_path(origin, desc.digest())?;
    if !store.exists(&path) {
        return Err(SourceError::MissingEntry {
            path: origin.to_path_buf(),
            entry: path,
        });
    }
    let bytes = read_verified(store, origin, &path, desc, MAX_DOCUMENT)?;
    Document::parse(bytes, Some(desc.media_type().as_ref()), &path).map_err(|source| {
        SourceError::Document {
            path: origin.to_path_buf(),
            source,
        }
    })
}

/// Reads a small blob whole and checks it against its descriptor's digest.
fn read_verified(
    store: &dyn BlobReader,
    origin: &Path,
    path: &str,
    desc: &Descriptor,
    limit: u64,
) -> Result<Vec<u8>, SourceError> {
    let bytes = store.read_small(path, limit)?;
    let actual = ocipush_oci::sha256_of(&bytes);
    if &actual != desc.digest() {
        return Err(SourceError::Verify {
            path: origin.to_path_buf(),
            source: Box::new(ocipush_oci::VerifyError::Digest {
                what: path.to_string(),
                expected: desc.digest().clone(),
                actual,
            }),
        });
    }
    Ok(bytes)
}

/// An image config must be a JSON object. A registry stores any bytes, but runtimes cannot
/// use an image whose config does not parse, so such an image is refused before anything is
/// pushed. Configs of other media types (artifacts) are left alone.
fn check_config(
    store: &dyn BlobReader,
    origin: &Path,
    desc: &Descriptor,
) -> Result<(), SourceError> {
    let media_type = desc.media_type().to_string();
    if media_type != media_type::OCI_CONFIG && media_type != media_type::DOCKER_CONFIG {
        return Ok(());
    }
    let path = blob_path(origin, desc.digest())?;
    // A damaged config is a digest mismatch first; only intact bytes are judged as JSON.
    let bytes = read_verified(store, origin, &path, desc, MAX_CONFIG)?;
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        .map(drop)
        .map_err(|e| SourceError::Corrupt {
            path: origin.to_path_buf(),
            reason: format!("image config {} is not a JSON object: {e}", desc.digest()),
        })
}

fn check_blob(
    store: &dyn BlobReader,
    origin: &Path,
    path: &str,
    desc: &Descriptor,
) -> Result<(), SourceError> {
    match store.size(path) {
        None => Err(SourceError::MissingEntry {
            path: origin.to_path_buf(),
            entry: path.to_string(),
        }),
        Some(size) if size != desc.size() => Err(SourceError::Verify {
            path: origin.to_path_buf(),
            source: Box::new(ocipush_oci::VerifyError::Size {
                what: path.to_string(),
                expected: desc.size(),
                actual: size,
            }),
        }),
        Some(_) => Ok(()),
    }
}

fn entry_names(desc: &Descriptor) -> Vec<String> {
    let Some(annotations) = desc.annotations() else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Some(full) = annotations.get(CONTAINERD_NAME) {
        names.push(full.clone());
    }
    if let Some(r) = annotations.get(REF_NAME) {
        if !names.iter().any(|n| ref_matches(n, r)) {
            names.push(r.clone());
        }
    }
    names
}

/// Does a ref name (`1.0`, `app:1.0`, `docker.io/library/app:1.0`) match what the user asked for?
fn ref_matches(name: &str, wanted: &str) -> bool {
    if name == wanted {
        return true;
    }
    match ImageName::parse(name) {
        Some(parsed) => {
            parsed.tag.as_deref() == Some(wanted)
                || parsed.to_string().ends_with(&format!("/{wanted}"))
        }
        None => false,
    }
}

/// A bare tag (`1.0`) names the image after the layout; anything with `:` or `/` is a full name.
fn to_image_name(name: &str, fallback: &str) -> Option<ImageName> {
    if name.contains('/') || name.contains(':') {
        ImageName::parse(name)
    } else {
        Some(ImageName {
            repository: fallback.to_string(),
            tag: Some(name.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_refs_by_full_name_or_tag() {
        assert!(ref_matches("1.0", "1.0"));
        assert!(ref_matches("docker.io/library/app:1.0", "1.0"));
        assert!(ref_matches("docker.io/library/app:1.0", "app:1.0"));
        assert!(!ref_matches("docker.io/library/app:1.0", "2.0"));
        assert!(!ref_matches("docker.io/library/app:1.0", "pp:1.0"));
    }

    #[test]
    fn bare_tags_take_the_layout_name() {
        let n = to_image_name("1.0", "build").unwrap();
        assert_eq!(n.to_string(), "build:1.0");
        let n = to_image_name("team/app:2", "build").unwrap();
        assert_eq!(n.to_string(), "team/app:2");
    }
}
