//! Snapshot tests of what people read: the end of a push (references on stdout, the per-image
//! lines, errors and the summary on stderr, the `--json` document) and the `list` table. Every
//! input is fixed — digests, sizes, durations — so the whole rendered text is compared with
//! the literal kept here. A change of wording shows up as a diff to review, and the literal is
//! updated on purpose.

use std::time::Duration;

use ocipush_engine::{BlobCounts, Failure, FailureKind, ImageReport, ImageStatus, PushReport};

use crate::commands::list::{self, Row};
use crate::printer;

fn digest(pair: &str) -> String {
    format!("sha256:{}", pair.repeat(32))
}

/// Two images pushed (one with two tags, one retry; one mostly mounted) and one failed.
fn report() -> PushReport {
    let images = vec![
        ImageReport {
            source: "oci:build/app:1.0".into(),
            destination: "localhost:5000/team/app:1.0".into(),
            references: vec![
                "localhost:5000/team/app:1.0".into(),
                "localhost:5000/team/app:latest".into(),
            ],
            digest: Some(digest("a1")),
            status: ImageStatus::Pushed,
            bytes_uploaded: 3_355_443,
            bytes_skipped: 1_048_576,
            bytes_read: 0,
            blobs: BlobCounts {
                uploaded: 2,
                existing: 1,
                mounted: 0,
            },
            retries: 1,
            duration_ms: 1250,
            error: None,
            subject: None,
        },
        ImageReport {
            source: "docker-archive:build/api.tar:api:2".into(),
            destination: "localhost:5000/team/api:2".into(),
            references: vec!["localhost:5000/team/api:2".into()],
            digest: Some(digest("b2")),
            status: ImageStatus::Pushed,
            bytes_uploaded: 512,
            bytes_skipped: 20_971_520,
            bytes_read: 0,
            blobs: BlobCounts {
                uploaded: 1,
                existing: 0,
                mounted: 2,
            },
            retries: 0,
            duration_ms: 340,
            error: None,
            subject: None,
        },
        ImageReport {
            source: "docker-archive:build/bad.tar:bad:1".into(),
            destination: "localhost:5000/team/bad:1".into(),
            references: vec!["localhost:5000/team/bad:1".into()],
            digest: None,
            status: ImageStatus::Failed,
            bytes_uploaded: 0,
            bytes_skipped: 0,
            bytes_read: 0,
            blobs: BlobCounts::default(),
            retries: 0,
            duration_ms: 80,
            error: Some(Failure {
                message: "layer 1/2 0123456789ab: content does not match its digest".into(),
                hint: Some(
                    "the image file is damaged or was changed while pushing; export it again"
                        .into(),
                ),
                kind: FailureKind::InvalidImage,
            }),
            subject: None,
        },
    ];
    PushReport::new(images, Duration::from_millis(2500))
}

#[test]
fn push_references_on_stdout() {
    let mut out = Vec::new();
    printer::references(&report(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\
localhost:5000/team/app:1.0@sha256:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1
localhost:5000/team/app:latest@sha256:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1
localhost:5000/team/api:2@sha256:b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2
"
    );
}

#[test]
fn push_image_lines_and_closing_summary() {
    let report = report();
    let mut text = String::new();
    for image in &report.images {
        text.push_str(&printer::image_line(image));
        text.push('\n');
    }
    text.push_str(&printer::closing(&report, false));
    assert_eq!(
        text,
        "\
pushed oci:build/app:1.0 -> localhost:5000/team/app:1.0, localhost:5000/team/app:latest (sha256:a1a1a1a1a1a1): 2 uploaded, 1 existing, 0 mounted; 3.2 MiB sent, 1.0 MiB skipped in 1.2s
pushed docker-archive:build/api.tar:api:2 -> localhost:5000/team/api:2 (sha256:b2b2b2b2b2b2): 1 uploaded, 0 existing, 2 mounted; 512 B sent, 20.0 MiB skipped in 340ms
failed docker-archive:build/bad.tar:bad:1 -> localhost:5000/team/bad:1: layer 1/2 0123456789ab: content does not match its digest
error: docker-archive:build/bad.tar:bad:1: layer 1/2 0123456789ab: content does not match its digest
hint: the image file is damaged or was changed while pushing; export it again
2 of 3 image(s) pushed, 1 failed; 3 blob(s) uploaded, 1 already present, 2 mounted; 3.2 MiB sent (1.3 MiB/s), 21.0 MiB skipped; 1 retry; 2.5s
"
    );
    assert_eq!(
        printer::closing(&report, true),
        "\
error: docker-archive:build/bad.tar:bad:1: layer 1/2 0123456789ab: content does not match its digest
hint: the image file is damaged or was changed while pushing; export it again
",
        "-q keeps the errors, drops the summary"
    );
}

#[test]
fn push_json_document() {
    assert_eq!(
        printer::json(&report()),
        r#"{
  "images": [
    {
      "source": "oci:build/app:1.0",
      "destination": "localhost:5000/team/app:1.0",
      "references": [
        "localhost:5000/team/app:1.0",
        "localhost:5000/team/app:latest"
      ],
      "digest": "sha256:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
      "status": "pushed",
      "bytes_uploaded": 3355443,
      "bytes_skipped": 1048576,
      "bytes_read": 0,
      "blobs": {
        "uploaded": 2,
        "existing": 1,
        "mounted": 0
      },
      "retries": 1,
      "duration_ms": 1250,
      "error": null,
      "hint": null
    },
    {
      "source": "docker-archive:build/api.tar:api:2",
      "destination": "localhost:5000/team/api:2",
      "references": [
        "localhost:5000/team/api:2"
      ],
      "digest": "sha256:b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2",
      "status": "pushed",
      "bytes_uploaded": 512,
      "bytes_skipped": 20971520,
      "bytes_read": 0,
      "blobs": {
        "uploaded": 1,
        "existing": 0,
        "mounted": 2
      },
      "retries": 0,
      "duration_ms": 340,
      "error": null,
      "hint": null
    },
    {
      "source": "docker-archive:build/bad.tar:bad:1",
      "destination": "localhost:5000/team/bad:1",
      "references": [
        "localhost:5000/team/bad:1"
      ],
      "digest": null,
      "status": "failed",
      "bytes_uploaded": 0,
      "bytes_skipped": 0,
      "bytes_read": 0,
      "blobs": {
        "uploaded": 0,
        "existing": 0,
        "mounted": 0
      },
      "retries": 0,
      "duration_ms": 80,
      "error": "layer 1/2 0123456789ab: content does not match its digest",
      "hint": "the image file is damaged or was changed while pushing; export it again"
    }
  ],
  "summary": {
    "images": 3,
    "pushed": 2,
    "failed": 1,
    "skipped": 0,
    "bytes_uploaded": 3355955,
    "bytes_skipped": 22020096,
    "bytes_read": 0,
    "blobs": {
      "uploaded": 3,
      "existing": 1,
      "mounted": 2
    },
    "retries": 1,
    "bytes_abandoned": 0,
    "duration_ms": 2500
  }
}"#
    );
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            source: "oci:build/app".into(),
            names: vec!["localhost/team/app:1.0".into(), "team/app:latest".into()],
            format: "oci",
            platforms: vec!["linux/amd64".into(), "linux/arm64/v8".into()],
            layers: 4,
            size: 52_428_800,
            digest: Some(digest("c3")),
            id: None,
            error: None,
        },
        Row {
            source: "docker-archive:build/api.tar:api:2".into(),
            names: vec!["api:2".into()],
            format: "docker-archive",
            platforms: vec!["linux/amd64".into()],
            layers: 3,
            size: 1536,
            digest: None,
            id: None,
            error: None,
        },
        Row {
            source: "daemon:d4d4d4d4d4d4".into(),
            names: Vec::new(),
            format: "daemon",
            platforms: Vec::new(),
            layers: 1,
            size: 0,
            digest: None,
            id: Some(digest("d4")),
            error: None,
        },
    ]
}

#[test]
fn list_table() {
    assert_eq!(
        list::table(&rows()),
        "\
SOURCE                              NAME                                    FORMAT          PLATFORMS                   LAYERS      SIZE  DIGEST
oci:build/app                       localhost/team/app:1.0,team/app:latest  oci             linux/amd64,linux/arm64/v8       4  50.0 MiB  sha256:c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3
docker-archive:build/api.tar:api:2  api:2                                   docker-archive  linux/amd64                      3   1.5 KiB  (assigned on push)
daemon:d4d4d4d4d4d4                 <none>                                  daemon          -                                1       0 B  id d4d4d4d4d4d4
"
    );
}

#[test]
fn list_json() {
    assert_eq!(
        list::json(&rows()),
        r#"[
  {
    "source": "oci:build/app",
    "names": [
      "localhost/team/app:1.0",
      "team/app:latest"
    ],
    "format": "oci",
    "platforms": [
      "linux/amd64",
      "linux/arm64/v8"
    ],
    "layers": 4,
    "size": 52428800,
    "digest": "sha256:c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
  },
  {
    "source": "docker-archive:build/api.tar:api:2",
    "names": [
      "api:2"
    ],
    "format": "docker-archive",
    "platforms": [
      "linux/amd64"
    ],
    "layers": 3,
    "size": 1536,
    "digest": null
  },
  {
    "source": "daemon:d4d4d4d4d4d4",
    "names": [],
    "format": "daemon",
    "platforms": [],
    "layers": 1,
    "size": 0,
    "digest": null,
    "id": "sha256:d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4"
  }
]
"#
    );
}
