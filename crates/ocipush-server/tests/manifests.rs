//! Manifest validation, tags (pagination, deletes), the catalog and the referrers API.

mod common;

use common::{
    digest, error_code, header, image_manifest, start, start_deleting, OCI_INDEX, OCI_MANIFEST,
};

#[tokio::test]
async fn manifests_are_validated() {
    let server = start().await;
    let c = &server.client;
    let config_digest = server.push_blob("img", b"{}").await;
    let missing = digest(b"never pushed");
    let manifest = image_manifest(&config_digest, 2, &missing, 12);
    let put = server
        .put_manifest("img", "latest", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(put.status(), 400);
    let body: serde_json::Value = put.json().await.expect("error JSON");
    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(body["errors"][0]["detail"]["digest"], missing.as_str());
    let get = c
        .get(server.url("/v2/img/manifests/latest"))
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status(), 404);
    assert_eq!(error_code(get).await, "MANIFEST_UNKNOWN");

    // A blob of another repository does not count.
    let elsewhere = server.push_blob("other", b"layer elsewhere").await;
    let manifest = image_manifest(&config_digest, 2, &elsewhere, 15);
    let put = server
        .put_manifest("img", "latest", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(error_code(put).await, "MANIFEST_BLOB_UNKNOWN");

    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing, "size": 10}],
    })
    .to_string();
    let put = server.put_manifest("img", "multi", OCI_INDEX, &index).await;
    assert_eq!(put.status(), 400);
    assert_eq!(error_code(put).await, "MANIFEST_BLOB_UNKNOWN");

    let layer = server.push_blob("img", b"a layer").await;
    let manifest = image_manifest(&config_digest, 2, &layer, 7);
    let wrong_digest = digest(b"not the manifest");
    let put = server
        .put_manifest("img", &wrong_digest, OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(put.status(), 400);
    assert_eq!(error_code(put).await, "DIGEST_INVALID");
    let put = server
        .put_manifest("img", "latest", "application/json", &manifest)
        .await;
    assert_eq!(put.status(), 400);
    assert_eq!(error_code(put).await, "MANIFEST_INVALID");
    let put = server
        .put_manifest("img", "latest", OCI_MANIFEST, "{not json")
        .await;
    assert_eq!(error_code(put).await, "MANIFEST_INVALID");
    let put = server
        .put_manifest("img", "-bad-tag", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(put.status(), 400);
    assert_eq!(error_code(put).await, "TAG_INVALID");

    // The same manifest by digest is accepted, and the index can then reference it.
    let manifest_digest = digest(manifest.as_bytes());
    let put = server
        .put_manifest("img", &manifest_digest, OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(put.status(), 201);
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": manifest.len()}],
    })
    .to_string();
    let put = server.put_manifest("img", "multi", OCI_INDEX, &index).await;
    assert_eq!(put.status(), 201);
    let get = c
        .get(server.url("/v2/img/manifests/multi"))
        .send()
        .await
        .expect("GET index");
    assert_eq!(header(&get, "content-type"), OCI_INDEX);
    assert_eq!(get.text().await.expect("index"), index);

    let bad_name = c
        .get(server.url("/v2/Bad_Name/tags/list"))
        .send()
        .await
        .expect("GET");
    assert_eq!(bad_name.status(), 400);
    assert_eq!(error_code(bad_name).await, "NAME_INVALID");
    let unknown = c
        .get(server.url("/v2/nope/tags/list"))
        .send()
        .await
        .expect("GET");
    assert_eq!(unknown.status(), 404);
    assert_eq!(error_code(unknown).await, "NAME_UNKNOWN");
    server.stop().await;
}

#[tokio::test]
async fn tags_pagination_and_deletes() {
    let server = start_deleting().await;
    let c = &server.client;
    let (manifest, manifest_digest) = server.push_image("paged", "a", b"layer").await;
    // OCI 1.1: more tags on a PUT by digest.
    let put = c
        .put(server.url(&format!(
            "/v2/paged/manifests/{manifest_digest}?tag=b&tag=c&tag=d"
        )))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), 201);

    let first = c
        .get(server.url("/v2/paged/tags/list?n=2"))
        .send()
        .await
        .expect("tags");
    assert_eq!(
        header(&first, "link"),
        "</v2/paged/tags/list?n=2&last=b>; rel=\"next\""
    );
    let body: serde_json::Value = first.json().await.expect("JSON");
    assert_eq!(body["tags"], serde_json::json!(["a", "b"]));
    let rest = c
        .get(server.url("/v2/paged/tags/list?n=2&last=b"))
        .send()
        .await
        .expect("tags");
    assert!(rest.headers().get("link").is_none());
    let body: serde_json::Value = rest.json().await.expect("JSON");
    assert_eq!(body["tags"], serde_json::json!(["c", "d"]));

    // Deleting a tag leaves the manifest; deleting the manifest removes the remaining tags.
    let deleted = c
        .delete(server.url("/v2/paged/manifests/a"))
        .send()
        .await
        .expect("DELETE tag");
    assert_eq!(deleted.status(), 202);
    let by_digest = c
        .get(server.url(&format!("/v2/paged/manifests/{manifest_digest}")))
        .send()
        .await
        .expect("GET");
    assert_eq!(by_digest.status(), 200);
    let deleted = c
        .delete(server.url(&format!("/v2/paged/manifests/{manifest_digest}")))
        .send()
        .await
        .expect("DELETE manifest");
    assert_eq!(deleted.status(), 202);
    let gone = c
        .get(server.url("/v2/paged/manifests/b"))
        .send()
        .await
        .expect("GET");
    assert_eq!(gone.status(), 404);
    let body: serde_json::Value = c
        .get(server.url("/v2/paged/tags/list"))
        .send()
        .await
        .expect("tags")
        .json()
        .await
        .expect("JSON");
    assert_eq!(body["tags"], serde_json::json!([]));

    let catalog: serde_json::Value = c
        .get(server.url("/v2/_catalog?n=10"))
        .send()
        .await
        .expect("catalog")
        .json()
        .await
        .expect("JSON");
    assert_eq!(catalog["repositories"], serde_json::json!(["paged"]));
    server.stop().await;
}

#[tokio::test]
async fn referrers_list_manifests_by_subject() {
    let server = start_deleting().await;
    let c = &server.client;
    let (subject_manifest, subject_digest) = server.push_image("art", "v1", b"layer").await;
    let empty = server.push_blob("art", b"{}").await;
    let signature = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject_manifest.len()},
        "annotations": {"org.example": "yes"},
    })
    .to_string();
    let signature_digest = digest(signature.as_bytes());
    let put = server
        .put_manifest("art", &signature_digest, OCI_MANIFEST, &signature)
        .await;
    assert_eq!(put.status(), 201);
    assert_eq!(header(&put, "oci-subject"), subject_digest);

    let referrers = c
        .get(server.url(&format!("/v2/art/referrers/{subject_digest}")))
        .send()
        .await
        .expect("referrers");
    assert_eq!(referrers.status(), 200);
    assert_eq!(header(&referrers, "content-type"), OCI_INDEX);
    let index: serde_json::Value = referrers.json().await.expect("JSON");
    assert_eq!(
        index["manifests"],
        serde_json::json!([{
            "mediaType": OCI_MANIFEST,
            "digest": signature_digest,
            "size": signature.len(),
            "artifactType": "application/vnd.example.signature",
            "annotations": {"org.example": "yes"},
        }])
    );
    let filtered = c
        .get(server.url(&format!(
            "/v2/art/referrers/{subject_digest}?artifactType=application/other"
        )))
        .send()
        .await
        .expect("referrers");
    assert_eq!(header(&filtered, "oci-filters-applied"), "artifactType");
    let index: serde_json::Value = filtered.json().await.expect("JSON");
    assert_eq!(index["manifests"], serde_json::json!([]));

    let deleted = c
        .delete(server.url(&format!("/v2/art/manifests/{signature_digest}")))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 202);
    let index: serde_json::Value = c
        .get(server.url(&format!("/v2/art/referrers/{subject_digest}")))
        .send()
        .await
        .expect("referrers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(index["manifests"], serde_json::json!([]));
    server.stop().await;
}
