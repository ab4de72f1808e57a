//! What the server knows about each open connection: when a byte last moved either way and how many
//! requests are in flight on it. The accept loop reads it to decide which connection makes room at the
//! limit; each connection reads its own to decide when it has been silent too long.
//!
//! Invariant: a connection's entry lives exactly as long as its task (removed by [`Registration`]'s
//! drop), so the table's size is the number of open connections.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::ConnectionLimits;

/// One connection's activity, shared between its task, its requests and the accept loop.
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    /// Milliseconds after `opened` when a byte last moved in either direction.
    last_byte_ms: AtomicU64,
    in_flight: AtomicUsize,
    evicted: AtomicBool,
    evict: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            last_byte_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        }
    }

    fn touch(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.last_byte_ms.store(now, Ordering::Relaxed);
    }

    fn last_byte(&self) -> Instant {
        self.opened + Duration::from_millis(self.last_byte_ms.load(Ordering::Relaxed))
    }

    /// Counts a request as in flight until the returned guard is dropped.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }

    /// Resolves when the connection should close: silent for `idle_timeout` with no request in flight,
    /// or for `stall_timeout` with one. A stalled request's handler gives up on its own at
    /// `stall_timeout` (and answers); the connection waits a little longer so that answer can go out.
    pub async fn silence(&self, limits: &ConnectionLimits) -> Silence {
        const ANSWER_GRACE: Duration = Duration::from_secs(5);
        loop {
            let (allowed, kind) = if self.busy() {
                (limits.stall_timeout + ANSWER_GRACE, Silence::Stalled)
            } else {
                (limits.idle_timeout, Silence::Idle)
            };
            let deadline = self.last_byte() + allowed;
            if Instant::now() >= deadline {
                return kind;
            }
            // Re-checked at the deadline (activity may have moved it) and at least every idle period,
            // since a request can finish and turn a busy connection idle meanwhile.
            let next = deadline.min(Instant::now() + limits.idle_timeout);
            tokio::time::sleep_until(next).await;
        }
    }

    /// Resolves when the accept loop picked this connection to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// Why a connection was closed for silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// No request in flight and no byte for the idle timeout.
    Idle,
    /// A request in flight and no byte for the stall timeout.
    Stalled,
}

/// A request in flight on a connection.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        // The answer's last byte just left (or the request ended): the idle period starts now.
        self.0.touch();
    }
}

/// The open connections, and the limit on how many there may be.
#[derive(Debug)]
pub struct ConnectionTable {
    max: usize,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
}

/// How the accept loop may go on.
#[derive(Debug, PartialEq, Eq)]
pub enum Room {
    /// Below the limit.
    Free,
    /// At the limit; the connection idle the longest was told to close.
    MadeByEvicting,
    /// At the limit with a request in flight on every connection: accept nothing until one ends.
    Full,
}

impl ConnectionTable {
    pub fn new(limits: &ConnectionLimits) -> ConnectionTable {
        ConnectionTable {
            max: limits
                .max_connections
                .unwrap_or_else(default_max_connections)
                .max(1),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Makes room for one more connection if the table is at its limit.
    pub fn make_room(&self) -> Room {
        let open = self.open();
        let staying = open
            .values()
            .filter(|c| !c.evicted.load(Ordering::Relaxed))
            .count();
        if staying < self.max {
            return Room::Free;
        }
        let longest_idle = open
            .values()
            .filter(|c| !c.evicted.load(Ordering::Relaxed) && !c.busy())
            .min_by_key(|c| c.last_byte());
        match longest_idle {
            Some(connection) => {
                connection.evicted.store(true, Ordering::Relaxed);
                connection.evict.notify_one();
                Room::MadeByEvicting
            }
            None => Room::Full,
        }
    }

    /// Adds a connection; it leaves the table when the registration is dropped.
    pub fn register(self: &Arc<Self>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        self.open().insert(id, Arc::clone(&activity));
        Registration {
            table: Arc::clone(self),
            id,
            activity,
        }
    }

    pub fn len(&self) -> usize {
        self.open().len()
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        // Inserts and removes only: a panic cannot leave the map half-changed.
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A connection's place in the table.
#[derive(Debug)]
pub struct Registration {
    table: Arc<ConnectionTable>,
    id: u64,
    activity: Arc<Activity>,
}

impl Registration {
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.table.open().remove(&self.id);
    }
}

/// Half the open-file limit: each connection may hold a file open besides its socket, and the store
/// needs a few more. 512 where the limit cannot be read.
fn default_max_connections() -> usize {
    open_file_limit().map_or(512, |limit| (limit / 2).clamp(16, 65_536) as usize)
}

#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this stack frame.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    // `rlim_t` is u64 on Linux but not on every unix.
    #[allow(clippy::unnecessary_cast)]
    let current = limit.rlim_cur as u64;
    (status == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(current)
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

/// A socket whose reads and writes mark its connection as active.
#[derive(Debug)]
pub struct Tracked<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I> Tracked<I> {
    pub fn new(io: I, activity: Arc<Activity>) -> Tracked<I> {
        activity.touch();
        Tracked { io, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: Some(max),
            ..ConnectionLimits::default()
        }
    }

    #[tokio::test]
    async fn at_the_limit_the_longest_idle_connection_makes_room() {
        let table = Arc::new(ConnectionTable::new(&limits(2)));
        let first = table.register();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = table.register();
        assert_eq!(table.make_room(), Room::MadeByEvicting);
        // The first one was told; it leaves when its task ends.
        tokio::time::timeout(Duration::from_secs(1), first.activity().evicted())
            .await
            .expect("the longest-idle connection is evicted");
        drop(first);
        assert_eq!(table.make_room(), Room::Free);
        let third = table.register();
        // Both busy: nothing to evict.
        let _a = second.activity().request();
        let _b = third.activity().request();
        assert_eq!(table.make_room(), Room::Full);
        assert_eq!(table.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn silence_is_idle_without_a_request_and_stalled_with_one() {
        let table = Arc::new(ConnectionTable::new(&limits(4)));
        let connection = table.register();
        let activity = Arc::clone(connection.activity());
        let limits = ConnectionLimits::default();
        let started = Instant::now();
        assert_eq!(activity.silence(&limits).await, Silence::Idle);
        assert!(started.elapsed() >= limits.idle_timeout);

        let request = activity.request();
        activity.touch();
        let started = Instant::now();
        assert_eq!(activity.silence(&limits).await, Silence::Stalled);
        assert!(started.elapsed() >= limits.stall_timeout);
        drop(request);
    }
}
