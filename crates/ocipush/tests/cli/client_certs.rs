//! A registry that requires a client certificate (docker-registry with `http.tls.clientcas`):
//! ocipush presents the one in `certs.d/HOST:PORT/` (`client.cert` + `client.key`, as docker
//! reads them) and only to that registry; without it the TLS handshake is refused.

use std::ffi::OsStr;

use crate::common::*;
use ocipush_testkit::fixtures::{write_oci_layout, ImageSpec, LayerCompression};
use ocipush_testkit::pki::TestPki;
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

#[test]
fn client_certificate_from_certs_d_is_presented() {
    let pki = TestPki::new(&["localhost", "127.0.0.1"]);
    let registry = DockerRegistry::start(RegistryOptions {
        tls: Some(&pki),
        client_certificates: true,
        ..Default::default()
    });
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let expected = write_oci_layout(
        &layout,
        &[(ImageSpec::sample(61), Some("1"))],
        LayerCompression::Gzip,
    )
    .remove(0);
    let source = layout.display().to_string();
    let dest = registry.reference("mtls/app:1");

    // Only the CA in certs.d: the registry refuses the handshake.
    let certs_d = work.path().join("certs.d");
    let host_dir = certs_d.join(registry.host_port());
    pki.write_ca_dir(&host_dir);
    let envs = [("OCIPUSH_CERTS_D", certs_d.as_os_str())];
    let out = ocipush_env(&["push", &source, &dest], None, &envs);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // With the client certificate and key beside it, the push goes through.
    std::fs::write(
        host_dir.join("client.cert"),
        pki.client_cert_pem.as_ref().unwrap(),
    )
    .unwrap();
    std::fs::write(
        host_dir.join("client.key"),
        pki.client_key_pem.as_ref().unwrap(),
    )
    .unwrap();
    let out = ocipush_env(&["push", &source, &dest], None, &envs);
    let digest = pushed_digest(&out);
    assert_eq!(Some(digest.clone()), expected.manifest_digest);
    let raw = skopeo::inspect_raw(
        &registry.docker_ref("mtls/app:1"),
        &SkopeoAuth::tls(&host_dir),
    );
    assert_eq!(sha256_hex(&raw), digest);
    assert!(!stderr(&out).contains("PRIVATE KEY"), "{}", stderr(&out));

    // Another registry's folder does not lend its certificate.
    let other = work.path().join("other.d");
    let other_dir = other.join("127.0.0.1:1");
    std::fs::create_dir_all(&other_dir).unwrap();
    for f in ["client.cert", "client.key"] {
        std::fs::copy(host_dir.join(f), other_dir.join(f)).unwrap();
    }
    let out = ocipush_env(
        &[
            "push",
            "--ca-file",
            &registry.ca_path().unwrap().display().to_string(),
            &source,
            &dest,
        ],
        None,
        &[("OCIPUSH_CERTS_D", OsStr::new(&other))],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}
