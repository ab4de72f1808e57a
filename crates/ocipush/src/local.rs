//! The embedded local registry as the default destination: a running `ocipush serve` on the
//! local registry's directory if there is one, else a registry started in-process for the run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ocipush_server::{Server, ServerConfig};
use tokio::sync::oneshot;

use crate::failure::{CliError, EXIT_GENERAL};

/// The port `ocipush serve` listens on by default.
pub const DEFAULT_PORT: u16 = 5000;

/// Where `ocipush serve` records the address it listens on, inside its root.
pub const ADDR_FILE: &str = "serve.addr";

/// The local registry's directory: `$OCIPUSH_LOCAL_REGISTRY`, else under the user's data dir.
pub fn default_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("OCIPUSH_LOCAL_REGISTRY").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    data.join("ocipush").join("registry")
}

/// A local registry to push into for this run.
pub struct LocalRegistry {
    pub addr: SocketAddr,
    pub root: PathBuf,
    /// Set when the registry runs inside this process: dropping it stops the server.
    stop: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl LocalRegistry {
    /// Finds a running `ocipush serve` on `root`, or starts one in-process on a free port.
    pub async fn attach_or_start(root: &Path) -> Result<LocalRegistry, CliError> {
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
        // The port `ocipush serve` uses by default, so the pushed names stay valid for pulling
        // once `ocipush serve` runs; any free port when something else holds it.
        let mut bound = None;
        for port in [DEFAULT_PORT, 0] {
            let config = ServerConfig::new(root, SocketAddr::from(([127, 0, 0, 1], port)));
            match Server::bind(config).await {
                Ok(server) => {
                    bound = Some(server);
                    break;
                }
                Err(e) if port == 0 => {
                    return Err(CliError::with_code(
                        format!("cannot start the local registry: {e}"),
                        None,
                        EXIT_GENERAL,
                    ))
                }
                Err(_) => continue,
            }
        }
        let server = bound.expect("the loop binds or returns");
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
