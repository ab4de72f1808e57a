//! Embedded OCI distribution registry backed by a directory: the engine behind `ocipush serve` and the
//! default destination of `ocipush push`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ocipush_server::ServerError> {
//! use ocipush_server::{Server, ServerConfig};
//! let config = ServerConfig::new("/var/lib/ocipush", "127.0.0.1:5000".parse().expect("address"));
//! let server = Server::bind(config).await?;
//! println!("listening on {}", server.local_addr());
//! server.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! The engine never prints; it logs through `tracing` (one `debug` event per request). The storage layout
//! is described in the `store` module.

mod api_error;
mod auth;
mod config;
mod connections;
mod error;
mod names;
mod routes;
mod serve;
mod store;
mod tls;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use config::{ConnectionLimits, ServerConfig, TlsFiles, UploadLimits};
pub use error::ServerError;

/// A registry bound to its listening socket, ready to [`run_until`](Server::run_until).
pub struct Server {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    store: Arc<store::Store>,
    connections: ConnectionLimits,
}

impl Server {
    /// Prepares the store, loads the TLS and htpasswd files, and binds the listener (port 0 picks a free
    /// port). Every configuration problem is reported here, before any request is served.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        if config.htpasswd.is_some()
            && config.tls.is_none()
            && !config.addr.ip().is_loopback()
            && !config.allow_plain_http_auth
        {
            return Err(ServerError::PlainHttpAuth { addr: config.addr });
        }
        if config.tls.is_none() && !config.addr.ip().is_loopback() {
            tracing::warn!(
                addr = %config.addr,
                auth = config.htpasswd.is_some(),
                "serving plain HTTP on an address other than loopback: anyone who can reach it reads what it serves"
            );
        }
        let htpasswd = match &config.htpasswd {
            Some(path) => Some(Arc::new(auth::Htpasswd::load(path)?)),
            None => None,
        };
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: config.addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.addr,
            source,
        })?;
        // The store is opened (and its abandoned uploads purged) only by a server that could bind.
        let store = store::Store::open(&config.root, config.uploads.clone())
            .await
            .map_err(|source| ServerError::Storage {
                path: config.root.clone(),
                source,
            })?;
        let store = Arc::new(store);
        let state = routes::AppState {
            store: Arc::clone(&store),
            allow_delete: config.allow_delete,
            stall_timeout: config.connections.stall_timeout,
        };
        Ok(Server {
            listener,
            local_addr,
            tls,
            router: routes::router(state, htpasswd),
            store,
            connections: config.connections,
        })
    }

    /// The address actually bound, with the real port when the configuration asked for port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish (for a
    /// bounded grace period) and returns.
    pub async fn run_until<F>(self, shutdown: F) -> Result<(), ServerError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let purge = tokio::spawn(purge_abandoned_uploads(Arc::clone(&self.store)));
        serve::serve(
            serve::Listener {
                listener: self.listener,
                local_addr: self.local_addr,
                tls: self.tls,
                limits: self.connections,
            },
            self.router,
            shutdown,
        )
        .await;
        purge.abort();
        Ok(())
    }
}

/// Removes abandoned upload sessions now and then (the store did once when it opened).
async fn purge_abandoned_uploads(store: Arc<store::Store>) {
    let mut every = tokio::time::interval(store.purge_interval());
    every.tick().await; // the first tick is immediate, and the store just purged
    loop {
        every.tick().await;
        if let Err(err) = store.purge_abandoned_uploads().await {
            tracing::warn!("purging abandoned upload sessions: {err}");
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}
