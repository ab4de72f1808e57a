//! A stand-in Engine API on a unix socket, for what the real daemons here cannot show: the
//! Docker 25+ save stream (Debian ships dockerd 20.10), an engine whose API is too old, and an
//! export stream that breaks mid-layer. It answers `/version`, `/images/json`,
//! `/images/{name}/json` and `/images/get` for one image written by the fixture writers, and
//! counts exports. Real dockerd and podman are tested against too; this is only for the rest.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::fixtures::ExpectedImage;

/// How the fake engine behaves.
#[derive(Debug, Clone)]
pub struct FakeEngineOptions {
    /// What `/version` reports as `ApiVersion`.
    pub api_version: String,
    /// Cut the first `n` exports after this many bytes (a daemon that dies mid-stream).
    pub cut_exports: usize,
    pub cut_after: u64,
    /// Wait this long before answering an export (docker before 25 writes the image to a
    /// temporary directory before its first byte).
    pub export_delay_ms: u64,
}

impl Default for FakeEngineOptions {
    fn default() -> Self {
        FakeEngineOptions {
            api_version: "1.44".into(),
            cut_exports: 0,
            cut_after: 0,
            export_delay_ms: 0,
        }
    }
}

pub struct FakeEngine {
    /// Holds the socket; removed on drop.
    _dir: tempfile::TempDir,
    socket: PathBuf,
    exports: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

struct Served {
    archive: PathBuf,
    image: ExpectedImage,
    name: String,
    options: FakeEngineOptions,
    exports: Arc<AtomicUsize>,
}

impl FakeEngine {
    /// Serves the one image of the docker archive at `archive` (as `expected` describes it)
    /// under `name` (`app:1.0`).
    pub fn start(
        archive: &Path,
        expected: &ExpectedImage,
        name: &str,
        options: FakeEngineOptions,
    ) -> FakeEngine {
        let dir = tempfile::Builder::new()
            .prefix("fe")
            .tempdir_in("/tmp")
            .unwrap();
        let socket = dir.path().join("e.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let exports = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Served {
            archive: archive.to_path_buf(),
            image: expected.clone(),
            name: name.to_string(),
            options,
            exports: exports.clone(),
        });
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let served = served.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &served);
                });
            }
        });
        FakeEngine {
            _dir: dir,
            socket,
            exports,
            stop,
        }
    }

    /// The socket, as `DOCKER_HOST` takes it.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// How many exports were asked for.
    pub fn exports(&self) -> usize {
        self.exports.load(Ordering::SeqCst)
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.socket);
    }
}

fn serve(stream: UnixStream, served: &Served) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let mut out = stream;
    let image = &served.image;
    let id = &image.config_digest;
    let inspect = serde_json::json!({
        "Id": id,
        "RepoTags": [served.name],
        "Size": image.layers.iter().map(|l| l.uncompressed_size).sum::<u64>(),
        "Os": image.platform.os,
        "Architecture": image.platform.architecture,
        "RootFS": {"Type": "layers", "Layers": image.diff_ids},
    });
    let escaped_name = served.name.replace(':', "%3A").replace('/', "%2F");
    if path == "/version" {
        let body = serde_json::json!({
            "ApiVersion": served.options.api_version,
            "Version": "25.0.0-fake",
            "Components": [{"Name": "Engine"}],
        });
        return respond(&mut out, 200, body.to_string().as_bytes());
    }
    if path == "/images/json" {
        let body = serde_json::json!([{"Id": id, "RepoTags": [served.name], "Size": 0}]);
        return respond(&mut out, 200, body.to_string().as_bytes());
    }
    if path == format!("/images/{}/json", served.name) || path == format!("/images/{id}/json") {
        return respond(&mut out, 200, inspect.to_string().as_bytes());
    }
    if path == format!("/images/get?names={escaped_name}")
        || path == format!("/images/get?names={}", id.replace(':', "%3A"))
    {
        let n = served.exports.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(
            served.options.export_delay_ms,
        ));
        let bytes = std::fs::read(&served.archive)?;
        if n < served.options.cut_exports {
            // Promise everything, send part, hang up.
            let cut = (served.options.cut_after as usize).min(bytes.len());
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            )?;
            out.write_all(&bytes[..cut])?;
            return out.flush();
        }
        return respond(&mut out, 200, &bytes);
    }
    let message = serde_json::json!({"message": format!("No such image: {path}")});
    respond(&mut out, 404, message.to_string().as_bytes())
}

fn respond(out: &mut UnixStream, status: u16, body: &[u8]) -> std::io::Result<()> {
    let reason = if status == 200 { "OK" } else { "Not Found" };
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    out.write_all(body)?;
    out.flush()?;
    // Let the client read to the end before the socket closes.
    let mut rest = Vec::new();
    let _ = out.read_to_end(&mut rest);
    Ok(())
}
