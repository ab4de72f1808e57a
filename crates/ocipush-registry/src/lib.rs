//! An OCI distribution client for pushing: references, authentication (basic and bearer tokens
//! answering `WWW-Authenticate` challenges, OAuth2 refresh tokens), credentials where docker and
//! podman keep them, TLS settings (CA files, docker's `certs.d`, client certificates), retries,
//! and the blob and manifest steps of the push protocol, each its own function.
//!
//! References are parsed once, with docker's normalisation: a name without a registry means
//! Docker Hub (`docker.io`), and a single-component Docker Hub name gains `library/`.
//!
//! ```
//! use ocipush_registry::Reference;
//!
//! let r = Reference::parse("gitea.cnoe.localtest.me:8443/giteaadmin/app:1.2").unwrap();
//! assert_eq!(r.registry, "gitea.cnoe.localtest.me:8443");
//! assert_eq!(r.repository, "giteaadmin/app");
//! assert_eq!(r.tag.as_deref(), Some("1.2"));
//! assert!(r.digest.is_none());
//!
//! let hub = Reference::parse("nginx").unwrap();
//! assert_eq!(hub.registry, "docker.io");
//! assert_eq!(hub.repository, "library/nginx");
//! assert_eq!(hub.tag, None);
//! assert_eq!(hub.to_string(), "docker.io/library/nginx");
//! ```

#![deny(missing_docs)]

mod auth;
mod blobs;
mod challenge;
mod chunked;
mod client;
pub mod credentials;
mod error;
mod manifests;
mod pull;
mod reference;
mod repository;
mod retry;
pub mod retry_count;
mod secret;
mod single_post;
mod tls;
mod token;

pub use blobs::{BodyChunk, MountOutcome, UploadSession};
pub use challenge::Challenge;
pub use chunked::{FALLBACK_CHUNK, MIN_CHUNK};
pub use client::{ClientOptions, LoginCheck, RegistryClient};
pub use error::{ErrorClass, RegistryError};
pub use pull::{referrers_tag, BlobBody, PulledManifest, MANIFEST_LIMIT};
pub use reference::{lowercased_repository, Reference, ReferenceError, RegistryTarget, DOCKER_HUB};
pub use repository::{Access, Repository};
pub use retry::RetryPolicy;
pub use secret::{Credentials, Secret};
pub use tls::{host_certificates, HostCertificates, TlsOptions};
