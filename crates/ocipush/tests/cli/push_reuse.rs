//! Work that is not repeated: an unchanged docker archive pushed again is only HEADed (the
//! digest cache knows its compressed digests), a layer shared by several images is compressed
//! once and uploaded once per repository, and another repository gets it by mount.

use std::ffi::OsStr;

use crate::common::*;
use ocipush_testkit::fixtures::{write_docker_archive, DockerArchiveOptions, ImageSpec, LayerSpec};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

fn json_push(args: &[&str], cache: &std::path::Path) -> serde_json::Value {
    let mut all = vec!["push", "--plain-http", "--json"];
    all.extend_from_slice(args);
    let out = ocipush_env(&all, None, &[("OCIPUSH_CACHE_DIR", cache.as_os_str())]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

#[test]
fn unchanged_archive_is_not_uploaded_or_compressed_again() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let archive = dir.path().join("app.tar");
    let image = ImageSpec::new(vec![
        LayerSpec::text(512 * 1024, 1),
        LayerSpec::random(256 * 1024, 2),
    ]);
    write_docker_archive(
        &archive,
        &[(image, vec!["app:1"])],
        DockerArchiveOptions::default(),
    );
    let dest = registry.reference("reuse/app:1");
    let source = archive.display().to_string();

    let first = json_push(&[&source, &dest], &cache);
    assert_eq!(first["summary"]["blobs"]["uploaded"], 3, "{first}");
    let second = json_push(&[&source, &dest], &cache);
    assert_eq!(second["summary"]["blobs"]["uploaded"], 0, "{second}");
    assert_eq!(second["summary"]["blobs"]["existing"], 3, "{second}");
    assert_eq!(second["summary"]["bytes_uploaded"], 0);
    assert_eq!(second["images"][0]["digest"], first["images"][0]["digest"]);

    // The cache made the layers' digests known without reading them: a cache entry per layer
    // (and, beside them, each layer's uncompressed size, for daemons' legacy save streams).
    let (sizes, entries) = cache_files(&cache);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(sizes.len(), 2, "{sizes:?}");

    // A corrupt cache entry is ignored: the layer is compressed again and the push succeeds.
    std::fs::write(&entries[0], "not a cache entry").unwrap();
    let third = json_push(&[&source, &dest], &cache);
    assert_eq!(third["images"][0]["digest"], first["images"][0]["digest"]);
    assert_eq!(
        std::fs::read_to_string(&entries[0])
            .unwrap()
            .split_whitespace()
            .count(),
        2,
        "entry rewritten"
    );
    let raw = skopeo::inspect_raw(&registry.docker_ref("reuse/app:1"), &SkopeoAuth::insecure());
    assert_eq!(
        Some(sha256_hex(&raw).as_str()),
        third["images"][0]["digest"].as_str()
    );
}

#[test]
fn concurrent_runs_share_one_cache_and_an_unusable_cache_is_not_fatal() {
    let registries = [
        DockerRegistry::start(RegistryOptions::default()),
        DockerRegistry::start(RegistryOptions::default()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let archive = dir.path().join("app.tar");
    let image = ImageSpec::new(vec![
        LayerSpec::text(2 * 1024 * 1024, 31),
        LayerSpec::text(1024 * 1024, 32),
    ]);
    write_docker_archive(
        &archive,
        &[(image, vec!["app:1"])],
        DockerArchiveOptions::default(),
    );
    let source = archive.display().to_string();

    // Four runs at once, two into each registry, all compressing the same layers and writing
    // the same cache entries.
    let destinations: Vec<String> = (0..4)
        .map(|i| registries[i % 2].reference(&format!("conc/app{i}:1")))
        .collect();
    let docs: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let runs: Vec<_> = destinations
            .iter()
            .map(|dest| scope.spawn(|| json_push(&[&source, dest], &cache)))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let digest = &docs[0]["images"][0]["digest"];
    for doc in &docs {
        assert_eq!(doc["summary"]["pushed"], 1, "{doc}");
        assert_eq!(&doc["images"][0]["digest"], digest, "{doc}");
    }
    // Every entry whole (no torn writes, no temporary files left behind) and right: a re-push
    // finds the digests in the cache and has nothing to upload.
    let (sizes, entries) = cache_files(&cache);
    assert_eq!(
        (entries.len(), sizes.len()),
        (2, 2),
        "{entries:?} {sizes:?}"
    );
    for (files, words) in [(&entries, 2), (&sizes, 1)] {
        for file in files {
            let text = std::fs::read_to_string(file).unwrap();
            assert!(text.ends_with('\n'), "{file:?}: {text:?}");
            assert_eq!(text.split_whitespace().count(), words, "{file:?}: {text:?}");
        }
    }
    let again = json_push(&[&source, &destinations[0]], &cache);
    assert_eq!(again["summary"]["blobs"]["uploaded"], 0, "{again}");
    assert_eq!(&again["images"][0]["digest"], digest);
    for i in 0..destinations.len() {
        let raw = skopeo::inspect_raw(
            &registries[i % 2].docker_ref(&format!("conc/app{i}:1")),
            &SkopeoAuth::insecure(),
        );
        assert_eq!(Some(sha256_hex(&raw).as_str()), digest.as_str());
    }

    // A cache directory that cannot be used (here: a plain file) costs speed, never the push.
    let not_a_dir = dir.path().join("cache-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let dest = registries[0].reference("conc/nocache:1");
    let doc = json_push(&[&source, &dest], &not_a_dir);
    assert_eq!(&doc["images"][0]["digest"], digest, "{doc}");
    assert_eq!(std::fs::read_to_string(&not_a_dir).unwrap(), "x");
}

#[test]
fn shared_layers_go_up_once_and_are_mounted_across_repositories() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("many.tar");
    let base = LayerSpec::text(768 * 1024, 9);
    let images: Vec<(ImageSpec, Vec<&str>)> = vec![
        (
            ImageSpec::new(vec![base.clone(), LayerSpec::files(&[("a", b"a")])]),
            vec!["one:1"],
        ),
        (
            ImageSpec::new(vec![base.clone(), LayerSpec::files(&[("b", b"b")])]),
            vec!["two:1"],
        ),
        (
            ImageSpec::new(vec![base, LayerSpec::files(&[("c", b"c")])]),
            vec!["three:1"],
        ),
    ];
    write_docker_archive(&archive, &images, DockerArchiveOptions::default());
    let cache = dir.path().join("cache");
    let target = format!("{}/shared", registry.host_port());
    let doc = json_push(&["-r", &target, &archive.display().to_string()], &cache);
    let summary = &doc["summary"];
    assert_eq!(summary["pushed"], 3, "{doc}");
    // The base layer: uploaded into one repository, mounted into the two others.
    assert_eq!(summary["blobs"]["mounted"], 2, "{doc}");
    // 3 configs + 3 own layers + the base layer once.
    assert_eq!(summary["blobs"]["uploaded"], 7, "{doc}");
    for name in ["one", "two", "three"] {
        let reference = registry.docker_ref(&format!("shared/{name}:1"));
        let ids = diff_ids_via_skopeo(&reference, &SkopeoAuth::insecure());
        assert_eq!(ids.len(), 2, "{name}");
    }
}

#[test]
fn layers_shared_by_images_pushed_at_once_go_up_once_and_are_mounted() {
    // Two OCI layouts holding the same image under two names, pushed in one run at the default
    // -j, so both repositories' pushes run at once. Their blobs' digests are known before they
    // are read: each used to be uploaded into both repositories. The second now waits for the
    // first upload and mounts it.
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let image = ImageSpec::new(vec![
        LayerSpec::text(512 * 1024, 4),
        LayerSpec::random(256 * 1024, 5),
    ]);
    let sources = one_image_in_two_layouts(dir.path(), &image);
    let cache = dir.path().join("cache");
    let target = format!("{}/twice", registry.host_port());
    let doc = json_push(&["-r", &target, &sources[0], &sources[1]], &cache);
    let summary = &doc["summary"];
    assert_eq!(summary["pushed"], 2, "{doc}");
    assert_eq!(
        summary["blobs"]["uploaded"], 3,
        "config and layers once: {doc}"
    );
    assert_eq!(
        summary["blobs"]["mounted"], 3,
        "and mounted into the other: {doc}"
    );
    for name in ["one", "two"] {
        let reference = registry.docker_ref(&format!("twice/{name}:1"));
        assert_eq!(
            diff_ids_via_skopeo(&reference, &SkopeoAuth::insecure()).len(),
            2
        );
    }
}

/// The cache's files: the uncompressed sizes, and the compressed-digest entries.
fn cache_files(cache: &std::path::Path) -> (Vec<std::path::PathBuf>, Vec<std::path::PathBuf>) {
    walk(cache)
        .into_iter()
        .partition(|p| p.parent().is_some_and(|d| d.ends_with("sizes")))
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.file_name() != Some(OsStr::new(".lock")) {
            out.push(path);
        }
    }
    out.sort();
    out
}
