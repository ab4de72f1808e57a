//! Layer compression: the settings that define a compressed layer's bytes (and so its digest),
//! and the compressors themselves.

mod gzip;
mod schedule;
mod zstd;

pub(crate) use gzip::gzip_parallel;
pub(crate) use zstd::zstd_compress;

/// How ocipush compresses layers it finds uncompressed. Part of the digest cache key: the same
/// input and settings always give the same compressed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompressionSettings {
    /// The compressor.
    pub algorithm: Algorithm,
    /// Its level (see [`Algorithm::levels`]).
    pub level: u32,
}

/// A layer compressor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// gzip, by libdeflate, in parallel blocks.
    Gzip,
    /// zstd.
    Zstd,
}

impl Algorithm {
    /// `gzip` or `zstd`, as `--compression` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Gzip => "gzip",
            Algorithm::Zstd => "zstd",
        }
    }

    /// How blobs made with this algorithm are compressed.
    pub fn compression(self) -> ocipush_oci::Compression {
        match self {
            Algorithm::Gzip => ocipush_oci::Compression::Gzip,
            Algorithm::Zstd => ocipush_oci::Compression::Zstd,
        }
    }

    /// The level used when none is given: gzip 1 (as crane), zstd 3 (zstd's own default).
    pub fn default_level(self) -> u32 {
        match self {
            Algorithm::Gzip => 1,
            Algorithm::Zstd => 3,
        }
    }

    /// The levels the algorithm accepts.
    pub fn levels(self) -> std::ops::RangeInclusive<u32> {
        match self {
            Algorithm::Gzip => 1..=9,
            Algorithm::Zstd => 1..=19,
        }
    }
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
    /// (block size, library or its patch — `ocipush1`: the lighter level-1 matchfinder of
    /// `vendor/libdeflate-sys` — the incompressibility probe: `p2` since the byte-count screen)
    /// must change this name. libdeflate is pinned to one version (the workspace `Cargo.toml`),
    /// so a move to another one changes the name by hand; zstd's name carries the version of
    /// the library actually linked.
    pub fn cache_id(&self) -> String {
        match self.algorithm {
            Algorithm::Gzip => format!(
                "gzip-l{}-b{}-libdeflate-ocipush1-p2",
                self.level,
                gzip::BLOCK_SIZE
            ),
            // The linked library's own version: another zstd may pick other matches.
            Algorithm::Zstd => format!(
                "zstd-l{}-mt-zstd{}",
                self.level,
                ::zstd::zstd_safe::version_string()
            ),
        }
    }
}
