//! The fixture writers' output is accepted by independent tools: umoci and skopeo read the OCI
//! layouts and archives, and skopeo reads both docker-archive layouts with the exact config and
//! diffIDs. These tests fail (never skip) when a tool is missing.

use ocipush_testkit::digest::sha256_digest;
use ocipush_testkit::fixtures::{
    verify_oci_layout, write_docker_archive, write_oci_archive, write_oci_layout,
    write_oci_layout_multiarch, DockerArchiveFormat, DockerArchiveOptions, ExpectedImage,
    ImageSpec, LayerCompression, LayerSpec,
};
use ocipush_testkit::skopeo::{self, ManifestView, SkopeoAuth};
use ocipush_testkit::tools::require_tool;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn local() -> SkopeoAuth {
    SkopeoAuth::insecure()
}

fn umoci_stat(dir: &Path, ref_name: &str) -> Value {
    let umoci = require_tool("umoci", "umoci");
    let output = Command::new(umoci)
        .args(["stat", "--json", "--image"])
        .arg(format!("{}:{ref_name}", dir.display()))
        .output()
        .expect("running umoci");
    assert!(
        output.status.success(),
        "umoci stat failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("umoci stat --json prints JSON")
}

fn images() -> Vec<(ImageSpec, Option<&'static str>)> {
    vec![
        (ImageSpec::sample(10), Some("v1")),
        (
            ImageSpec::new(vec![
                LayerSpec::random(300_000, 4),
                LayerSpec::text(10_000, 4),
            ])
            .env("FOO=bar"),
            Some("random"),
        ),
    ]
}

fn assert_skopeo_reads_oci(reference_prefix: &str, expected: &[ExpectedImage]) {
    for image in expected {
        let reference = format!("{reference_prefix}:{}", image.ref_name.as_deref().unwrap());
        let raw = skopeo::inspect_raw(&reference, &local());
        assert_eq!(Some(&raw), image.manifest_bytes.as_ref(), "{reference}");
        assert_eq!(
            Some(skopeo::manifest_digest(&raw)),
            image.manifest_digest,
            "{reference}"
        );
        let config = skopeo::inspect_config(&reference, &local());
        assert_eq!(config, image.config_bytes, "{reference}");
    }
}

#[test]
fn umoci_and_skopeo_accept_oci_layouts() {
    for compression in [LayerCompression::Gzip, LayerCompression::None] {
        let dir = tempfile::tempdir().unwrap();
        let expected = write_oci_layout(dir.path(), &images(), compression);
        for image in &expected {
            let stat = umoci_stat(dir.path(), image.ref_name.as_deref().unwrap());
            let history = stat["history"].as_array().expect("umoci history");
            assert_eq!(history.len(), image.diff_ids.len());
        }
        assert_skopeo_reads_oci(&format!("oci:{}", dir.path().display()), &expected);
    }
}

#[test]
fn skopeo_accepts_oci_archives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    let expected = write_oci_archive(&path, &images(), LayerCompression::Gzip);
    assert_skopeo_reads_oci(&format!("oci-archive:{}", path.display()), &expected);
}

#[test]
fn skopeo_reads_multiarch_index() {
    let dir = tempfile::tempdir().unwrap();
    let specs = [
        ImageSpec::sample(3),
        ImageSpec::sample(3).platform("linux", "arm64", Some("v8")),
        ImageSpec::sample(3).platform("linux", "s390x", None),
    ];
    let expected = write_oci_layout_multiarch(dir.path(), "multi", &specs);
    let reference = format!("oci:{}:multi", dir.path().display());
    let raw = skopeo::inspect_raw(&reference, &local());
    assert_eq!(raw, expected.index_bytes);
    let view = ManifestView::parse(&raw);
    assert_eq!(
        view.platforms,
        ["linux/amd64", "linux/arm64/v8", "linux/s390x"]
    );
    // skopeo resolves the index to this machine's platform for --config.
    let config = skopeo::inspect_config(&reference, &local());
    assert!(
        expected.images.iter().any(|i| i.config_bytes == config),
        "the config skopeo picked is one of the index's images"
    );
    // umoci cannot stat an index with several manifests ("tag is ambiguous").
}

fn docker_images() -> Vec<(ImageSpec, Vec<&'static str>)> {
    let base = LayerSpec::files(&[("etc/base", b"base\n")]);
    let app = LayerSpec::text(20_000, 5);
    vec![
        (
            ImageSpec::new(vec![base.clone(), app.clone()]).cmd(&["/app"]),
            vec!["myapp:1.0", "myapp:latest"],
        ),
        (ImageSpec::new(vec![app, base]), vec!["other/app:2"]),
    ]
}

fn assert_skopeo_reads_docker_archive(path: &Path, expected: &[ExpectedImage]) {
    for image in expected {
        let reference = format!("docker-archive:{}:{}", path.display(), image.repo_tags[0]);
        let raw = skopeo::inspect_raw(&reference, &local());
        let view = ManifestView::parse(&raw);
        assert_eq!(
            view.config_digest.as_ref(),
            Some(&image.config_digest),
            "{reference}"
        );
        // skopeo serves docker-archive layers uncompressed, named by their diffIDs.
        assert_eq!(view.layer_digests, image.diff_ids, "{reference}");
        let config = skopeo::inspect_config(&reference, &local());
        assert_eq!(sha256_digest(&config), image.config_digest, "{reference}");
        let summary = skopeo::inspect(&reference, &local());
        assert_eq!(summary["Architecture"], "amd64");
    }
}

#[test]
fn skopeo_reads_docker_archives_in_every_variant() {
    for format in [DockerArchiveFormat::Legacy, DockerArchiveFormat::Docker25] {
        for layer_compression in [LayerCompression::None, LayerCompression::Gzip] {
            for gzip_whole_file in [false, true] {
                for symlink_layers in [true, false] {
                    let options = DockerArchiveOptions {
                        format,
                        gzip_whole_file,
                        layer_compression,
                        symlink_layers,
                    };
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("save.tar");
                    let expected = write_docker_archive(&path, &docker_images(), options);
                    eprintln!("checking {options:?}");
                    let readable = if gzip_whole_file {
                        // skopeo 1.9.3 cannot read gzipped docker archives at all (its
                        // compression sniffing eats the stream: "unexpected EOF" even for
                        // `gzip`-made files), so it gets the gunzipped tar.
                        gunzip_to(&path, &dir.path().join("gunzipped.tar"))
                    } else {
                        path.clone()
                    };
                    assert_skopeo_reads_docker_archive(&readable, &expected);
                }
            }
        }
    }
}

fn gunzip_to(src: &Path, dest: &Path) -> std::path::PathBuf {
    let bytes = std::fs::read(src).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "{} is gzip", src.display());
    let mut out = std::fs::File::create(dest).unwrap();
    std::io::copy(
        &mut flate2::read::GzDecoder::new(bytes.as_slice()),
        &mut out,
    )
    .unwrap();
    dest.to_path_buf()
}

#[test]
fn docker25_archive_is_also_an_oci_layout_for_skopeo() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("save.tar");
    let options = DockerArchiveOptions {
        format: DockerArchiveFormat::Docker25,
        ..Default::default()
    };
    let expected = write_docker_archive(&path, &docker_images()[..1], options);
    // index.json names the manifest by its tag, as Docker 25 does ("1.0", "latest").
    let reference = format!("oci-archive:{}:1.0", path.display());
    let raw = skopeo::inspect_raw(&reference, &local());
    assert_eq!(Some(&raw), expected[0].manifest_bytes.as_ref());
    let unpacked = tempfile::tempdir().unwrap();
    tar::Archive::new(std::fs::File::open(&path).unwrap())
        .unpack(unpacked.path())
        .unwrap();
    verify_oci_layout(unpacked.path());
    umoci_stat(unpacked.path(), "latest");
}

#[test]
fn make_example_image_is_deterministic_and_valid() {
    let exe = env!("CARGO_BIN_EXE_make-example-image");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let run = |dir: &Path| {
        let out = Command::new(exe)
            .arg(dir)
            .output()
            .expect("running make-example-image");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let digest_a = run(a.path());
    let digest_b = run(b.path());
    assert_eq!(digest_a, digest_b);
    assert!(digest_a.starts_with("sha256:"));
    let reference = format!("oci:{}:hello:latest", a.path().display());
    let raw = skopeo::inspect_raw(&reference, &local());
    assert_eq!(skopeo::manifest_digest(&raw), digest_a);
    umoci_stat(a.path(), "hello:latest");
    let size: u64 = walk_size(a.path());
    assert!(
        size < 16 * 1024,
        "example image should be a few kilobytes, is {size}"
    );
    let no_args = Command::new(exe).output().unwrap();
    assert_eq!(no_args.status.code(), Some(64));
}

fn walk_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                walk_size(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}
