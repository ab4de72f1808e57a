//! The embedded local registry as the default destination: a running `ocipush serve` on the
//! local registry's directory if there is one, else a registry started in-process for the run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ocipush_server::{Server, ServerConfig, ServerError};
use tokio::sync::oneshot;

use crate::failure::{CliError, EXIT_GENERAL, EXIT_USAGE};

/// Where the local registry listens unless `$OCIPUSH_LOCAL_ADDR` says otherwise: the address
/// `ocipush serve` uses by default, so what a push names stays valid for pulling.
pub const DEFAULT_ADDR: &str = "127.0.0.1:5000";

/// The variable naming the local registry's address, for `push` and `serve` alike.
pub const ADDR_ENV: &str = "OCIPUSH_LOCAL_ADDR";

/// Where `ocipush serve` records the address it listens on, inside its root.
pub const ADDR_FILE: &str = "serve.addr";

/// The local registry's directory: `$OCIPUSH_LOCAL_REGISTRY`, else under the user's data dir.
pub fn default_root() -> Result<PathBuf, CliError> {
    if let Some(dir) = std::env::var_os("OCIPUSH_LOCAL_REGISTRY").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    // Never the shared temporary directory: anyone could create it first and plant a
    // `serve.addr` there that sends this user's pushes to their server.
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| user_home().map(|home| home.join(".local/share")))
        .ok_or_else(|| {
            CliError::with_code(
                "cannot find a home directory for the local registry ($HOME is not set and the user has no home in the password database)",
                Some("set OCIPUSH_LOCAL_REGISTRY to a directory of your own".into()),
                EXIT_GENERAL,
            )
        })?;
    Ok(data.join("ocipush").join("registry"))
}

/// `$HOME`, or where the password database says this user lives when it is not set (as docker
/// finds its configuration).
fn user_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(home));
    }
    passwd_home()
}

#[cfg(unix)]
fn passwd_home() -> Option<PathBuf> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt as _;
    let mut entry: libc::passwd = unsafe {
        // SAFETY: an all-zero passwd (null pointers, zero ids) is a valid value of this C struct.
        std::mem::zeroed()
    };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to a live local of the right size; getpwuid_r writes the entry's
    // strings into `buffer`, which outlives their use below.
    let status = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if status != 0 || found.is_null() || entry.pw_dir.is_null() {
        return None;
    }
    // SAFETY: pw_dir points at a NUL-terminated string inside `buffer`.
    let dir = unsafe { CStr::from_ptr(entry.pw_dir) };
    let dir = std::ffi::OsStr::from_bytes(dir.to_bytes());
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

#[cfg(not(unix))]
fn passwd_home() -> Option<PathBuf> {
    None
}

/// The local registry's address: `$OCIPUSH_LOCAL_ADDR`, else [`DEFAULT_ADDR`].
pub fn default_addr() -> Result<SocketAddr, CliError> {
    let (text, from_env) = match std::env::var(ADDR_ENV).ok().filter(|v| !v.is_empty()) {
        Some(text) => (text, true),
        None => (DEFAULT_ADDR.to_owned(), false),
    };
    text.parse().map_err(|e| {
        CliError::with_code(
            format!("invalid {ADDR_ENV} `{text}`: {e}"),
            from_env.then(|| format!("{ADDR_ENV} takes IP:PORT, e.g. 127.0.0.1:5001")),
            EXIT_USAGE,
        )
    })
}

/// A local registry to push into for this run.
pub struct LocalRegistry {
    pub addr: SocketAddr,
    pub root: PathBuf,
    /// Set when the registry runs inside this process: dropping it stops the server.
    stop: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl LocalRegistry {
    /// Finds a running `ocipush serve` on `root`, or starts one in-process on `addr`.
    ///
    /// Never on another port than `addr`: the references a push prints must stay valid once
    /// `ocipush serve` serves the same directory, so a port held by another program is an error.
    pub async fn attach_or_start(root: &Path, addr: SocketAddr) -> Result<LocalRegistry, CliError> {
        if let Some(addr) = running_server(root).await {
            return Ok(LocalRegistry {
                addr,
                root: root.to_path_buf(),
                stop: None,
            });
        }
        std::fs::create_dir_all(root).map_err(|e| {
            CliError::with_code(
                format!(
                    "cannot create the local registry at {}: {e}",
                    root.display()
                ),
                Some("set OCIPUSH_LOCAL_REGISTRY to a writable directory".into()),
                EXIT_GENERAL,
            )
        })?;
        let server = Server::bind(ServerConfig::new(root, addr))
            .await
            .map_err(|e| start_failure(e, addr, root))?;
        let addr = server.local_addr();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(async move {
            if let Err(e) = server
                .run_until(async {
                    let _ = rx.await;
                })
                .await
            {
                tracing::warn!(error = %e, "the local registry stopped");
            }
        });
        Ok(LocalRegistry {
            addr,
            root: root.to_path_buf(),
            stop: Some((tx, handle)),
        })
    }

    pub fn is_in_process(&self) -> bool {
        self.stop.is_some()
    }

    /// Stops an in-process registry, letting in-flight requests end.
    pub async fn shutdown(mut self) {
        if let Some((tx, handle)) = self.stop.take() {
            let _ = tx.send(());
            let _ = handle.await;
        }
    }
}

/// Why the local registry could not start, with what to do about it.
fn start_failure(error: ServerError, addr: SocketAddr, root: &Path) -> CliError {
    match &error {
        ServerError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
            let other = SocketAddr::new(addr.ip(), if addr.port() == 5001 { 5002 } else { 5001 });
            CliError::with_code(
                format!(
                    "cannot start the local registry: {addr} is taken by another program (not an `ocipush serve` of {})",
                    root.display()
                ),
                Some(format!(
                    "stop that program, give a destination (ocipush push SOURCE HOST/REPO:TAG), or use another port: `{ADDR_ENV}={other} ocipush push …`, then `ocipush serve --addr {other}` to serve it"
                )),
                EXIT_GENERAL,
            )
        }
        _ => CliError::with_code(
            format!("cannot start the local registry on {addr}: {error}"),
            None,
            EXIT_GENERAL,
        ),
    }
}

/// The address of a live `ocipush serve` on this root, if one answers.
async fn running_server(root: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(root.join(ADDR_FILE)).ok()?;
    let addr: SocketAddr = text.trim().parse().ok()?;
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        head.starts_with(b"HTTP/1.").then_some(())
    };
    tokio::time::timeout(Duration::from_secs(2), probe)
        .await
        .ok()
        .flatten()
        .map(|_| addr)
}
