//! Build-directory discovery end to end: a tree with a docker-save tarball, a gzipped one in a
//! subdirectory, an OCI layout, an oci-archive, a tarball that is no image, a truncated image,
//! a symlink loop and a second link to one tarball. `list` and `push -r` find each image once,
//! pass over what is no image, report the broken one and push the rest; skopeo reads back
//! what landed in docker-registry.

use std::path::{Path, PathBuf};

use crate::common::*;
use ocipush_testkit::fixtures::{
    truncate_file, write_docker_archive, write_oci_archive, write_oci_layout, DockerArchiveOptions,
    ExpectedImage, ImageSpec, LayerCompression, LayerSpec,
};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    /// (name:tag, expected) of every good image.
    images: Vec<(String, ExpectedImage)>,
}

fn docker_archive(path: &Path, seed: u64, tag: &str, gzip: bool) -> ExpectedImage {
    write_docker_archive(
        path,
        &[(
            ImageSpec::new(vec![LayerSpec::text(20_000 + seed * 1000, seed)]),
            vec![tag],
        )],
        DockerArchiveOptions {
            gzip_whole_file: gzip,
            ..DockerArchiveOptions::default()
        },
    )
    .remove(0)
}

fn build_tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("build");
    std::fs::create_dir_all(root.join("services/api")).unwrap();
    std::fs::create_dir_all(root.join("layouts")).unwrap();
    let mut images = Vec::new();
    images.push((
        "web:1.0".to_string(),
        docker_archive(&root.join("web.tar"), 1, "web:1.0", false),
    ));
    images.push((
        "api:2.0".to_string(),
        docker_archive(&root.join("services/api/api.tgz"), 2, "api:2.0", true),
    ));
    let layout = write_oci_layout(
        &root.join("layouts/worker"),
        &[(
            ImageSpec::new(vec![LayerSpec::text(3000, 3)]),
            Some("worker:3.0"),
        )],
        LayerCompression::Gzip,
    );
    images.push(("worker:3.0".to_string(), layout[0].clone()));
    let archive = write_oci_archive(
        &root.join("services/batch.tar"),
        &[(
            ImageSpec::new(vec![LayerSpec::random(4000, 4)]),
            Some("batch:4.0"),
        )],
        LayerCompression::Gzip,
    );
    images.push(("batch:4.0".to_string(), archive[0].clone()));

    // Not images: a tarball of sources and a text file. Passed over quietly.
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("main.rs"), "fn main() {}").unwrap();
    let status = std::process::Command::new("tar")
        .arg("cf")
        .arg(root.join("src.tar"))
        .arg("-C")
        .arg(&src)
        .arg("main.rs")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(root.join("NOTES.txt"), "not an image").unwrap();

    // Broken: a docker-save tarball cut short.
    let broken = root.join("services/broken.tar");
    docker_archive(&broken, 5, "broken:5.0", false);
    let len = std::fs::metadata(&broken).unwrap().len();
    truncate_file(&broken, len / 2);

    // A loop and a second path to web.tar: neither may count twice or hang.
    std::os::unix::fs::symlink("..", root.join("services/up")).unwrap();
    std::os::unix::fs::symlink("../web.tar", root.join("layouts/web-again.tar")).unwrap();
    Tree {
        _dir: dir,
        root,
        images,
    }
}

#[test]
fn list_finds_every_image_once_and_reports_the_broken_one() {
    let tree = build_tree();
    let out = ocipush(&["list", "--json", &tree.root.display().to_string()], None);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a broken image: {}",
        stderr(&out)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (broken, images): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = rows
        .as_array()
        .unwrap()
        .iter()
        .partition(|r| r.get("error").is_some());
    let mut names: Vec<String> = images
        .iter()
        .map(|r| r["names"][0].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["api:2.0", "batch:4.0", "web:1.0", "worker:3.0"]);
    // The broken file has its own entry, with its error.
    assert_eq!(broken.len(), 1, "{rows:#}");
    assert!(broken[0]["source"]
        .as_str()
        .unwrap()
        .ends_with("broken.tar"));
    assert!(broken[0]["error"].as_str().unwrap().contains("corrupt"));
    let err = stderr(&out);
    assert!(
        err.contains("broken.tar") && err.contains("corrupt"),
        "{err}"
    );
    assert!(!err.contains("src.tar") && !err.contains("NOTES"), "{err}");

    // Filters by name and by size.
    let out = ocipush(
        &[
            "list",
            "--json",
            "--include",
            "w*",
            "--exclude",
            "worker*",
            &tree.root.display().to_string(),
        ],
        None,
    );
    // (The broken file keeps its entry: no name filter can say it is not wanted.)
    let rows = images_of(&out.stdout);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["names"][0], "web:1.0");
    let worker_size =
        tree.images[2].1.total_layer_size() + tree.images[2].1.config_bytes.len() as u64;
    let out = ocipush(
        &[
            "list",
            "--json",
            "--max-size",
            &(worker_size + 10).to_string(),
            &tree.root.display().to_string(),
        ],
        None,
    );
    let rows = images_of(&out.stdout);
    let small: Vec<&str> = rows
        .iter()
        .map(|r| r["names"][0].as_str().unwrap())
        .collect();
    assert!(small.contains(&"worker:3.0"), "{rows:?}");
    assert!(!small.contains(&"web:1.0"), "{rows:?}");
}

/// The image entries of `list --json` (those without an `error`).
fn images_of(json: &[u8]) -> Vec<serde_json::Value> {
    let rows: Vec<serde_json::Value> = serde_json::from_slice(json).unwrap();
    rows.into_iter()
        .filter(|r| r.get("error").is_none())
        .collect()
}

#[test]
fn push_sends_the_good_images_and_skips_the_broken_one() {
    let tree = build_tree();
    let registry = DockerRegistry::start(RegistryOptions::default());
    let target = registry.reference("build");
    let out = ocipush(
        &[
            "push",
            "--json",
            "--plain-http",
            "-r",
            &target,
            &tree.root.display().to_string(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["pushed"], 4, "{report}");
    assert_eq!(report["summary"]["skipped"], 1, "{report}");
    let skipped = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["status"] == "skipped")
        .unwrap();
    assert!(
        skipped["source"].as_str().unwrap().ends_with("broken.tar"),
        "{skipped}"
    );
    assert!(skipped["error"].as_str().unwrap().contains("corrupt"));

    let auth = SkopeoAuth::insecure();
    for (name, expected) in &tree.images {
        let reference = registry.docker_ref(&format!("build/{name}"));
        let config = skopeo::inspect_config(&reference, &auth);
        assert_eq!(sha256_hex(&config), expected.config_digest, "{name}");
        if let Some(digest) = &expected.manifest_digest {
            assert_eq!(&sha256_hex(&skopeo::inspect_raw(&reference, &auth)), digest);
        }
    }
    assert!(skopeo::try_inspect_raw(&registry.docker_ref("build/broken:5.0"), &auth).is_err());
}
