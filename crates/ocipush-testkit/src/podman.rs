//! A real Podman API service (Debian's `podman`) for tests: `podman system service` on its own
//! unix socket (or a free TCP port of 127.0.0.1), with its own storage root and run root in a
//! temporary directory, vfs storage, killed on drop. Images are loaded with the podman CLI
//! against the same storage. Fails loudly when podman is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::registry::free_port;
use crate::tools::require_tool;

pub struct Podman {
    child: Child,
    dir: tempfile::TempDir,
    listen: Listen,
}

/// Where the service answers.
enum Listen {
    Unix(PathBuf),
    /// Plain HTTP on 127.0.0.1 (the Engine API with no TLS, as `DOCKER_HOST=tcp://` reaches it).
    Tcp(u16),
}

impl Podman {
    /// The service on its own unix socket.
    pub fn start() -> Podman {
        Podman::start_listening(|dir| Listen::Unix(dir.join("p.sock")))
    }

    /// The service on a free TCP port of 127.0.0.1.
    pub fn start_tcp() -> Podman {
        Podman::start_listening(|_| Listen::Tcp(free_port()))
    }

    fn start_listening(listen: impl FnOnce(&Path) -> Listen) -> Podman {
        require_tool("podman", "podman");
        // A short path: unix socket paths are limited to ~100 bytes.
        let dir = tempfile::Builder::new()
            .prefix("pm")
            .tempdir_in("/tmp")
            .unwrap();
        let listen = listen(dir.path());
        let log = std::fs::File::create(dir.path().join("podman.log")).unwrap();
        let mut command = Command::new("podman");
        command
            .args(global_args(dir.path()))
            .args(["system", "service", "--time", "0"])
            .arg(listen.url())
            .stdout(Stdio::null())
            .stderr(log);
        let child = command.spawn().expect("podman starts");
        let mut service = Podman { child, dir, listen };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !service.listen.answers() {
            let exited = service.child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "podman system service did not come up ({exited:?}):\n{}",
                service.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        service
    }

    /// The endpoint, as `DOCKER_HOST` or `CONTAINER_HOST` takes it.
    pub fn host(&self) -> String {
        self.listen.url()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("podman.log")).unwrap_or_default()
    }

    /// Runs the podman CLI on this service's storage.
    pub fn podman(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .args(global_args(self.dir.path()))
            .args(args)
            .output()
            .expect("podman runs")
    }

    /// Runs podman and panics with its output on failure.
    pub fn podman_ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn load(&self, archive: &Path) {
        self.podman_ok(&["load", "-i", &archive.display().to_string()]);
    }
}

impl Listen {
    fn url(&self) -> String {
        match self {
            Listen::Unix(socket) => format!("unix://{}", socket.display()),
            Listen::Tcp(port) => format!("tcp://127.0.0.1:{port}"),
        }
    }

    fn answers(&self) -> bool {
        match self {
            Listen::Unix(socket) => socket.exists(),
            Listen::Tcp(port) => std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok(),
        }
    }
}

/// Storage, run root and the settings that work without systemd or cgroups delegation.
fn global_args(dir: &Path) -> Vec<String> {
    vec![
        format!("--root={}", dir.join("root").display()),
        format!("--runroot={}", dir.join("run").display()),
        "--storage-driver=vfs".into(),
        "--cgroup-manager=cgroupfs".into(),
        "--events-backend=file".into(),
        format!("--tmpdir={}", dir.join("tmp").display()),
    ]
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
