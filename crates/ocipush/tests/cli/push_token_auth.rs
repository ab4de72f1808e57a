//! Pushing to docker-registry in bearer-token mode (`auth: token:`): ocipush follows the
//! registry's `Bearer` challenge to the testkit's token server, asks for the repository's
//! `pull,push` scope with Basic credentials, and sends the ES256 token it gets back. Also the
//! failures: wrong password (the token server refuses) and no credentials (anonymous tokens
//! carry pull only, so the registry refuses the push).

use crate::common::*;
use ocipush_testkit::fixtures::{
    write_docker_archive, write_oci_layout, DockerArchiveOptions, ExpectedImage, ImageSpec,
    LayerCompression, LayerSpec,
};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions, TokenAuthOptions};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

const USERS: &[(&str, &str)] = &[("alice", "t0ken-pw"), ("bob", "other-pw")];
const PUSH_SCOPE: &str = "repository:team/app:pull,push";

fn token_registry() -> DockerRegistry {
    DockerRegistry::start(RegistryOptions {
        token_auth: Some(TokenAuthOptions {
            issuer: "ocipush-test-issuer",
            service: "ocipush-test-service",
            ..TokenAuthOptions::users(USERS)
        }),
        ..Default::default()
    })
}

fn layout(seed: u64) -> (tempfile::TempDir, ExpectedImage) {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = write_oci_layout(
        dir.path(),
        &[(ImageSpec::sample(seed), Some("v1"))],
        LayerCompression::Gzip,
    );
    (dir, expected.remove(0))
}

/// Fails with everything a reader needs: ocipush's output, the token requests, the registry log.
fn context(registry: &DockerRegistry, out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}\ntoken requests:\n{:#?}\nregistry log:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out),
        registry.token_server().unwrap().requests(),
        registry.log()
    )
}

#[test]
fn push_with_bearer_token_from_password_stdin() {
    let registry = token_registry();
    let tokens = registry
        .token_server()
        .expect("token auth runs a token server");
    let (dir, expected) = layout(21);
    let source = dir.path().display().to_string();
    let dest = registry.reference("team/app:1");

    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "-u",
            "alice",
            "--password-stdin",
            &source,
            &dest,
        ],
        Some("t0ken-pw\n"),
    );
    assert!(out.status.success(), "{}", context(&registry, &out));
    let digest = pushed_digest(&out);
    assert_eq!(Some(digest.clone()), expected.manifest_digest);
    // Blobs go up in parallel, but they share one token: one fetch, not one per blob.
    assert_eq!(tokens.tokens_issued(), 1, "{}", context(&registry, &out));

    // An independent client reads back the same manifest.
    let auth = SkopeoAuth::insecure().with_creds("alice", "t0ken-pw");
    let raw = skopeo::inspect_raw(&registry.docker_ref("team/app:1"), &auth);
    assert_eq!(sha256_hex(&raw), digest);
    assert_eq!(Some(&raw), expected.manifest_bytes.as_ref());

    // ocipush asked the token server for push access to the repository, as alice.
    let requests = tokens.requests();
    let push = requests
        .iter()
        .find(|r| r.asked_for(PUSH_SCOPE) && r.basic_auth)
        .unwrap_or_else(|| panic!("no `{PUSH_SCOPE}` request\n{}", context(&registry, &out)));
    assert_eq!(push.username.as_deref(), Some("alice"));
    assert!(push.authenticated);
    assert_eq!(push.status, 200);
    assert_eq!(push.service.as_deref(), Some("ocipush-test-service"));
    assert_eq!(push.granted, [PUSH_SCOPE]);
    assert!(
        requests.iter().all(|r| r.status == 200),
        "{}",
        context(&registry, &out)
    );
    assert!(tokens.tokens_issued() >= 1);

    // Neither the password nor any token (JWTs start with `eyJ`) reaches the output.
    for text in [stderr(&out), stdout(&out)] {
        assert!(!text.contains("t0ken-pw"), "{text}");
        assert!(!text.contains("eyJ"), "{text}");
    }
}

#[test]
fn wrong_password_and_anonymous_push_fail_with_exit_2() {
    let registry = token_registry();
    let tokens = registry
        .token_server()
        .expect("token auth runs a token server");
    let (dir, _expected) = layout(22);
    let source = dir.path().display().to_string();
    let dest = registry.reference("team/app:1");

    // Wrong password: the token server answers 401 and ocipush says so.
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "-u",
            "alice",
            "--password-stdin",
            &source,
            &dest,
        ],
        Some("wrong-pw\n"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", context(&registry, &out));
    let err = stderr(&out);
    assert!(
        err.contains("token server rejected the credentials of `alice`"),
        "{}",
        context(&registry, &out)
    );
    assert!(!err.contains("wrong-pw"), "{err}");
    let requests = tokens.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.status == 401 && r.username.as_deref() == Some("alice")),
        "{}",
        context(&registry, &out)
    );
    assert_eq!(tokens.tokens_issued(), 0, "{}", context(&registry, &out));
    tokens.clear_requests();

    // No credentials: an anonymous token carries pull only; the registry refuses the push.
    let out = ocipush(&["push", "--plain-http", &source, &dest], None);
    assert_eq!(out.status.code(), Some(2), "{}", context(&registry, &out));
    let requests = tokens.requests();
    assert!(
        !requests.is_empty() && requests.iter().all(|r| !r.basic_auth),
        "{}",
        context(&registry, &out)
    );
    assert!(
        requests
            .iter()
            .all(|r| r.granted.iter().all(|g| !g.contains("push"))),
        "{}",
        context(&registry, &out)
    );

    // Nothing was written.
    let auth = SkopeoAuth::insecure().with_creds("alice", "t0ken-pw");
    assert!(skopeo::try_inspect_raw(&registry.docker_ref("team/app:1"), &auth).is_err());
}

#[test]
fn one_token_serves_every_repository_of_a_run() {
    // Three images on one base layer into three repositories: the run asks the token server
    // once, for all three, and that token also carries the mounts of the base between them.
    let registry = token_registry();
    let tokens = registry
        .token_server()
        .expect("token auth runs a token server");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("three.tar");
    let base = LayerSpec::text(256 * 1024, 41);
    let images: Vec<(ImageSpec, Vec<&str>)> = ["one:1", "two:1", "three:1"]
        .into_iter()
        .zip(42..)
        .map(|(tag, seed)| {
            let own = LayerSpec::random(64 * 1024, seed);
            (ImageSpec::new(vec![base.clone(), own]), vec![tag])
        })
        .collect();
    write_docker_archive(&archive, &images, DockerArchiveOptions::default());
    let target = format!("{}/team", registry.host_port());
    let out = ocipush_env(
        &[
            "push",
            "--plain-http",
            "--json",
            "-u",
            "alice",
            "--password-stdin",
            "-r",
            &target,
            &archive.display().to_string(),
        ],
        Some("t0ken-pw\n"),
        &[("OCIPUSH_CACHE_DIR", dir.path().join("cache").as_os_str())],
    );
    assert!(out.status.success(), "{}", context(&registry, &out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["summary"]["pushed"], 3, "{doc}");
    assert_eq!(doc["summary"]["blobs"]["mounted"], 2, "{doc}");

    let requests = tokens.requests();
    assert_eq!(tokens.tokens_issued(), 1, "{}", context(&registry, &out));
    let scopes: Vec<String> = ["one", "three", "two"]
        .iter()
        .map(|n| format!("repository:team/{n}:pull,push"))
        .collect();
    assert_eq!(requests[0].scopes, scopes, "{}", context(&registry, &out));
    assert_eq!(requests[0].granted, scopes);

    let auth = SkopeoAuth::insecure().with_creds("alice", "t0ken-pw");
    for name in ["one", "two", "three"] {
        let raw = skopeo::inspect_raw(&registry.docker_ref(&format!("team/{name}:1")), &auth);
        assert!(!raw.is_empty(), "{name}");
    }
}
