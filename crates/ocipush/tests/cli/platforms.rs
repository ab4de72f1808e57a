//! Multi-platform images into a real CNCF distribution registry (docker-registry), read back
//! with skopeo: pushed whole without `--platform`; with it, only the matching manifests and
//! their blobs go up, under an index that is the source's with the other entries left out.

use std::path::Path;

use crate::common::*;
use ocipush_testkit::fixtures::{
    tar_directory, write_oci_layout, write_oci_layout_multiarch, ExpectedIndex, ImageSpec,
    LayerCompression,
};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, ManifestView, SkopeoAuth};
use serde_json::Value;

/// amd64, arm64/v8 and arm/v7, each with layers of its own (so a dropped platform's blobs
/// can be looked for, and must be missing).
fn three_platforms(dir: &Path) -> ExpectedIndex {
    write_oci_layout_multiarch(
        dir,
        "multi",
        &[
            ImageSpec::sample(11),
            ImageSpec::sample(12).platform("linux", "arm64", Some("v8")),
            ImageSpec::sample(13).platform("linux", "arm", Some("v7")),
        ],
    )
}

/// Does the repository hold this blob? Read from the registry's own storage (distribution
/// links every blob a repository may serve under `_layers`), not through ocipush.
fn repository_links_blob(registry: &DockerRegistry, repository: &str, digest: &str) -> bool {
    let hex = digest.strip_prefix("sha256:").unwrap();
    registry
        .storage_dir()
        .join("docker/registry/v2/repositories")
        .join(repository)
        .join("_layers/sha256")
        .join(hex)
        .join("link")
        .exists()
}

/// The index at `reference` lists exactly `expected` (digests in order), and every one of
/// them is served whole: skopeo copies each manifest by digest with all its blobs and the
/// layers decompress to the config's diffIDs.
fn assert_children_complete(
    registry: &DockerRegistry,
    repository: &str,
    index: &[u8],
    expected: &[&ocipush_testkit::fixtures::ExpectedImage],
) {
    let auth = SkopeoAuth::insecure();
    let view = ManifestView::parse(index);
    let digests: Vec<&str> = expected
        .iter()
        .map(|i| i.manifest_digest.as_deref().unwrap())
        .collect();
    assert_eq!(view.manifest_digests, digests);
    for image in expected {
        let by_digest = format!(
            "{}@{}",
            registry.docker_ref(repository),
            image.manifest_digest.as_deref().unwrap()
        );
        assert_eq!(
            Some(skopeo::inspect_raw(&by_digest, &auth)),
            image.manifest_bytes,
            "{by_digest} is the source's manifest"
        );
        assert_eq!(diff_ids_via_skopeo(&by_digest, &auth), image.diff_ids);
        for blob in std::iter::once(&image.config_digest).chain(&image.layer_digests) {
            assert!(repository_links_blob(registry, repository, blob));
        }
    }
}

/// The index JSON with `manifests` taken out: what must be unchanged by `--platform`.
fn without_manifests(bytes: &[u8]) -> Value {
    let mut v: Value = serde_json::from_slice(bytes).unwrap();
    v.as_object_mut().unwrap().remove("manifests");
    v
}

#[test]
fn without_platform_the_whole_index_goes_up_byte_for_byte() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let expected = three_platforms(dir.path());
    let source = format!("oci:{}:multi", dir.path().display());
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            &source,
            &registry.reference("multi/all:1"),
        ],
        None,
    );
    assert_eq!(pushed_digest(&out), expected.index_digest);
    let raw = skopeo::inspect_raw(&registry.docker_ref("multi/all:1"), &SkopeoAuth::insecure());
    assert_eq!(raw, expected.index_bytes);
    let all: Vec<_> = expected.images.iter().collect();
    assert_children_complete(&registry, "multi/all", &raw, &all);
}

#[test]
fn platform_pushes_only_matching_children_under_a_rewritten_index() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let expected = three_platforms(dir.path());
    let source = format!("oci:{}:multi", dir.path().display());
    // Repeated and comma-separated; the arm64 request has no variant, the child has v8.
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "--platform",
            "linux/arm/v7,linux/arm64",
            "--platform",
            "linux/arm64",
            &source,
            &registry.reference("multi/two:1"),
        ],
        None,
    );
    let digest = pushed_digest(&out);
    assert_ne!(
        digest, expected.index_digest,
        "a narrowed index is a new index"
    );

    let auth = SkopeoAuth::insecure();
    let raw = skopeo::inspect_raw(&registry.docker_ref("multi/two:1"), &auth);
    assert_eq!(
        sha256_hex(&raw),
        digest,
        "the tag points at the pushed digest"
    );
    // Index order is kept, not the order of the flags.
    let kept = [&expected.images[1], &expected.images[2]];
    assert_children_complete(&registry, "multi/two", &raw, &kept);
    assert_eq!(
        ManifestView::parse(&raw).platforms,
        ["linux/arm64/v8", "linux/arm/v7"]
    );
    // Everything but the dropped entry is the source's: media type, schemaVersion, annotations.
    assert_eq!(
        without_manifests(&raw),
        without_manifests(&expected.index_bytes)
    );
    let source_index: Value = serde_json::from_slice(&expected.index_bytes).unwrap();
    let pushed_index: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        pushed_index["manifests"].as_array().unwrap()[..],
        source_index["manifests"].as_array().unwrap()[1..],
        "kept entries are the source's entries unchanged"
    );

    // The amd64 image went nowhere: neither its manifest nor its own blobs.
    let amd64 = &expected.images[0];
    let by_digest = format!(
        "{}@{}",
        registry.docker_ref("multi/two"),
        amd64.manifest_digest.as_deref().unwrap()
    );
    assert!(skopeo::try_inspect_raw(&by_digest, &auth).is_err());
    for blob in std::iter::once(&amd64.config_digest).chain(&amd64.layer_digests) {
        assert!(
            !repository_links_blob(&registry, "multi/two", blob),
            "{blob} of the dropped platform was pushed"
        );
    }
}

#[test]
fn one_matching_platform_still_gets_an_index() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let expected = three_platforms(dir.path());
    let source = format!("oci:{}:multi", dir.path().display());
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "--json",
            "--platform",
            "linux/amd64",
            &source,
            &registry.reference("multi/one:1"),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let digest = report["images"][0]["digest"].as_str().unwrap().to_string();
    let raw = skopeo::inspect_raw(&registry.docker_ref("multi/one:1"), &SkopeoAuth::insecure());
    assert_eq!(sha256_hex(&raw), digest);
    let view = ManifestView::parse(&raw);
    assert_eq!(
        view.media_type.as_deref(),
        Some("application/vnd.oci.image.index.v1+json")
    );
    assert_children_complete(&registry, "multi/one", &raw, &[&expected.images[0]]);
    assert_eq!(
        report["images"][0]["blobs"]["uploaded"], 3,
        "config and two layers"
    );
}

#[test]
fn a_platform_matching_nothing_is_a_usage_error_listing_the_platforms() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    three_platforms(dir.path());
    let source = format!("oci:{}:multi", dir.path().display());
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "--platform",
            "linux/amd64",
            "--platform",
            "linux/s390x",
            &source,
            &registry.reference("multi/none:1"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--platform linux/s390x matches no image"),
        "{err}"
    );
    assert!(
        err.contains("linux/amd64, linux/arm64/v8, linux/arm/v7"),
        "lists what there is: {err}"
    );
    assert!(stdout(&out).is_empty());
    assert!(
        skopeo::try_inspect_raw(
            &registry.docker_ref("multi/none:1"),
            &SkopeoAuth::insecure()
        )
        .is_err(),
        "nothing was tagged"
    );

    let bad = ocipush(&["push", "--platform", "amd64", &source], None);
    assert_eq!(bad.status.code(), Some(64));
    assert!(
        stderr(&bad).contains("invalid platform `amd64`"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn oci_archive_index_narrowed_and_single_platform_images_of_other_platforms_left_out() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let expected = three_platforms(&layout);
    let archive = dir.path().join("multi.tar");
    tar_directory(&layout, std::fs::File::create(&archive).unwrap()).unwrap();
    // A single-platform amd64 image beside it: its config says linux/amd64.
    let single = dir.path().join("single");
    write_oci_layout(
        &single,
        &[(ImageSpec::sample(14), Some("solo"))],
        LayerCompression::Gzip,
    );

    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "--platform",
            "linux/arm64/v8",
            "-r",
            &registry.reference("team"),
            &format!("oci-archive:{}", archive.display()),
            &format!("oci:{}", single.display()),
        ],
        None,
    );
    let digest = pushed_digest(&out);
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("left out: it is linux/amd64, not a --platform"),
        "{err}"
    );
    let raw = skopeo::inspect_raw(
        &registry.docker_ref("team/multi:multi"),
        &SkopeoAuth::insecure(),
    );
    assert_eq!(sha256_hex(&raw), digest);
    assert_children_complete(&registry, "team/multi", &raw, &[&expected.images[1]]);
    assert!(skopeo::try_inspect_raw(
        &registry.docker_ref("team/single:solo"),
        &SkopeoAuth::insecure()
    )
    .is_err());
}

#[test]
fn list_filters_by_platform_and_shows_the_digest_push_writes() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let expected = three_platforms(dir.path());
    let source = format!("oci:{}:multi", dir.path().display());

    let all = ocipush(&["list", "--json", &source], None);
    assert!(all.status.success(), "{}", stderr(&all));
    let rows: Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(
        rows[0]["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8", "linux/arm/v7"])
    );
    assert_eq!(rows[0]["digest"], expected.index_digest.as_str());
    assert_eq!(rows[0]["layers"], 6);

    let narrowed = ocipush(
        &["list", "--json", "--platform", "linux/arm64", &source],
        None,
    );
    assert!(narrowed.status.success(), "{}", stderr(&narrowed));
    let rows: Value = serde_json::from_slice(&narrowed.stdout).unwrap();
    assert_eq!(rows[0]["platforms"], serde_json::json!(["linux/arm64/v8"]));
    assert_eq!(rows[0]["layers"], 2);
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "--platform",
            "linux/arm64",
            &source,
            &registry.reference("multi/listed:1"),
        ],
        None,
    );
    assert_eq!(
        rows[0]["digest"].as_str(),
        Some(pushed_digest(&out).as_str())
    );

    let none = ocipush(&["list", "--platform", "windows/amd64", &source], None);
    assert_eq!(none.status.code(), Some(64));
    assert!(stderr(&none).contains("windows/amd64 matches no image"));
}
