//! A corpus of bad inputs (issue 4, point 8): truncated and corrupt tarballs, wrong digests and
//! missing blobs in OCI layouts, malformed JSON, path tricks in archive entry names, invalid
//! references. Each must fail with one `error:` line (a `hint:` may follow), the documented
//! exit code — 4 "image not found or invalid" for bad sources, 64 for bad references (the
//! README's table; the issue's "exit 1" means "the more specific code", see DESIGN.md) — no
//! panic, and nothing tagged in the registry. tests/push_errors.rs already covers a flipped
//! byte in a layer (layout and docker archive), a truncated plain docker archive, a file that
//! is no tarball, a missing file and three invalid references; they are not repeated here.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;
use ocipush_testkit::fixtures::{
    flip_byte, oci_blob_path, read_archive_entries, replace_oci_blob, truncate_file,
    write_docker_archive, write_oci_archive, write_oci_layout, write_raw_tar, ArchiveEntry,
    Crafted, DockerArchiveFormat, DockerArchiveOptions, ImageSpec, LayerCompression, LayerSpec,
};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use serde_json::{json, Value};

/// One bad source and what its error must mention (lower case).
struct Case {
    name: &'static str,
    source: String,
    mentions: String,
}

fn image(seed: u64) -> ImageSpec {
    ImageSpec::new(vec![
        LayerSpec::random(40 * 1024, seed),
        LayerSpec::text(20 * 1024, seed + 1),
    ])
}

/// Pushes each case to its own tag; checks exit 4, one error line, no panic, and at the end
/// that the registry holds no tag at all.
fn run_cases(cases: Vec<Case>) {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let mut broken = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let dest = registry.reference(&format!("bad/case{n}:t"));
        let out = ocipush(&["push", "--plain-http", &case.source, &dest], None);
        if let Err(why) = check_failure(&out, 4, &case.mentions) {
            broken.push(format!("{}: {why}\nstderr:\n{}", case.name, stderr(&out)));
        }
    }
    let tags = tagged(&registry.storage_dir());
    assert!(tags.is_empty(), "failed pushes left tags: {tags:?}");
    assert!(broken.is_empty(), "{}", broken.join("\n\n"));
}

fn check_failure(out: &std::process::Output, code: i32, mentions: &str) -> Result<(), String> {
    let err = stderr(out);
    if out.status.code() != Some(code) {
        return Err(format!("exit {:?}, expected {code}", out.status.code()));
    }
    if err.contains("panicked") {
        return Err("panicked".into());
    }
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    let [line] = errors[..] else {
        return Err(format!("{} error lines", errors.len()));
    };
    // Every other line is a hint, a cause, progress or the summary: no dumps, no backtraces.
    if let Some(odd) = err.lines().find(|l| {
        !(l.starts_with("error: ")
            || l.starts_with("hint: ")
            || l.starts_with("  caused by: ")
            || l.starts_with('[')
            || l.contains("image(s) pushed"))
    }) {
        return Err(format!("unexpected stderr line `{odd}`"));
    }
    let text = err.to_lowercase();
    if !text.contains(mentions) {
        return Err(format!("the error does not mention `{mentions}`: {line}"));
    }
    Ok(())
}

/// Every `repository:tag` the registry's storage holds.
fn tagged(storage: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let root = storage.join("docker/registry/v2/repositories");
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == "tags")
                && path.parent().is_some_and(|p| p.ends_with("_manifests"))
            {
                for tag in fs::read_dir(&path).into_iter().flatten().flatten() {
                    found.push(format!(
                        "{}:{}",
                        path.display(),
                        tag.file_name().to_string_lossy()
                    ));
                }
            } else if path.is_dir() {
                stack.push(path);
            }
        }
    }
    found
}

/// The entries of a valid legacy docker archive, to rewrite with one thing changed.
fn docker_entries(dir: &Path, seed: u64) -> BTreeMap<String, ArchiveEntry> {
    let path = dir.join(format!("valid-{seed}.tar"));
    write_docker_archive(
        &path,
        &[(image(seed), vec!["app:1"])],
        DockerArchiveOptions {
            symlink_layers: false,
            ..DockerArchiveOptions::default()
        },
    );
    read_archive_entries(&path)
}

/// Writes `entries` (changed by `change`, which may edit the parsed manifest.json or add its
/// own raw one) as a new archive; returns its path.
fn rewritten(
    dir: &Path,
    name: &str,
    mut entries: BTreeMap<String, ArchiveEntry>,
    change: impl FnOnce(&mut Vec<(String, Crafted)>, &mut Value),
) -> String {
    let mut manifest: Value = serde_json::from_slice(match &entries["manifest.json"] {
        ArchiveEntry::File(b) => b,
        _ => panic!("manifest.json is a file"),
    })
    .unwrap();
    entries.remove("manifest.json");
    let mut crafted: Vec<(String, Crafted)> = entries
        .into_iter()
        .filter_map(|(k, v)| match v {
            ArchiveEntry::File(b) => Some((k, Crafted::File(b))),
            ArchiveEntry::Symlink(t) => Some((k, Crafted::Symlink(t))),
            ArchiveEntry::Dir => None,
        })
        .collect();
    change(&mut crafted, &mut manifest);
    // A change may bring its own raw manifest.json.
    if !crafted.iter().any(|(name, _)| name == "manifest.json") {
        crafted.push((
            "manifest.json".into(),
            Crafted::File(serde_json::to_vec(&manifest).unwrap()),
        ));
    }
    let path = dir.join(name);
    write_raw_tar(&path, &crafted);
    path.display().to_string()
}

fn layer_names(manifest: &Value) -> Vec<String> {
    manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn corrupt_and_truncated_tarballs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cases = Vec::new();

    let oci_archive = d.join("image.oci.tar");
    write_oci_archive(
        &oci_archive,
        &[(image(1), Some("1"))],
        LayerCompression::Gzip,
    );
    truncate_file(&oci_archive, fs::metadata(&oci_archive).unwrap().len() / 2);
    cases.push(Case {
        name: "truncated oci-archive",
        source: format!("oci-archive:{}", oci_archive.display()),
        mentions: "truncated".into(),
    });

    let gzipped = |name: &str, seed| {
        let path = d.join(name);
        write_docker_archive(
            &path,
            &[(image(seed), vec!["app:1"])],
            DockerArchiveOptions {
                gzip_whole_file: true,
                ..DockerArchiveOptions::default()
            },
        );
        path
    };
    let cut = gzipped("cut.tar.gz", 2);
    truncate_file(&cut, fs::metadata(&cut).unwrap().len() * 2 / 3);
    cases.push(Case {
        name: "truncated docker-archive.tar.gz",
        source: cut.display().to_string(),
        mentions: "cut.tar.gz".into(),
    });
    let flipped = gzipped("flipped.tar.gz", 3);
    flip_byte(&flipped, fs::metadata(&flipped).unwrap().len() / 2);
    cases.push(Case {
        name: "corrupt gzip stream in docker-archive.tar.gz",
        source: flipped.display().to_string(),
        mentions: "flipped.tar.gz".into(),
    });
    let tail = gzipped("tail.tar.gz", 4);
    // The gzip trailer (CRC-32 and length) is the last 8 bytes.
    flip_byte(&tail, fs::metadata(&tail).unwrap().len() - 6);
    cases.push(Case {
        name: "bad gzip CRC in docker-archive.tar.gz",
        source: tail.display().to_string(),
        mentions: "tail.tar.gz".into(),
    });

    let garbage = d.join("garbage.tar");
    let mut bytes = vec![0u8; 512];
    bytes[..9].copy_from_slice(b"manifest.");
    bytes.extend(std::iter::repeat_n(0x5a, 4096));
    fs::write(&garbage, bytes).unwrap();
    cases.push(Case {
        name: "tar header with a bad checksum",
        source: format!("docker-archive:{}", garbage.display()),
        mentions: "garbage.tar".into(),
    });
    // A text file given by mistake: one line that names it, never its contents (run_cases
    // refuses any stderr line but error, hint, cause, progress and summary).
    let passwd = d.join("passwd");
    fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
            .repeat(20),
    )
    .unwrap();
    cases.push(Case {
        name: "a text file that is no archive",
        source: format!("docker-archive:{}", passwd.display()),
        mentions: "not a tar archive".into(),
    });
    run_cases(cases);
}

#[test]
fn malformed_json_in_docker_archives() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cases = Vec::new();
    let path = rewritten(
        d,
        "bad-manifest.tar",
        docker_entries(d, 10),
        |entries, _| {
            entries.push((
                "manifest.json".into(),
                Crafted::File(b"[{\"Config\": ".to_vec()),
            ));
        },
    );
    cases.push(Case {
        name: "manifest.json cut off",
        source: path,
        mentions: "manifest.json".into(),
    });
    cases.push(Case {
        name: "manifest.json an object",
        source: rewritten(d, "object.tar", docker_entries(d, 11), |_, m| {
            *m = json!({"Config": "x.json", "Layers": []});
        }),
        mentions: "manifest.json".into(),
    });
    cases.push(Case {
        name: "manifest.json without Config",
        source: rewritten(d, "no-config.tar", docker_entries(d, 12), |_, m| {
            m[0].as_object_mut().unwrap().remove("Config");
        }),
        mentions: "manifest.json".into(),
    });
    cases.push(Case {
        name: "config not JSON",
        source: rewritten(d, "bad-config.tar", docker_entries(d, 13), |entries, m| {
            let config = m[0]["Config"].as_str().unwrap().to_string();
            for (name, entry) in entries.iter_mut() {
                if *name == config {
                    *entry = Crafted::File(b"{\"rootfs\": {\"diff_ids\": [".to_vec());
                }
            }
        }),
        mentions: "config".into(),
    });
    cases.push(Case {
        name: "config with fewer diff_ids than layers",
        source: rewritten(d, "few-diffids.tar", docker_entries(d, 14), |_, m| {
            let first = m[0]["Layers"][0].clone();
            m[0]["Layers"].as_array_mut().unwrap().push(first);
        }),
        mentions: "diff".into(),
    });
    cases.push(Case {
        name: "layer listed but missing",
        source: rewritten(
            d,
            "missing-layer.tar",
            docker_entries(d, 15),
            |entries, m| {
                let layer = layer_names(m)[1].clone();
                entries.retain(|(name, _)| *name != layer);
            },
        ),
        mentions: "layer.tar".into(),
    });
    cases.push(Case {
        name: "config listed but missing",
        source: rewritten(d, "missing-config.tar", docker_entries(d, 16), |_, m| {
            m[0]["Config"] =
                json!("0000000000000000000000000000000000000000000000000000000000000000.json");
        }),
        mentions: "0000000000".into(),
    });
    run_cases(cases);
}

#[test]
fn path_tricks_in_archive_entry_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A host file the tricks aim at: it must never be read as part of an image.
    let secret = d.join("outside-secret.txt");
    fs::write(&secret, b"not part of any image").unwrap();
    let secret_abs = secret.display().to_string();
    let mut cases = Vec::new();
    cases.push(Case {
        name: "layer named ../../ outside the archive",
        source: rewritten(d, "climb-layer.tar", docker_entries(d, 20), |_, m| {
            m[0]["Layers"][0] = json!("../../../../../../etc/passwd");
        }),
        mentions: "no entry `../../../../../../etc/passwd`".into(),
    });
    cases.push(Case {
        name: "config at an absolute host path",
        source: rewritten(d, "abs-config.tar", docker_entries(d, 21), |_, m| {
            m[0]["Config"] = json!(secret_abs);
        }),
        mentions: "outside-secret.txt".into(),
    });
    cases.push(Case {
        name: "entry named ../evil in the archive",
        source: rewritten(d, "climb-entry.tar", docker_entries(d, 22), |entries, _| {
            entries.push(("../evil".into(), Crafted::File(b"x".to_vec())));
        }),
        mentions: "outside the archive".into(),
    });
    cases.push(Case {
        name: "layer symlink climbing out",
        source: rewritten(d, "climb-link.tar", docker_entries(d, 23), |entries, m| {
            let layer = layer_names(m)[0].clone();
            entries.retain(|(name, _)| *name != layer);
            entries.push((
                layer,
                Crafted::Symlink("../../../../outside-secret.txt".into()),
            ));
        }),
        mentions: "outside the archive".into(),
    });
    cases.push(Case {
        name: "layer symlink to an absolute host path",
        source: rewritten(d, "abs-link.tar", docker_entries(d, 24), |entries, m| {
            let layer = layer_names(m)[0].clone();
            entries.retain(|(name, _)| *name != layer);
            entries.push((layer, Crafted::Symlink(secret_abs.clone())));
        }),
        mentions: "layer.tar".into(),
    });
    cases.push(Case {
        name: "symlink loop",
        source: rewritten(d, "loop.tar", docker_entries(d, 25), |entries, m| {
            let layer = layer_names(m)[0].clone();
            entries.retain(|(name, _)| *name != layer);
            entries.push((layer.clone(), Crafted::Symlink("loop-b".into())));
            let parent = layer.rsplit_once('/').map_or("", |(p, _)| p).to_string();
            entries.push((
                format!("{parent}/loop-b"),
                Crafted::Symlink("layer.tar".into()),
            ));
        }),
        mentions: "layer.tar".into(),
    });
    run_cases(cases);
}

/// A valid OCI layout to break; returns its dir and what it holds.
fn layout(d: &Path, name: &str, seed: u64) -> (PathBuf, ocipush_testkit::ExpectedImage) {
    let dir = d.join(name);
    let expected =
        write_oci_layout(&dir, &[(image(seed), Some("1"))], LayerCompression::Gzip).remove(0);
    (dir, expected)
}

fn set_index(dir: &Path, index: &Value) {
    fs::write(dir.join("index.json"), serde_json::to_vec(index).unwrap()).unwrap();
}

fn index_of(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap()
}

/// Replaces the manifest blob by `bytes`, pointing index.json at its true digest and size.
fn swap_manifest(dir: &Path, bytes: &[u8]) {
    let digest = sha256_hex(bytes);
    fs::write(oci_blob_path(dir, &digest), bytes).unwrap();
    let mut index = index_of(dir);
    index["manifests"][0]["digest"] = json!(digest);
    index["manifests"][0]["size"] = json!(bytes.len());
    set_index(dir, &index);
}

#[test]
fn broken_oci_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cases = Vec::new();
    let mut case = |name, dir: PathBuf, mentions: String| {
        cases.push(Case {
            name,
            source: format!("oci:{}", dir.display()),
            mentions,
        })
    };

    let (l, _) = layout(d, "index-cut", 30);
    fs::write(
        l.join("index.json"),
        b"{\"schemaVersion\": 2, \"manifests\": [",
    )
    .unwrap();
    case("index.json cut off", l, "index.json".into());

    let (l, _) = layout(d, "index-shape", 31);
    set_index(
        &l,
        &json!({"schemaVersion": 2, "manifests": {"digest": "x"}}),
    );
    case("index.json manifests not a list", l, "index.json".into());

    let (l, _) = layout(d, "index-climb", 32);
    let mut index = index_of(&l);
    index["manifests"][0]["digest"] = json!("sha256:../../../../../../etc/passwd");
    set_index(&l, &index);
    case(
        "index.json digest climbing out of blobs/",
        l,
        "invalid encoded value ../".into(),
    );

    let (l, _) = layout(d, "index-algo", 33);
    let mut index = index_of(&l);
    index["manifests"][0]["digest"] = json!("md5:d41d8cd98f00b204e9800998ecf8427e");
    set_index(&l, &index);
    case("index.json digest of an unknown algorithm", l, "md5".into());

    let (l, e) = layout(d, "manifest-swapped", 34);
    replace_oci_blob(
        &l,
        e.manifest_digest.as_deref().unwrap(),
        b"{\"schemaVersion\":2}",
    );
    case("manifest blob not matching its digest", l, "digest".into());

    let (l, e) = layout(d, "manifest-missing", 35);
    fs::remove_file(oci_blob_path(&l, e.manifest_digest.as_deref().unwrap())).unwrap();
    case("manifest blob missing", l, "no entry `blobs/sha256/".into());

    let (l, _) = layout(d, "manifest-cut", 36);
    swap_manifest(&l, b"{\"schemaVersion\":2,\"config\":{");
    case("manifest not JSON", l, "manifest".into());

    let (l, e) = layout(d, "manifest-no-layers", 37);
    let mut manifest: Value = serde_json::from_slice(e.manifest_bytes.as_ref().unwrap()).unwrap();
    manifest["layers"] = json!("none");
    swap_manifest(&l, &serde_json::to_vec(&manifest).unwrap());
    case("manifest layers not a list", l, "manifest".into());

    let (l, e) = layout(d, "layer-missing", 38);
    fs::remove_file(oci_blob_path(&l, &e.layer_digests[1])).unwrap();
    let short = e.layer_digests[1][7..19].to_string();
    case("layer blob missing", l, short);

    let (l, e) = layout(d, "layer-size", 39);
    let mut manifest: Value = serde_json::from_slice(e.manifest_bytes.as_ref().unwrap()).unwrap();
    manifest["layers"][0]["size"] = json!(e.layers[0].size + 1);
    swap_manifest(&l, &serde_json::to_vec(&manifest).unwrap());
    case("layer size wrong in the manifest", l, "size".into());

    let (l, e) = layout(d, "config-cut", 40);
    let bad_config = b"{\"architecture\":\"amd64\",\"rootfs\":{".to_vec();
    let config_digest = sha256_hex(&bad_config);
    fs::write(oci_blob_path(&l, &config_digest), &bad_config).unwrap();
    let mut manifest: Value = serde_json::from_slice(e.manifest_bytes.as_ref().unwrap()).unwrap();
    manifest["config"]["digest"] = json!(config_digest);
    manifest["config"]["size"] = json!(bad_config.len());
    swap_manifest(&l, &serde_json::to_vec(&manifest).unwrap());
    case("config not JSON", l, "config".into());

    let (l, _) = layout(d, "no-such-ref", 41);
    cases.push(Case {
        name: "ref name not in the layout",
        source: format!("oci:{}:nope", l.display()),
        mentions: "nope".into(),
    });
    run_cases(cases);
}

#[test]
fn invalid_references_more() {
    let dir = tempfile::tempdir().unwrap();
    write_oci_layout(
        dir.path(),
        &[(image(50), Some("1"))],
        LayerCompression::Gzip,
    );
    let source = dir.path().display().to_string();
    let long_tag = format!("localhost:5000/app:{}", "t".repeat(129));
    let mut broken = Vec::new();
    for bad in [
        "localhost:5000/app@sha256:1234",
        "localhost:5000/app@md5:d41d8cd98f00b204e9800998ecf8427e",
        "localhost:5000/app:",
        "localhost:5000//app",
        "localhost:5000/app/",
        "localhost:5000/-app",
        "localhost:5000/../app",
        "localhost:5000/app:../x",
        long_tag.as_str(),
        "http://localhost:5000/app:1",
        "",
    ] {
        let out = ocipush(&["push", &source, bad], None);
        if let Err(why) = check_failure(&out, 64, "invalid reference") {
            broken.push(format!("`{bad}`: {why}\n{}", stderr(&out)));
        }
    }
    for bad_registry in [
        "http://localhost:5000",
        "localhost:5000/Team",
        "localhost:99999",
    ] {
        let out = ocipush(&["push", "-r", bad_registry, &source], None);
        if let Err(why) = check_failure(&out, 64, "") {
            broken.push(format!("-r `{bad_registry}`: {why}\n{}", stderr(&out)));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n\n"));
}

#[test]
fn docker25_archive_with_broken_index_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d25.tar");
    write_docker_archive(
        &path,
        &[(image(60), vec!["app:1"])],
        DockerArchiveOptions {
            format: DockerArchiveFormat::Docker25,
            ..DockerArchiveOptions::default()
        },
    );
    let entries = read_archive_entries(&path);
    let source = rewritten(dir.path(), "d25-bad.tar", entries, |entries, m| {
        // The layer blob named by manifest.json is replaced by other bytes.
        let layer = layer_names(m)[0].clone();
        for (name, entry) in entries.iter_mut() {
            if *name == layer {
                *entry = Crafted::File(vec![0u8; 2048]);
            }
        }
    });
    run_cases(vec![Case {
        name: "Docker 25 archive with a layer blob not matching its name",
        source,
        mentions: "digest".into(),
    }]);
}

/// A tar of 4 KiB on disk whose first header is an extension entry (GNU long name, PAX) claiming
/// 1 GiB: the file is sparse, so a reader that trusts the header reads a gibibyte of zeros into
/// memory. Returns the file.
fn lying_extension_header(dir: &Path, name: &str, kind: tar::EntryType) -> PathBuf {
    let path = dir.join(name);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(1 << 30);
    header.set_path("././@LongLink").unwrap();
    header.set_mode(0o644);
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend(vec![b'a'; 4096 - 512]);
    fs::write(&path, &bytes).unwrap();
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(512 + (1 << 30) + 4096).unwrap();
    path
}

#[test]
fn extension_headers_claiming_a_gibibyte_fail_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    for (name, kind, words) in [
        ("longname.tar", tar::EntryType::GNULongName, "gnu long name"),
        ("pax.tar", tar::EntryType::XHeader, "pax"),
    ] {
        let path = lying_extension_header(dir.path(), name, kind);
        let (out, peak_kib) = ocipush_peak_rss(&["list", path.to_str().unwrap()]);
        if let Err(why) = check_failure(&out, 4, words) {
            panic!("{name}: {why}\nstderr:\n{}", stderr(&out));
        }
        assert!(
            stderr(&out).contains(name),
            "the error names the file: {}",
            stderr(&out)
        );
        assert!(
            peak_kib < 100 * 1024,
            "{name}: ocipush list used {peak_kib} KiB"
        );
    }
    // A build directory holding such a file: listed in bounded memory too.
    let (out, peak_kib) = ocipush_peak_rss(&["list", dir.path().to_str().unwrap()]);
    assert!(
        peak_kib < 100 * 1024,
        "listing the directory used {peak_kib} KiB; stderr:\n{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}
