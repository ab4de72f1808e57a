//! Test kit for ocipush's integration tests.
//!
//! - [`fixtures`]: deterministic images written as OCI layouts, oci-archives and docker
//!   archives (legacy and Docker 25+), with the digests a registry should end up holding.
//! - [`pki`]: throwaway CA and server certificates.
//! - [`registry`]: a real CNCF distribution registry (`docker-registry`) on a free loopback
//!   port, optionally with TLS and htpasswd or bearer-token auth.
//! - [`token_server`]: a distribution token server (ES256 JWTs) for `auth: token:` mode.
//! - [`fault_proxy`]: a loopback HTTP proxy in front of a registry that breaks requests on a
//!   seeded, deterministic schedule (resets, 5xx/429, stalls, truncation, 413).
//! - [`skopeo`]: skopeo wrappers to inspect and copy images independently of ocipush.
//! - [`dockerd`], [`podman`]: real Docker and Podman engines (own sockets, storage, vfs) for
//!   daemon-source tests.
//! - [`fake_engine`]: a stand-in Engine API for the Docker 25+ save stream and engine faults.
//! - [`tools`]: finding the external programs above.
//!
//! Everything here panics with a clear message on failure: it runs inside tests.

pub mod digest;
pub mod dockerd;
pub mod fake_engine;
pub mod fault_proxy;
pub mod fixtures;
pub mod pki;
pub mod podman;
pub mod registry;
pub mod skopeo;
pub mod token_server;
pub mod tools;

pub use digest::sha256_digest;
pub use fixtures::{
    write_docker_archive, write_oci_archive, write_oci_layout, write_oci_layout_multiarch,
    DockerArchiveFormat, DockerArchiveOptions, ExpectedImage, ExpectedIndex, ImageSpec,
    LayerCompression, LayerSpec,
};
pub use pki::TestPki;
pub use registry::{free_port, DockerRegistry, RegistryOptions, TokenAuthOptions};
pub use skopeo::SkopeoAuth;
pub use token_server::{TokenRequest, TokenServer, TokenServerOptions};
