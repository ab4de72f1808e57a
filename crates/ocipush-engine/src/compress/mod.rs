//! Layer compression: the settings that define a compressed layer's bytes (and so its digest),
//! and the compressors themselves.

mod gzip;

pub(crate) use gzip::gzip_parallel;

/// How ocipush compresses layers it finds uncompressed. Part of the digest cache key: the same
/// input and settings always give the same compressed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompressionSettings {
    pub algorithm: Algorithm,
    pub level: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Gzip,
}

impl Default for CompressionSettings {
    /// gzip level 1, as crane does: on layer data it is several times faster than level 6 and
    /// within a few percent of its size.
    fn default() -> Self {
        CompressionSettings {
            algorithm: Algorithm::Gzip,
            level: 1,
        }
    }
}

impl CompressionSettings {
    /// A stable name for these settings, used in cache keys. Changing how bytes are produced
    /// (block size, library) must change this name.
    pub fn cache_id(&self) -> String {
        match self.algorithm {
            Algorithm::Gzip => format!("gzip-l{}-b{}-zlibrs", self.level, gzip::BLOCK_SIZE),
        }
    }
}
