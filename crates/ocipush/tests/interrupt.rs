//! Ctrl-C (SIGINT) and SIGTERM during a push: ocipush stops, cancels its open upload sessions
//! (DELETE), writes no manifest, and exits 130.
//!
//! The registry here is `ocipush serve`: CNCF distribution cannot cancel an upload whose PATCH
//! was cut off (it refuses the DELETE's stale upload state and keeps the partial upload for its
//! purge), so only a registry that honours the DELETE shows whether ocipush sends it. skopeo
//! still judges the tags.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::serve::Serve;
use common::*;
use ocipush_testkit::fixtures::{write_docker_archive, DockerArchiveOptions, ImageSpec, LayerSpec};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

/// A docker-save tarball of `layers` in `dir`, tagged `name:1`.
fn archive_of(dir: &Path, name: &str, layers: Vec<LayerSpec>) -> String {
    let archive = dir.join(format!("{name}.tar"));
    write_docker_archive(
        &archive,
        &[(ImageSpec::new(layers), vec![&format!("{name}:1")])],
        DockerArchiveOptions::default(),
    );
    archive.display().to_string()
}

/// `ocipush ARGS` in the background, with its own home and cache, output captured.
fn spawn_ocipush(args: &[&str], home: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ocipush"))
        .args(args)
        .env("HOME", home)
        .env("OCIPUSH_CACHE_DIR", home.join("cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (at most 20 s) until `ready` holds, failing if the push ends first.
fn wait_until(child: &mut Child, what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} never happened");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the push ended before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` and waits for the push to end: its output, and how long it took to stop.
fn signal_and_wait(child: Child, signal: &str) -> (Output, Duration) {
    let sent = Instant::now();
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    (out, sent.elapsed())
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn interrupt_push(signal: &str, repo: &str) {
    let root = tempfile::tempdir().unwrap();
    let registry = Serve::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    // Two 96 MiB text layers at gzip level 9: seconds of compression, time to interrupt.
    let archive = archive_of(
        dir.path(),
        "big",
        vec![LayerSpec::text(96 << 20, 1), LayerSpec::text(96 << 20, 2)],
    );
    let dest = format!("{}/{repo}:1", registry.addr);
    let home = tempfile::tempdir().unwrap();
    let args = [
        "push",
        "--plain-http",
        "--compression-level",
        "9",
        &archive,
        &dest,
    ];
    let mut child = spawn_ocipush(&args, home.path());
    // Wait until both uploads are open on the registry, then interrupt.
    let uploads = root.path().join("uploads");
    wait_until(&mut child, "two open uploads", || entries(&uploads) >= 2);
    let (out, stopped_in) = signal_and_wait(child, signal);
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stopped_in < Duration::from_secs(5),
        "took {stopped_in:?} to stop"
    );
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    // No tag, and no upload session left open on the registry.
    let tagged = skopeo::try_inspect_raw(&format!("docker://{dest}"), &SkopeoAuth::insecure());
    assert!(tagged.is_err(), "an interrupted push must not tag");
    let left = entries(&uploads);
    assert_eq!(left, 0, "upload sessions left open: {left}");
}

#[test]
fn sigint_cancels_uploads_and_tags_nothing() {
    interrupt_push("-INT", "stop/int");
}

#[test]
fn sigterm_does_the_same() {
    interrupt_push("-TERM", "stop/term");
}

/// A push stopped after one layer went up says so: the summary counts the layer that was
/// committed, the layer cut off is `stopped` (not `failed`), and the layer that was still
/// waiting for its turn (`-j 1`) never shows as started.
#[test]
fn an_interrupted_push_counts_what_it_committed() {
    let root = tempfile::tempdir().unwrap();
    let registry = Serve::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_of(
        dir.path(),
        "three",
        vec![
            LayerSpec::text(256 << 10, 3),
            LayerSpec::text(96 << 20, 4),
            LayerSpec::text(96 << 20, 5),
        ],
    );
    let dest = format!("{}/stop/counted:1", registry.addr);
    let home = tempfile::tempdir().unwrap();
    let args = [
        "push",
        "--plain-http",
        "-j",
        "1",
        "--compression-level",
        "9",
        &archive,
        &dest,
    ];
    let mut child = spawn_ocipush(&args, home.path());
    // The small layer and the config committed, the first big layer's upload open.
    let blobs = root.path().join("blobs/sha256");
    let uploads = root.path().join("uploads");
    wait_until(&mut child, "the first commits", || {
        entries(&blobs) >= 2 && entries(&uploads) >= 1
    });
    let (out, _) = signal_and_wait(child, "-INT");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let summary = err
        .lines()
        .find(|l| l.contains("image(s) pushed"))
        .unwrap_or_else(|| panic!("no summary in:\n{err}"));
    let uploaded: u64 = summary
        .split("; ")
        .nth(1)
        .and_then(|part| part.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no upload count in: {summary}"));
    assert!(
        uploaded >= 2,
        "the committed layer and config are not counted: {summary}"
    );
    assert!(!summary.contains("; 0 B sent"), "{summary}");
    assert!(
        err.lines()
            .any(|l| l.contains("layer 1/3") && l.contains("compressed and uploaded")),
        "-j 1 takes the layers in order:\n{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.contains("layer 2/3") && l.contains(": stopped after")),
        "the layer cut off is not reported stopped:\n{err}"
    );
    assert!(
        !err.contains("layer 3/3"),
        "a layer that never started shows:\n{err}"
    );
    assert!(!err.contains(": failed"), "{err}");
}

/// Ctrl-C while a registry that does not answer is being retried stops at once (exit 130), not
/// after every retry.
#[test]
fn an_interrupt_while_connecting_stops_the_retries() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_of(dir.path(), "one", vec![LayerSpec::text(64 << 10, 6)]);
    let closed = ocipush_testkit::registry::free_port();
    let dest = format!("127.0.0.1:{closed}/stop/connect:1");
    let home = tempfile::tempdir().unwrap();
    // 8 retries of the default backoff: over 30 s of waiting.
    let args = ["push", "--plain-http", "--retries", "8", &archive, &dest];
    let child = spawn_ocipush(&args, home.path());
    std::thread::sleep(Duration::from_millis(800));
    let (out, stopped_in) = signal_and_wait(child, "-INT");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        stopped_in < Duration::from_secs(3),
        "took {stopped_in:?} to stop:\n{err}"
    );
    assert!(err.contains("retry 1 of 8"), "the retries are said:\n{err}");
    assert!(err.contains("interrupted"), "{err}");
}
