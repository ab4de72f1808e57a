//! Real Docker on both ends: tarballs written by `docker save` (legacy layout, as Debian's
//! dockerd 20.10 writes) are pushed by ocipush and verified with skopeo; images pushed into
//! `ocipush serve` are pulled by `docker pull`, and the digests compared.

use crate::common::serve::Serve;
use crate::common::*;
use ocipush_testkit::dockerd::Dockerd;
use ocipush_testkit::fixtures::{
    write_docker_archive, write_oci_layout, DockerArchiveOptions, ImageSpec, LayerCompression,
    LayerSpec,
};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

fn gzip_file(src: &std::path::Path, dest: &std::path::Path) {
    let mut input = std::fs::File::open(src).unwrap();
    let output = std::fs::File::create(dest).unwrap();
    let mut encoder = flate2::write::GzEncoder::new(output, flate2::Compression::fast());
    std::io::copy(&mut input, &mut encoder).unwrap();
    encoder.finish().unwrap();
}

#[test]
fn docker_save_tarballs_push_and_docker_pulls_from_serve() {
    let daemon = Dockerd::start();
    let work = tempfile::tempdir().unwrap();

    // Load a fixture into docker, then let docker itself write the tarball.
    let fixture = work.path().join("fixture.tar");
    let image = ImageSpec::new(vec![
        LayerSpec::text(256 * 1024, 31),
        LayerSpec::random(128 * 1024, 32),
    ])
    .cmd(&["/app"]);
    write_docker_archive(
        &fixture,
        &[(image, vec!["dockerapp:1.0"])],
        DockerArchiveOptions::default(),
    );
    daemon.load(&fixture);
    let image_id = daemon
        .docker_ok(&["image", "inspect", "--format", "{{.Id}}", "dockerapp:1.0"])
        .trim()
        .to_string();
    let saved = work.path().join("saved.tar");
    daemon.docker_ok(&["save", "-o", &saved.display().to_string(), "dockerapp:1.0"]);
    let saved_gz = work.path().join("saved.tar.gz");
    gzip_file(&saved, &saved_gz);
    let diff_ids: Vec<String> = serde_json::from_str(&daemon.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        "dockerapp:1.0",
    ]))
    .unwrap();

    let registry = DockerRegistry::start(RegistryOptions::default());
    let auth = SkopeoAuth::insecure();
    for (path, tag) in [(&saved, "plain"), (&saved_gz, "gz")] {
        let dest = format!("from/docker:{tag}");
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
        assert_eq!(sha256_hex(&skopeo::inspect_raw(&reference, &auth)), digest);
        let config = skopeo::inspect_config(&reference, &auth);
        assert_eq!(
            sha256_hex(&config),
            image_id,
            "config digest is docker's image ID"
        );
        assert_eq!(diff_ids_via_skopeo(&reference, &auth), diff_ids);
    }

    // docker pull from the embedded registry: an OCI image and a docker-archive image.
    let root = tempfile::tempdir().unwrap();
    let serve = Serve::start(root.path(), &[]);
    let layout = work.path().join("layout");
    let expected = write_oci_layout(
        &layout,
        &[(ImageSpec::sample(33), Some("1"))],
        LayerCompression::Gzip,
    )
    .remove(0);
    for (source, name) in [
        (layout.display().to_string(), "served/oci:1"),
        (saved.display().to_string(), "served/docker:1"),
    ] {
        let reference = format!("{}/{name}", serve.addr);
        let out = ocipush(&["push", "--plain-http", &source, &reference], None);
        let digest = pushed_digest(&out);
        daemon.docker_ok(&["pull", &reference]);
        let repo_digests = daemon.docker_ok(&[
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &reference,
        ]);
        let repo = reference.rsplit_once(':').unwrap().0;
        assert!(
            repo_digests.contains(&format!("{repo}@{digest}")),
            "{repo_digests} lacks {digest}"
        );
    }
    let pulled_id = daemon.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        &format!("{}/served/oci:1", serve.addr),
    ]);
    assert_eq!(pulled_id.trim(), expected.config_digest);
    let pulled_id = daemon.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        &format!("{}/served/docker:1", serve.addr),
    ]);
    assert_eq!(pulled_id.trim(), image_id);
}
