//! The embedded registry: `ocipush push` with no destination lands in the local registry;
//! `ocipush serve` serves it; skopeo — not our client — reads back and writes into it.

use std::path::Path;
use std::process::Command;

use crate::common::serve::Serve;
use crate::common::*;
use ocipush_testkit::fixtures::{
    write_docker_archive, write_oci_layout, DockerArchiveOptions, ImageSpec, LayerCompression,
    LayerSpec,
};
use ocipush_testkit::pki::TestPki;
use ocipush_testkit::skopeo::{self, ManifestView, SkopeoAuth};

fn example_layout(dir: &Path) -> ocipush_testkit::fixtures::ExpectedImage {
    let image = ImageSpec::new(vec![
        LayerSpec::text(64 * 1024, 4),
        LayerSpec::random(64 * 1024, 5),
    ]);
    write_oci_layout(dir, &[(image, Some("hello:1.0"))], LayerCompression::Gzip).remove(0)
}

#[test]
fn default_destination_is_the_local_registry_and_serve_serves_it() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("registry");
    let src = tempfile::tempdir().unwrap();
    let expected = example_layout(src.path());
    let local_addr = format!("127.0.0.1:{}", ocipush_testkit::registry::free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_ocipush"))
        .args(["push", &src.path().display().to_string()])
        .env("OCIPUSH_LOCAL_REGISTRY", &root)
        .env("OCIPUSH_LOCAL_ADDR", &local_addr)
        .output()
        .unwrap();
    let digest = pushed_digest(&out);
    assert_eq!(Some(digest.clone()), expected.manifest_digest);
    assert!(
        stderr(&out).contains("pushed into the local registry"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).starts_with(&format!("{local_addr}/hello:1.0@")),
        "{}",
        stdout(&out)
    );
    // The hint serves the directory where the printed reference points.
    assert!(
        stderr(&out).contains(&format!("`ocipush serve --addr {local_addr}`")),
        "{}",
        stderr(&out)
    );

    let serve = Serve::start(&root, &[]);
    let reference = format!("docker://{}/hello:1.0", serve.addr);
    let auth = SkopeoAuth::insecure();
    let raw = skopeo::inspect_raw(&reference, &auth);
    assert_eq!(sha256_hex(&raw), digest);
    assert_eq!(
        skopeo::inspect_config(&reference, &auth),
        expected.config_bytes
    );
    assert_eq!(diff_ids_via_skopeo(&reference, &auth), expected.diff_ids);

    // With `serve` running on that directory, a push goes to it rather than starting another.
    let other = tempfile::tempdir().unwrap();
    let image = ImageSpec::new(vec![LayerSpec::files(&[("x", b"x")])]);
    write_oci_layout(
        other.path(),
        &[(image, Some("second:2"))],
        LayerCompression::Gzip,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ocipush"))
        .args(["push", &other.path().display().to_string()])
        .env("OCIPUSH_LOCAL_REGISTRY", &root)
        .env("OCIPUSH_LOCAL_ADDR", &local_addr)
        .output()
        .unwrap();
    let digest = pushed_digest(&out);
    assert!(
        stdout(&out).starts_with(&format!("{}/second:2@", serve.addr)),
        "{}",
        stdout(&out)
    );
    let raw = skopeo::inspect_raw(&format!("docker://{}/second:2", serve.addr), &auth);
    assert_eq!(sha256_hex(&raw), digest);
}

/// Another program on the local registry's port: the push says so and stops, rather than
/// printing a reference on a port that dies with the process.
#[test]
fn a_taken_local_port_is_an_error_not_a_throwaway_registry() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("registry");
    let src = tempfile::tempdir().unwrap();
    example_layout(src.path());
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_ocipush"))
        .args(["push", &src.path().display().to_string()])
        .env("OCIPUSH_LOCAL_REGISTRY", &root)
        .env("OCIPUSH_LOCAL_ADDR", &taken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "no reference is printed");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: cannot start the local registry: {taken} is taken by another program"
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: ") && err.contains("OCIPUSH_LOCAL_ADDR="),
        "{err}"
    );
    assert!(
        !root.join("serve.addr").exists() && !root.join("repositories").exists(),
        "nothing was pushed"
    );
    drop(squatter);

    // A malformed address is a usage error naming the variable.
    let out = Command::new(env!("CARGO_BIN_EXE_ocipush"))
        .args(["push", &src.path().display().to_string()])
        .env("OCIPUSH_LOCAL_REGISTRY", &root)
        .env("OCIPUSH_LOCAL_ADDR", "localhost")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid OCIPUSH_LOCAL_ADDR `localhost`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn skopeo_copies_into_and_out_of_serve() {
    let root = tempfile::tempdir().unwrap();
    let serve = Serve::start(root.path(), &[]);
    let auth = SkopeoAuth::insecure();

    // OCI manifest, digests preserved.
    let src = tempfile::tempdir().unwrap();
    let expected = example_layout(src.path());
    let dest = format!("docker://{}/copied/oci:1", serve.addr);
    skopeo::copy(
        &format!("oci:{}:hello:1.0", src.path().display()),
        &dest,
        &SkopeoAuth::default(),
        &auth,
        &["--preserve-digests"],
    );
    let raw = skopeo::inspect_raw(&dest, &auth);
    assert_eq!(Some(sha256_hex(&raw)), expected.manifest_digest);
    assert_eq!(diff_ids_via_skopeo(&dest, &auth), expected.diff_ids);

    // Docker v2 manifest from a docker archive (skopeo compresses the layers itself).
    let archive_dir = tempfile::tempdir().unwrap();
    let archive = archive_dir.path().join("app.tar");
    let expected = write_docker_archive(
        &archive,
        &[(
            ImageSpec::new(vec![LayerSpec::text(200 * 1024, 8)]),
            vec!["app:1"],
        )],
        DockerArchiveOptions::default(),
    )
    .remove(0);
    let dest = format!("docker://{}/copied/docker:1", serve.addr);
    skopeo::copy(
        &format!("docker-archive:{}", archive.display()),
        &dest,
        &SkopeoAuth::default(),
        &auth,
        &[],
    );
    let raw = skopeo::inspect_raw(&dest, &auth);
    let view = ManifestView::parse(&raw);
    assert_eq!(
        view.media_type.as_deref(),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    assert_eq!(
        view.config_digest.as_deref(),
        Some(expected.config_digest.as_str())
    );
    assert_eq!(diff_ids_via_skopeo(&dest, &auth), expected.diff_ids);
}

#[test]
fn push_to_serve_with_tls_and_htpasswd() {
    let root = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&["localhost", "127.0.0.1"]);
    let paths = pki.write_to(root.path());
    let htpasswd = root.path().join("htpasswd");
    let hash = bcrypt::hash("pw-for-bob", 4).unwrap();
    std::fs::write(&htpasswd, format!("bob:{hash}\n")).unwrap();
    let data = root.path().join("data");
    let serve = Serve::start(
        &data,
        &[
            "--tls-cert",
            &paths.server_cert.display().to_string(),
            "--tls-key",
            &paths.server_key.display().to_string(),
            "--htpasswd",
            &htpasswd.display().to_string(),
        ],
    );
    let src = tempfile::tempdir().unwrap();
    let expected = example_layout(src.path());
    let dest = format!("{}/secure/hello:1", serve.addr);
    let ca = paths.ca_cert.display().to_string();
    let out = ocipush(
        &[
            "push",
            "--ca-file",
            &ca,
            "-u",
            "bob",
            "--password-stdin",
            &src.path().display().to_string(),
            &dest,
        ],
        Some("pw-for-bob"),
    );
    let digest = pushed_digest(&out);
    assert_eq!(Some(digest.clone()), expected.manifest_digest);
    let ca_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&paths.ca_cert, ca_dir.path().join("ca.crt")).unwrap();
    let auth = SkopeoAuth::tls(ca_dir.path()).with_creds("bob", "pw-for-bob");
    let raw = skopeo::inspect_raw(&format!("docker://{dest}"), &auth);
    assert_eq!(sha256_hex(&raw), digest);

    let out = ocipush(
        &[
            "push",
            "--ca-file",
            &ca,
            "-u",
            "bob",
            "--password-stdin",
            &src.path().display().to_string(),
            &dest,
        ],
        Some("nope"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
