//! `--platform`: which platforms of the sources' images go to the registry. A multi-platform
//! image (OCI index or Docker manifest list) keeps only the matching manifests, and its index
//! is rewritten with only those entries (see `Document::retain_manifests`): a new index with
//! a new digest, which the tags then point at. It stays an index even when one manifest is
//! left, so a tag's kind does not change with the flag and clients resolve it as before.
//!
//! A single-platform image is kept when its platform matches and left out otherwise (reported
//! back, so the caller can say so). Every requested platform must match some image: a typo
//! must not quietly push nothing, so it is a usage error that lists what the sources offer.

use ocipush_oci::{media_type, Descriptor, Document, DocumentKind, PlatformSpec};
use ocipush_source::{ImageContent, LocalImage, Source};

use crate::error::PushError;

/// Config files are kilobytes; this only guards against reading a huge wrong file.
const MAX_CONFIG: u64 = 8 * 1024 * 1024;
/// buildx marks provenance and SBOM manifests this way; they describe another entry.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

/// An image `--platform` left out, and the platforms it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedImage {
    /// The image's label.
    pub label: String,
    /// The platforms it is (empty when unknown).
    pub platforms: Vec<PlatformSpec>,
}

/// The platforms an image holds: the entries of an index (attestations aside), or the one a
/// single image's config declares. Empty when the source does not say.
pub fn image_platforms(source: &Source, image: &LocalImage) -> Vec<PlatformSpec> {
    match &image.content {
        ImageContent::Stored {
            root, blob_paths, ..
        } => match root.kind() {
            DocumentKind::Index(_) => root
                .children()
                .iter()
                .filter(|d| !is_attestation(d))
                .filter_map(|d| d.platform().as_ref().map(PlatformSpec::from_oci))
                .collect(),
            DocumentKind::Manifest(m) => blob_paths
                .iter()
                .find(|(digest, _)| digest == m.config().digest())
                .and_then(|(_, path)| source.blobs.read_small(path, MAX_CONFIG).ok())
                .and_then(|config| config_platform(&config))
                .into_iter()
                .collect(),
        },
        ImageContent::Assembled(a) => config_platform(&a.config).into_iter().collect(),
        ImageContent::Daemon(d) => PlatformSpec::parse(&d.platform).ok().into_iter().collect(),
    }
}

/// Narrows every image of `sources` to the `wanted` platforms (nothing to do when empty).
/// Returns the images left out; fails when a wanted platform matches no image at all.
/// Single-platform OCI images have their config read here (a small file).
pub fn select_platforms(
    sources: &mut [Source],
    wanted: &[PlatformSpec],
) -> Result<Vec<SkippedImage>, PushError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let mut available: Vec<PlatformSpec> = Vec::new();
    let mut used = vec![false; wanted.len()];
    let mut skipped = Vec::new();
    for source in sources.iter_mut() {
        let mut kept = Vec::with_capacity(source.images.len());
        for image in std::mem::take(&mut source.images) {
            let platforms = image_platforms(source, &image);
            for p in &platforms {
                if !available.contains(p) {
                    available.push(p.clone());
                }
            }
            let mut any = false;
            for (w, used) in wanted.iter().zip(used.iter_mut()) {
                if platforms.iter().any(|p| w.matches(p)) {
                    *used = true;
                    any = true;
                }
            }
            if any {
                kept.push(narrow(image, wanted)?);
            } else {
                skipped.push(SkippedImage {
                    label: image.label.clone(),
                    platforms,
                });
            }
        }
        source.images = kept;
    }
    let unmatched: Vec<String> = wanted
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(w, _)| w.to_string())
        .collect();
    if !unmatched.is_empty() {
        return Err(PushError::NoPlatform {
            wanted: unmatched,
            available: available.iter().map(|p| p.to_string()).collect(),
        });
    }
    Ok(skipped)
}

/// An index keeps the matching entries (and attestations of those); anything else is kept
/// whole, since its one platform matched.
fn narrow(image: LocalImage, wanted: &[PlatformSpec]) -> Result<LocalImage, PushError> {
    let ImageContent::Stored {
        root,
        children,
        blob_paths,
    } = &image.content
    else {
        return Ok(image);
    };
    if !media_type::is_index(root.media_type()) {
        return Ok(image);
    }
    let entries = root.children();
    let matching: Vec<bool> = entries
        .iter()
        .map(|d| {
            !is_attestation(d)
                && d.platform()
                    .as_ref()
                    .map(PlatformSpec::from_oci)
                    .is_some_and(|p| wanted.iter().any(|w| w.matches(&p)))
        })
        .collect();
    if matching.iter().all(|m| *m) {
        return Ok(image);
    }
    let keep = |i: usize, d: &Descriptor| {
        matching[i]
            || attested(d).is_some_and(|subject| {
                entries
                    .iter()
                    .zip(&matching)
                    .any(|(e, m)| *m && e.digest().as_ref() == subject)
            })
    };
    let narrowed = root
        .retain_manifests(keep)
        .map_err(|e| PushError::Internal(e.to_string()))?;
    let kept_children: Vec<Document> = children
        .iter()
        .filter(|c| narrowed.children().iter().any(|d| d.digest() == c.digest()))
        .cloned()
        .collect();
    let kept_paths = blob_paths
        .iter()
        .filter(|(digest, _)| {
            kept_children
                .iter()
                .any(|c| c.blobs().iter().any(|b| b.digest() == digest))
        })
        .cloned()
        .collect();
    // What referred to the source's index refers to no index that is pushed; what refers to
    // a kept manifest goes with it.
    let referrers = image
        .referrers
        .iter()
        .filter(|r| kept_children.iter().any(|c| *c.digest() == r.subject))
        .cloned()
        .collect();
    Ok(LocalImage {
        content: ImageContent::Stored {
            root: narrowed,
            children: kept_children,
            blob_paths: kept_paths,
        },
        referrers,
        ..image
    })
}

fn is_attestation(d: &Descriptor) -> bool {
    attested(d).is_some()
}

/// The digest of the entry an attestation manifest describes.
fn attested(d: &Descriptor) -> Option<&str> {
    let annotations = d.annotations().as_ref()?;
    if annotations.get(REFERENCE_TYPE)? != "attestation-manifest" {
        return None;
    }
    annotations.get(REFERENCE_DIGEST).map(String::as_str)
}

/// `os`, `architecture` and `variant` of an image config.
fn config_platform(config: &[u8]) -> Option<PlatformSpec> {
    #[derive(serde::Deserialize)]
    struct Fields {
        os: Option<String>,
        architecture: Option<String>,
        variant: Option<String>,
    }
    let fields: Fields = serde_json::from_slice(config).ok()?;
    Some(PlatformSpec::new(
        &fields.os?,
        &fields.architecture?,
        fields.variant.as_deref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hex: char, platform: &str, annotations: &str) -> String {
        let (os, arch) = platform.split_once('/').unwrap();
        format!(
            r#"{{"mediaType":"{}","digest":"sha256:{}","size":1,"platform":{{"architecture":"{arch}","os":"{os}"}}{annotations}}}"#,
            media_type::OCI_MANIFEST,
            hex.to_string().repeat(64)
        )
    }

    #[test]
    fn attestations_follow_the_manifest_they_describe() {
        let attests = |hex: char| {
            format!(
                r#","annotations":{{"{REFERENCE_TYPE}":"attestation-manifest","{REFERENCE_DIGEST}":"sha256:{}"}}"#,
                hex.to_string().repeat(64)
            )
        };
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{},{},{},{}]}}"#,
            media_type::OCI_INDEX,
            entry('a', "linux/amd64", ""),
            entry('b', "linux/arm64", ""),
            entry('c', "unknown/unknown", &attests('a')),
            entry('d', "unknown/unknown", &attests('b')),
        );
        let image = LocalImage {
            names: Vec::new(),
            label: "test".into(),
            content: ImageContent::Stored {
                root: Document::parse(index.into_bytes(), None, "test").unwrap(),
                children: Vec::new(),
                blob_paths: Vec::new(),
            },
            referrers: Vec::new(),
        };
        let narrowed = narrow(image, &[PlatformSpec::parse("linux/arm64").unwrap()]).unwrap();
        let ImageContent::Stored { root, .. } = &narrowed.content else {
            panic!("still stored");
        };
        let kept: Vec<String> = root
            .children()
            .iter()
            .map(|d| d.digest().as_ref()[7..8].to_string())
            .collect();
        assert_eq!(kept, ["b", "d"]);
    }

    #[test]
    fn reads_the_platform_of_a_config() {
        let p = config_platform(br#"{"os":"linux","architecture":"arm","variant":"v7"}"#);
        assert_eq!(p.unwrap().to_string(), "linux/arm/v7");
        assert!(config_platform(br#"{"os":"linux"}"#).is_none());
        assert!(config_platform(b"not json").is_none());
    }
}
