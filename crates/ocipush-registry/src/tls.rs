//! The HTTP client every registry request goes through: rustls with the system's trust store,
//! extra CA files, and `--insecure` as an explicit opt-out of verification.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::RegistryError;

/// How to talk TLS to a registry.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Skip certificate verification entirely (`--insecure`).
    pub insecure: bool,
    /// PEM files whose certificates are trusted as roots, in addition to the system's.
    pub ca_files: Vec<PathBuf>,
}

/// Builds the shared HTTP client.
pub fn build_http_client(
    tls: &TlsOptions,
    user_agent: &str,
) -> Result<reqwest::Client, RegistryError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(user_agent)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(30))
        // A registry that stops sending for this long is treated as gone; uploads keep the
        // connection busy in the other direction, so this bounds stalls, not upload time.
        .read_timeout(Duration::from_secs(300))
        .pool_idle_timeout(Duration::from_secs(60))
        .danger_accept_invalid_certs(tls.insecure);
    for path in &tls.ca_files {
        let pem = std::fs::read(path).map_err(|e| RegistryError::CaFile {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| RegistryError::CaFile {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(RegistryError::CaFile {
                path: path.display().to_string(),
                detail: "no PEM certificate in the file".into(),
            });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| RegistryError::Settings(format!("cannot build the HTTP client: {e}")))
}
