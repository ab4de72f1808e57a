//! TLS termination with rustls and the `ring` provider (chosen over aws-lc-rs to keep builds free of a C
//! toolchain dependency). Certificates and key are PEM files, read once at startup.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;
use crate::error::ServerError;

/// Builds the acceptor, offering HTTP/2 and HTTP/1.1 through ALPN.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ServerError> {
    let certs = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| tls_error("protocol configuration", &files.cert, err))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|err| tls_error("certificate or key", &files.key, err))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let pem = read(path, "TLS certificate")?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| tls_error("certificate", path, err))?;
    if certs.is_empty() {
        return Err(tls_error("certificate", path, "no PEM certificate found"));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServerError> {
    let pem = read(path, "TLS key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|err| tls_error("key", path, err))
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|source| ServerError::ReadFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn tls_error(what: &'static str, path: &Path, err: impl std::fmt::Display) -> ServerError {
    ServerError::Tls {
        what,
        path: path.to_path_buf(),
        reason: err.to_string(),
    }
}
