//! The persistent digest cache: (diffID, compression settings) -> compressed digest and size.
//! With it, a second push of an unchanged layer asks the registry about the compressed digest
//! first and skips reading and compressing the layer when the registry has it.
//!
//! One small file per entry, written to a temporary name and renamed into place, so concurrent
//! runs never see half an entry; an unreadable or malformed entry is ignored (and rewritten
//! after the next compression), never fatal.

use std::io::Write;
use std::path::PathBuf;

use ocipush_oci::{parse_sha256, Digest};

use crate::compress::CompressionSettings;

/// Where compressed digests of layers are remembered between runs.
#[derive(Debug, Clone)]
pub struct DigestCache {
    dir: Option<PathBuf>,
}

impl DigestCache {
    /// A cache rooted at `dir` (created on first write).
    pub fn at(dir: PathBuf) -> DigestCache {
        DigestCache { dir: Some(dir) }
    }

    /// No cache: every layer is compressed.
    pub fn disabled() -> DigestCache {
        DigestCache { dir: None }
    }

    fn entry(&self, diff_id: &Digest, settings: &CompressionSettings) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        // diffIDs were parsed as sha256 by the source: their hex part is a safe file name.
        Some(
            dir.join("v1")
                .join(settings.cache_id())
                .join(diff_id.digest()),
        )
    }

    /// The compressed digest and size remembered for `diff_id` under `settings`.
    pub fn get(&self, diff_id: &Digest, settings: &CompressionSettings) -> Option<(Digest, u64)> {
        let path = self.entry(diff_id, settings)?;
        let text = std::fs::read_to_string(&path).ok()?;
        let parsed = parse_entry(&text);
        if parsed.is_none() {
            tracing::debug!(path = %path.display(), "ignoring a malformed digest cache entry");
        }
        parsed
    }

    /// Remembers what `diff_id` compresses to under `settings`.
    pub fn put(
        &self,
        diff_id: &Digest,
        settings: &CompressionSettings,
        digest: &Digest,
        size: u64,
    ) {
        let Some(path) = self.entry(diff_id, settings) else {
            return;
        };
        if let Err(e) = write_atomically(&path, &format!("{digest} {size}\n")) {
            // A cache that cannot be written only costs speed next time.
            tracing::debug!(error = %e, path = %path.display(), "cannot write the digest cache");
        }
    }
}

impl DigestCache {
    /// Remembers how big a layer is uncompressed, so a stream that names its layers by
    /// something else (a legacy `docker save`) can tell a known layer by its size — a guess
    /// that is always checked by hashing.
    pub fn put_layer_size(&self, diff_id: &Digest, size: u64) {
        self.put_size("sizes", diff_id, size);
    }

    /// The uncompressed size recorded for a layer.
    pub fn layer_size(&self, diff_id: &Digest) -> Option<u64> {
        self.size("sizes", diff_id)
    }

    /// Remembers a daemon image's config size by its digest (the image ID): with the layers'
    /// digests, all a manifest needs, so the next push knows its digest before asking anything.
    pub fn put_config_size(&self, config: &Digest, size: u64) {
        self.put_size("configs", config, size);
    }

    /// The size recorded for a config.
    pub fn config_size(&self, config: &Digest) -> Option<u64> {
        self.size("configs", config)
    }

    /// `v1/KIND/HEX`: a size, one number.
    fn put_size(&self, kind: &str, key: &Digest, size: u64) {
        let Some(dir) = &self.dir else { return };
        let path = dir.join("v1").join(kind).join(key.digest());
        if let Err(e) = write_atomically(&path, &format!("{size}\n")) {
            // A cache that cannot be written only costs speed next time.
            tracing::debug!(error = %e, path = %path.display(), "cannot write the digest cache");
        }
    }

    fn size(&self, kind: &str, key: &Digest) -> Option<u64> {
        let dir = self.dir.as_ref()?;
        let path = dir.join("v1").join(kind).join(key.digest());
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }
}

fn parse_entry(text: &str) -> Option<(Digest, u64)> {
    let mut parts = text.split_whitespace();
    let digest = parse_sha256(parts.next()?).ok()?;
    let size = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((digest, size))
}

fn write_atomically(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    let dir = path.parent().expect("entries live in a directory");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(content.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocipush_oci::sha256_of;

    #[test]
    fn remembers_and_ignores_corrupt_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DigestCache::at(dir.path().to_path_buf());
        let settings = CompressionSettings::default();
        let diff_id = sha256_of(b"layer");
        assert_eq!(cache.get(&diff_id, &settings), None);
        cache.put(&diff_id, &settings, &sha256_of(b"gz"), 42);
        assert_eq!(cache.get(&diff_id, &settings), Some((sha256_of(b"gz"), 42)));

        // Another level is another entry.
        let other = CompressionSettings {
            level: 6,
            ..settings
        };
        assert_eq!(cache.get(&diff_id, &other), None);

        let path = cache.entry(&diff_id, &settings).unwrap();
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(cache.get(&diff_id, &settings), None);
        std::fs::write(&path, format!("{} 12 extra", sha256_of(b"gz"))).unwrap();
        assert_eq!(cache.get(&diff_id, &settings), None);
        assert_eq!(DigestCache::disabled().get(&diff_id, &settings), None);

        assert_eq!(cache.layer_size(&diff_id), None);
        cache.put_layer_size(&diff_id, 1234);
        assert_eq!(cache.layer_size(&diff_id), Some(1234));
    }
}
