//! What the caller (the `ocipush serve` command or the push-to-local default) tells the server: where the
//! store lives, where to listen, the optional TLS and basic-auth files, and the limits that keep a
//! registry exposed to a network standing when its peers are hostile.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything [`crate::Server::bind`] needs. Paths are used as given; relative paths resolve against the
/// process's working directory. Start from [`ServerConfig::new`] and set what differs:
///
/// ```
/// let mut config = ocipush_server::ServerConfig::new("/srv/registry", "127.0.0.1:5000".parse().unwrap());
/// config.allow_delete = true;
/// config.uploads.max_blob_bytes = 8 << 30;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Directory holding the store; created if missing.
    pub root: PathBuf,
    /// Listen address; port 0 picks a free port (see [`crate::Server::local_addr`]).
    pub addr: SocketAddr,
    /// Serve HTTPS with this certificate chain and key instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Require HTTP basic auth checked against this htpasswd file (bcrypt entries only).
    pub htpasswd: Option<PathBuf>,
    /// Accept basic auth over plain HTTP on an address other than loopback (passwords then cross the
    /// network in the clear). Meant for a registry behind a proxy that terminates TLS; off by default,
    /// and [`crate::Server::bind`] refuses such a configuration without it.
    pub allow_plain_http_auth: bool,
    /// Answer `DELETE` on manifests, tags and blobs. Off by default: such requests get 405
    /// `UNSUPPORTED`, as the distribution spec allows and CNCF distribution does.
    pub allow_delete: bool,
    /// Bounds on connections and on how long they may stay silent.
    pub connections: ConnectionLimits,
    /// Bounds on blob upload sessions.
    pub uploads: UploadLimits,
}

impl ServerConfig {
    /// A plain-HTTP registry over `root` on `addr`, without auth, deletes off, default limits.
    pub fn new(root: impl Into<PathBuf>, addr: SocketAddr) -> ServerConfig {
        ServerConfig {
            root: root.into(),
            addr,
            tls: None,
            htpasswd: None,
            allow_plain_http_auth: false,
            allow_delete: false,
            connections: ConnectionLimits::default(),
            uploads: UploadLimits::default(),
        }
    }
}

/// PEM files for TLS: `cert` holds the leaf certificate followed by any intermediates, `key` the private
/// key (PKCS#8, PKCS#1 or SEC1).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// The leaf's private key.
    pub key: PathBuf,
}

/// How many connections are served at once and how long one may go without a byte.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// Most connections open at once. At the limit, the connection idle the longest is closed to make
    /// room; when every connection has a request in flight, new ones wait in the kernel's queue.
    /// `None` derives it from the process's open-file limit (half of it, leaving the rest for the
    /// files those connections read and write).
    pub max_connections: Option<usize>,
    /// A connection with no request in flight (one that never sent a byte, or a keep-alive
    /// connection between requests) is closed after this long without a byte.
    pub idle_timeout: Duration,
    /// A request in flight is cut off after this long without a byte in either direction (an upload
    /// body that stopped arriving, a download nobody reads). A cut-off upload keeps what it stored
    /// before the stall and can be resumed.
    pub stall_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: None,
            idle_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(60),
        }
    }
}

/// Bounds on blob upload sessions, so that clients cannot fill the disk with sessions they abandon.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UploadLimits {
    /// Largest blob one session may hold; a chunk that would go past it is refused (413).
    pub max_blob_bytes: u64,
    /// Most bytes all open sessions together may hold; a chunk that would go past it is refused (413).
    pub max_total_bytes: u64,
    /// Most open sessions per repository; one more `POST` is answered 429 `TOOMANYREQUESTS`.
    pub max_sessions_per_repository: usize,
    /// Most open sessions in the whole registry; one more `POST` is answered 429 `TOOMANYREQUESTS`.
    pub max_sessions: usize,
    /// A session that received nothing for this long is abandoned and removed (at start-up and then
    /// periodically), as CNCF distribution's upload purging does.
    pub purge_after: Duration,
}

impl Default for UploadLimits {
    fn default() -> UploadLimits {
        UploadLimits {
            max_blob_bytes: 64 << 30,
            max_total_bytes: 256 << 30,
            max_sessions_per_repository: 256,
            max_sessions: 4096,
            purge_after: Duration::from_secs(168 * 3600),
        }
    }
}
