//! What the caller (the `ocipush serve` command or the push-to-local default) tells the server: where the
//! store lives, where to listen, and the optional TLS and basic-auth files.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything [`crate::Server::bind`] needs. Paths are used as given; relative paths resolve against the
/// process's working directory.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Directory holding the store; created if missing.
    pub root: PathBuf,
    /// Listen address; port 0 picks a free port (see [`crate::Server::local_addr`]).
    pub addr: SocketAddr,
    /// Serve HTTPS with this certificate chain and key instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Require HTTP basic auth checked against this htpasswd file (bcrypt entries only).
    pub htpasswd: Option<PathBuf>,
}

/// PEM files for TLS: `cert` holds the leaf certificate followed by any intermediates, `key` the private
/// key (PKCS#8, PKCS#1 or SEC1).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}
