//! The kit works end to end without ocipush: a real docker-registry (TLS + htpasswd, or plain
//! HTTP) receives fixture images through skopeo, and serves back exactly the fixture's
//! manifests. Fails (never skips) when docker-registry or skopeo is missing.

use ocipush_testkit::fixtures::{
    verify_oci_layout, write_docker_archive, write_oci_layout, write_oci_layout_multiarch,
    DockerArchiveOptions, ImageSpec, LayerCompression,
};
use ocipush_testkit::pki::{self_signed_ca_true, TestPki};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, ManifestView, SkopeoAuth};

#[test]
fn tls_and_htpasswd_registry_serves_the_fixture_manifest() {
    let pki = TestPki::new(&["localhost", "127.0.0.1"]);
    let registry = DockerRegistry::start(RegistryOptions {
        tls: Some(&pki),
        htpasswd: Some(("alice", "s3cret")),
        ..Default::default()
    });
    assert!(registry.url().starts_with("https://127.0.0.1:"));
    let layout = tempfile::tempdir().unwrap();
    let expected = write_oci_layout(
        layout.path(),
        &[(ImageSpec::sample(42), Some("tag"))],
        LayerCompression::Gzip,
    );
    let image = &expected[0];
    let src = format!("oci:{}:tag", layout.path().display());
    let dest = registry.docker_ref("test/img:tag");
    let auth = SkopeoAuth::tls(&registry.ca_dir().unwrap()).with_creds("alice", "s3cret");
    skopeo::copy(
        &src,
        &dest,
        &SkopeoAuth::default(),
        &auth,
        &["--preserve-digests"],
    );

    let raw = skopeo::inspect_raw(&dest, &auth);
    assert_eq!(Some(skopeo::manifest_digest(&raw)), image.manifest_digest);
    assert_eq!(Some(&raw), image.manifest_bytes.as_ref());
    assert_eq!(skopeo::inspect_config(&dest, &auth), image.config_bytes);
    let view = ManifestView::parse(&raw);
    assert_eq!(view.layer_digests, image.layer_digests);
    assert!(registry
        .storage_dir()
        .join("docker/registry/v2/repositories/test/img")
        .is_dir());

    // The registry's own helper gives the same access.
    let via_helper = skopeo::inspect_raw(&dest, &registry.skopeo_auth());
    assert_eq!(via_helper, raw);

    // Anonymous and wrong-password access is refused; an untrusted CA is refused.
    let anonymous = SkopeoAuth::tls(&registry.ca_dir().unwrap());
    let err = skopeo::try_inspect_raw(&dest, &anonymous).unwrap_err();
    assert!(err.contains("unauthorized") || err.contains("401"), "{err}");
    let wrong = SkopeoAuth::tls(&registry.ca_dir().unwrap()).with_creds("alice", "nope");
    assert!(skopeo::try_inspect_raw(&dest, &wrong).is_err());
    let other_ca = tempfile::tempdir().unwrap();
    TestPki::localhost().write_ca_dir(other_ca.path());
    let untrusted = SkopeoAuth::tls(other_ca.path()).with_creds("alice", "s3cret");
    let err = skopeo::try_inspect_raw(&dest, &untrusted).unwrap_err();
    assert!(err.contains("certificate"), "{err}");

    // And back into a layout, byte for byte.
    let back = tempfile::tempdir().unwrap();
    skopeo::copy_to_oci_layout(&dest, back.path(), "again", &auth);
    let refs = verify_oci_layout(back.path());
    assert_eq!(refs[0].1, image.manifest_digest.clone().unwrap());
}

#[test]
fn plain_http_registry_takes_docker_archives_and_indexes() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    assert!(registry.url().starts_with("http://"));
    assert_eq!(registry.ca_path(), None);
    let auth = registry.skopeo_auth();
    assert!(!auth.tls_verify);

    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("save.tar");
    let expected = write_docker_archive(
        &archive,
        &[(ImageSpec::sample(7), vec!["app:1"])],
        DockerArchiveOptions::default(),
    );
    let dest = registry.docker_ref("archive/app:1");
    skopeo::copy_into_registry(
        &format!("docker-archive:{}", archive.display()),
        &dest,
        &auth,
    );
    let view = ManifestView::parse(&skopeo::inspect_raw(&dest, &auth));
    assert_eq!(
        view.config_digest.as_ref(),
        Some(&expected[0].config_digest)
    );
    assert_eq!(view.layer_digests.len(), expected[0].diff_ids.len());
    // skopeo pushed a Docker v2s2 manifest with gzipped layers; an OCI layout copy converts it.
    assert_eq!(
        view.media_type.as_deref(),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    let back = dir.path().join("back");
    skopeo::copy_to_oci_layout(&dest, &back, "1", &auth);
    verify_oci_layout(&back);

    let multi = dir.path().join("multi");
    let index = write_oci_layout_multiarch(
        &multi,
        "all",
        &[
            ImageSpec::sample(1),
            ImageSpec::sample(1).platform("linux", "arm64", Some("v8")),
        ],
    );
    let dest = registry.docker_ref("multi/app:all");
    skopeo::copy(
        &format!("oci:{}:all", multi.display()),
        &dest,
        &SkopeoAuth::default(),
        &auth,
        &["--all", "--preserve-digests"],
    );
    assert_eq!(skopeo::inspect_raw(&dest, &auth), index.index_bytes);
    let arm = format!(
        "{}@{}",
        registry.docker_ref("multi/app"),
        index.images[1].manifest_digest.as_deref().unwrap()
    );
    assert_eq!(
        Some(skopeo::inspect_raw(&arm, &auth)),
        index.images[1].manifest_bytes
    );
    assert!(skopeo::try_inspect_raw(&registry.docker_ref("multi/app:missing"), &auth).is_err());
}

#[test]
fn self_signed_ca_true_certificate_serves_tls() {
    // Go (skopeo) accepts a CA:TRUE self-signed server certificate that is itself trusted;
    // rustls does not by default, which a later ocipush issue deals with.
    let pki = self_signed_ca_true(&["127.0.0.1", "localhost"]);
    let registry = DockerRegistry::start(RegistryOptions {
        tls: Some(&pki),
        htpasswd: None,
        ..Default::default()
    });
    assert_eq!(
        std::fs::read_to_string(registry.ca_path().unwrap()).unwrap(),
        pki.server_cert_pem
    );
    let layout = tempfile::tempdir().unwrap();
    let expected = write_oci_layout(
        layout.path(),
        &[(ImageSpec::sample(5), Some("x"))],
        LayerCompression::Gzip,
    );
    let dest = registry.docker_ref("self/signed:x");
    skopeo::copy_into_registry(
        &format!("oci:{}:x", layout.path().display()),
        &dest,
        &registry.skopeo_auth(),
    );
    let raw = skopeo::inspect_raw(&dest, &registry.skopeo_auth());
    assert_eq!(
        Some(skopeo::manifest_digest(&raw)),
        expected[0].manifest_digest
    );
}

#[test]
fn registries_get_distinct_ports_and_stop_on_drop() {
    let a = DockerRegistry::start(RegistryOptions::default());
    let b = DockerRegistry::start(RegistryOptions::default());
    assert_ne!(a.port(), b.port());
    let addr = a.host_port();
    drop(a);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "registry still listening"
    );
    assert!(b.log().len() < 100_000);
}

#[test]
fn token_auth_registry_accepts_tokens_from_the_token_server() {
    use ocipush_testkit::registry::TokenAuthOptions;
    let users = [("alice", "secret")];
    let registry = DockerRegistry::start(RegistryOptions {
        token_auth: Some(TokenAuthOptions {
            issuer: "kit-issuer",
            service: "kit-service",
            ..TokenAuthOptions::users(&users)
        }),
        ..Default::default()
    });
    let tokens = registry.token_server().expect("a token server");
    assert_eq!(registry.credentials(), Some(("alice", "secret")));
    let layout = tempfile::tempdir().unwrap();
    let expected = write_oci_layout(
        layout.path(),
        &[(ImageSpec::sample(11), Some("t"))],
        LayerCompression::Gzip,
    );
    let src = format!("oci:{}:t", layout.path().display());
    let dest = registry.docker_ref("team/app:1");

    // Anonymous clients get pull only: pushing is refused.
    let err = skopeo::try_copy(
        &src,
        &dest,
        &SkopeoAuth::default(),
        &SkopeoAuth::insecure(),
        &[],
    )
    .unwrap_err();
    assert!(
        err.contains("unauthorized") || err.contains("denied") || err.contains("401"),
        "{err}"
    );
    // Wrong password: the token server refuses.
    let wrong = SkopeoAuth::insecure().with_creds("alice", "nope");
    assert!(skopeo::try_copy(&src, &dest, &SkopeoAuth::default(), &wrong, &[]).is_err());
    assert!(tokens
        .requests()
        .iter()
        .any(|r| r.status == 401 && r.username.as_deref() == Some("alice")));

    // alice pushes and reads back.
    skopeo::copy(
        &src,
        &dest,
        &SkopeoAuth::default(),
        &registry.skopeo_auth(),
        &["--preserve-digests"],
    );
    let raw = skopeo::inspect_raw(&dest, &registry.skopeo_auth());
    assert_eq!(
        Some(skopeo::manifest_digest(&raw)),
        expected[0].manifest_digest
    );
    let requests = tokens.requests();
    let push = requests
        .iter()
        .find(|r| r.authenticated && r.asked_for("repository:team/app:pull,push"))
        .unwrap_or_else(|| panic!("no push scope requested: {requests:#?}"));
    assert_eq!(push.service.as_deref(), Some("kit-service"));
    assert_eq!(push.username.as_deref(), Some("alice"));
    assert_eq!(push.granted, ["repository:team/app:pull,push"]);
    assert!(tokens.tokens_issued() >= 2);
    // Anonymous pull is allowed.
    assert_eq!(skopeo::inspect_raw(&dest, &SkopeoAuth::insecure()), raw);
    assert!(
        !registry.log().contains("token signed by untrusted key"),
        "{}",
        registry.log()
    );
}
