//! A registry as a source (`docker://…`): images that skopeo put into one docker-registry are
//! copied by ocipush into another, and every result is read back with skopeo and compared byte
//! for byte with what skopeo reads from the source — by tag, by digest, an index whole and by
//! `--platform`, thirty images from a `--from-file` list, through TLS and basic auth on the
//! source side, behind a token server, with foreign layers and mounts. (Faults on the source
//! side: `registry_source_faults`; referrers: `registry_referrers`.)

use std::path::Path;

use crate::common::*;
use ocipush_testkit::fault_proxy::{FaultPlan, FaultProxy, RequestKind};
use ocipush_testkit::fixtures::{
    write_oci_layout, write_oci_layout_multiarch, ImageSpec, LayerCompression, LayerSpec,
};
use ocipush_testkit::pki::TestPki;
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, ManifestView, SkopeoAuth};

/// Puts the layout's image `reference` into `registry` as `repo_and_tag`, with skopeo.
pub(crate) fn seed(layout: &Path, reference: &str, registry: &DockerRegistry, repo_and_tag: &str) {
    skopeo::copy(
        &format!("oci:{}:{reference}", layout.display()),
        &registry.docker_ref(repo_and_tag),
        &SkopeoAuth::default(),
        &registry.skopeo_auth(),
        &["--all", "--preserve-digests"],
    );
}

/// The manifest (or index) at `reference`, as skopeo reads it.
pub(crate) fn raw(reference: &str, auth: &SkopeoAuth) -> Vec<u8> {
    skopeo::inspect_raw(reference, auth)
}

#[test]
fn copies_by_tag_and_by_digest_from_a_tls_registry_with_auth() {
    let pki = TestPki::new(&["localhost", "127.0.0.1"]);
    let source = DockerRegistry::start(RegistryOptions {
        tls: Some(&pki),
        htpasswd: Some(("alice", "src-s3cret")),
        ..Default::default()
    });
    let dest = DockerRegistry::start(RegistryOptions::default());
    // Counts what the destination is asked: the warm path must cost one manifest HEAD.
    let counter = FaultProxy::start(([127, 0, 0, 1], dest.port()).into());
    let layout = tempfile::tempdir().unwrap();
    let image = ImageSpec::new(vec![
        LayerSpec::random(3 * 1024 * 1024, 31),
        LayerSpec::text(40 * 1024 * 1024, 32),
    ]);
    let expected = write_oci_layout(
        layout.path(),
        &[(image, Some("v1"))],
        LayerCompression::Gzip,
    )
    .remove(0);
    seed(layout.path(), "v1", &source, "upstream/app:v1");
    let src_auth = source.skopeo_auth();
    let src_raw = raw(&source.docker_ref("upstream/app:v1"), &src_auth);
    let ca = source.ca_path().unwrap().display().to_string();
    let from = format!("docker://{}", source.reference("upstream/app:v1"));

    // By tag, credentials from --src-creds, the CA from --src-ca-file. (The destination is
    // reached through the counting proxy, plain HTTP only.)
    let copy = || {
        ocipush(
            &[
                "push",
                "--plain-http",
                "--src-creds",
                "alice:src-s3cret",
                "--src-ca-file",
                &ca,
                &from,
                &counter.reference("copy/app:v1"),
            ],
            None,
        )
    };
    let out = copy();
    let digest = pushed_digest(&out);
    assert_eq!(Some(digest.clone()), expected.manifest_digest);
    assert!(!stderr(&out).contains("src-s3cret"), "{}", stderr(&out));
    let dest_auth = SkopeoAuth::insecure();
    assert_eq!(raw(&dest.docker_ref("copy/app:v1"), &dest_auth), src_raw);
    assert_eq!(
        diff_ids_via_skopeo(&dest.docker_ref("copy/app:v1"), &dest_auth),
        expected.diff_ids
    );

    // Warm: the destination has it all; one manifest HEAD, nothing else.
    counter.set_plan(FaultPlan::none());
    let out = copy();
    assert_eq!(pushed_digest(&out), digest);
    // Nothing but the manifest was read from the source.
    assert!(
        !stderr(&out).contains("read from source registries"),
        "{}",
        stderr(&out)
    );
    let asked: Vec<(RequestKind, u32)> = [
        RequestKind::ManifestGet,
        RequestKind::BlobHead,
        RequestKind::UploadStart,
        RequestKind::ManifestPut,
    ]
    .into_iter()
    .map(|kind| (kind, counter.requests(kind)))
    .collect();
    assert_eq!(
        asked,
        [
            (RequestKind::ManifestGet, 1),
            (RequestKind::BlobHead, 0),
            (RequestKind::UploadStart, 0),
            (RequestKind::ManifestPut, 0)
        ]
    );

    // By digest, with the credentials stored in docker's config.json; the destination's
    // variables (wrong for the source) are not sent to the source.
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            source.host_port(),
            base64_of("alice:src-s3cret")
        ),
    )
    .unwrap();
    let by_digest = format!(
        "docker://{}",
        source.reference(&format!("upstream/app@{digest}"))
    );
    let out = ocipush_env(
        &[
            "push",
            "--src-ca-file",
            &ca,
            &by_digest,
            &dest.reference("copy/bydigest:d1"),
        ],
        None,
        &[
            ("DOCKER_CONFIG", config.path().as_os_str()),
            ("OCIPUSH_USERNAME", "bob".as_ref()),
            ("OCIPUSH_PASSWORD", "dest-only-pw".as_ref()),
        ],
    );
    assert_eq!(pushed_digest(&out), digest);
    assert_eq!(
        raw(&dest.docker_ref("copy/bydigest:d1"), &dest_auth),
        src_raw
    );

    // No credentials for the source: an authentication failure (exit 2), nothing written.
    let out = ocipush(
        &[
            "push",
            "--src-ca-file",
            &ca,
            &from,
            &dest.reference("copy/noauth:v1"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("error: "), "{}", stderr(&out));
    assert!(skopeo::try_inspect_raw(&dest.docker_ref("copy/noauth:v1"), &dest_auth).is_err());

    // The source's certificate is verified: without its CA, a TLS failure.
    let out = ocipush(
        &[
            "push",
            "--src-creds",
            "alice:src-s3cret",
            &from,
            &dest.reference("copy/untrusted:v1"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn an_index_whole_and_by_platform_and_listed() {
    let source = DockerRegistry::start(RegistryOptions::default());
    let dest = DockerRegistry::start(RegistryOptions::default());
    let layout = tempfile::tempdir().unwrap();
    let expected = write_oci_layout_multiarch(
        layout.path(),
        "multi",
        &[
            ImageSpec::sample(41),
            ImageSpec::sample(42).platform("linux", "arm64", Some("v8")),
            ImageSpec::sample(43).platform("linux", "arm", Some("v7")),
        ],
    );
    seed(layout.path(), "multi", &source, "upstream/multi:1");
    let auth = SkopeoAuth::insecure();
    let from = format!("docker://{}", source.reference("upstream/multi:1"));

    let out = ocipush(&["push", &from, &dest.reference("mirror/multi:1")], None);
    assert_eq!(pushed_digest(&out), expected.index_digest);
    assert_eq!(
        raw(&dest.docker_ref("mirror/multi:1"), &auth),
        expected.index_bytes
    );
    for image in &expected.images {
        let digest = image.manifest_digest.as_deref().unwrap();
        let child = dest.docker_ref(&format!("mirror/multi@{digest}"));
        assert_eq!(Some(raw(&child, &auth)), image.manifest_bytes);
        assert_eq!(diff_ids_via_skopeo(&child, &auth), image.diff_ids);
    }

    // --platform: the index keeps the arm64 entry only, and that manifest is complete.
    let out = ocipush(
        &[
            "push",
            "--platform",
            "linux/arm64",
            &from,
            &dest.reference("mirror/arm64:1"),
        ],
        None,
    );
    pushed_digest(&out);
    let index = raw(&dest.docker_ref("mirror/arm64:1"), &auth);
    let view = ManifestView::parse(&index);
    let arm64 = expected.images[1].manifest_digest.clone().unwrap();
    assert_eq!(view.manifest_digests, std::slice::from_ref(&arm64));
    let child = dest.docker_ref(&format!("mirror/arm64@{arm64}"));
    assert_eq!(
        diff_ids_via_skopeo(&child, &auth),
        expected.images[1].diff_ids
    );

    // `list` reads the registry: one row, the index, its three platforms.
    let out = ocipush(&["list", "--json", &from], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["format"], "registry");
    assert_eq!(rows[0]["digest"], expected.index_digest.as_str());
    assert_eq!(
        rows[0]["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8", "linux/arm/v7"])
    );
}

#[test]
fn thirty_images_from_a_list() {
    let source = DockerRegistry::start(RegistryOptions::default());
    let dest = DockerRegistry::start(RegistryOptions::default());
    let layout = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..30).map(|i| format!("img{i}:1")).collect();
    let images: Vec<(ImageSpec, Option<&str>)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let spec = ImageSpec::new(vec![LayerSpec::random(8 * 1024, 500 + i as u64)]);
            (spec, Some(name.as_str()))
        })
        .collect();
    write_oci_layout(layout.path(), &images, LayerCompression::Gzip);
    // Into the source in one run (what is read back below is judged by skopeo alone).
    let out = ocipush(
        &[
            "push",
            "-q",
            "-r",
            &source.reference("lib"),
            &layout.path().display().to_string(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let list = tempfile::NamedTempFile::new().unwrap();
    let mut text = String::from("# images to mirror\n\n");
    for name in &names {
        text.push_str(&format!(
            "docker://{}\n",
            source.reference(&format!("lib/{name}"))
        ));
    }
    // A line given twice is one image, copied (and read) once.
    text.push_str(&format!(
        "docker://{}\n",
        source.reference(&format!("lib/{}", names[3]))
    ));
    std::fs::write(list.path(), text).unwrap();
    let out = ocipush(
        &[
            "push",
            "--json",
            "-r",
            &dest.reference("mirror"),
            "--from-file",
            &list.path().display().to_string(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["pushed"], 30, "{report}");
    assert_eq!(
        report["summary"]["bytes_read"], report["summary"]["bytes_uploaded"],
        "{report}"
    );
    let auth = SkopeoAuth::insecure();
    for name in &names {
        let there = raw(&dest.docker_ref(&format!("mirror/{name}")), &auth);
        let here = raw(&source.docker_ref(&format!("lib/{name}")), &auth);
        assert_eq!(there, here, "mirror/{name}");
    }

    // The list on standard input, into one destination, needs exactly one image in it. The
    // JSON report says what was read from the source: here all that was sent.
    let line = format!("docker://{}\n", source.reference("lib/img7:1"));
    let out = ocipush(
        &[
            "push",
            "--json",
            "--from-file",
            "-",
            &dest.reference("single/img:7"),
        ],
        Some(&line),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let image = &report["images"][0];
    assert_eq!(image["status"], "pushed");
    assert!(image["bytes_read"].as_u64().unwrap() > 8 * 1024, "{image}");
    assert_eq!(image["bytes_read"], image["bytes_uploaded"], "{image}");
    assert_eq!(report["summary"]["bytes_read"], image["bytes_read"]);
    assert_eq!(
        raw(&dest.docker_ref("single/img:7"), &auth),
        raw(&source.docker_ref("lib/img7:1"), &auth)
    );
}

/// Rewrites the layout's one image so that its last layer is non-distributable (with a URL),
/// as Windows base images are; returns the new manifest's digest and that layer's digest.
fn make_last_layer_foreign(layout: &Path) -> (String, String) {
    use ocipush_testkit::fixtures::oci_blob_path;
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let old = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci_blob_path(layout, &old)).unwrap()).unwrap();
    let layer = manifest["layers"]
        .as_array_mut()
        .unwrap()
        .last_mut()
        .unwrap();
    layer["mediaType"] = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip".into();
    layer["urls"] = serde_json::json!(["https://example.com/foreign/layer.tar.gz"]);
    let foreign = layer["digest"].as_str().unwrap().to_string();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = sha256_hex(&bytes);
    std::fs::write(oci_blob_path(layout, &digest), &bytes).unwrap();
    index["manifests"][0]["digest"] = digest.clone().into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    (digest, foreign)
}

/// Does `repository` of the registry at `host_port` serve the blob? Asked with curl.
fn serves_blob(host_port: &str, repository: &str, digest: &str) -> bool {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-I",
            &format!("http://{host_port}/v2/{repository}/blobs/{digest}"),
        ])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout) == "200"
}

/// `--dry-run`, `--include`/`--exclude`, mounts within one registry, and foreign layers, for
/// registry sources.
#[test]
fn copies_are_planned_filtered_mounted_and_leave_foreign_layers() {
    let source = DockerRegistry::start(RegistryOptions::default());
    let dest = DockerRegistry::start(RegistryOptions::default());
    let layout = tempfile::tempdir().unwrap();
    write_oci_layout(
        layout.path(),
        &[(ImageSpec::sample(81), Some("v1"))],
        LayerCompression::Gzip,
    );
    let (digest, foreign) = make_last_layer_foreign(layout.path());
    // Into the source with the foreign layer's bytes (the layout has them).
    let out = ocipush(
        &[
            "push",
            &layout.path().display().to_string(),
            &source.reference("win/app:v1"),
        ],
        None,
    );
    assert_eq!(pushed_digest(&out), digest);
    assert!(serves_blob(&source.host_port(), "win/app", &foreign));
    let from = format!("docker://{}", source.reference("win/app:v1"));
    let other = format!("docker://{}", source.reference("other/tool:2"));
    let out = ocipush(
        &[
            "push",
            &layout.path().display().to_string(),
            &source.reference("other/tool:2"),
        ],
        None,
    );
    pushed_digest(&out);

    // A dry run plans the copy (every blob but the foreign layer goes up) and writes nothing.
    let out = ocipush(
        &[
            "push",
            "--dry-run",
            "--json",
            &from,
            &dest.reference("win/app:v1"),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let blobs = plan["images"][0]["blobs"].as_array().unwrap();
    assert!(blobs.iter().all(|b| b["action"] == "upload"), "{plan}");
    assert!(
        blobs.iter().all(|b| b["digest"] != foreign.as_str()),
        "the foreign layer is not planned: {plan}"
    );
    assert!(
        skopeo::try_inspect_raw(&dest.docker_ref("win/app:v1"), &SkopeoAuth::insecure()).is_err()
    );

    // --include/--exclude pick registry sources by their names.
    let out = ocipush(
        &[
            "push",
            "-r",
            &dest.reference("mirror"),
            "--exclude",
            "tool*",
            &from,
            &other,
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pushed = stdout(&out);
    assert!(pushed.contains("/mirror/app:v1@"), "{pushed}");
    assert!(!pushed.contains("tool"), "{pushed}");
    // The copy names the foreign layer without copying it.
    let auth = SkopeoAuth::insecure();
    assert_eq!(
        sha256_hex(&raw(&dest.docker_ref("mirror/app:v1"), &auth)),
        digest
    );
    assert!(!serves_blob(&dest.host_port(), "mirror/app", &foreign));

    // --foreign-layers copies it.
    let out = ocipush(
        &[
            "push",
            "--foreign-layers",
            &from,
            &dest.reference("withforeign/app:v1"),
        ],
        None,
    );
    assert_eq!(pushed_digest(&out), digest);
    assert!(serves_blob(&dest.host_port(), "withforeign/app", &foreign));

    // Within one registry every blob is mounted from the source repository, none sent, and no
    // HEAD asked first (the mount answers it). Through a counting proxy, so that source and
    // destination have one registry name.
    let counter = FaultProxy::start(([127, 0, 0, 1], source.port()).into());
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "--src-plain-http",
            &format!("docker://{}", counter.reference("win/app:v1")),
            &counter.reference("copies/app:v1"),
        ],
        None,
    );
    assert_eq!(pushed_digest(&out), digest);
    let summary = stderr(&out);
    assert!(summary.contains("0 blob(s) uploaded"), "{summary}");
    assert!(summary.contains("already present, 2 mounted"), "{summary}");
    assert!(
        !summary.contains("read from source registries"),
        "{summary}"
    );
    assert_eq!(counter.requests(RequestKind::BlobHead), 0, "{summary}");
    assert_eq!(counter.requests(RequestKind::BlobGet), 0, "{summary}");
    assert_eq!(counter.requests(RequestKind::UploadStart), 2, "{summary}");
}

/// A public repository behind a token server (Docker Hub's and GHCR's way): read anonymously
/// with a pull-only token — never asking for push on the source — while the destination's
/// credentials, given on the command line, are not offered to the source's token server.
#[test]
fn an_anonymous_source_behind_a_token_server_is_read_with_pull_tokens() {
    use ocipush_testkit::registry::TokenAuthOptions;
    let source = DockerRegistry::start(RegistryOptions {
        token_auth: Some(TokenAuthOptions::users(&[("seeder", "seed-pw")])),
        ..Default::default()
    });
    let dest = DockerRegistry::start(RegistryOptions {
        htpasswd: Some(("dana", "dest-pw")),
        ..Default::default()
    });
    let layout = tempfile::tempdir().unwrap();
    let expected = write_oci_layout(
        layout.path(),
        &[(ImageSpec::sample(91), Some("v1"))],
        LayerCompression::Gzip,
    )
    .remove(0);
    let out = ocipush(
        &[
            "push",
            "-u",
            "seeder",
            "--password-stdin",
            &layout.path().display().to_string(),
            &source.reference("public/app:v1"),
        ],
        Some("seed-pw\n"),
    );
    pushed_digest(&out);
    let tokens = source.token_server().unwrap();
    tokens.clear_requests();

    let out = ocipush(
        &[
            "push",
            "-u",
            "dana",
            "--password-stdin",
            &format!("docker://{}", source.reference("public/app:v1")),
            &dest.reference("mirror/app:v1"),
        ],
        Some("dest-pw\n"),
    );
    assert_eq!(pushed_digest(&out), expected.manifest_digest.unwrap());
    let requests = tokens.requests();
    assert!(!requests.is_empty(), "no token was asked for");
    for request in &requests {
        assert!(
            !request.basic_auth,
            "credentials went to the source: {request:#?}"
        );
        assert!(
            request.scopes.iter().all(|s| !s.contains("push")),
            "{request:#?}"
        );
    }
    assert_eq!(
        raw(&dest.docker_ref("mirror/app:v1"), &dest.skopeo_auth()),
        raw(&source.docker_ref("public/app:v1"), &SkopeoAuth::insecure())
    );
}
