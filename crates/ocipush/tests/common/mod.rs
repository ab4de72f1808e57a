//! Shared helpers for the binary's end-to-end tests: run `ocipush`, read back what a registry
//! holds with skopeo (never with our own code), and check layers against diffIDs.

#![allow(dead_code)]

pub mod creds;
pub mod proxy;
pub mod serve;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use ocipush_testkit::fixtures::{write_oci_layout, ImageSpec, LayerCompression};
use ocipush_testkit::skopeo::{self, ManifestView, SkopeoAuth};
use sha2::{Digest as _, Sha256};

/// Runs the ocipush binary with `args`, optional stdin, and a clean credential environment.
pub fn ocipush(args: &[&str], stdin: Option<&str>) -> Output {
    ocipush_env(args, stdin, &[])
}

/// [`ocipush`] with extra environment variables for the child (set after the clean-up, so they
/// may also put back one of the cleared ones). Credential and certificate lookups never reach
/// the real home: HOME is a fresh directory, and docker's, containers' and ocipush's variables
/// are cleared, `OCIPUSH_CERTS_D` pointing into that home.
pub fn ocipush_env(
    args: &[&str],
    stdin: Option<&str>,
    envs: &[(&str, &std::ffi::OsStr)],
) -> Output {
    ocipush_under(&[], args, stdin, envs)
}

/// [`ocipush_env`] run by another program: `wrapper` is its command line up to ocipush's path
/// (`["taskset", "-c", "0"]`); empty runs ocipush itself.
pub fn ocipush_under(
    wrapper: &[&str],
    args: &[&str],
    stdin: Option<&str>,
    envs: &[(&str, &std::ffi::OsStr)],
) -> Output {
    let (mut cmd, _home) = ocipush_command(wrapper, args, envs);
    let mut child = cmd.spawn().expect("ocipush runs");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

/// Runs ocipush as [`ocipush`] does (no stdin) and returns, besides its output, its peak resident
/// memory in KiB as the kernel counted it (`wait4`'s `ru_maxrss`).
pub fn ocipush_peak_rss(args: &[&str]) -> (Output, u64) {
    use std::os::unix::process::ExitStatusExt as _;
    let (mut cmd, _home) = ocipush_command(&[], args, &[]);
    // Reaped by wait4 below, which also reports the child's resource use.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("ocipush runs");
    drop(child.stdin.take());
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        out_pipe.read_to_end(&mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        err_pipe.read_to_end(&mut text).map(|_| text)
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes only to the two locals; the child is reaped here and never waited on
    // again (`Child` does not wait when dropped).
    let reaped = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(reaped, child.id() as libc::pid_t, "wait4");
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    };
    (output, usage.ru_maxrss as u64)
}

/// The command [`ocipush_under`] runs, with the home directory it must outlive.
fn ocipush_command(
    wrapper: &[&str],
    args: &[&str],
    envs: &[(&str, &std::ffi::OsStr)],
) -> (Command, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_ocipush");
    let mut cmd = match wrapper.split_first() {
        Some((program, leading)) => {
            let mut cmd = Command::new(program);
            cmd.args(leading).arg(binary);
            cmd
        }
        None => Command::new(binary),
    };
    cmd.args(args)
        .env("HOME", home.path())
        .env("OCIPUSH_LOCAL_REGISTRY", home.path().join("registry"))
        // Tests run in parallel: each local registry on a port of its own, never 5000.
        .env(
            "OCIPUSH_LOCAL_ADDR",
            format!("127.0.0.1:{}", ocipush_testkit::registry::free_port()),
        )
        .env("OCIPUSH_CERTS_D", home.path().join("certs.d"))
        .env_remove("OCIPUSH_USERNAME")
        .env_remove("OCIPUSH_PASSWORD")
        .env_remove("OCIPUSH_REGISTRY")
        .env_remove("OCIPUSH_INSECURE")
        .env_remove("IDPBUILDER_REGISTRY_USER")
        .env_remove("IDPBUILDER_REGISTRY_PASSWORD")
        .env_remove("IDPBUILDER_REGISTRY_INSECURE")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("OCIPUSH_CACHE_DIR")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .envs(envs.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    (cmd, home)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns the manifest digest from the `REF@sha256:…` line.
pub fn pushed_digest(o: &Output) -> String {
    assert!(
        o.status.success(),
        "ocipush failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    let line = stdout(o)
        .lines()
        .next()
        .expect("a pushed reference")
        .to_string();
    line.rsplit_once('@').expect("REF@DIGEST").1.to_string()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Copies `reference` out of the registry with skopeo into an OCI layout and returns the
/// diffIDs its layers really decompress to.
pub fn diff_ids_via_skopeo(reference: &str, auth: &SkopeoAuth) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    skopeo::copy_to_oci_layout(reference, dir.path(), "copy", auth);
    layout_diff_ids(dir.path())
}

pub fn layout_diff_ids(dir: &Path) -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest = std::fs::read(blob(dir, digest)).unwrap();
    let view = ManifestView::parse(&manifest);
    view.layer_digests
        .iter()
        .map(|d| {
            let bytes = std::fs::read(blob(dir, d)).unwrap();
            let mut plain = Vec::new();
            if bytes.starts_with(&[0x1f, 0x8b]) {
                flate2::read::MultiGzDecoder::new(&bytes[..])
                    .read_to_end(&mut plain)
                    .unwrap();
            } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                plain = zstd::stream::decode_all(&bytes[..]).unwrap();
            } else {
                plain = bytes;
            }
            sha256_hex(&plain)
        })
        .collect()
}

fn blob(dir: &Path, digest: &str) -> std::path::PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap();
    dir.join("blobs").join(alg).join(hex)
}

/// The config's `rootfs.diff_ids`.
pub fn config_diff_ids(config: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(config).unwrap();
    v["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

/// One image written as two OCI layouts under `dir`, named `one:1` and `two:1`: the sources
/// `oci:DIR/one:one:1` and `oci:DIR/two:two:1`, two images with the very same blobs.
pub fn one_image_in_two_layouts(dir: &Path, image: &ImageSpec) -> [String; 2] {
    ["one", "two"].map(|name| {
        let layout = dir.join(name);
        let tag = format!("{name}:1");
        write_oci_layout(
            &layout,
            &[(image.clone(), Some(tag.as_str()))],
            LayerCompression::Gzip,
        );
        format!("oci:{}:{tag}", layout.display())
    })
}
