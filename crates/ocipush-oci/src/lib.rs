//! The OCI data model every ocipush layer shares: digests and the readers that verify them,
//! media types, and the manifest, index and config documents (the `oci-spec` types, re-exported).
//!
//! Raw manifest bytes are always kept next to their parsed form: a manifest's digest is the
//! digest of the exact bytes, so re-serialising a parsed manifest would silently change it.
//!
//! Digests are sha256 only, the one algorithm ocipush can verify:
//!
//! ```
//! use ocipush_oci::{parse_sha256, sha256_of, Compression};
//!
//! let digest = sha256_of(b"");
//! assert_eq!(
//!     digest.to_string(),
//!     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
//! );
//! assert_eq!(parse_sha256(digest.as_ref()).unwrap(), digest);
//! assert!(parse_sha256("sha256:ABCD").is_err());
//!
//! // A layer's compression, told from its first bytes.
//! assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
//! assert_eq!(Compression::sniff(b"ustar"), Compression::None);
//! ```

#![deny(missing_docs)]

pub mod compression;
pub mod digest;
pub mod document;
mod index_subset;
pub mod media_type;
pub mod platform;
mod sha256_pair;
pub mod verify;

pub use compression::Compression;
pub use digest::{parse_sha256, sha256_of, Digest, DigestError, Sha256Writer};
pub use document::{Document, DocumentError, DocumentKind};
pub use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType, Platform,
};
pub use platform::{PlatformError, PlatformSpec};
pub use sha256_pair::Sha256Pair;
pub use verify::{VerifyError, VerifyingReader};
