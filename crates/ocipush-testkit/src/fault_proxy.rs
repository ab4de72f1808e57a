//! A fault-injecting HTTP proxy for reliability tests: it sits on a free 127.0.0.1 port in
//! front of a registry (a [`crate::DockerRegistry`]) and relays requests to it, except that a
//! [`FaultPlan`] picks requests to break — connections reset while the request body streams or
//! before the response, 5xx/429 answers with `Retry-After`, stalls, truncated responses, and
//! 413 for big bodies as a size-limited proxy sends.
//!
//! Clients talk to the proxy as if it were the registry (plain HTTP, `host_port()` as the
//! registry name). Requests are forwarded with their `Host` header unchanged, so the upload
//! URLs the registry hands out point back at the proxy. Each request opens its own upstream
//! connection, which keeps the relay simple; the client side stays keep-alive as HTTP/1.1
//! wants. Faults are decided per request kind by counting ("the 3rd PATCH"), so a client that
//! sends its requests one at a time (`-j 1`) meets the same faults on every run of a plan.
//!
//! One thread per client connection (std only); the listener stops when the proxy is dropped.

mod http;
mod schedule;

pub use schedule::{Fault, FaultPlan, RequestKind, Rule};

use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{copy_body, read_head, Body, Head};

/// Socket reads give up after this long: a test client that hangs must not hang the proxy.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Truncated responses are buffered whole first; registry answers are far smaller.
const MAX_BUFFERED_RESPONSE: u64 = 1 << 20;
/// The receive buffer asked for each client connection (Linux doubles it, to 512 KiB). Small
/// and fixed (the kernel could grow it to `tcp_rmem`'s limit, 32 MiB on the dev machines), so
/// that a body the proxy sees arriving is what the client is sending, not megabytes the kernel
/// took from it earlier: [`BodySpan`]s are then close to the client's timeline.
const CLIENT_RECEIVE_BUFFER: usize = 256 * 1024;

/// A running fault proxy; stops listening when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .finish()
    }
}

#[derive(Default)]
struct State {
    plan: FaultPlan,
    /// Requests seen per kind since the plan was set.
    counts: HashMap<RequestKind, u32>,
    /// How often each rule fired, for rules with a limit.
    fired: HashMap<usize, u32>,
    /// `"UploadPatch #2: reset after 100 request-body bytes"` per injected fault.
    injected: Vec<String>,
    /// Every request body relayed whole, in the order they ended.
    bodies: Vec<BodySpan>,
    /// The bodies arriving now, by a number of their own: their length and bytes relayed.
    arriving: HashMap<u64, (Option<u64>, Arc<AtomicU64>)>,
    next_body: u64,
}

/// One request body the proxy relayed to the registry: what a test of how many blobs stream
/// at once reads.
#[derive(Debug, Clone)]
pub struct BodySpan {
    pub kind: RequestKind,
    /// Its `Content-Length`; `None` for a chunked body.
    pub length: Option<u64>,
    /// When it began arriving, the bytes each other body then arriving still had to come
    /// (those of known length).
    pub others_left: Vec<u64>,
}

impl FaultProxy {
    /// Listens on a free loopback port, relaying to `upstream` with no faults until
    /// [`FaultProxy::set_plan`] is called.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = listen_on_loopback().expect("binding the fault proxy");
        let addr = listener.local_addr().expect("the fault proxy's address");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopping) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    // A broken connection is the point of this proxy, not a failure of it.
                    let _ = serve_client(stream, upstream, &shared);
                });
            }
        });
        FaultProxy { addr, state, stop }
    }

    /// `127.0.0.1:PORT`: the registry name clients use.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// `127.0.0.1:PORT/<repo_and_tag>`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr)
    }

    /// Replaces the plan and starts counting requests afresh.
    pub fn set_plan(&self, plan: FaultPlan) {
        *self.lock() = State {
            plan,
            ..State::default()
        };
    }

    /// The faults injected since the plan was set, in order.
    pub fn injected(&self) -> Vec<String> {
        self.lock().injected.clone()
    }

    /// The request bodies relayed whole since the plan was set, in the order they ended.
    pub fn bodies(&self) -> Vec<BodySpan> {
        self.lock().bodies.clone()
    }

    /// How many requests of `kind` arrived since the plan was set.
    pub fn requests(&self, kind: RequestKind) -> u32 {
        self.lock().counts.get(&kind).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A listener on a free loopback port whose connections have [`CLIENT_RECEIVE_BUFFER`].
fn listen_on_loopback() -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    // Set before listening, so accepted connections start with it (the window scale is
    // agreed in the handshake).
    socket.set_recv_buffer_size(CLIENT_RECEIVE_BUFFER)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Counts the request and picks its fault, logging it.
fn next_fault(state: &Mutex<State>, kind: RequestKind) -> Option<Fault> {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let n = {
        let count = state.counts.entry(kind).or_default();
        *count += 1;
        *count
    };
    let State { plan, fired, .. } = &mut *state;
    let fault = plan.pick(kind, n, fired)?;
    state.injected.push(format!("{kind:?} #{n}: {fault}"));
    Some(fault)
}

/// Relays the requests of one client connection until it closes or a fault ends it.
fn serve_client(client: TcpStream, upstream: SocketAddr, state: &Mutex<State>) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client;
    while let Some(request) = read_head(&mut from_client)? {
        let method = request.start[0].clone();
        let kind = RequestKind::classify(&method, &request.start[1]);
        let fault = next_fault(state, kind);
        let body = request.request_body();
        match fault {
            Some(Fault::Stall { millis }) => std::thread::sleep(Duration::from_millis(millis)),
            Some(Fault::Status {
                status,
                retry_after,
            }) => {
                copy_body(&mut from_client, &mut io::sink(), body, u64::MAX)?;
                answer(&mut to_client, status, retry_after, false)?;
                continue;
            }
            Some(Fault::RejectLarge { limit }) => {
                let too_big = match body {
                    Body::Chunked | Body::UntilClose => true,
                    Body::Length(n) => n > limit,
                    Body::None => false,
                };
                if too_big {
                    // Read the body before answering so the client sees the 413, not a reset.
                    copy_body(&mut from_client, &mut io::sink(), body, u64::MAX)?;
                    return answer(&mut to_client, 413, None, true);
                }
            }
            _ => {}
        }
        let upstream_conn = TcpStream::connect(upstream)?;
        upstream_conn.set_read_timeout(Some(IO_TIMEOUT))?;
        let mut from_upstream = BufReader::new(upstream_conn.try_clone()?);
        let mut to_upstream = BufWriter::new(upstream_conn);
        to_upstream.write_all(&request.raw)?;
        if let Some(Fault::ResetRequest { after_body_bytes }) = fault {
            // Cut within the body when its length is known, so the cut is really mid-body.
            let budget = match body {
                Body::Length(n) => after_body_bytes.min(n / 2),
                _ => after_body_bytes,
            };
            copy_body(&mut from_client, &mut to_upstream, body, budget)?;
            to_upstream.flush()?;
            let _ = to_upstream.get_ref().shutdown(Shutdown::Both);
            // Closing with the rest of the body unread makes the kernel send a reset.
            return Ok(());
        }
        relay_body(state, kind, body, &mut from_client, &mut to_upstream)?;
        to_upstream.flush()?;
        let response = read_head(&mut from_upstream)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the registry sent no response",
            )
        })?;
        let response_body = response.response_body(&method);
        match fault {
            // The registry acted on the request; the client never hears of it.
            Some(Fault::ResetResponse) => return Ok(()),
            Some(Fault::TruncateResponse) => {
                return truncate(&mut to_client, &response, &mut from_upstream, response_body)
            }
            _ => {}
        }
        to_client.write_all(&response.raw)?;
        copy_body(&mut from_upstream, &mut to_client, response_body, u64::MAX)?;
        to_client.flush()?;
        if response_body == Body::UntilClose || response.closes() {
            return Ok(());
        }
    }
    Ok(())
}

/// Relays a request body whole, keeping its [`BodySpan`].
fn relay_body(
    state: &Mutex<State>,
    kind: RequestKind,
    body: Body,
    from_client: &mut BufReader<TcpStream>,
    to_upstream: &mut impl Write,
) -> io::Result<()> {
    if body == Body::None {
        return Ok(());
    }
    let length = match body {
        Body::Length(n) => Some(n),
        _ => None,
    };
    let relayed = Arc::new(AtomicU64::new(0));
    let (id, others_left) = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        let others_left = state
            .arriving
            .values()
            .filter_map(|(length, relayed)| Some(length.as_ref()? - relayed.load(Ordering::SeqCst)))
            .collect();
        let id = state.next_body;
        state.next_body += 1;
        state.arriving.insert(id, (length, Arc::clone(&relayed)));
        (id, others_left)
    };
    let mut counting = CountingWriter {
        inner: to_upstream,
        count: &relayed,
    };
    let copied = copy_body(from_client, &mut counting, body, u64::MAX);
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    state.arriving.remove(&id);
    copied?;
    state.bodies.push(BodySpan {
        kind,
        length,
        others_left,
    });
    Ok(())
}

/// Counts the bytes written through it.
struct CountingWriter<'a, W> {
    inner: W,
    count: &'a AtomicU64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Sends the first half of the response's bytes, then closes.
fn truncate(
    to_client: &mut TcpStream,
    head: &Head,
    from_upstream: &mut BufReader<TcpStream>,
    body: Body,
) -> io::Result<()> {
    let mut whole = head.raw.clone();
    copy_body(from_upstream, &mut whole, body, MAX_BUFFERED_RESPONSE)?;
    to_client.write_all(&whole[..whole.len() / 2])?;
    to_client.flush()?;
    to_client.shutdown(Shutdown::Write)
}

/// A proxy-made answer with a distribution-style error body.
fn answer(
    to_client: &mut TcpStream,
    status: u16,
    retry_after: Option<u64>,
    close: bool,
) -> io::Result<()> {
    let body = format!(
        r#"{{"errors":[{{"code":"FAULT_INJECTED","message":"fault proxy answered {status}"}}]}}"#
    );
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        reason(status),
        body.len()
    );
    if let Some(seconds) = retry_after {
        head.push_str(&format!("Retry-After: {seconds}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    to_client.write_all(head.as_bytes())?;
    to_client.write_all(body.as_bytes())?;
    to_client.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Fault",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    /// A one-response-per-connection upstream answering every request with `200` and `ok`.
    fn tiny_upstream() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                if let Ok(Some(head)) = read_head(&mut reader) {
                    let _ = copy_body(&mut reader, &mut io::sink(), head.request_body(), u64::MAX);
                    let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                }
            }
        });
        addr
    }

    fn get(proxy: &FaultProxy, path: &str) -> io::Result<String> {
        let mut conn = TcpStream::connect(proxy.addr)?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())?;
        let mut reader = BufReader::new(conn);
        let head = read_head(&mut reader)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no answer"))?;
        let mut body = Vec::new();
        let (_, complete) = copy_body(&mut reader, &mut body, head.response_body("GET"), u64::MAX)?;
        if !complete {
            return Err(io::Error::other("short body"));
        }
        Ok(format!(
            "{} {}",
            head.status(),
            String::from_utf8_lossy(&body)
        ))
    }

    #[test]
    fn relays_and_breaks_by_schedule() {
        let proxy = FaultProxy::start(tiny_upstream());
        assert_eq!(get(&proxy, "/v2/").unwrap(), "200 ok");
        proxy.set_plan(FaultPlan::rules(vec![
            Rule::nth(
                RequestKind::Ping,
                1,
                Fault::Status {
                    status: 503,
                    retry_after: Some(0),
                },
            ),
            Rule::nth(RequestKind::Ping, 2, Fault::ResetResponse),
            Rule::nth(RequestKind::Ping, 3, Fault::TruncateResponse),
        ]));
        assert!(get(&proxy, "/v2/").unwrap().starts_with("503 "));
        assert!(get(&proxy, "/v2/").is_err());
        assert!(get(&proxy, "/v2/").is_err());
        assert_eq!(get(&proxy, "/v2/").unwrap(), "200 ok");
        assert_eq!(proxy.requests(RequestKind::Ping), 4);
        assert_eq!(proxy.injected().len(), 3, "{:?}", proxy.injected());
    }

    #[test]
    fn rejects_big_bodies_with_413() {
        let proxy = FaultProxy::start(tiny_upstream());
        proxy.set_plan(FaultPlan::rules(vec![Rule::every(
            RequestKind::UploadPatch,
            1,
            Fault::RejectLarge { limit: 10 },
        )]));
        let send = |len: usize| {
            let mut conn = TcpStream::connect(proxy.addr).unwrap();
            let head =
                format!("PATCH /v2/a/blobs/uploads/u HTTP/1.1\r\nContent-Length: {len}\r\n\r\n");
            conn.write_all(head.as_bytes()).unwrap();
            conn.write_all(&vec![b'x'; len]).unwrap();
            let mut line = String::new();
            BufReader::new(conn).read_line(&mut line).unwrap();
            line
        };
        assert!(send(5).starts_with("HTTP/1.1 200"));
        assert!(send(11).starts_with("HTTP/1.1 413"));
    }
}
