//! What `push` shows on stderr in a pipe (as in CI): timestamped lines naming each blob's
//! state and outcome (compressed and uploaded, mounted, exists), overall lines whose totals
//! add up, then the summary; `-q` shows nothing; `-v` adds logs. The bars need a terminal and
//! were checked by hand (see progress/bars.rs).

use std::path::Path;

use crate::common::*;
use ocipush_testkit::fixtures::{write_docker_archive, DockerArchiveOptions, ImageSpec, LayerSpec};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};

/// Two images sharing a base layer: pushed with -r, each goes to its own repository, so the
/// base is compressed and uploaded once and mounted into the other repository.
fn archive(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("two.tar");
    let base = LayerSpec::text(600 * 1024, 31);
    write_docker_archive(
        &path,
        &[
            (
                ImageSpec::new(vec![base.clone(), LayerSpec::files(&[("a", b"a")])]),
                vec!["one:1"],
            ),
            (
                ImageSpec::new(vec![base, LayerSpec::files(&[("b", b"b")])]),
                vec!["two:1"],
            ),
        ],
        DockerArchiveOptions::default(),
    );
    path
}

fn push(args: &[&str], cache: &Path) -> (String, String) {
    let mut all = vec!["push", "--plain-http"];
    all.extend_from_slice(args);
    let out = ocipush_env(&all, None, &[("OCIPUSH_CACHE_DIR", cache.as_os_str())]);
    assert!(out.status.success(), "{}", stderr(&out));
    (stdout(&out), stderr(&out))
}

/// `[   1.2s] text` -> `text`.
fn timestamped(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let (time, text) = rest.split_once("] ")?;
    let seconds = time.trim().strip_suffix('s')?;
    seconds.parse::<f64>().ok()?;
    Some(text)
}

#[test]
fn a_pipe_gets_timestamped_lines_with_states_and_a_closing_overall_line() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let source = archive(dir.path()).display().to_string();
    let target = format!("{}/progress", registry.host_port());

    let (out, err) = push(&["-r", &target, &source], &cache);
    assert_eq!(out.lines().count(), 2, "{out}");
    let lines: Vec<&str> = err.lines().collect();
    let (summary, progress) = lines.split_last().expect("some output");
    assert!(summary.starts_with("2 of 2 image(s) pushed"), "{summary}");
    let texts: Vec<&str> = progress
        .iter()
        .map(|l| timestamped(l).unwrap_or_else(|| panic!("not a timestamped line: {l:?}\n{err}")))
        .collect();
    // Base + own layer + config for each repository: counted as the summary counts them.
    assert!(
        texts[0].starts_with("2 image(s), 6 blob(s), ")
            && texts[0].ends_with(" at most (what the registry already has is skipped)"),
        "{err}"
    );
    let count = |needle: &str| texts.iter().filter(|t| t.contains(needle)).count();
    assert_eq!(
        count(": compressing "),
        3,
        "base once, each own layer once:\n{err}"
    );
    assert_eq!(count(": compressed and uploaded "), 3, "{err}");
    assert_eq!(
        count(": mounted"),
        1,
        "the base, into the second repository:\n{err}"
    );
    assert_eq!(count("pushed "), 2, "{err}");
    assert_eq!(count(": uploaded "), 2, "each image's config:\n{err}");
    let last = texts.last().unwrap();
    assert!(last.starts_with("overall: "), "{err}");
    assert!(
        last.starts_with("overall: 100%,") && last.contains("6/6 blobs, 0 in flight"),
        "{last}"
    );

    // Every layer is named by the digest the registry knows it by (skopeo's, not ours).
    let cold_names = layer_names(&err);
    let mut registry_layers = Vec::new();
    for image in ["one:1", "two:1"] {
        let reference = format!("docker://{}/progress/{image}", registry.host_port());
        let inspected = ocipush_testkit::skopeo::inspect(&reference, &registry.skopeo_auth());
        for layer in inspected["Layers"].as_array().unwrap() {
            registry_layers.push(layer.as_str().unwrap()["sha256:".len()..][..12].to_string());
        }
    }
    for name in &cold_names {
        let hex = name.rsplit(' ').next().unwrap();
        assert!(
            registry_layers.iter().any(|l| l == hex),
            "{name} is no registry layer: {registry_layers:?}\n{err}"
        );
    }

    // Again, with the digest cache: nothing is compressed or sent, every layer exists, and
    // every layer has the name it had on the cold push.
    let (_, err) = push(&["-r", &target, &source], &cache);
    assert_eq!(layer_names(&err), cold_names, "{err}");
    assert!(err.contains(": exists"), "{err}");
    assert!(!err.contains("compress"), "{err}");
    assert!(
        err.contains("overall: 100%, 0 B of 0 B,"),
        "nothing left to send once all exist:\n{err}"
    );
}

/// The names (`layer 1/2 1d895bc1efba`) of the layers whose outcome a push's lines report.
fn layer_names(err: &str) -> std::collections::BTreeSet<String> {
    err.lines()
        .filter_map(timestamped)
        .filter(|t| t.starts_with("layer "))
        .filter(|t| {
            [
                ": compressed and uploaded",
                ": uploaded",
                ": mounted",
                ": exists",
            ]
            .iter()
            .any(|outcome| t.contains(outcome))
        })
        .map(|t| t.split(": ").next().unwrap().to_string())
        .collect()
}

#[test]
fn quiet_silences_and_verbose_adds_logs() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let source = archive(dir.path()).display().to_string();
    let target = format!("{}/quiet", registry.host_port());

    let (out, err) = push(&["-q", "-r", &target, &source], &cache);
    assert_eq!(out.lines().count(), 2, "references still go to stdout");
    assert_eq!(err, "", "-q leaves stderr empty");

    let (_, err) = push(&["-v", "-r", &target, &source], &cache);
    let logs: Vec<&str> = err
        .lines()
        .filter_map(|l| timestamped(l))
        .filter(|text| {
            text.trim_start().starts_with("DEBUG") || text.trim_start().starts_with("INFO")
        })
        .collect();
    assert!(
        !logs.is_empty(),
        "-v shows tracing logs, stamped like progress lines:\n{err}"
    );
    assert!(err.contains(": exists"), "and the progress lines:\n{err}");
    // The registry requests ocipush makes, one line each.
    let heads = logs
        .iter()
        // The warm push asks what each tag points at, and nothing more.
        .filter(|l| l.contains("HEAD ") && l.contains("/manifests/1") && l.contains(" -> 200 in "))
        .count();
    assert!(heads > 0, "-v shows the requests:\n{err}");
}
