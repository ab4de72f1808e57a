//! Pushing straight from real daemons: Debian's dockerd (legacy save stream, Engine API 1.41)
//! and `podman system service` (its Docker-compatible API, layers named by diffID), each on its
//! own socket. Images are loaded from tarballs made here; what lands in docker-registry is read
//! back with skopeo and pulled with docker, and compared with what the daemon says it has.

use std::ffi::OsStr;
use std::path::Path;

use crate::common::*;
use ocipush_testkit::dockerd::Dockerd;
use ocipush_testkit::fixtures::{write_docker_archive, DockerArchiveOptions, ImageSpec, LayerSpec};
use ocipush_testkit::podman::Podman;
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

/// Base layers big enough to stream (over 1 MiB) and a small top layer kept whole.
fn app_image(top_seed: u64) -> ImageSpec {
    ImageSpec::new(vec![
        LayerSpec::text(3 * 1024 * 1024, 61),
        LayerSpec::random(2 * 1024 * 1024, 62),
        LayerSpec::text(64 * 1024, top_seed),
    ])
    .cmd(&["/app"])
}

fn archive(dir: &Path, name: &str, image: ImageSpec, tags: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    write_docker_archive(
        &path,
        &[(image, tags.to_vec())],
        DockerArchiveOptions::default(),
    );
    path
}

/// Runs ocipush against a daemon with its own digest cache; returns the JSON report.
fn push_json(host: &str, cache: &Path, args: &[&str]) -> serde_json::Value {
    push_json_logged(host, cache, args).0
}

/// The same, with `-v`: also returns the log.
fn push_json_logged(host: &str, cache: &Path, args: &[&str]) -> (serde_json::Value, String) {
    let mut all = vec!["-v", "push", "--json", "--plain-http"];
    all.extend_from_slice(args);
    let out = ocipush_env(
        &all,
        None,
        &[
            ("DOCKER_HOST", OsStr::new(host)),
            ("OCIPUSH_CACHE_DIR", cache.as_os_str()),
        ],
    );
    assert!(
        out.status.success(),
        "ocipush {all:?} failed\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    (serde_json::from_slice(&out.stdout).unwrap(), stderr(&out))
}

/// Per image, the (upload, exists, mount) counts `--dry-run --json` promises.
fn dry_run_counts(host: &str, cache: &Path, args: &[&str]) -> Vec<(u64, u64, u64)> {
    let mut all = vec!["--dry-run"];
    all.extend_from_slice(args);
    let plan = push_json(host, cache, &all);
    plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| {
            let count = |action: &str| {
                image["blobs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|b| b["action"] == action)
                    .count() as u64
            };
            (count("upload"), count("exists"), count("mount"))
        })
        .collect()
}

/// Per image, the (uploaded, existing, mounted) counts a push reported.
fn pushed_counts(report: &serde_json::Value) -> Vec<(u64, u64, u64)> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| {
            let n = |key: &str| image["blobs"][key].as_u64().unwrap();
            (n("uploaded"), n("existing"), n("mounted"))
        })
        .collect()
}

/// A dry run, then the push: the push does per blob what the dry run said.
fn planned_then_pushed(host: &str, cache: &Path, args: &[&str]) -> (serde_json::Value, String) {
    let promised = dry_run_counts(host, cache, args);
    let (report, log) = push_json_logged(host, cache, args);
    assert_eq!(
        promised,
        pushed_counts(&report),
        "dry run against push: {report}\n{log}"
    );
    (report, log)
}

fn uploaded(report: &serde_json::Value) -> u64 {
    report["images"][0]["blobs"]["uploaded"].as_u64().unwrap()
}

/// What skopeo reads back must be the daemon's image: config digest = image ID, diffIDs equal.
fn assert_same_image(reference: &str, image_id: &str, diff_ids: &[String], digest: &str) {
    let auth = SkopeoAuth::insecure();
    assert_eq!(sha256_hex(&skopeo::inspect_raw(reference, &auth)), digest);
    let config = skopeo::inspect_config(reference, &auth);
    assert_eq!(
        sha256_hex(&config),
        image_id,
        "config digest is the image ID"
    );
    assert_eq!(config_diff_ids(&config), diff_ids);
    assert_eq!(diff_ids_via_skopeo(reference, &auth), diff_ids);
}

#[test]
fn docker_daemon_images_push_cold_warm_and_changed() {
    let daemon = Dockerd::start();
    let registry = DockerRegistry::start(RegistryOptions::default());
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    daemon.load(&archive(
        work.path(),
        "v1.tar",
        app_image(63),
        &["daemonapp:1.0"],
    ));
    let inspect = |name: &str, format: &str| {
        daemon
            .docker_ok(&["image", "inspect", "--format", format, name])
            .trim()
            .to_string()
    };
    let image_id = inspect("daemonapp:1.0", "{{.Id}}");
    let diff_ids: Vec<String> =
        serde_json::from_str(&inspect("daemonapp:1.0", "{{json .RootFS.Layers}}")).unwrap();
    let target = registry.reference("team");

    // Cold: the export streams; every blob is uploaded.
    let (cold, _) = planned_then_pushed(&daemon.host(), &cache, &["daemonapp:1.0", "-r", &target]);
    let digest = cold["images"][0]["digest"].as_str().unwrap().to_string();
    assert_eq!(uploaded(&cold), 4, "3 layers + config: {cold}");
    let reference = registry.docker_ref("team/daemonapp:1.0");
    assert_same_image(&reference, &image_id, &diff_ids, &digest);

    // Warm: inspect + digest cache + HEAD; nothing uploaded (a legacy export would have
    // re-uploaded every layer, whose diffIDs its stream does not name).
    let (warm, _) = planned_then_pushed(&daemon.host(), &cache, &["daemonapp:1.0", "-r", &target]);
    assert_eq!(uploaded(&warm), 0, "{warm}");
    assert_eq!(warm["images"][0]["digest"], cold["images"][0]["digest"]);

    // A real client pulls it back: docker's own digest for the pull matches ours.
    let pulled = registry.reference("team/daemonapp:1.0");
    daemon.docker_ok(&["pull", &pulled]);
    let repo_digests = inspect(&pulled, "{{json .RepoDigests}}");
    assert!(repo_digests.contains(&digest), "{repo_digests} vs {digest}");
    assert_eq!(inspect(&pulled, "{{.Id}}"), image_id);

    // A changed top layer: the new image pushes, the registry ends with its exact layers.
    daemon.load(&archive(
        work.path(),
        "v2.tar",
        app_image(64),
        &["daemonapp:2.0"],
    ));
    let v2_id = inspect("daemonapp:2.0", "{{.Id}}");
    let v2_diff_ids: Vec<String> =
        serde_json::from_str(&inspect("daemonapp:2.0", "{{json .RootFS.Layers}}")).unwrap();
    assert_eq!(v2_diff_ids[..2], diff_ids[..2]);
    let (changed, _) =
        planned_then_pushed(&daemon.host(), &cache, &["daemonapp:2.0", "-r", &target]);
    let v2_digest = changed["images"][0]["digest"].as_str().unwrap().to_string();
    assert_same_image(
        &registry.docker_ref("team/daemonapp:2.0"),
        &v2_id,
        &v2_diff_ids,
        &v2_digest,
    );
    // The legacy stream names layers by v1 IDs; the unchanged ones are recognised by size and
    // checked by hash, so only the new top layer and the config go up.
    assert_eq!(uploaded(&changed), 2, "{changed}");

    // A new layer exactly as big as a held one of the same image: the size guess is wrong,
    // the hash says so, and the layer is pushed by a second export. The image must be exact.
    let v3 = ImageSpec::new(vec![
        LayerSpec::text(3 * 1024 * 1024, 61),
        LayerSpec::random(2 * 1024 * 1024, 62),
        LayerSpec::random(2 * 1024 * 1024, 99),
        LayerSpec::text(64 * 1024, 63),
    ]);
    daemon.load(&archive(work.path(), "v3.tar", v3, &["daemonapp:3.0"]));
    let v3_id = inspect("daemonapp:3.0", "{{.Id}}");
    let v3_diff_ids: Vec<String> =
        serde_json::from_str(&inspect("daemonapp:3.0", "{{json .RootFS.Layers}}")).unwrap();
    assert_eq!(v3_diff_ids[1], diff_ids[1]);
    let (guessed, log) =
        planned_then_pushed(&daemon.host(), &cache, &["daemonapp:3.0", "-r", &target]);
    assert!(
        log.contains("exporting again"),
        "the guess was not taken:\n{log}"
    );
    let v3_digest = guessed["images"][0]["digest"].as_str().unwrap().to_string();
    assert_same_image(
        &registry.docker_ref("team/daemonapp:3.0"),
        &v3_id,
        &v3_diff_ids,
        &v3_digest,
    );
    assert_eq!(uploaded(&guessed), 2, "new layer + config: {guessed}");
}

#[test]
fn docker_daemon_list_filters_and_errors() {
    let daemon = Dockerd::start();
    let work = tempfile::tempdir().unwrap();
    daemon.load(&archive(
        work.path(),
        "a.tar",
        app_image(71),
        &["frontend:dev"],
    ));
    daemon.load(&archive(
        work.path(),
        "b.tar",
        ImageSpec::new(vec![LayerSpec::text(1000, 72)]),
        &["backend:dev", "backend:old"],
    ));
    let host = daemon.host();
    let env = [("DOCKER_HOST", OsStr::new(&host))];

    let out = ocipush_env(&["list", "--json"], None, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let backend = rows
        .iter()
        .find(|r| r["names"].to_string().contains("backend"))
        .unwrap();
    let mut names: Vec<&str> = backend["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["backend:dev", "backend:old"]);
    assert_eq!(backend["layers"], 1);
    assert_eq!(backend["platforms"][0], "linux/amd64");
    assert_eq!(backend["format"], "daemon");
    let backend_id = daemon
        .docker_ok(&["image", "inspect", "--format", "{{.Id}}", "backend:dev"])
        .trim()
        .to_string();
    assert_eq!(backend["id"], backend_id.as_str());

    let out = ocipush_env(
        &["list", "--include", "front*", "--exclude", "*:old"],
        None,
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(
        table.lines().next().unwrap().starts_with("SOURCE"),
        "{table}"
    );
    assert!(
        table.contains("frontend:dev") && !table.contains("backend"),
        "{table}"
    );
    assert!(table.contains("linux/amd64"), "{table}");

    let out = ocipush_env(&["push", "nosuchimage:1", "127.0.0.1:9/x/y:1"], None, &env);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("has no image `nosuchimage:1`"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

/// Loads `app_image(seed)` into podman's storage as `tag`; returns its image ID and diffIDs as
/// podman reports them.
fn load_into_podman(podman: &Podman, dir: &Path, seed: u64, tag: &str) -> (String, Vec<String>) {
    podman.load(&archive(dir, "p.tar", app_image(seed), &[tag]));
    let image_id = format!(
        "sha256:{}",
        podman
            .podman_ok(&["image", "inspect", "--format", "{{.Id}}", tag])
            .trim()
    );
    let diff_ids: Vec<String> = serde_json::from_str(&podman.podman_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        tag,
    ]))
    .unwrap();
    (image_id, diff_ids)
}

#[test]
fn podman_service_images_push_and_repush_without_export() {
    let podman = Podman::start();
    let registry = DockerRegistry::start(RegistryOptions::default());
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let (image_id, diff_ids) = load_into_podman(&podman, work.path(), 81, "podapp:1.0");

    let target = registry.reference("pods");
    let (cold, _) = planned_then_pushed(&podman.host(), &cache, &["podapp:1.0", "-r", &target]);
    assert_eq!(uploaded(&cold), 4, "{cold}");
    let digest = cold["images"][0]["digest"].as_str().unwrap().to_string();
    assert_eq!(
        cold["images"][0]["references"][0],
        format!("{target}/podapp:1.0")
    );
    assert_same_image(
        &registry.docker_ref("pods/podapp:1.0"),
        &image_id,
        &diff_ids,
        &digest,
    );

    // Podman's own name for it works too, and nothing is sent again.
    let (warm, _) = planned_then_pushed(
        &podman.host(),
        &cache,
        &["localhost/podapp:1.0", "-r", &target],
    );
    assert_eq!(uploaded(&warm), 0, "{warm}");
    assert_eq!(warm["images"][0]["digest"], digest.as_str());
}

#[test]
fn podman_service_over_plain_tcp() {
    // DOCKER_HOST=tcp://HOST:PORT, as docker-in-docker and `dockerd -H tcp://` serve the API.
    let podman = Podman::start_tcp();
    assert!(podman.host().starts_with("tcp://127.0.0.1:"));
    let registry = DockerRegistry::start(RegistryOptions::default());
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let (image_id, diff_ids) = load_into_podman(&podman, work.path(), 83, "tcpapp:2.0");
    let target = registry.reference("overtcp");
    let (report, log) = push_json_logged(&podman.host(), &cache, &["tcpapp:2.0", "-r", &target]);
    assert_eq!(uploaded(&report), 4, "{report}");
    // Logs to a pipe are plain text.
    assert!(!log.contains('\x1b'), "ANSI escapes in piped logs:\n{log}");
    assert!(
        log.contains(&podman.host()),
        "the log names the endpoint:\n{log}"
    );
    let digest = report["images"][0]["digest"].as_str().unwrap().to_string();
    assert_same_image(
        &registry.docker_ref("overtcp/tcpapp:2.0"),
        &image_id,
        &diff_ids,
        &digest,
    );
}

#[test]
fn a_daemon_image_with_a_repeated_layer_pushes_as_its_dry_run_said() {
    // The same layer twice (as images built with the same empty step twice have): planned as
    // one upload and one repeat, and pushed that way, cold and warm.
    let daemon = Dockerd::start();
    let registry = DockerRegistry::start(RegistryOptions::default());
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let repeated = ImageSpec::new(vec![
        LayerSpec::text(2 * 1024 * 1024, 91),
        LayerSpec::text(64 * 1024, 92),
        LayerSpec::text(2 * 1024 * 1024, 91),
    ]);
    daemon.load(&archive(work.path(), "r.tar", repeated, &["repeat:1"]));
    let target = registry.reference("rep");
    for _ in ["cold", "warm"] {
        let (report, _) = planned_then_pushed(&daemon.host(), &cache, &["repeat:1", "-r", &target]);
        let digest = report["images"][0]["digest"].as_str().unwrap();
        let reference = registry.docker_ref("rep/repeat:1");
        assert_eq!(
            sha256_hex(&skopeo::inspect_raw(&reference, &SkopeoAuth::insecure())),
            digest
        );
    }
}
