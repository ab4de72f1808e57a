//! The accept loop: plain TCP or TLS connections, each served by hyper (HTTP/1.1 and HTTP/2) with the
//! axum router, and a graceful shutdown that lets in-flight requests finish for a bounded time.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// A client that connects but never completes the TLS handshake must not hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight requests (e.g. a layer upload) before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves connections until `shutdown` resolves, then drains them.
pub async fn serve<F>(
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    shutdown: F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    tracing::info!(addr = %local_addr, tls = tls.is_some(), "registry listening");
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connections so the set does not grow with every connection ever served.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, peer, tls.clone(), router.clone(), stop_rx.clone()));
                }
                Err(err) => {
                    // Usually a transient condition (a connection reset before accept, or out of file
                    // descriptors); back off briefly instead of spinning or giving up.
                    tracing::warn!(addr = %local_addr, "accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    tracing::info!(addr = %local_addr, open = connections.len(), "registry shutting down");
    let _ = stop_tx.send(());
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "closing connections still busy after the shutdown grace period"
        );
        connections.shutdown().await;
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut stop: watch::Receiver<()>,
) {
    let Some(acceptor) = tls else {
        return drive(stream, peer, router, stop).await;
    };
    tokio::select! {
        handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => match handshake {
            Ok(Ok(stream)) => drive(stream, peer, router, stop).await,
            Ok(Err(err)) => tracing::debug!(%peer, "TLS handshake failed: {err}"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        },
        _ = stop.changed() => {}
    }
}

async fn drive<I>(io: I, peer: SocketAddr, router: Router, mut stop: watch::Receiver<()>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    // The timer enables hyper's header read timeout, which sheds clients that open a connection and stall.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let service = TowerToHyperService::new(router);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, "connection ended with an error: {err}");
    }
}
