//! A real Podman API service (Debian's `podman`) for tests: `podman system service` on its own
//! unix socket, with its own storage root and run root in a temporary directory, vfs storage,
//! killed on drop. Images are loaded with the podman CLI against the same storage. Fails
//! loudly when podman is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::tools::require_tool;

pub struct Podman {
    child: Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Podman {
    pub fn start() -> Podman {
        require_tool("podman", "podman");
        // A short path: unix socket paths are limited to ~100 bytes.
        let dir = tempfile::Builder::new()
            .prefix("pm")
            .tempdir_in("/tmp")
            .unwrap();
        let socket = dir.path().join("p.sock");
        let log = std::fs::File::create(dir.path().join("podman.log")).unwrap();
        let mut command = Command::new("podman");
        command
            .args(global_args(dir.path()))
            .args(["system", "service", "--time", "0"])
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(log);
        let child = command.spawn().expect("podman starts");
        let service = Podman { child, dir, socket };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !service.socket.exists() {
            assert!(
                Instant::now() < deadline,
                "podman system service did not come up:\n{}",
                service.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        service
    }

    /// The socket, as `DOCKER_HOST` or `CONTAINER_HOST` takes it.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
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
