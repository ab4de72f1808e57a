//! Blob uploads (streamed, chunked, monolithic, mounted), downloads and the full push flow against a live
//! in-process registry, driven over HTTP like docker or skopeo.

mod common;

use common::{
    data, digest, error_code, files_in, header, image_manifest, start, start_deleting, OCI_MANIFEST,
};
use futures_util::stream;

#[tokio::test]
async fn full_push_flow_and_read_back() {
    let server = start().await;
    let c = &server.client;

    let base = c.get(server.url("/v2/")).send().await.expect("GET /v2/");
    assert_eq!(base.status(), 200);
    assert_eq!(
        header(&base, "docker-distribution-api-version"),
        "registry/2.0"
    );
    assert_eq!(base.text().await.expect("body"), "{}");

    // Layer: POST, one streamed PATCH (chunked transfer encoding, no Content-Range), PUT ?digest=.
    let layer = data(300_000, 7);
    let layer_digest = digest(&layer);
    let started = c
        .post(server.url("/v2/a/b/c/blobs/uploads/"))
        .send()
        .await
        .expect("POST");
    assert_eq!(started.status(), 202);
    assert_eq!(header(&started, "range"), "0-0");
    let uuid = header(&started, "docker-upload-uuid");
    let location = header(&started, "location");
    assert_eq!(location, format!("/v2/a/b/c/blobs/uploads/{uuid}"));

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        layer.chunks(65_536).map(|c| Ok(c.to_vec())).collect();
    let patched = c
        .patch(server.url(&location))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), 202);
    assert_eq!(header(&patched, "range"), format!("0-{}", layer.len() - 1));
    let location = server.location(&patched);

    let put = c
        .put(format!("{location}?digest={layer_digest}"))
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), 201);
    assert_eq!(
        header(&put, "location"),
        format!("/v2/a/b/c/blobs/{layer_digest}")
    );
    assert_eq!(header(&put, "docker-content-digest"), layer_digest);

    let head = c
        .head(server.url(&format!("/v2/a/b/c/blobs/{layer_digest}")))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-length"), layer.len().to_string());
    assert_eq!(header(&head, "docker-content-digest"), layer_digest);
    assert_eq!(header(&head, "content-type"), "application/octet-stream");
    let got = c
        .get(server.url(&format!("/v2/a/b/c/blobs/{layer_digest}")))
        .send()
        .await
        .expect("GET blob");
    assert_eq!(got.status(), 200);
    assert_eq!(
        got.bytes().await.expect("blob body").as_ref(),
        layer.as_slice()
    );

    // Config by monolithic POST, then the manifest by tag.
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = server.push_blob("a/b/c", config).await;
    let manifest = image_manifest(&config_digest, config.len(), &layer_digest, layer.len());
    let manifest_digest = digest(manifest.as_bytes());
    let put = server
        .put_manifest("a/b/c", "v1", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(put.status(), 201);
    assert_eq!(header(&put, "docker-content-digest"), manifest_digest);
    assert_eq!(
        header(&put, "location"),
        format!("/v2/a/b/c/manifests/{manifest_digest}")
    );

    for reference in ["v1", manifest_digest.as_str()] {
        let got = c
            .get(server.url(&format!("/v2/a/b/c/manifests/{reference}")))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .expect("GET manifest");
        assert_eq!(got.status(), 200, "GET manifest {reference}");
        assert_eq!(header(&got, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&got, "docker-content-digest"), manifest_digest);
        assert_eq!(got.text().await.expect("manifest body"), manifest);
    }
    let head = c
        .head(server.url("/v2/a/b/c/manifests/v1"))
        .send()
        .await
        .expect("HEAD manifest");
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-length"), manifest.len().to_string());

    let tags: serde_json::Value = c
        .get(server.url("/v2/a/b/c/tags/list"))
        .send()
        .await
        .expect("tags")
        .json()
        .await
        .expect("tags JSON");
    assert_eq!(tags, serde_json::json!({"name": "a/b/c", "tags": ["v1"]}));
    let catalog: serde_json::Value = c
        .get(server.url("/v2/_catalog"))
        .send()
        .await
        .expect("catalog")
        .json()
        .await
        .expect("catalog JSON");
    assert_eq!(catalog, serde_json::json!({"repositories": ["a/b/c"]}));

    // On disk: three content files (layer, config, manifest), no leftover session.
    let blobs = files_in(&server.store().join("blobs/sha256"));
    assert_eq!(blobs.len(), 3, "{blobs:?}");
    assert!(blobs.contains(&layer_digest["sha256:".len()..].to_owned()));
    assert!(files_in(&server.store().join("uploads")).is_empty());
    assert_eq!(
        std::fs::read_to_string(server.store().join("repositories/a/b/c/_manifests/tags/v1"))
            .expect("tag file"),
        manifest_digest
    );
    server.stop().await;
}

#[tokio::test]
async fn chunked_upload_checks_content_range() {
    let server = start().await;
    let c = &server.client;
    let blob = data(25, 1);
    let started = c
        .post(server.url("/v2/chunky/blobs/uploads/"))
        .send()
        .await
        .expect("POST");
    let location = server.location(&started);

    let first = c
        .patch(&location)
        .header("content-range", "0-9")
        .header("content-type", "application/octet-stream")
        .body(blob[..10].to_vec())
        .send()
        .await
        .expect("PATCH 1");
    assert_eq!(first.status(), 202);
    assert_eq!(header(&first, "range"), "0-9");
    let location = server.location(&first);

    let wrong = c
        .patch(&location)
        .header("content-range", "5-14")
        .body(blob[5..15].to_vec())
        .send()
        .await
        .expect("PATCH wrong offset");
    assert_eq!(wrong.status(), 416);
    assert_eq!(header(&wrong, "range"), "0-9", "416 tells where to resume");
    assert_eq!(error_code(wrong).await, "RANGE_INVALID");

    // A chunk whose length differs from its Content-Range is refused and rolled back.
    let short = c
        .patch(&location)
        .header("content-range", "10-19")
        .body(blob[10..15].to_vec())
        .send()
        .await
        .expect("PATCH short");
    assert_eq!(short.status(), 400);
    assert_eq!(error_code(short).await, "SIZE_INVALID");

    let status = c.get(&location).send().await.expect("status");
    assert_eq!(status.status(), 204);
    assert_eq!(header(&status, "range"), "0-9");

    let second = c
        .patch(&location)
        .header("content-range", "10-19")
        .body(blob[10..20].to_vec())
        .send()
        .await
        .expect("PATCH 2");
    assert_eq!(second.status(), 202);
    assert_eq!(header(&second, "range"), "0-19");

    // The last chunk rides on the PUT.
    let blob_digest = digest(&blob);
    let put = c
        .put(format!("{}?digest={blob_digest}", server.location(&second)))
        .header("content-range", "20-24")
        .body(blob[20..].to_vec())
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), 201);
    let got = c
        .get(server.url(&format!("/v2/chunky/blobs/{blob_digest}")))
        .send()
        .await
        .expect("GET");
    assert_eq!(got.bytes().await.expect("body").as_ref(), blob.as_slice());
    server.stop().await;
}

#[tokio::test]
async fn digest_mismatch_stores_nothing() {
    let server = start().await;
    let c = &server.client;
    let blob = data(1000, 2);
    let claimed = digest(b"something else");
    let started = c
        .post(server.url("/v2/repo/blobs/uploads/"))
        .send()
        .await
        .expect("POST");
    let patched = c
        .patch(server.location(&started))
        .body(blob.clone())
        .send()
        .await
        .expect("PATCH");
    let location = server.location(&patched);
    let put = c
        .put(format!("{location}?digest={claimed}"))
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), 400);
    assert_eq!(error_code(put).await, "DIGEST_INVALID");

    for d in [&claimed, &digest(&blob)] {
        let head = c
            .head(server.url(&format!("/v2/repo/blobs/{d}")))
            .send()
            .await
            .expect("HEAD");
        assert_eq!(head.status(), 404, "{d} must not exist");
    }
    assert!(files_in(&server.store().join("blobs/sha256")).is_empty());
    assert!(files_in(&server.store().join("uploads")).is_empty());
    let status = c.get(&location).send().await.expect("status");
    assert_eq!(status.status(), 404);
    assert_eq!(error_code(status).await, "BLOB_UPLOAD_UNKNOWN");

    // Same for a monolithic POST.
    let post = c
        .post(server.url(&format!("/v2/repo/blobs/uploads/?digest={claimed}")))
        .body(blob)
        .send()
        .await
        .expect("POST monolithic");
    assert_eq!(post.status(), 400);
    assert_eq!(error_code(post).await, "DIGEST_INVALID");
    assert!(files_in(&server.store().join("blobs/sha256")).is_empty());
    assert!(files_in(&server.store().join("uploads")).is_empty());

    // A PUT without a digest, or with a malformed one, is refused before anything is committed.
    let started = c
        .post(server.url("/v2/repo/blobs/uploads/"))
        .send()
        .await
        .expect("POST");
    let location = server.location(&started);
    let put = c.put(&location).send().await.expect("PUT no digest");
    assert_eq!(put.status(), 400);
    assert_eq!(error_code(put).await, "DIGEST_INVALID");
    let put = c
        .put(format!("{location}?digest=sha256:xyz"))
        .send()
        .await
        .expect("PUT bad digest");
    assert_eq!(put.status(), 400);
    assert_eq!(error_code(put).await, "DIGEST_INVALID");
    server.stop().await;
}

#[tokio::test]
async fn cross_repository_mount() {
    let server = start_deleting().await;
    let c = &server.client;
    let blob = data(5000, 3);
    let blob_digest = server.push_blob("source/repo", &blob).await;
    let head_target = || {
        c.head(server.url(&format!("/v2/target/blobs/{blob_digest}")))
            .send()
    };
    assert_eq!(
        head_target().await.expect("HEAD").status(),
        404,
        "blob is per repository"
    );

    // `from` lacks the blob: the spec's fallback is a fresh upload session.
    let fallback = c
        .post(server.url(&format!(
            "/v2/target/blobs/uploads/?mount={blob_digest}&from=empty/repo"
        )))
        .send()
        .await
        .expect("POST mount");
    assert_eq!(fallback.status(), 202);
    assert!(header(&fallback, "location").starts_with("/v2/target/blobs/uploads/"));
    assert_eq!(head_target().await.expect("HEAD").status(), 404);

    let mounted = c
        .post(server.url(&format!(
            "/v2/target/blobs/uploads/?mount={blob_digest}&from=source/repo"
        )))
        .send()
        .await
        .expect("POST mount");
    assert_eq!(mounted.status(), 201);
    assert_eq!(
        header(&mounted, "location"),
        format!("/v2/target/blobs/{blob_digest}")
    );
    assert_eq!(header(&mounted, "docker-content-digest"), blob_digest);
    let head = head_target().await.expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-length"), "5000");

    // Deleting from one repository leaves the other's copy.
    let deleted = c
        .delete(server.url(&format!("/v2/target/blobs/{blob_digest}")))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 202);
    assert_eq!(head_target().await.expect("HEAD").status(), 404);
    let source = c
        .get(server.url(&format!("/v2/source/repo/blobs/{blob_digest}")))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        source.bytes().await.expect("body").as_ref(),
        blob.as_slice()
    );
    server.stop().await;
}

#[tokio::test]
async fn range_requests() {
    let server = start().await;
    let c = &server.client;
    let blob = data(100, 4);
    let blob_digest = server.push_blob("ranges", &blob).await;
    let url = server.url(&format!("/v2/ranges/blobs/{blob_digest}"));
    let cases: [(&str, std::ops::Range<usize>, &str); 3] = [
        ("bytes=10-19", 10..20, "bytes 10-19/100"),
        ("bytes=90-", 90..100, "bytes 90-99/100"),
        ("bytes=-5", 95..100, "bytes 95-99/100"),
    ];
    for (range, expected, content_range) in cases {
        let got = c
            .get(&url)
            .header("range", range)
            .send()
            .await
            .expect("GET range");
        assert_eq!(got.status(), 206, "{range}");
        assert_eq!(header(&got, "content-range"), content_range);
        assert_eq!(header(&got, "content-length"), expected.len().to_string());
        assert_eq!(got.bytes().await.expect("body").as_ref(), &blob[expected]);
    }
    let beyond = c
        .get(&url)
        .header("range", "bytes=200-")
        .send()
        .await
        .expect("GET");
    assert_eq!(beyond.status(), 416);
    assert_eq!(header(&beyond, "content-range"), "bytes */100");
    server.stop().await;
}

#[tokio::test]
async fn cancelled_upload_is_gone() {
    let server = start().await;
    let c = &server.client;
    let started = c
        .post(server.url("/v2/cancel/me/blobs/uploads/"))
        .send()
        .await
        .expect("POST");
    let patched = c
        .patch(server.location(&started))
        .body(data(4096, 5))
        .send()
        .await
        .expect("PATCH");
    let location = server.location(&patched);
    assert_eq!(files_in(&server.store().join("uploads")).len(), 1);

    let deleted = c.delete(&location).send().await.expect("DELETE");
    assert_eq!(deleted.status(), 204);
    assert!(files_in(&server.store().join("uploads")).is_empty());
    for response in [
        c.get(&location).send().await.expect("GET"),
        c.patch(&location).body("more").send().await.expect("PATCH"),
        c.delete(&location).send().await.expect("DELETE again"),
    ] {
        assert_eq!(response.status(), 404);
        assert_eq!(error_code(response).await, "BLOB_UPLOAD_UNKNOWN");
    }
    // A session belongs to its repository.
    let started = c
        .post(server.url("/v2/one/blobs/uploads/"))
        .send()
        .await
        .expect("POST");
    let uuid = header(&started, "docker-upload-uuid");
    let foreign = c
        .get(server.url(&format!("/v2/two/blobs/uploads/{uuid}")))
        .send()
        .await
        .expect("GET");
    assert_eq!(foreign.status(), 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_of_the_same_blob() {
    let server = start().await;
    let blob = data(2 * 1024 * 1024 + 17, 6);
    let blob_digest = digest(&blob);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let client = server.client.clone();
        let base = server.base.clone();
        let blob = blob.clone();
        let blob_digest = blob_digest.clone();
        tasks.push(tokio::spawn(async move {
            let repo = if i % 2 == 0 { "shared" } else { "shared/other" };
            let started = client
                .post(format!("{base}/v2/{repo}/blobs/uploads/"))
                .send()
                .await
                .expect("POST");
            let mut location = format!("{base}{}", header(&started, "location"));
            for (n, chunk) in blob.chunks(512 * 1024).enumerate() {
                let start = n * 512 * 1024;
                let patched = client
                    .patch(&location)
                    .header(
                        "content-range",
                        format!("{start}-{}", start + chunk.len() - 1),
                    )
                    .body(chunk.to_vec())
                    .send()
                    .await
                    .expect("PATCH");
                assert_eq!(patched.status(), 202);
                location = format!("{base}{}", header(&patched, "location"));
            }
            let put = client
                .put(format!("{location}?digest={blob_digest}"))
                .send()
                .await
                .expect("PUT");
            put.status().as_u16()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task"), 201);
    }
    assert_eq!(
        files_in(&server.store().join("blobs/sha256")),
        vec![blob_digest["sha256:".len()..].to_owned()]
    );
    assert!(files_in(&server.store().join("uploads")).is_empty());
    for repo in ["shared", "shared/other"] {
        let got = server
            .client
            .get(server.url(&format!("/v2/{repo}/blobs/{blob_digest}")))
            .send()
            .await
            .expect("GET");
        assert_eq!(got.bytes().await.expect("body").as_ref(), blob.as_slice());
    }
    server.stop().await;
}
