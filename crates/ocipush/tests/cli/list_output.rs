//! `ocipush list` and `ocipush list --json` describe the same images the same way: every
//! source kind of files (OCI layout with several images, a multi-platform index, an
//! oci-archive, a docker archive with several tags) listed both ways, row by row. The figures
//! themselves are checked against what the fixture writers say they wrote.

use crate::common::*;
use ocipush_testkit::fixtures::{
    write_docker_archive, write_oci_archive, write_oci_layout, write_oci_layout_multiarch,
    DockerArchiveOptions, ImageSpec, LayerCompression, LayerSpec,
};
use serde_json::Value;

/// The binary's size spelling (`1.5 KiB`), to compare the table with the JSON's bytes.
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A table line split into its seven columns (sizes and digests may hold one space).
fn columns(line: &str) -> [String; 7] {
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(words.len() >= 8, "short line: {line:?}");
    [
        words[0].to_string(),
        words[1].to_string(),
        words[2].to_string(),
        words[3].to_string(),
        words[4].to_string(),
        format!("{} {}", words[5], words[6]),
        words[7..].join(" "),
    ]
}

fn expected_columns(row: &Value) -> [String; 7] {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let names = strings(&row["names"]);
    let platforms = strings(&row["platforms"]);
    [
        row["source"].as_str().unwrap().to_string(),
        if names.is_empty() {
            "<none>".into()
        } else {
            names.join(",")
        },
        row["format"].as_str().unwrap().to_string(),
        if platforms.is_empty() {
            "-".into()
        } else {
            platforms.join(",")
        },
        row["layers"].to_string(),
        human(row["size"].as_u64().unwrap()),
        row["digest"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| "(assigned on push)".into()),
    ]
}

#[test]
fn table_and_json_agree_on_every_file_source() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let images = write_oci_layout(
        &layout,
        &[
            (ImageSpec::sample(1), Some("1.0")),
            (
                ImageSpec::sample(2).platform("linux", "arm64", Some("v8")),
                Some("team/tool:2"),
            ),
        ],
        LayerCompression::Gzip,
    );
    let multi = dir.path().join("multi");
    let index = write_oci_layout_multiarch(
        &multi,
        "all",
        &[
            ImageSpec::sample(3),
            ImageSpec::sample(4).platform("linux", "arm", Some("v7")),
        ],
    );
    let archive = dir.path().join("single.tar");
    write_oci_archive(
        &archive,
        &[(ImageSpec::sample(5), Some("x"))],
        LayerCompression::None,
    );
    let docker = dir.path().join("app.tar");
    let docker_image = write_docker_archive(
        &docker,
        &[(
            ImageSpec::new(vec![
                LayerSpec::text(3000, 6),
                LayerSpec::files(&[("a", b"a")]),
                LayerSpec::files(&[("b", b"b")]),
            ]),
            vec!["myapp:1.0", "myapp:latest"],
        )],
        DockerArchiveOptions::default(),
    );
    let sources = [
        format!("oci:{}", layout.display()),
        format!("oci:{}", multi.display()),
        format!("oci-archive:{}", archive.display()),
        docker.display().to_string(),
    ];
    let mut args = vec!["list", "--json"];
    args.extend(sources.iter().map(String::as_str));
    let json = ocipush(&args, None);
    assert!(json.status.success(), "{}", stderr(&json));
    let rows: Vec<Value> = serde_json::from_slice(&json.stdout).unwrap();
    args.remove(1);
    let table = ocipush(&args, None);
    assert!(table.status.success(), "{}", stderr(&table));
    let table = stdout(&table);
    let mut lines = table.lines();
    assert_eq!(
        lines
            .next()
            .map(|h| h.split_whitespace().collect::<Vec<_>>()),
        Some(vec![
            "SOURCE",
            "NAME",
            "FORMAT",
            "PLATFORMS",
            "LAYERS",
            "SIZE",
            "DIGEST"
        ])
    );
    let lines: Vec<&str> = lines.collect();
    assert_eq!(lines.len(), rows.len(), "{table}");
    assert_eq!(
        rows.len(),
        5,
        "two layout images, the index, the archive, the tarball"
    );
    for (line, row) in lines.iter().zip(&rows) {
        assert_eq!(columns(line), expected_columns(row), "{line}\n{row:#}");
    }

    // And the figures are the sources': names, platforms, layers, digests.
    assert_eq!(rows[0]["names"], serde_json::json!(["layout:1.0"]));
    assert_eq!(rows[0]["platforms"], serde_json::json!(["linux/amd64"]));
    assert_eq!(rows[0]["layers"], 2);
    assert_eq!(
        rows[0]["digest"].as_str(),
        images[0].manifest_digest.as_deref()
    );
    assert_eq!(
        rows[0]["size"].as_u64().unwrap(),
        images[0].total_layer_size() + images[0].config_bytes.len() as u64
    );
    assert_eq!(rows[1]["names"], serde_json::json!(["team/tool:2"]));
    assert_eq!(rows[1]["platforms"], serde_json::json!(["linux/arm64/v8"]));
    assert_eq!(
        rows[2]["digest"].as_str(),
        Some(index.index_digest.as_str())
    );
    assert_eq!(
        rows[2]["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm/v7"])
    );
    assert_eq!(rows[2]["layers"], 4);
    assert_eq!(rows[3]["format"], "oci-archive");
    assert_eq!(rows[4]["format"], "docker-archive");
    assert_eq!(
        rows[4]["names"],
        serde_json::json!(["myapp:1.0", "myapp:latest"])
    );
    assert_eq!(rows[4]["layers"], 3);
    assert_eq!(rows[4]["digest"], Value::Null);
    // The image ID docker shows is the config's digest; an index of several images has none.
    assert_eq!(
        rows[0]["id"].as_str(),
        Some(images[0].config_digest.as_str())
    );
    assert_eq!(
        rows[4]["id"].as_str(),
        Some(docker_image[0].config_digest.as_str())
    );
    assert_eq!(rows[2].get("id"), None);

    // A build directory with a broken tarball: it has its own entry (with the error) in the
    // JSON, and the exit says not all was well.
    let build = dir.path().join("build");
    std::fs::create_dir_all(&build).unwrap();
    std::fs::copy(&docker, build.join("app.tar")).unwrap();
    std::fs::write(build.join("broken.tar"), vec![7u8; 4096]).unwrap();
    let out = ocipush(&["list", "--json", build.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let broken: Vec<&Value> = rows.iter().filter(|r| r.get("error").is_some()).collect();
    assert_eq!(broken.len(), 1, "{rows:#?}");
    assert!(broken[0]["source"]
        .as_str()
        .unwrap()
        .ends_with("broken.tar"));
    assert_eq!(rows.len(), 2, "{rows:#?}");
}
