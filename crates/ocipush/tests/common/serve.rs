//! `ocipush serve` run as a background process for tests.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ocipush_testkit::registry::free_port;

/// `ocipush serve` in the background, killed on drop.
pub struct Serve {
    child: Child,
    pub addr: String,
}

impl Serve {
    pub fn start(root: &Path, extra: &[&str]) -> Serve {
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_ocipush"))
            .args([
                "serve",
                "--root",
                &root.display().to_string(),
                "--addr",
                &addr,
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ocipush serve starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "ocipush serve did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Serve { child, addr }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
