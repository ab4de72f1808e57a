//! Errors that stop the server from starting or running. Request-level failures never surface here: they are
//! answered to the client in the distribution spec's JSON form (see `api_error`).

use std::net::SocketAddr;
use std::path::PathBuf;

/// A failure to start or run the server. Each message reads as one line after `error:` and names the file or
/// address involved; the underlying cause is kept as `source` for a `caused by:` line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("cannot prepare registry storage at {path}")]
    Storage {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot read {what} file {path}")]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid TLS {what} in {path}: {reason}")]
    Tls {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },

    #[error("basic auth over plain HTTP on {addr}, which is not a loopback address, would send passwords in the clear")]
    PlainHttpAuth { addr: SocketAddr },

    #[error("invalid htpasswd file {path}, line {line}: {reason}")]
    Htpasswd {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}
