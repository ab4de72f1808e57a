//! Pushing to docker-registry behind TLS (a CA and a leaf certificate) with htpasswd basic auth,
//! and the failures a user meets there: untrusted certificate, missing or wrong credentials.

use crate::common::*;
use ocipush_testkit::fixtures::{write_oci_layout, ImageSpec, LayerCompression};
use ocipush_testkit::pki::TestPki;
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo;

#[test]
fn tls_with_ca_file_and_password_stdin() {
    let pki = TestPki::new(&["localhost", "127.0.0.1"]);
    let registry = DockerRegistry::start(RegistryOptions {
        tls: Some(&pki),
        htpasswd: Some(("alice", "s3cret-pw")),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let expected = write_oci_layout(
        dir.path(),
        &[(ImageSpec::sample(9), Some("v1"))],
        LayerCompression::Gzip,
    );
    let ca = registry.ca_path().unwrap();
    let ca = ca.display().to_string();
    let source = dir.path().display().to_string();
    let dest = registry.reference("secure/app:v1");

    let out = ocipush(
        &[
            "push",
            "--ca-file",
            &ca,
            "-u",
            "alice",
            "--password-stdin",
            &source,
            &dest,
        ],
        Some("s3cret-pw\n"),
    );
    let digest = pushed_digest(&out);
    assert_eq!(Some(digest.clone()), expected[0].manifest_digest);
    let raw = skopeo::inspect_raw(
        &registry.docker_ref("secure/app:v1"),
        &registry.skopeo_auth(),
    );
    assert_eq!(sha256_hex(&raw), digest);
    assert!(!stderr(&out).contains("s3cret-pw"));

    // Environment credentials work the same way.
    let out = {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ocipush"));
        cmd.args([
            "push",
            "--ca-file",
            &ca,
            &source,
            &registry.reference("secure/env:v1"),
        ])
        .env("OCIPUSH_USERNAME", "alice")
        .env("OCIPUSH_PASSWORD", "s3cret-pw");
        cmd.output().unwrap()
    };
    pushed_digest(&out);

    // Wrong password: exit 2, the password never echoed.
    let out = ocipush(
        &[
            "push",
            "--ca-file",
            &ca,
            "-u",
            "alice",
            "--password-stdin",
            &source,
            &dest,
        ],
        Some("wrong-pw"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rejected the credentials of `alice`"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("wrong-pw"));

    // No credentials: exit 2 with a hint.
    let out = ocipush(&["push", "--ca-file", &ca, &source, &dest], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));

    // Untrusted certificate: exit 3 with a TLS hint; --insecure gets through.
    let out = ocipush(
        &["push", "-u", "alice", "--password-stdin", &source, &dest],
        Some("s3cret-pw"),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("--ca-file"), "{}", stderr(&out));
    // Refused the same way every time: not retried.
    assert!(!stderr(&out).contains("retry 1 of"), "{}", stderr(&out));
    assert!(stderr(&out).contains("; 0 retries;"), "{}", stderr(&out));
    let out = ocipush(
        &[
            "push",
            "--insecure",
            "-u",
            "alice",
            "--password-stdin",
            &source,
            &dest,
        ],
        Some("s3cret-pw"),
    );
    assert_eq!(pushed_digest(&out), digest);
    assert!(
        stderr(&out).contains("warning: TLS certificate verification is off"),
        "{}",
        stderr(&out)
    );
}

/// `--plain-http` against a port that speaks TLS: said in those words, with the way out, not
/// "is not an OCI registry".
#[test]
fn plain_http_against_a_tls_port_says_it_speaks_tls() {
    let pki = TestPki::new(&["localhost", "127.0.0.1"]);
    let registry = DockerRegistry::start(RegistryOptions {
        tls: Some(&pki),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    write_oci_layout(
        dir.path(),
        &[(ImageSpec::sample(8), Some("v1"))],
        LayerCompression::Gzip,
    );
    let source = dir.path().display().to_string();
    let dest = registry.reference("plain/app:v1");
    let out = ocipush(
        &["push", "--plain-http", "--retries", "0", &source, &dest],
        None,
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("speaks TLS"), "{err}");
    assert!(err.contains("drop --plain-http"), "{err}");
    assert!(!err.contains("not an OCI registry"), "{err}");
}
