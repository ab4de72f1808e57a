//! Bad input gets a clear one-line error, the documented exit code, and leaves no tag behind.

use crate::common::*;
use ocipush_testkit::fixtures::{
    corrupt_oci_blob, flip_byte, tar_entry_range, truncate_file, write_docker_archive,
    write_oci_archive, write_oci_layout, DockerArchiveOptions, ImageSpec, LayerCompression,
    LayerSpec,
};
use ocipush_testkit::registry::{free_port, DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

fn assert_not_tagged(registry: &DockerRegistry, reference: &str) {
    let err = skopeo::try_inspect_raw(&registry.docker_ref(reference), &SkopeoAuth::insecure());
    assert!(
        err.is_err(),
        "{reference} must not exist after a failed push"
    );
}

#[test]
fn corrupt_layer_in_oci_layout_fails_before_tagging() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let image = ImageSpec::new(vec![LayerSpec::random(512 * 1024, 1)]);
    let expected = write_oci_layout(dir.path(), &[(image, Some("bad"))], LayerCompression::Gzip);
    corrupt_oci_blob(dir.path(), &expected[0].layer_digests[0]);
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            &dir.path().display().to_string(),
            &registry.reference("bad/layout:1"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("digest mismatch"))
        .unwrap_or_else(|| panic!("{err}"));
    // The blob is named once, not once by the push and again by the check.
    let short = &expected[0].layer_digests[0].trim_start_matches("sha256:")[..12];
    assert_eq!(
        line.matches(&format!("layer 1/1 {short}")).count(),
        1,
        "{line}"
    );
    assert_not_tagged(&registry, "bad/layout:1");
}

#[test]
fn a_destination_naming_another_digest_fails_before_any_blob_moves() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let image = ImageSpec::new(vec![LayerSpec::text(64 * 1024, 3)]);
    let expected = write_oci_layout(dir.path(), &[(image, Some("1"))], LayerCompression::Gzip);
    let wrong = format!("sha256:{}", "0".repeat(64));
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            &dir.path().display().to_string(),
            &registry.reference(&format!("pinned/app@{wrong}")),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let err = stderr(&out);
    let manifest = expected[0].manifest_digest.as_deref().unwrap();
    assert!(
        err.contains(&format!(
            "pinned/app@{wrong} is not this image: its manifest is {manifest}"
        )),
        "{err}"
    );
    assert!(err.contains("hint: a destination's @DIGEST"), "{err}");
    // The layout's manifest is known up front: not one blob went up.
    let repositories = registry
        .storage_dir()
        .join("docker/registry/v2/repositories");
    assert!(!repositories.exists(), "a blob was uploaded: {err}");
}

#[test]
fn corrupt_layer_in_docker_archive_fails_on_diff_id() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.tar");
    let expected = write_docker_archive(
        &path,
        &[(
            ImageSpec::new(vec![LayerSpec::text(400 * 1024, 2)]),
            vec!["app:1"],
        )],
        DockerArchiveOptions::default(),
    );
    let entries = ocipush_testkit::fixtures::read_archive_entries(&path);
    let layer_name = entries
        .keys()
        .find(|k| k.ends_with("layer.tar"))
        .expect("a layer entry")
        .clone();
    let range = tar_entry_range(&path, &layer_name).unwrap();
    flip_byte(&path, range.start + 1000);
    assert!(!expected[0].diff_ids.is_empty());
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            &path.display().to_string(),
            &registry.reference("bad/archive:1"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("digest mismatch"), "{}", stderr(&out));
    assert_not_tagged(&registry, "bad/archive:1");
}

#[test]
fn truncated_and_non_image_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.tar");
    write_docker_archive(
        &path,
        &[(
            ImageSpec::new(vec![LayerSpec::random(600 * 1024, 3)]),
            vec!["app:1"],
        )],
        DockerArchiveOptions::default(),
    );
    let len = std::fs::metadata(&path).unwrap().len();
    truncate_file(&path, len / 2);
    let dest = format!("127.0.0.1:{}/x/y:1", free_port());
    let out = ocipush(
        &["push", "--plain-http", &path.display().to_string(), &dest],
        None,
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));

    let text = dir.path().join("notes.tar");
    std::fs::write(&text, b"just some text, not a tarball at all").unwrap();
    let out = ocipush(&["push", &text.display().to_string(), &dest], None);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));

    let out = ocipush(&["push", "/no/such/file.tar", &dest], None);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn invalid_references_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_oci_layout(
        dir.path(),
        &[(ImageSpec::sample(1), Some("1"))],
        LayerCompression::Gzip,
    );
    let source = dir.path().display().to_string();
    for bad in [
        "localhost:5000/Upper/case",
        "localhost:5000/app:bad tag",
        "localhost:99999/app",
    ] {
        let out = ocipush(&["push", &source, bad], None);
        assert_eq!(out.status.code(), Some(64), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("invalid reference"),
            "{}",
            stderr(&out)
        );
    }
    let out = ocipush(
        &["push", "-u", "someone", &source, "localhost:5000/a:b"],
        None,
    );
    assert_eq!(out.status.code(), Some(64));
}

/// A build directory of several images and a registry that is down: one error naming the
/// images (not one per image), its hint once, exit 3.
#[test]
fn a_registry_that_is_down_is_said_once_for_a_build_directory() {
    let dir = tempfile::tempdir().unwrap();
    for (n, name) in ["one", "two", "three"].into_iter().enumerate() {
        write_oci_archive(
            &dir.path().join(format!("{name}.oci.tar")),
            &[(ImageSpec::sample(10 + n as u64), Some(name))],
            LayerCompression::Gzip,
        );
    }
    let target = format!("127.0.0.1:{}/team", free_port());
    let build = dir.path().display().to_string();
    let out = ocipush(&["push", "--retries", "0", "-r", &target, &build], None);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert_eq!(err.matches("hint:").count(), 1, "{err}");
    assert!(
        err.contains("cannot reach registry") && err.contains("3 images"),
        "{err}"
    );
}

#[test]
fn unreachable_registry_is_a_network_error() {
    let dir = tempfile::tempdir().unwrap();
    write_oci_layout(
        dir.path(),
        &[(ImageSpec::sample(1), Some("1"))],
        LayerCompression::Gzip,
    );
    let port = free_port();
    let dest = format!("127.0.0.1:{port}/x/y:1");
    let out = ocipush(
        &[
            "push",
            "--retries",
            "0",
            &dir.path().display().to_string(),
            &dest,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach registry"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
    // On loopback plain HTTP was tried too: the hint must not suggest it.
    assert!(
        !stderr(&out).contains("add --plain-http"),
        "{}",
        stderr(&out)
    );

    // With retries: each is said as it happens, and counted for the image, as is the time.
    let out = ocipush_env(
        &[
            "push",
            "--json",
            "--plain-http",
            "--retries",
            "2",
            &dir.path().display().to_string(),
            &dest,
        ],
        None,
        &[("OCIPUSH_RETRY_BASE_MS", std::ffi::OsStr::new("100"))],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("GET /v2/ to 127.0.0.1:{port}: connection failed"))
            && err.contains("retry 1 of 2")
            && err.contains("retry 2 of 2"),
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["images"][0]["retries"], 2, "{doc}");
    assert_eq!(doc["summary"]["retries"], 2, "{doc}");
    let took = doc["images"][0]["duration_ms"].as_u64().unwrap();
    assert!(took >= 100, "the retries' waits are part of it: {doc}");
    // Already plain HTTP: the hint must not suggest --plain-http again.
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "--retries",
            "0",
            &dir.path().display().to_string(),
            &dest,
        ],
        None,
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!err.contains("add --plain-http"), "{err}");
}

#[test]
fn daemon_names_without_a_daemon_say_which_sockets_were_tried() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    let host = format!("unix://{}", socket.display());
    let out = ocipush_env(
        &["push", "myapp:dev", "localhost:5000/x/y:1"],
        None,
        &[("DOCKER_HOST", std::ffi::OsStr::new(&host))],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no Docker or Podman daemon is reachable"),
        "{err}"
    );
    assert!(err.contains(&socket.display().to_string()), "{err}");
    assert!(
        err.contains("hint:") && err.contains("DOCKER_HOST"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
}

#[test]
fn daemon_hosts_ocipush_cannot_speak_are_refused_by_name() {
    /// DOCKER_HOST, other variables, exit code, what the error says.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], i32, &'a str);
    let closed = ocipush_testkit::registry::free_port();
    let cases: [Case; 4] = [
        ("ssh://build-box", &[], 64, "`ssh://` is not spoken"),
        (
            "tcp://127.0.0.1:2376",
            &[("DOCKER_TLS_VERIFY", "1")],
            64,
            "TLS",
        ),
        (
            "tcp://127.0.0.1:99999",
            &[],
            64,
            "expected tcp://HOST[:PORT]",
        ),
        // Nothing listens there: tried, refused, reported like a missing socket.
        ("", &[], 4, "no Docker or Podman daemon is reachable"),
    ];
    for (host, extra, code, says) in cases {
        let host = if host.is_empty() {
            format!("tcp://127.0.0.1:{closed}")
        } else {
            host.to_string()
        };
        let mut env = vec![("DOCKER_HOST", std::ffi::OsStr::new(&host))];
        env.extend(extra.iter().map(|(k, v)| (*k, std::ffi::OsStr::new(*v))));
        let out = ocipush_env(&["push", "myapp:dev", "localhost:5000/x/y:1"], None, &env);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{host}: {err}");
        assert!(err.contains(says), "{host}: {err}");
        assert!(err.contains(&host), "{host}: {err}");
        assert!(err.contains("hint:"), "{host}: {err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{host}: {err}"
        );
    }
}

#[test]
fn json_gets_one_document_even_when_the_push_stops_early() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.tar");
    std::fs::write(&bad, b"not an archive at all").unwrap();
    for (args, code) in [
        (
            vec![
                "push",
                "--json",
                bad.to_str().unwrap(),
                "localhost:5000/x/y:1",
            ],
            4,
        ),
        (
            vec![
                "push",
                "--json",
                bad.to_str().unwrap(),
                "localhost:5000/X/y:1",
            ],
            64,
        ),
        // A flag that does not parse: clap's error, in the same document.
        (
            vec![
                "push",
                "--json",
                "--compression-level",
                "-1",
                bad.to_str().unwrap(),
                "localhost:5000/x/y:1",
            ],
            64,
        ),
    ] {
        let out = ocipush(&args, None);
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is no JSON document ({e}): {}", stdout(&out)));
        assert_eq!(doc["images"], serde_json::json!([]), "{doc}");
        assert_eq!(doc["exit_code"], code, "{doc}");
        assert!(
            doc["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{doc}"
        );
        // A person still sees the error on stderr.
        assert!(stderr(&out).contains("error:"), "{}", stderr(&out));
    }
}

#[test]
fn no_command_prints_the_help_as_a_usage_error() {
    let out = ocipush(&[], None);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Usage: ocipush"), "{err}");
    assert!(err.contains("push"), "the commands are listed:\n{err}");
    assert!(!err.contains("error: \n"), "an empty error:\n{err}");
}

#[test]
fn values_checked_after_parsing_name_their_flag() {
    for (flag, value, says) in [
        ("--timeout", "abc", "invalid --timeout"),
        (
            "--chunk-size",
            "1k",
            "--chunk-size `1k` is below the smallest chunk",
        ),
        ("--chunk-size", "zz", "invalid --chunk-size `zz`"),
    ] {
        let out = ocipush(
            &["push", flag, value, "x.tar", "localhost:5000/a/b:1"],
            None,
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(64), "{err}");
        assert!(err.starts_with(&format!("error: {says}")), "{err}");
        assert!(err.contains("\nhint: "), "{err}");
    }
}

/// An upper-case repository name: refused (exit 64) with the lower-case form to use.
#[test]
fn upper_case_repository_names_get_the_lower_case_form() {
    let out = ocipush(
        &["push", "examples/hello-oci", "localhost:5000/Team/App:Dev"],
        None,
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did you mean `localhost:5000/team/app:Dev`?"),
        "{}",
        stderr(&out)
    );
    let out = ocipush(
        &["push", "-r", "localhost:5000/Team", "examples/hello-oci"],
        None,
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("-r localhost:5000/team"),
        "{}",
        stderr(&out)
    );
}

/// A directory whose tarballs hold no image: the error names them, so the user sees what was
/// looked at and passed over.
#[test]
fn a_directory_without_images_names_the_tarballs_it_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let mut builder = tar::Builder::new(std::fs::File::create(dir.path().join("src.tar")).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "main.rs", &b"fn(){"[..])
        .unwrap();
    builder.finish().unwrap();
    let out = ocipush(&["list", dir.path().to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no image under it"), "{err}");
    assert!(
        err.contains("1 tarball(s) there hold no image: src.tar"),
        "{err}"
    );
}
