//! An OCI distribution client for pushing: references, authentication (basic and bearer tokens
//! answering `WWW-Authenticate` challenges, OAuth2 refresh tokens), credentials where docker and
//! podman keep them, TLS settings (CA files, docker's `certs.d`, client certificates), retries,
//! and the blob and manifest steps of the push protocol, each its own function.

mod auth;
mod blobs;
mod challenge;
mod chunked;
mod client;
pub mod credentials;
mod error;
mod manifests;
mod reference;
mod repository;
mod retry;
pub mod retry_count;
mod secret;
mod tls;
mod token;

pub use blobs::{BodyChunk, MountOutcome, UploadSession};
pub use challenge::Challenge;
pub use chunked::{FALLBACK_CHUNK, MIN_CHUNK};
pub use client::{ClientOptions, LoginCheck, RegistryClient};
pub use error::{ErrorClass, RegistryError};
pub use reference::{Reference, ReferenceError, RegistryTarget, DOCKER_HUB};
pub use repository::Repository;
pub use retry::RetryPolicy;
pub use secret::{Credentials, Secret};
pub use tls::{host_certificates, HostCertificates, TlsOptions};
