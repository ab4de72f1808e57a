//! Daemon pushes against the stand-in Engine API, for what the real engines here cannot show:
//! the Docker 25+ save stream (layers named `blobs/sha256/<diffID>`), an engine too old, and an
//! export that breaks mid-stream. Every pushed image is read back with skopeo from a real
//! docker-registry.

use std::ffi::OsStr;
use std::path::Path;

use crate::common::*;
use ocipush_testkit::fake_engine::{FakeEngine, FakeEngineOptions};
use ocipush_testkit::fixtures::{
    write_docker_archive, DockerArchiveFormat, DockerArchiveOptions, ExpectedImage, ImageSpec,
    LayerSpec,
};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

fn image(middle_seed: u64) -> ImageSpec {
    ImageSpec::new(vec![
        LayerSpec::text(3 * 1024 * 1024, 41),
        LayerSpec::random(2 * 1024 * 1024, middle_seed),
        LayerSpec::text(2 * 1024 * 1024, 43),
    ])
}

fn docker25(
    dir: &Path,
    file: &str,
    spec: ImageSpec,
    name: &str,
) -> (std::path::PathBuf, ExpectedImage) {
    let path = dir.join(file);
    let mut written = write_docker_archive(
        &path,
        &[(spec, vec![name])],
        DockerArchiveOptions {
            format: DockerArchiveFormat::Docker25,
            ..DockerArchiveOptions::default()
        },
    );
    (path, written.remove(0))
}

fn push(engine: &FakeEngine, cache: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["-v", "push", "--json", "--plain-http"];
    all.extend_from_slice(args);
    ocipush_env(
        &all,
        None,
        &[
            ("DOCKER_HOST", OsStr::new(&engine.host())),
            ("OCIPUSH_CACHE_DIR", cache.as_os_str()),
        ],
    )
}

fn report(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "push failed\n{}\n{}",
        stdout(out),
        stderr(out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn uploaded(report: &serde_json::Value) -> u64 {
    report["images"][0]["blobs"]["uploaded"].as_u64().unwrap()
}

fn assert_exact(reference: &str, expected: &ExpectedImage, report: &serde_json::Value) {
    let auth = SkopeoAuth::insecure();
    let digest = report["images"][0]["digest"].as_str().unwrap();
    assert_eq!(sha256_hex(&skopeo::inspect_raw(reference, &auth)), digest);
    let config = skopeo::inspect_config(reference, &auth);
    assert_eq!(sha256_hex(&config), expected.config_digest);
    assert_eq!(diff_ids_via_skopeo(reference, &auth), expected.diff_ids);
}

#[test]
fn docker25_streams_push_cold_warm_and_skip_held_layers_unread() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let registry = DockerRegistry::start(RegistryOptions::default());
    let target = registry.reference("d25");

    let (archive, expected) = docker25(work.path(), "v1.tar", image(42), "app:1.0");
    let engine = FakeEngine::start(&archive, &expected, "app:1.0", FakeEngineOptions::default());
    let cold = report(&push(&engine, &cache, &["app:1.0", "-r", &target]));
    assert_eq!(uploaded(&cold), 4, "{cold}");
    assert_eq!(engine.exports(), 1);
    assert_exact(&registry.docker_ref("d25/app:1.0"), &expected, &cold);

    let warm = report(&push(&engine, &cache, &["app:1.0", "-r", &target]));
    assert_eq!(uploaded(&warm), 0, "{warm}");
    assert_eq!(engine.exports(), 1, "a warm push exports nothing");
    assert_eq!(warm["images"][0]["digest"], cold["images"][0]["digest"]);

    // One layer changed: one export, and only that layer and the config go up; the held
    // layers' entries (named by diffID) stream past unread.
    let (archive2, expected2) = docker25(work.path(), "v2.tar", image(99), "app:2.0");
    let engine2 = FakeEngine::start(
        &archive2,
        &expected2,
        "app:2.0",
        FakeEngineOptions::default(),
    );
    let changed = report(&push(&engine2, &cache, &["app:2.0", "-r", &target]));
    assert_eq!(uploaded(&changed), 2, "{changed}");
    assert_eq!(engine2.exports(), 1);
    assert_exact(&registry.docker_ref("d25/app:2.0"), &expected2, &changed);
}

/// `ocipush push HOST:PORT/team/app:1` with nothing else: the daemon's image of that name goes to
/// that registry, as `docker push` sends it, not to the embedded one.
#[test]
fn one_argument_naming_a_registry_pushes_there() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let registry = DockerRegistry::start(RegistryOptions::default());
    let name = format!("{}/team/app:1", registry.host_port());
    let (archive, expected) = docker25(work.path(), "named.tar", image(7), &name);
    let engine = FakeEngine::start(&archive, &expected, &name, FakeEngineOptions::default());
    let out = push(&engine, &cache, &[&name]);
    let pushed = report(&out);
    assert_eq!(
        pushed["images"][0]["references"][0],
        name.as_str(),
        "{pushed}"
    );
    assert_exact(&registry.docker_ref("team/app:1"), &expected, &pushed);
    assert!(
        !stderr(&out).contains("local registry"),
        "nothing went to the embedded registry:\n{}",
        stderr(&out)
    );
}

/// A daemon reached through a docker context (as Colima and Docker Desktop set one up): by
/// `currentContext` in docker's config, and by `DOCKER_CONTEXT`, with no `DOCKER_HOST`.
#[test]
fn the_docker_context_names_the_daemon() {
    let work = tempfile::tempdir().unwrap();
    let registry = DockerRegistry::start(RegistryOptions::default());
    let (archive, expected) = docker25(work.path(), "ctx.tar", image(11), "ctx:1");
    let engine = FakeEngine::start(&archive, &expected, "ctx:1", FakeEngineOptions::default());
    let docker = work.path().join("docker");
    // What `docker context create colima --docker host=…` writes.
    let id = sha256_hex(b"colima");
    let meta = docker
        .join("contexts/meta")
        .join(id.trim_start_matches("sha256:"));
    std::fs::create_dir_all(&meta).unwrap();
    let json = serde_json::json!({
        "Name": "colima",
        "Metadata": {},
        "Endpoints": {"docker": {"Host": engine.host(), "SkipTLSVerify": false}},
    });
    std::fs::write(meta.join("meta.json"), json.to_string()).unwrap();
    let target = registry.reference("ctx");
    let push_with = |env: &[(&str, &OsStr)], cache: &str| {
        let cache = work.path().join(cache);
        let mut all: Vec<(&str, &OsStr)> = vec![
            ("DOCKER_HOST", OsStr::new("")),
            ("DOCKER_CONFIG", docker.as_os_str()),
            ("OCIPUSH_CACHE_DIR", cache.as_os_str()),
        ];
        all.extend_from_slice(env);
        ocipush_env(
            &["push", "--json", "--plain-http", "ctx:1", "-r", &target],
            None,
            &all,
        )
    };
    std::fs::write(docker.join("config.json"), r#"{"currentContext":"colima"}"#).unwrap();
    let pushed = report(&push_with(&[], "cache-config"));
    assert_exact(&registry.docker_ref("ctx/ctx:1"), &expected, &pushed);

    std::fs::write(docker.join("config.json"), "{}").unwrap();
    let pushed = report(&push_with(
        &[("DOCKER_CONTEXT", OsStr::new("colima"))],
        "cache-env",
    ));
    assert_exact(&registry.docker_ref("ctx/ctx:1"), &expected, &pushed);
    assert_eq!(engine.exports(), 2);
}

/// An unchanged daemon image pushed again: the plan knows its manifest digest (the layers' and
/// the config's sizes are in the cache), so one `HEAD manifests/TAG` settles it — no blob is
/// asked about, nothing is written, nothing exported.
#[test]
fn an_unchanged_daemon_image_costs_one_manifest_head() {
    use ocipush_testkit::fault_proxy::{FaultProxy, RequestKind};
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let registry = DockerRegistry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(([127, 0, 0, 1], registry.port()).into());
    let (archive, expected) = docker25(work.path(), "warm.tar", image(21), "warm:1");
    let engine = FakeEngine::start(&archive, &expected, "warm:1", FakeEngineOptions::default());
    let target = format!("{}/warm", proxy.host_port());
    let cold = report(&push(&engine, &cache, &["warm:1", "-r", &target]));
    assert_exact(&registry.docker_ref("warm/warm:1"), &expected, &cold);
    let count = |kind| proxy.requests(kind);
    let (heads, gets, puts) = (
        count(RequestKind::BlobHead),
        count(RequestKind::ManifestGet),
        count(RequestKind::ManifestPut),
    );
    let warm = report(&push(&engine, &cache, &["warm:1", "-r", &target]));
    assert_eq!(warm["images"][0]["digest"], cold["images"][0]["digest"]);
    assert_eq!(
        count(RequestKind::BlobHead) - heads,
        0,
        "no blob asked about"
    );
    assert_eq!(
        count(RequestKind::ManifestGet) - gets,
        1,
        "one manifest HEAD"
    );
    assert_eq!(count(RequestKind::ManifestPut) - puts, 0, "nothing written");
    assert_eq!(engine.exports(), 1, "nothing exported");
}

#[test]
fn a_broken_export_is_retried_with_a_new_one_or_fails_cleanly() {
    let work = tempfile::tempdir().unwrap();
    let registry = DockerRegistry::start(RegistryOptions::default());
    let target = registry.reference("cut");
    let (archive, expected) = docker25(work.path(), "v1.tar", image(52), "cut:1.0");
    // The first export dies inside the second layer.
    let options = FakeEngineOptions {
        cut_exports: 1,
        cut_after: 4 * 1024 * 1024,
        ..FakeEngineOptions::default()
    };

    let failing = FakeEngine::start(&archive, &expected, "cut:1.0", options.clone());
    let out = push(
        &failing,
        &work.path().join("c1"),
        &["--retries", "0", "cut:1.0", "-r", &target],
    );
    assert_ne!(out.status.code(), Some(0));
    let failed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = failed["images"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("export stream"), "{failed}");
    assert!(!error.contains('\n'), "one line: {error}");
    let auth = SkopeoAuth::insecure();
    assert!(
        skopeo::try_inspect_raw(&registry.docker_ref("cut/cut:1.0"), &auth).is_err(),
        "no tag after a failed push"
    );

    let engine = FakeEngine::start(&archive, &expected, "cut:1.0", options);
    let pushed = report(&push(
        &engine,
        &work.path().join("c2"),
        &["cut:1.0", "-r", &target],
    ));
    assert_eq!(engine.exports(), 2, "a second export");
    assert_exact(&registry.docker_ref("cut/cut:1.0"), &expected, &pushed);
}

#[test]
fn an_engine_too_old_is_refused_with_a_way_forward() {
    let work = tempfile::tempdir().unwrap();
    let (archive, expected) = docker25(work.path(), "v1.tar", image(62), "old:1.0");
    let engine = FakeEngine::start(
        &archive,
        &expected,
        "old:1.0",
        FakeEngineOptions {
            api_version: "1.12".into(),
            ..FakeEngineOptions::default()
        },
    );
    let out = ocipush_env(
        &["push", "old:1.0", "127.0.0.1:9/x/old:1"],
        None,
        &[("DOCKER_HOST", OsStr::new(&engine.host()))],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Engine API 1.12") && err.contains("1.24"),
        "{err}"
    );
    assert!(
        err.contains("hint:") && err.contains("docker save"),
        "{err}"
    );
    assert_eq!(engine.exports(), 0);
}

#[test]
fn ctrl_c_while_the_daemon_prepares_its_export_stops_at_once() {
    let work = tempfile::tempdir().unwrap();
    let registry = DockerRegistry::start(RegistryOptions::default());
    let (archive, expected) = docker25(work.path(), "v1.tar", image(72), "slow:1.0");
    let engine = FakeEngine::start(
        &archive,
        &expected,
        "slow:1.0",
        FakeEngineOptions {
            export_delay_ms: 30_000,
            ..FakeEngineOptions::default()
        },
    );
    let target = registry.reference("slow");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ocipush"))
        .args(["push", "--plain-http", "slow:1.0", "-r", &target])
        .env("DOCKER_HOST", engine.host())
        .env("OCIPUSH_CACHE_DIR", work.path().join("cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the export was asked for, then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while engine.exports() == 0 {
        assert!(std::time::Instant::now() < deadline, "no export started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let sent = std::time::Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        sent.elapsed() < std::time::Duration::from_secs(5),
        "took {:?} to stop",
        sent.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("interrupted") && !err.contains("did not deliver"),
        "{err}"
    );
    let auth = SkopeoAuth::insecure();
    assert!(skopeo::try_inspect_raw(&registry.docker_ref("slow/slow:1.0"), &auth).is_err());
}
