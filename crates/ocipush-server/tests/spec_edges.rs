//! Where the spec leaves a registry a choice and a registry exposed to others must choose safely:
//! deletes (off unless asked for; never of something a manifest uses), references of the wrong shape
//! (404 on reads), layers with `urls`, and `Content-Range` values past what a u64 counts.

mod common;

use common::{digest, error_code, header, image_manifest, start, start_deleting, OCI_MANIFEST};

#[tokio::test]
async fn deletes_are_refused_unless_enabled() {
    let server = start().await;
    let c = &server.client;
    let (_, manifest_digest) = server.push_image("app", "1", b"layer").await;
    let layer = digest(b"layer");
    for path in [
        format!("/v2/app/manifests/{manifest_digest}"),
        "/v2/app/manifests/1".to_owned(),
        format!("/v2/app/blobs/{layer}"),
    ] {
        let response = c.delete(server.url(&path)).send().await.expect("DELETE");
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(error_code(response).await, "UNSUPPORTED", "{path}");
    }
    let pulled = c
        .get(server.url("/v2/app/manifests/1"))
        .send()
        .await
        .expect("GET");
    assert_eq!(pulled.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn what_a_manifest_uses_is_not_deleted() {
    let server = start_deleting().await;
    let c = &server.client;
    let (manifest, manifest_digest) = server.push_image("app", "1", b"layer").await;
    let layer = digest(b"layer");
    let blob_url = server.url(&format!("/v2/app/blobs/{layer}"));

    let refused = c.delete(&blob_url).send().await.expect("DELETE layer");
    assert_eq!(refused.status(), 409);
    let body: serde_json::Value = refused.json().await.expect("JSON");
    assert_eq!(body["errors"][0]["code"], "DENIED");
    assert_eq!(body["errors"][0]["detail"]["manifest"], manifest_digest);
    assert_eq!(c.head(&blob_url).send().await.expect("HEAD").status(), 200);

    // An index holding the manifest keeps the manifest too.
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": manifest.len()}],
    })
    .to_string();
    let put = server
        .put_manifest(
            "app",
            "all",
            "application/vnd.oci.image.index.v1+json",
            &index,
        )
        .await;
    assert_eq!(put.status(), 201);
    let manifest_url = server.url(&format!("/v2/app/manifests/{manifest_digest}"));
    let refused = c.delete(&manifest_url).send().await.expect("DELETE");
    assert_eq!(refused.status(), 409);
    assert_eq!(
        c.get(server.url("/v2/app/manifests/1"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );

    // Top down, everything goes.
    let index_url = server.url(&format!("/v2/app/manifests/{}", digest(index.as_bytes())));
    assert_eq!(
        c.delete(&index_url).send().await.expect("DELETE").status(),
        202
    );
    assert_eq!(
        c.delete(&manifest_url)
            .send()
            .await
            .expect("DELETE")
            .status(),
        202
    );
    assert_eq!(
        c.delete(&blob_url).send().await.expect("DELETE").status(),
        202
    );
    assert_eq!(c.head(&blob_url).send().await.expect("HEAD").status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn a_reference_of_the_wrong_shape_is_not_found_on_reads_and_invalid_on_writes() {
    let server = start().await;
    let c = &server.client;
    server.push_image("ns/app", "1", b"layer").await;
    for name in [".INVALID_MANIFEST_NAME", "-dash", &"x".repeat(129)] {
        let url = server.url(&format!("/v2/ns/app/manifests/{name}"));
        let got = c.get(&url).send().await.expect("GET");
        assert_eq!(got.status(), 404, "{name}");
        assert_eq!(error_code(got).await, "MANIFEST_UNKNOWN");
        assert_eq!(c.head(&url).send().await.expect("HEAD").status(), 404);
        let put = server
            .put_manifest("ns/app", name, OCI_MANIFEST, "{}")
            .await;
        assert_eq!(put.status(), 400, "{name}");
        assert_eq!(error_code(put).await, "TAG_INVALID");
    }
    // Repository names keep their 400 where the spec gives one.
    let bad_repo = c
        .get(server.url("/v2/UPPER/manifests/1"))
        .send()
        .await
        .expect("GET");
    assert_eq!(bad_repo.status(), 400);
    assert_eq!(error_code(bad_repo).await, "NAME_INVALID");
    server.stop().await;
}

#[tokio::test]
async fn layers_with_urls_are_checked_unless_non_distributable() {
    let server = start().await;
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let config_digest = server.push_blob("app", config).await;
    let never_uploaded = digest(b"never uploaded");
    let manifest = |media_type: &str, url: &str| {
        let mut value: serde_json::Value = serde_json::from_str(&image_manifest(
            &config_digest,
            config.len(),
            &never_uploaded,
            14,
        ))
        .expect("JSON");
        value["layers"][0]["mediaType"] = media_type.into();
        value["layers"][0]["urls"] = serde_json::json!([url]);
        value.to_string()
    };
    let gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    let foreign = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

    // The issue's case: a normal layer, a file URL, never uploaded.
    let shadow = server
        .put_manifest(
            "app",
            "a",
            OCI_MANIFEST,
            &manifest(gzip, "file:///etc/shadow"),
        )
        .await;
    assert_eq!(shadow.status(), 400);
    assert_eq!(error_code(shadow).await, "MANIFEST_INVALID");
    let normal = server
        .put_manifest(
            "app",
            "b",
            OCI_MANIFEST,
            &manifest(gzip, "https://example.com/l"),
        )
        .await;
    assert_eq!(normal.status(), 400);
    assert_eq!(error_code(normal).await, "MANIFEST_BLOB_UNKNOWN");
    // A multi-byte character where the scheme's last byte would be: refused, not a panic.
    let multibyte = server
        .put_manifest("app", "e", OCI_MANIFEST, &manifest(foreign, "http:/éxyz"))
        .await;
    assert_eq!(multibyte.status(), 400);
    assert_eq!(error_code(multibyte).await, "MANIFEST_INVALID");
    let bad_scheme = server
        .put_manifest(
            "app",
            "c",
            OCI_MANIFEST,
            &manifest(foreign, "ftp://example.com/l"),
        )
        .await;
    assert_eq!(bad_scheme.status(), 400);
    assert_eq!(error_code(bad_scheme).await, "MANIFEST_INVALID");
    let nondistributable = server
        .put_manifest(
            "app",
            "d",
            OCI_MANIFEST,
            &manifest(foreign, "https://example.com/l"),
        )
        .await;
    assert_eq!(nondistributable.status(), 201);
    for tag in ["a", "b", "c", "e"] {
        let url = server.url(&format!("/v2/app/manifests/{tag}"));
        let got = server.client.get(url).send().await.expect("GET");
        assert_eq!(got.status(), 404, "tag {tag} must not exist");
    }
    server.stop().await;
}

#[tokio::test]
async fn content_range_past_u64_is_invalid_not_empty() {
    let server = start().await;
    let c = &server.client;
    let started = c
        .post(server.url("/v2/app/blobs/uploads/"))
        .send()
        .await
        .expect("POST");
    assert_eq!(started.status(), 202);
    let location = server.location(&started);
    let patched = c
        .patch(&location)
        .header("content-range", "0-18446744073709551615")
        .header("content-type", "application/octet-stream")
        .body(Vec::new())
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), 400);
    assert_eq!(error_code(patched).await, "BLOB_UPLOAD_INVALID");
    let status = c.get(&location).send().await.expect("GET status");
    assert_eq!(status.status(), 204);
    assert_eq!(header(&status, "range"), "0-0");
    server.stop().await;
}

#[tokio::test]
async fn a_chunked_manifest_over_4_mib_is_too_large() {
    let server = start().await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..5).map(|_| Ok(vec![b' '; 1024 * 1024])).collect();
    let response = server
        .client
        .put(server.url("/v2/app/manifests/big"))
        .header("content-type", OCI_MANIFEST)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 413);
    assert_eq!(error_code(response).await, "SIZE_INVALID");
    server.stop().await;
}
