//! The OCI data model every ocipush layer shares: digests and the readers that verify them,
//! media types, and the manifest, index and config documents (the `oci-spec` types, re-exported).
//!
//! Raw manifest bytes are always kept next to their parsed form: a manifest's digest is the
//! digest of the exact bytes, so re-serialising a parsed manifest would silently change it.

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
