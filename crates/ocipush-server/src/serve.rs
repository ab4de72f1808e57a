//! The accept loop: plain TCP or TLS connections, each served by hyper (HTTP/1.1 and HTTP/2) with the
//! axum router, within the connection limits (see `connections`), and a graceful shutdown that lets
//! in-flight requests finish for a bounded time.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use http_body_util::BodyExt as _;
use hyper::service::Service as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::config::ConnectionLimits;
use crate::connections::{Activity, ConnectionTable, Registration, Room, Silence, Tracked};

/// A client that connects but never completes the TLS handshake must not hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight requests (e.g. a layer upload) before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a connection told to close (idle, evicted) may take to finish what it is writing.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// The connection limit is logged at most this often, however many connections run into it.
const LIMIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// The bound socket and how its connections are served.
pub struct Listener {
    pub listener: TcpListener,
    pub local_addr: SocketAddr,
    pub tls: Option<TlsAcceptor>,
    pub limits: ConnectionLimits,
}

/// What every connection task needs.
#[derive(Clone)]
struct Shared {
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnectionLimits,
    stop: watch::Receiver<()>,
}

/// Serves connections until `shutdown` resolves, then drains them.
pub async fn serve<F>(listener: Listener, router: Router, shutdown: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let Listener {
        listener,
        local_addr,
        tls,
        limits,
    } = listener;
    let table = Arc::new(ConnectionTable::new(&limits));
    let (stop_tx, stop_rx) = watch::channel(());
    let shared = Shared {
        tls: tls.clone(),
        router,
        limits,
        stop: stop_rx,
    };
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_limit_log: Option<Instant> = None;
    tracing::info!(addr = %local_addr, tls = tls.is_some(), max_connections = table.max(), "registry listening");
    loop {
        let room = table.make_room();
        if room != Room::Free && last_limit_log.is_none_or(|at| at.elapsed() >= LIMIT_LOG_EVERY) {
            last_limit_log = Some(Instant::now());
            match room {
                Room::MadeByEvicting => tracing::warn!(
                    max = table.max(),
                    "connection limit reached: closing the connection idle the longest to make room"
                ),
                _ => tracing::warn!(
                    max = table.max(),
                    "connection limit reached with a request in flight on every connection: new connections wait"
                ),
            }
        }
        tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connections so the set does not grow with every connection ever served.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            // At the limit with every connection busy: look again shortly (a request may finish).
            () = tokio::time::sleep(Duration::from_millis(100)), if room == Room::Full => {}
            accepted = listener.accept(), if room != Room::Full => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, peer, table.register(), shared.clone()));
                }
                Err(err) => {
                    // Usually a transient condition (a connection reset before accept, or out of file
                    // descriptors); back off briefly instead of spinning or giving up.
                    tracing::warn!(addr = %local_addr, open = table.len(), "accept failed: {err}");
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
    stream: TcpStream,
    peer: SocketAddr,
    registration: Registration,
    mut shared: Shared,
) {
    let activity = Arc::clone(registration.activity());
    let stream = Tracked::new(stream, Arc::clone(&activity));
    let Some(acceptor) = shared.tls.clone() else {
        return drive(stream, peer, &activity, shared).await;
    };
    tokio::select! {
        handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => match handshake {
            Ok(Ok(stream)) => drive(stream, peer, &activity, shared).await,
            Ok(Err(err)) => tracing::debug!(%peer, "TLS handshake failed: {err}"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        },
        () = activity.evicted() => tracing::debug!(%peer, "closed during the TLS handshake to make room"),
        _ = shared.stop.changed() => {}
    }
    drop(registration);
}

async fn drive<I>(io: I, peer: SocketAddr, activity: &Arc<Activity>, mut shared: Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    // The timer enables hyper's header read timeout, which sheds clients that stall mid-headers.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let router = TowerToHyperService::new(shared.router.clone());
    let requests = Arc::clone(activity);
    // Each request counts as in flight until the last byte of its answer is sent.
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let in_flight = requests.request();
        let answer = router.call(request);
        async move {
            let response = answer.await?;
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _held_until_the_body_ends = &in_flight;
                    frame
                }))
            }))
        }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = shared.stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        silence = activity.silence(&shared.limits) => {
            match silence {
                Silence::Idle => {
                    tracing::debug!(%peer, "closing a connection idle for {} s", shared.limits.idle_timeout.as_secs());
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(CLOSE_GRACE, conn.as_mut()).await.unwrap_or(Ok(()))
                }
                Silence::Stalled => {
                    tracing::debug!(%peer, "closing a connection whose request stalled");
                    Ok(())
                }
            }
        }
        () = activity.evicted() => {
            tracing::debug!(%peer, "closing an idle connection to make room");
            // HTTP/2 sends GOAWAY; HTTP/1 closes once the answer being written is out.
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(CLOSE_GRACE, conn.as_mut()).await.unwrap_or(Ok(()))
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, "connection ended with an error: {err}");
    }
}
