//! An OCI distribution client for pushing: references, authentication (basic and bearer tokens
//! answering `WWW-Authenticate` challenges), TLS settings, retries, and the blob and manifest
//! steps of the push protocol, each its own function.

mod auth;
mod blobs;
mod challenge;
mod client;
mod error;
mod manifests;
mod reference;
mod repository;
mod retry;
mod secret;
mod tls;

pub use blobs::{BodyChunk, UploadSession};
pub use challenge::Challenge;
pub use client::{ClientOptions, RegistryClient};
pub use error::{ErrorClass, RegistryError};
pub use reference::{Reference, ReferenceError, RegistryTarget, DOCKER_HUB};
pub use repository::Repository;
pub use retry::RetryPolicy;
pub use secret::{Credentials, Secret};
pub use tls::TlsOptions;
