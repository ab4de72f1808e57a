//! The HTTP client every request to one registry goes through: rustls trusting the system's
//! store plus the user's CA files and docker's `certs.d/HOST:PORT/*.crt`, presenting a client
//! certificate from there when one is kept, `--insecure` as an explicit opt-out of
//! verification, and the usual proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
//! `NO_PROXY`), except for loopback registries, which docker never reaches through a proxy.

mod certs_d;
mod verifier;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

pub use certs_d::{host_certificates, HostCertificates};

use crate::error::RegistryError;

/// How to talk TLS to a registry.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Skip certificate verification entirely (`--insecure`).
    pub insecure: bool,
    /// PEM files whose certificates are trusted as roots, in addition to the system's.
    pub ca_files: Vec<PathBuf>,
    /// Roots of docker-style per-registry folders (`ROOT/HOST[:PORT]/ca.crt`, `client.cert`,
    /// `client.key`), e.g. `/etc/docker/certs.d` and `~/.docker/certs.d`.
    pub certs_dirs: Vec<PathBuf>,
}

/// The system's trust store, read once per process.
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let result = rustls_native_certs::load_native_certs();
        for error in &result.errors {
            tracing::debug!(%error, "skipping part of the system trust store");
        }
        result.certs
    })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    let ca_error = |detail: String| RegistryError::CaFile {
        path: path.display().to_string(),
        detail,
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(ca_error("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

fn read_client_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), RegistryError> {
    let cert_error = |path: &Path, detail: String| RegistryError::CertFile {
        path: path.display().to_string(),
        detail,
    };
    let chain = read_certificates(cert).map_err(|e| match e {
        RegistryError::CaFile { detail, .. } => cert_error(cert, detail),
        other => other,
    })?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| cert_error(key, format!("not a PEM private key: {e}")))?;
    Ok((chain, key_der))
}

/// The rustls configuration for `registry` (`host[:port]` as the user named it).
fn client_config(tls: &TlsOptions, registry: &str) -> Result<rustls::ClientConfig, RegistryError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let host_files = host_certificates(&tls.certs_dirs, registry)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Settings(format!("TLS setup: {e}")))?
        .dangerous();
    let builder = if tls.insecure {
        builder.with_custom_certificate_verifier(Arc::new(verifier::NoVerification {
            provider: provider.clone(),
        }))
    } else {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(native_roots().iter().cloned());
        let mut pinned = Vec::new();
        for path in tls.ca_files.iter().chain(&host_files.ca_files) {
            for cert in read_certificates(path)? {
                roots.add(cert.clone()).map_err(|e| RegistryError::CaFile {
                    path: path.display().to_string(),
                    detail: format!("not usable as a trust anchor: {e}"),
                })?;
                tracing::debug!(path = %path.display(), "trusting CA certificate");
                pinned.push(cert);
            }
        }
        let verifier = verifier::AnchoredVerifier::new(roots, pinned, provider.clone())
            .map_err(|e| RegistryError::Settings(format!("TLS setup: {e}")))?;
        builder.with_custom_certificate_verifier(Arc::new(verifier))
    };
    let mut config = match &host_files.client {
        Some((cert, key)) => {
            tracing::debug!(cert = %cert.display(), "presenting client certificate");
            let (chain, key_der) = read_client_identity(cert, key)?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| RegistryError::CertFile {
                    path: cert.display().to_string(),
                    detail: format!("unusable client certificate or key: {e}"),
                })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Builds the HTTP client for one registry. `loopback` registries are never proxied.
pub fn build_http_client(
    tls: &TlsOptions,
    registry: &str,
    loopback: bool,
    user_agent: &str,
) -> Result<reqwest::Client, RegistryError> {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(tls, registry)?)
        .user_agent(user_agent)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(30))
        // A registry that stops sending for this long is treated as gone; uploads keep the
        // connection busy in the other direction, so this bounds stalls, not upload time.
        .read_timeout(Duration::from_secs(300))
        .pool_idle_timeout(Duration::from_secs(60));
    if loopback {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| RegistryError::Settings(format!("cannot build the HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ca_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here").unwrap();
        for path in [empty, dir.path().join("missing.pem")] {
            let options = TlsOptions {
                ca_files: vec![path.clone()],
                ..TlsOptions::default()
            };
            let err = build_http_client(&options, "r.io", false, "t").unwrap_err();
            assert!(matches!(err, RegistryError::CaFile { .. }), "{err}");
            assert!(err.to_string().contains(&path.display().to_string()));
        }
    }

    #[test]
    fn client_certificate_from_certs_d() {
        let root = tempfile::tempdir().unwrap();
        let host = root.path().join("reg.example:5000");
        std::fs::create_dir_all(&host).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(host.join("client.cert"), cert.pem()).unwrap();
        std::fs::write(host.join("client.key"), key.serialize_pem()).unwrap();
        let options = TlsOptions {
            certs_dirs: vec![root.path().to_path_buf()],
            ..TlsOptions::default()
        };
        let config = client_config(&options, "reg.example:5000").unwrap();
        assert!(config.client_auth_cert_resolver.has_certs());
        // Other registries get no client certificate.
        let config = client_config(&options, "other.example").unwrap();
        assert!(!config.client_auth_cert_resolver.has_certs());

        std::fs::write(host.join("client.key"), "not a key").unwrap();
        let err = client_config(&options, "reg.example:5000").unwrap_err();
        assert!(matches!(err, RegistryError::CertFile { .. }), "{err}");
        assert!(err.to_string().contains("client.key"), "{err}");
    }

    #[test]
    fn builds_with_system_roots_and_insecure() {
        build_http_client(&TlsOptions::default(), "r.io", false, "t").unwrap();
        let insecure = TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        };
        build_http_client(&insecure, "localhost:5000", true, "t").unwrap();
    }
}
