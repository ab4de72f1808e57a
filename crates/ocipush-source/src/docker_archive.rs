//! `docker save` tarballs, as docker (legacy and 25+), podman and skopeo write them: the
//! `manifest.json` at the root lists each image's config, `RepoTags` and layer files. Layers may
//! be symlinks to shared entries, uncompressed tars, or already compressed blobs.

use std::path::Path;

use ocipush_oci::{sha256_of, Compression, Digest, VerifyError};
use serde::Deserialize;

use crate::error::SourceError;
use crate::name::ImageName;
use crate::store::BlobReader;
use crate::{AssembledImage, ImageContent, LayerFile, LocalImage};

const MAX_MANIFEST: u64 = 8 * 1024 * 1024;
const MAX_CONFIG: u64 = 32 * 1024 * 1024;

#[derive(Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct ConfigRootfs {
    rootfs: Rootfs,
}

#[derive(Deserialize)]
struct Rootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// Reads the images of a docker archive. `wanted` selects one by `RepoTags` entry or `@N`.
pub fn read_docker_archive(
    store: &dyn BlobReader,
    origin: &Path,
    wanted: Option<&str>,
    label_prefix: &str,
) -> Result<Vec<LocalImage>, SourceError> {
    let raw = store.read_small("manifest.json", MAX_MANIFEST)?;
    let entries: Vec<ManifestEntry> =
        serde_json::from_slice(&raw).map_err(|e| SourceError::Corrupt {
            path: origin.to_path_buf(),
            reason: format!("malformed manifest.json: {e}"),
        })?;
    if entries.is_empty() {
        return Err(SourceError::NotAnImage {
            path: origin.to_path_buf(),
            reason: "manifest.json lists no images".into(),
        });
    }
    let selected: Vec<(usize, &ManifestEntry)> = match wanted {
        None => entries.iter().enumerate().collect(),
        Some(w) => {
            let picked: Vec<_> = entries
                .iter()
                .enumerate()
                .filter(|(i, e)| entry_matches(*i, e, w))
                .collect();
            if picked.is_empty() {
                return Err(SourceError::UnknownRef {
                    path: origin.to_path_buf(),
                    wanted: w.to_string(),
                    available: entries
                        .iter()
                        .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
                        .collect(),
                });
            }
            picked
        }
    };
    selected
        .into_iter()
        .map(|(i, entry)| read_entry(store, origin, i, entry, wanted, label_prefix))
        .collect()
}

fn read_entry(
    store: &dyn BlobReader,
    origin: &Path,
    position: usize,
    entry: &ManifestEntry,
    wanted: Option<&str>,
    label_prefix: &str,
) -> Result<LocalImage, SourceError> {
    let corrupt = |reason: String| SourceError::Corrupt {
        path: origin.to_path_buf(),
        reason,
    };
    let config = store.read_small(&entry.config, MAX_CONFIG)?;
    let config_digest = sha256_of(&config);
    if let Some(named) = digest_in_name(&entry.config) {
        if named != config_digest {
            return Err(SourceError::Verify {
                path: origin.to_path_buf(),
                source: Box::new(VerifyError::Digest {
                    what: entry.config.clone(),
                    expected: named,
                    actual: config_digest,
                }),
            });
        }
    }
    let parsed: ConfigRootfs = serde_json::from_slice(&config)
        .map_err(|e| corrupt(format!("malformed image config `{}`: {e}", entry.config)))?;
    if parsed.rootfs.diff_ids.len() != entry.layers.len() {
        return Err(corrupt(format!(
            "image config lists {} layers but manifest.json has {}",
            parsed.rootfs.diff_ids.len(),
            entry.layers.len()
        )));
    }
    let mut layers = Vec::with_capacity(entry.layers.len());
    for (path, diff_id) in entry.layers.iter().zip(&parsed.rootfs.diff_ids) {
        let diff_id = ocipush_oci::parse_sha256(diff_id).map_err(|source| SourceError::Digest {
            path: origin.to_path_buf(),
            source,
        })?;
        let size = store.size(path).ok_or_else(|| SourceError::MissingEntry {
            path: origin.to_path_buf(),
            entry: path.clone(),
        })?;
        let compression = Compression::sniff(&store.head(path)?);
        layers.push(LayerFile {
            path: path.clone(),
            diff_id,
            compression,
            size,
        });
    }
    let tags = entry.repo_tags.clone().unwrap_or_default();
    let names = tags.iter().filter_map(|t| ImageName::parse(t)).collect();
    let label = match wanted.or(tags.first().map(String::as_str)) {
        Some(r) => format!("{label_prefix}:{r}"),
        None => format!("{label_prefix}:@{position}"),
    };
    Ok(LocalImage {
        names,
        label,
        content: ImageContent::Assembled(AssembledImage {
            config,
            config_digest,
            layers,
        }),
        referrers: Vec::new(),
    })
}

/// `@N` picks the Nth image; otherwise a RepoTags entry, with or without a `docker.io/` prefix.
fn entry_matches(position: usize, entry: &ManifestEntry, wanted: &str) -> bool {
    if let Some(n) = wanted.strip_prefix('@') {
        return n.parse::<usize>().ok() == Some(position);
    }
    let strip = |s: &str| {
        s.trim_start_matches("docker.io/")
            .trim_start_matches("library/")
            .to_string()
    };
    entry.repo_tags.iter().flatten().any(|tag| {
        tag == wanted
            || strip(tag) == strip(wanted)
            || (!wanted.contains(':') && strip(tag) == format!("{}:latest", strip(wanted)))
    })
}

/// The digest a `docker save` file is named after, if it is: configs (`<hex>.json`,
/// `blobs/sha256/<hex>`) and layers (`blobs/sha256/<hex>` in Docker 25+, `<hex>.tar` from
/// podman; legacy `<v1-id>/layer.tar` names none). Such a name is a claim to verify.
pub fn digest_in_name(path: &str) -> Option<Digest> {
    let file = path.rsplit('/').next()?;
    let hex = file
        .strip_suffix(".json")
        .or_else(|| file.strip_suffix(".tar"))
        .unwrap_or(file);
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        format!("sha256:{hex}").parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tags: &[&str]) -> ManifestEntry {
        ManifestEntry {
            config: "c.json".into(),
            repo_tags: Some(tags.iter().map(|s| s.to_string()).collect()),
            layers: vec![],
        }
    }

    #[test]
    fn selects_by_tag_position_and_docker_io_prefix() {
        let e = entry(&["docker.io/library/app:1.0", "app:latest"]);
        assert!(entry_matches(0, &e, "app:1.0"));
        assert!(entry_matches(0, &e, "app"));
        assert!(entry_matches(3, &e, "@3"));
        assert!(!entry_matches(0, &e, "@1"));
        assert!(!entry_matches(0, &e, "other:1.0"));
    }

    #[test]
    fn finds_digests_in_config_names() {
        let hex = "a".repeat(64);
        assert!(digest_in_name(&format!("{hex}.json")).is_some());
        assert!(digest_in_name(&format!("blobs/sha256/{hex}")).is_some());
        assert!(digest_in_name("config.json").is_none());
    }
}
