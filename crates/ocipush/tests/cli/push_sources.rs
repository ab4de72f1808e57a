//! Every source kind pushed into a real CNCF distribution registry (docker-registry) over plain
//! HTTP, then read back with skopeo: manifest digest, config and every layer's diffID must match
//! what the source holds.

use crate::common::*;
use ocipush_testkit::fixtures::{
    write_docker_archive, write_oci_archive, write_oci_layout, DockerArchiveFormat,
    DockerArchiveOptions, ImageSpec, LayerCompression, LayerSpec,
};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, ManifestView, SkopeoAuth};

fn image(seed: u64) -> ImageSpec {
    ImageSpec::new(vec![
        LayerSpec::files(&[("etc/app.conf", b"port=8080\n")]),
        LayerSpec::text(300 * 1024, seed),
        LayerSpec::random(200 * 1024, seed + 1),
    ])
    .cmd(&["/bin/app"])
}

fn check_oci_push(
    source: &str,
    expected: &ocipush_testkit::fixtures::ExpectedImage,
    registry: &DockerRegistry,
    dest: &str,
) {
    let out = ocipush(
        &["push", "--plain-http", source, &registry.reference(dest)],
        None,
    );
    let digest = pushed_digest(&out);
    assert_eq!(
        Some(digest.clone()),
        expected.manifest_digest,
        "pushed digest is the source's"
    );
    let reference = registry.docker_ref(dest);
    let auth = SkopeoAuth::insecure();
    let raw = skopeo::inspect_raw(&reference, &auth);
    assert_eq!(
        sha256_hex(&raw),
        digest,
        "registry serves the same manifest"
    );
    assert_eq!(Some(&raw), expected.manifest_bytes.as_ref());
    assert_eq!(
        skopeo::inspect_config(&reference, &auth),
        expected.config_bytes
    );
    assert_eq!(diff_ids_via_skopeo(&reference, &auth), expected.diff_ids);
}

#[test]
fn oci_layout_gzip_and_uncompressed_push_byte_for_byte() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    for (compression, tag) in [
        (LayerCompression::Gzip, "gz"),
        (LayerCompression::None, "plain"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let expected = write_oci_layout(dir.path(), &[(image(7), Some("1.0"))], compression);
        let source = format!("oci:{}:1.0", dir.path().display());
        check_oci_push(
            &source,
            &expected[0],
            &registry,
            &format!("team/layout:{tag}"),
        );
    }
}

#[test]
fn oci_layout_picks_the_image_by_ref_name() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let expected = write_oci_layout(
        dir.path(),
        &[(image(1), Some("one")), (image(2), Some("two"))],
        LayerCompression::Gzip,
    );
    // Two images and one destination: the user must pick.
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            &dir.path().display().to_string(),
            &registry.reference("x/y:z"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 images found"), "{}", stderr(&out));

    let source = format!("oci:{}:two", dir.path().display());
    check_oci_push(&source, &expected[1], &registry, "pick/two:latest");
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            &format!("oci:{}:three", dir.path().display()),
            &registry.reference("x/y:z"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("available: one, two"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn oci_archive_pushes_in_place() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.oci.tar");
    let expected = write_oci_archive(&path, &[(image(3), Some("2.0"))], LayerCompression::Gzip);
    // Auto-detected without a transport prefix.
    check_oci_push(
        &path.display().to_string(),
        &expected[0],
        &registry,
        "team/archive:2.0",
    );
}

/// `--digestfile`: the digest the registry knows the image by (skopeo's), one per image.
#[test]
fn digestfile_holds_each_pushed_images_digest() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    write_oci_layout(&layout, &[(image(5), Some("1"))], LayerCompression::Gzip);
    let archive = dir.path().join("two.tar");
    write_docker_archive(
        &archive,
        &[(image(6), vec!["six:1"]), (image(7), vec!["seven:1"])],
        DockerArchiveOptions::default(),
    );
    let auth = SkopeoAuth::insecure();

    let file = dir.path().join("digest");
    let dest = registry.reference("df/layout:1");
    let args = [
        "push",
        "--plain-http",
        "--digestfile",
        file.to_str().unwrap(),
    ];
    let out = ocipush(
        &[&args[..], &[layout.to_str().unwrap(), &dest]].concat(),
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let raw = skopeo::inspect_raw(&format!("docker://{dest}"), &auth);
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written, format!("{}\n", sha256_hex(&raw)));

    let many = dir.path().join("digests");
    let target = registry.reference("df");
    let args = [
        "push",
        "--plain-http",
        "--digestfile",
        many.to_str().unwrap(),
        "-r",
    ];
    let out = ocipush(
        &[&args[..], &[&target, archive.to_str().unwrap()]].concat(),
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut expected: Vec<String> = ["six:1", "seven:1"]
        .iter()
        .map(|name| {
            let raw = skopeo::inspect_raw(&format!("docker://{target}/{name}"), &auth);
            sha256_hex(&raw)
        })
        .collect();
    let mut written: Vec<String> = std::fs::read_to_string(&many)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    expected.sort();
    written.sort();
    assert_eq!(written, expected);
}

fn check_docker_archive(options: DockerArchiveOptions, name: &str) {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(if options.gzip_whole_file {
        "app.tar.gz"
    } else {
        "app.tar"
    });
    let expected = write_docker_archive(&path, &[(image(11), vec!["myapp:1.0"])], options);
    let dest = format!("team/{name}:1.0");
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            &path.display().to_string(),
            &registry.reference(&dest),
        ],
        None,
    );
    let digest = pushed_digest(&out);

    let reference = registry.docker_ref(&dest);
    let auth = SkopeoAuth::insecure();
    let raw = skopeo::inspect_raw(&reference, &auth);
    assert_eq!(sha256_hex(&raw), digest);
    let view = ManifestView::parse(&raw);
    assert_eq!(
        view.media_type.as_deref(),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    assert_eq!(
        view.config_digest.as_deref(),
        Some(expected[0].config_digest.as_str())
    );
    assert!(view
        .layer_media_types
        .iter()
        .all(|m| m == "application/vnd.docker.image.rootfs.diff.tar.gzip"));
    let config = skopeo::inspect_config(&reference, &auth);
    assert_eq!(config, expected[0].config_bytes);
    assert_eq!(config_diff_ids(&config), expected[0].diff_ids);
    assert_eq!(
        diff_ids_via_skopeo(&reference, &auth),
        expected[0].diff_ids,
        "layers decompress to their diffIDs"
    );

    // A second push of the same archive gives the same digest: compression is deterministic.
    let again = ocipush(
        &[
            "push",
            "--plain-http",
            &path.display().to_string(),
            &registry.reference(&dest),
        ],
        None,
    );
    assert_eq!(pushed_digest(&again), digest);
}

#[test]
fn docker_archive_legacy_plain() {
    check_docker_archive(DockerArchiveOptions::default(), "legacy");
}

#[test]
fn docker_archive_legacy_gzipped_file() {
    check_docker_archive(
        DockerArchiveOptions {
            gzip_whole_file: true,
            ..DockerArchiveOptions::default()
        },
        "legacy-gz",
    );
}

#[test]
fn docker_archive_with_compressed_layers() {
    check_docker_archive(
        DockerArchiveOptions {
            layer_compression: LayerCompression::Gzip,
            ..DockerArchiveOptions::default()
        },
        "gzlayers",
    );
}

#[test]
fn docker_archive_docker25_layout() {
    check_docker_archive(
        DockerArchiveOptions {
            format: DockerArchiveFormat::Docker25,
            ..DockerArchiveOptions::default()
        },
        "docker25",
    );
    check_docker_archive(
        DockerArchiveOptions {
            format: DockerArchiveFormat::Docker25,
            gzip_whole_file: true,
            ..DockerArchiveOptions::default()
        },
        "docker25-gz",
    );
}

#[test]
fn registry_mode_names_images_from_repo_tags_and_shares_layers() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.tar");
    let base = LayerSpec::text(100 * 1024, 5);
    let a = ImageSpec::new(vec![base.clone(), LayerSpec::files(&[("a", b"a")])]);
    let b = ImageSpec::new(vec![base, LayerSpec::files(&[("b", b"b")])]);
    let expected = write_docker_archive(
        &path,
        &[
            (a, vec!["docker.io/library/alpha:1.0", "alpha:latest"]),
            (b, vec!["org/beta:2"]),
        ],
        DockerArchiveOptions::default(),
    );
    let target = format!("{}/ns", registry.host_port());
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "-r",
            &target,
            "--json",
            &path.display().to_string(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints one JSON document");
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    for key in [
        "source",
        "destination",
        "digest",
        "status",
        "bytes_uploaded",
        "bytes_skipped",
        "blobs",
        "retries",
        "duration_ms",
        "error",
    ] {
        assert!(
            images[0].get(key).is_some(),
            "missing key {key} in {}",
            images[0]
        );
    }
    assert_eq!(doc["summary"]["pushed"], 2);
    let auth = SkopeoAuth::insecure();
    for (reference, exp) in [
        ("ns/alpha:1.0", &expected[0]),
        ("ns/alpha:latest", &expected[0]),
        ("ns/beta:2", &expected[1]),
    ] {
        let config = skopeo::inspect_config(&registry.docker_ref(reference), &auth);
        assert_eq!(config, exp.config_bytes, "{reference}");
    }
    // -t replaces the source's tags; the config is already there and is not sent again.
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "-r",
            &target,
            "-t",
            "ci",
            "--json",
            &format!("docker-archive:{}:org/beta:2", path.display()),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let image = &doc["images"][0];
    assert_eq!(
        image["destination"],
        format!("{}/ns/beta:ci", registry.host_port())
    );
    assert!(image["blobs"]["existing"].as_u64().unwrap() >= 1, "{image}");
    let digest = image["digest"].as_str().unwrap();
    assert_eq!(
        sha256_hex(&skopeo::inspect_raw(
            &registry.docker_ref("ns/beta:ci"),
            &auth
        )),
        digest
    );
}

#[test]
fn docker_archive_written_by_skopeo() {
    // An archive made by a tool nobody here wrote.
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let expected =
        write_oci_layout(&layout, &[(image(21), Some("1.0"))], LayerCompression::Gzip).remove(0);
    let archive = dir.path().join("by-skopeo.tar");
    skopeo::copy(
        &format!("oci:{}:1.0", layout.display()),
        &format!("docker-archive:{}:made/by-skopeo:1.0", archive.display()),
        &SkopeoAuth::default(),
        &SkopeoAuth::default(),
        &[],
    );
    let target = registry.host_port();
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "-r",
            &target,
            &archive.display().to_string(),
        ],
        None,
    );
    let digest = pushed_digest(&out);
    assert!(
        stdout(&out).starts_with(&format!("{target}/by-skopeo:1.0@")),
        "{}",
        stdout(&out)
    );
    let reference = registry.docker_ref("by-skopeo:1.0");
    let auth = SkopeoAuth::insecure();
    assert_eq!(sha256_hex(&skopeo::inspect_raw(&reference, &auth)), digest);
    let config = skopeo::inspect_config(&reference, &auth);
    assert_eq!(config_diff_ids(&config), expected.diff_ids);
    assert_eq!(diff_ids_via_skopeo(&reference, &auth), expected.diff_ids);
}

#[test]
fn zstd_compression_makes_an_oci_image() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.tar");
    let expected = write_docker_archive(
        &path,
        &[(image(41), vec!["zapp:1"])],
        DockerArchiveOptions::default(),
    )
    .remove(0);
    let dest = "team/zstd:1";
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "--compression",
            "zstd",
            &path.display().to_string(),
            &registry.reference(dest),
        ],
        None,
    );
    let digest = pushed_digest(&out);
    let reference = registry.docker_ref(dest);
    let auth = SkopeoAuth::insecure();
    let raw = skopeo::inspect_raw(&reference, &auth);
    assert_eq!(sha256_hex(&raw), digest);
    let view = ManifestView::parse(&raw);
    assert_eq!(
        view.media_type.as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert!(
        view.layer_media_types
            .iter()
            .all(|m| m == "application/vnd.oci.image.layer.v1.tar+zstd"),
        "{:?}",
        view.layer_media_types
    );
    assert_eq!(
        skopeo::inspect_config(&reference, &auth),
        expected.config_bytes
    );
    assert_eq!(diff_ids_via_skopeo(&reference, &auth), expected.diff_ids);

    // Deterministic: the same digest again; an out-of-range level is a usage error.
    let again = ocipush(
        &[
            "push",
            "--plain-http",
            "--compression",
            "zstd",
            "--no-cache",
            &path.display().to_string(),
            &registry.reference(dest),
        ],
        None,
    );
    assert_eq!(pushed_digest(&again), digest);
    let bad = ocipush(
        &[
            "push",
            "--compression",
            "gzip",
            "--compression-level",
            "12",
            &path.display().to_string(),
            &registry.reference(dest),
        ],
        None,
    );
    assert_eq!(bad.status.code(), Some(64), "{}", stderr(&bad));
}

#[test]
fn two_images_bound_for_one_tag_are_refused_before_anything_is_sent() {
    // Two OCI layouts both named `app` (the directory name), both tagged 1.0, with different
    // content: with -r both map to team/app:1.0. Pushing both would report two pushes while
    // the tag keeps only the last.
    let registry = DockerRegistry::start(RegistryOptions::default());
    let root = tempfile::tempdir().unwrap();
    let (first, second) = (root.path().join("a/app"), root.path().join("b/app"));
    for (dir, seed) in [(&first, 1), (&second, 2)] {
        std::fs::create_dir_all(dir).unwrap();
        write_oci_layout(dir, &[(image(seed), Some("1.0"))], LayerCompression::Gzip);
    }
    let (first, second) = (first.display().to_string(), second.display().to_string());
    let target = registry.reference("team");
    let out = ocipush(
        &["push", "--plain-http", "-r", &target, &first, &second],
        None,
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("would both be pushed to") && err.contains("team/app:1.0"),
        "{err}"
    );
    assert!(err.contains("hint: a tag points at one image"), "{err}");
    // Refused at planning: no tag was written.
    let auth = SkopeoAuth::insecure();
    assert!(skopeo::try_inspect_raw(&registry.docker_ref("team/app:1.0"), &auth).is_err());
    // The same source twice is one image, not a conflict.
    let out = ocipush(
        &["push", "--plain-http", "-r", &target, &first, &first],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    skopeo::inspect_raw(&registry.docker_ref("team/app:1.0"), &auth);
    // Pushed once, and said so: one reference on stdout, not the same one twice.
    let pushed = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(pushed.lines().count(), 1, "{pushed}");
    assert!(
        stderr(&out).contains("is the same image as") && stderr(&out).contains("pushed once"),
        "{}",
        stderr(&out)
    );
    // So are two copies of one layout: the same manifest, whatever the path.
    let copy = root.path().join("c/app");
    std::fs::create_dir_all(&copy).unwrap();
    write_oci_layout(&copy, &[(image(1), Some("1.0"))], LayerCompression::Gzip);
    let copy = copy.display().to_string();
    let out = ocipush(
        &["push", "--plain-http", "-r", &target, &first, &copy],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pushed = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(pushed.lines().count(), 1, "{pushed}");
    assert!(
        stderr(&out).contains(&format!("oci:{copy}:1.0 is the same image as")),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("1 of 1 image(s) pushed"),
        "{}",
        stderr(&out)
    );
}
