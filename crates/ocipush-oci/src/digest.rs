//! Content digests: parsing (through `oci-spec`), and computing sha256 over bytes or a stream.

use std::io::{self, Write};

use sha2::{Digest as _, Sha256};

pub use oci_spec::image::Digest;

/// Why a digest string was refused.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// Not a well-formed digest.
    #[error("invalid digest `{value}`: {reason}")]
    Invalid {
        /// The string as given.
        value: String,
        /// What `oci-spec` found wrong with it.
        reason: String,
    },
    /// Well-formed, but not sha256.
    #[error("unsupported digest algorithm in `{value}` (only sha256 is supported)")]
    UnsupportedAlgorithm {
        /// The string as given.
        value: String,
    },
}

/// Parses a digest and insists on sha256, the only algorithm ocipush can verify.
pub fn parse_sha256(value: &str) -> Result<Digest, DigestError> {
    let digest: Digest =
        value
            .parse()
            .map_err(|e: oci_spec::OciSpecError| DigestError::Invalid {
                value: value.to_string(),
                reason: e.to_string(),
            })?;
    if digest.algorithm().as_ref() != "sha256" {
        return Err(DigestError::UnsupportedAlgorithm {
            value: value.to_string(),
        });
    }
    Ok(digest)
}

/// The sha256 digest of a byte slice.
pub fn sha256_of(bytes: &[u8]) -> Digest {
    from_hash(Sha256::digest(bytes).as_slice())
}

pub(crate) fn from_hash(hash: &[u8]) -> Digest {
    format!("sha256:{}", hex::encode(hash))
        .parse()
        .expect("a hex sha256 is always a valid digest")
}

/// A `Write` sink that hashes and counts what passes through it.
#[derive(Default, Clone)]
pub struct Sha256Writer {
    hasher: Sha256,
    len: u64,
}

impl Sha256Writer {
    /// An empty hash: nothing written yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes `bytes` and adds them to the count; the infallible form of `write`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// How many bytes were hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Was nothing hashed yet?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest and length of everything written.
    pub fn finish(self) -> (Digest, u64) {
        (from_hash(self.hasher.finalize().as_slice()), self.len)
    }
}

impl Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_is_the_well_known_value() {
        assert_eq!(
            sha256_of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn writer_matches_one_shot_hash() {
        let mut w = Sha256Writer::new();
        w.update(b"hello ");
        w.update(b"world");
        let (digest, len) = w.finish();
        assert_eq!(digest, sha256_of(b"hello world"));
        assert_eq!(len, 11);
    }

    #[test]
    fn parse_rejects_other_algorithms_and_bad_hex() {
        assert!(matches!(
            parse_sha256("sha512:abcd"),
            Err(DigestError::Invalid { .. }) | Err(DigestError::UnsupportedAlgorithm { .. })
        ));
        assert!(parse_sha256("sha256:../../etc/passwd").is_err());
        assert!(parse_sha256("sha256:ABCD").is_err());
        assert!(parse_sha256(sha256_of(b"x").as_ref()).is_ok());
    }
}
