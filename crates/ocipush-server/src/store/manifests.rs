//! Manifests, tags, referrers and the repository catalog. Manifest bytes live in the shared `blobs/` store
//! (they are content-addressed like any blob); what makes a manifest part of a repository is its revision
//! marker, which also records the media type it was pushed with so GET can answer with the same
//! `Content-Type`.

use std::io;
use std::path::PathBuf;

use serde_json::Value;

use super::{list_dir, not_found_as_none, remove_if_exists, Store};
use crate::names::{is_valid_name, is_valid_tag, Digest};

/// A manifest as pushed.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub media_type: String,
    pub content: Vec<u8>,
}

/// What [`Store::put_manifest`] writes.
#[derive(Debug)]
pub struct NewManifest<'a> {
    pub digest: &'a Digest,
    pub media_type: &'a str,
    pub content: &'a [u8],
    pub tags: &'a [String],
    /// The manifest's `subject` and the descriptor to list under it in the referrers API.
    pub referrer: Option<(Digest, Value)>,
}

impl Store {
    fn revision_marker(&self, name: &str, digest: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests/revisions/sha256")
            .join(digest.hex())
    }

    fn tags_dir(&self, name: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests/tags")
    }

    fn referrers_dir(&self, name: &str, subject: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_referrers/sha256")
            .join(subject.hex())
    }

    /// Whether the repository exists, i.e. ever received a blob or a manifest.
    pub async fn repo_exists(&self, name: &str) -> io::Result<bool> {
        let dir = self.repo_dir(name);
        for sub in ["_manifests", "_layers"] {
            if not_found_as_none(tokio::fs::metadata(dir.join(sub)).await)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Stores a validated manifest in `name`, then points `tags` at it. Order matters for crash safety:
    /// content, then the referrer entry, then the revision marker, then tags.
    pub async fn put_manifest(&self, name: &str, manifest: NewManifest<'_>) -> io::Result<()> {
        let blob = self.blob_path(manifest.digest);
        if not_found_as_none(tokio::fs::metadata(&blob).await)?.is_none() {
            self.write_atomic(&blob, manifest.content).await?;
        }
        if let Some((subject, descriptor)) = &manifest.referrer {
            let path = self
                .referrers_dir(name, subject)
                .join(manifest.digest.hex());
            self.write_atomic(&path, descriptor.to_string().as_bytes())
                .await?;
        }
        self.write_atomic(
            &self.revision_marker(name, manifest.digest),
            manifest.media_type.as_bytes(),
        )
        .await?;
        let target = manifest.digest.to_string();
        for tag in manifest.tags {
            self.write_atomic(&self.tags_dir(name).join(tag), target.as_bytes())
                .await?;
        }
        Ok(())
    }

    pub async fn manifest_exists(&self, name: &str, digest: &Digest) -> io::Result<bool> {
        Ok(
            not_found_as_none(tokio::fs::metadata(self.revision_marker(name, digest)).await)?
                .is_some(),
        )
    }

    /// The digest a tag points at. A tag whose file holds garbage counts as absent.
    pub async fn resolve_tag(&self, name: &str, tag: &str) -> io::Result<Option<Digest>> {
        let path = self.tags_dir(name).join(tag);
        let Some(content) = not_found_as_none(tokio::fs::read_to_string(path).await)? else {
            return Ok(None);
        };
        Ok(Digest::parse(content.trim()).ok())
    }

    pub async fn get_manifest(
        &self,
        name: &str,
        digest: &Digest,
    ) -> io::Result<Option<StoredManifest>> {
        let marker = self.revision_marker(name, digest);
        let Some(media_type) = not_found_as_none(tokio::fs::read_to_string(marker).await)? else {
            return Ok(None);
        };
        let Some(content) = not_found_as_none(tokio::fs::read(self.blob_path(digest)).await)?
        else {
            return Ok(None);
        };
        Ok(Some(StoredManifest {
            media_type: media_type.trim().to_owned(),
            content,
        }))
    }

    pub async fn delete_tag(&self, name: &str, tag: &str) -> io::Result<bool> {
        remove_if_exists(&self.tags_dir(name).join(tag)).await
    }

    /// Removes the manifest from `name`, with the tags pointing at it and its referrer entry.
    pub async fn delete_manifest(&self, name: &str, digest: &Digest) -> io::Result<bool> {
        let subject = match self.get_manifest(name, digest).await? {
            Some(stored) => subject_of(&stored.content),
            None => return Ok(false),
        };
        if !remove_if_exists(&self.revision_marker(name, digest)).await? {
            return Ok(false);
        }
        for tag in list_dir(&self.tags_dir(name)).await? {
            if is_valid_tag(&tag) && self.resolve_tag(name, &tag).await?.as_ref() == Some(digest) {
                remove_if_exists(&self.tags_dir(name).join(&tag)).await?;
            }
        }
        if let Some(subject) = subject {
            let entry = self.referrers_dir(name, &subject).join(digest.hex());
            remove_if_exists(&entry).await?;
        }
        Ok(true)
    }

    /// A manifest of `name` that names `digest` as its config, a layer or a child manifest, if any:
    /// deleting `digest` from `name` would leave that manifest unpullable. (A `subject` does not count:
    /// a referrer may outlive what it refers to.) Reads every manifest of the repository.
    pub async fn manifest_using(&self, name: &str, digest: &Digest) -> io::Result<Option<Digest>> {
        let revisions = self.repo_dir(name).join("_manifests/revisions/sha256");
        for hex in list_dir(&revisions).await? {
            let Ok(manifest) = Digest::parse(&format!("sha256:{hex}")) else {
                continue;
            };
            let Some(stored) = self.get_manifest(name, &manifest).await? else {
                continue;
            };
            if names_blob(&stored.content, digest) {
                return Ok(Some(manifest));
            }
        }
        Ok(None)
    }

    /// Tags of `name` in lexical order, `None` if the repository does not exist.
    pub async fn list_tags(&self, name: &str) -> io::Result<Option<Vec<String>>> {
        if !self.repo_exists(name).await? {
            return Ok(None);
        }
        let mut tags: Vec<String> = list_dir(&self.tags_dir(name))
            .await?
            .into_iter()
            .filter(|t| is_valid_tag(t))
            .collect();
        tags.sort();
        Ok(Some(tags))
    }

    /// All repository names in lexical order.
    pub async fn list_repositories(&self) -> io::Result<Vec<String>> {
        let base = self.root.join("repositories");
        let mut found = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(prefix) = pending.pop() {
            let dir = if prefix.is_empty() {
                base.clone()
            } else {
                base.join(&prefix)
            };
            for entry in list_dir(&dir).await? {
                if entry.starts_with('_') {
                    continue;
                }
                let name = if prefix.is_empty() {
                    entry
                } else {
                    format!("{prefix}/{entry}")
                };
                if !is_valid_name(&name) {
                    continue;
                }
                if self.repo_exists(&name).await? {
                    found.push(name.clone());
                }
                pending.push(name);
            }
        }
        found.sort();
        Ok(found)
    }

    /// Descriptors of the manifests in `name` whose `subject` is `subject`, ordered by digest.
    pub async fn referrers(&self, name: &str, subject: &Digest) -> io::Result<Vec<Value>> {
        let dir = self.referrers_dir(name, subject);
        let mut entries = list_dir(&dir).await?;
        entries.sort();
        let mut descriptors = Vec::new();
        for entry in entries {
            let Some(content) = not_found_as_none(tokio::fs::read(dir.join(&entry)).await)? else {
                continue;
            };
            match serde_json::from_slice::<Value>(&content) {
                Ok(descriptor) => descriptors.push(descriptor),
                Err(err) => {
                    tracing::warn!(repo = name, entry, "skipping unreadable referrer: {err}")
                }
            }
        }
        Ok(descriptors)
    }
}

/// The `subject.digest` of a manifest, if it has a valid one.
pub fn subject_of(content: &[u8]) -> Option<Digest> {
    let value: Value = serde_json::from_slice(content).ok()?;
    Digest::parse(value.get("subject")?.get("digest")?.as_str()?).ok()
}

/// Whether a manifest's `config`, `layers` or `manifests` descriptors name `digest`.
fn names_blob(content: &[u8], digest: &Digest) -> bool {
    let Ok(value) = serde_json::from_slice::<Value>(content) else {
        return false;
    };
    let wanted = digest.to_string();
    let named =
        |descriptor: &Value| descriptor.get("digest").and_then(Value::as_str) == Some(&wanted);
    let in_list = |field: &str| {
        value
            .get(field)
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(named))
    };
    value.get("config").is_some_and(named) || in_list("layers") || in_list("manifests")
}
