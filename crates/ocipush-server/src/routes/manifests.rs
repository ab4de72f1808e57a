//! `/v2/<name>/manifests/<reference>` (PUT with validation, GET/HEAD by tag or digest, DELETE) and the
//! referrers API `/v2/<name>/referrers/<digest>`.
//!
//! A manifest is accepted only when every blob it names (config, layers) is already in the repository, and
//! for an index every child manifest, so a tag can never point at something that cannot be pulled.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LOCATION};
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::{
    docker_content_digest, header_value, parse_digest, query_pairs, query_value, AppState,
};
use crate::api_error::{ApiError, ApiResult, ErrorCode};
use crate::names::{is_valid_tag, Digest};
use crate::store::NewManifest;

/// The spec asks registries to accept manifests of at least 4 MiB; larger ones are refused with 413.
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A manifest reference from the URL.
enum Reference {
    Tag(String),
    Digest(Digest),
}

fn parse_reference(raw: &str) -> Result<Reference, ApiError> {
    if raw.contains(':') {
        return parse_digest(raw).map(Reference::Digest);
    }
    if is_valid_tag(raw) {
        Ok(Reference::Tag(raw.to_owned()))
    } else {
        Err(ApiError::new(
            ErrorCode::TagInvalid,
            format!("invalid tag {raw:?}"),
        ))
    }
}

fn manifest_unknown(reference: &str) -> ApiError {
    ApiError::new(ErrorCode::ManifestUnknown, "manifest unknown to registry")
        .with_detail(json!({ "reference": reference }))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ManifestInvalid, message)
}

pub async fn get(state: &AppState, name: &str, reference: &str, head: bool) -> ApiResult {
    let internal = |e| ApiError::internal("reading manifest", e);
    // Nothing can be stored under a reference of the wrong shape: it is simply not there (the
    // conformance suite expects 404, not 400, for such a tag).
    let reference_kind = parse_reference(reference).map_err(|_| manifest_unknown(reference))?;
    let digest = match reference_kind {
        Reference::Digest(digest) => digest,
        Reference::Tag(tag) => state
            .store
            .resolve_tag(name, &tag)
            .await
            .map_err(internal)?
            .ok_or_else(|| manifest_unknown(reference))?,
    };
    let stored = state
        .store
        .get_manifest(name, &digest)
        .await
        .map_err(internal)?
        .ok_or_else(|| manifest_unknown(reference))?;
    let headers = [
        (CONTENT_TYPE, header_value(stored.media_type)),
        (
            CONTENT_LENGTH,
            header_value(stored.content.len().to_string()),
        ),
        (docker_content_digest(), header_value(digest.to_string())),
        (ETAG, header_value(format!("\"{digest}\""))),
    ];
    let body = if head {
        Body::empty()
    } else {
        Body::from(stored.content)
    };
    Ok((StatusCode::OK, headers, body).into_response())
}

pub async fn put(state: &AppState, name: &str, reference: &str, request: Request) -> ApiResult {
    let reference = parse_reference(reference)?;
    let query = query_pairs(request.uri());
    let declared_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let too_large = || {
        ApiError::new(ErrorCode::SizeInvalid, "manifest larger than 4 MiB")
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let declared_len = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|len| len > MAX_MANIFEST as u64) {
        return Err(too_large());
    }
    // A body without Content-Length (chunked) is only found too large while reading it.
    let content = to_bytes(request.into_body(), MAX_MANIFEST)
        .await
        .map_err(|e| {
            let cause = e.into_inner();
            if cause.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                invalid(format!("cannot read manifest body: {cause}"))
            }
        })?;

    let value: Value = serde_json::from_slice(&content)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(invalid("manifest is not a JSON object"));
    }
    let media_type = media_type(declared_type, &value)?;
    if value.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let is_index = media_type == OCI_INDEX || media_type == DOCKER_LIST;
    if is_index {
        check_children(state, name, &value).await?;
    } else {
        check_blobs(state, name, &value).await?;
    }

    let digest = Digest::from_sha256(&Sha256::digest(&content));
    let mut tags = Vec::new();
    match reference {
        Reference::Digest(expected) if expected != digest => {
            return Err(ApiError::new(
                ErrorCode::DigestInvalid,
                format!("manifest digest is {digest}, not {expected}"),
            )
            .with_detail(
                json!({ "expected": expected.to_string(), "computed": digest.to_string() }),
            ));
        }
        Reference::Digest(_) => {}
        Reference::Tag(tag) => tags.push(tag),
    }
    // OCI 1.1: `PUT .../manifests/<digest>?tag=a&tag=b` tags in the same request.
    for (key, tag) in &query {
        if key == "tag" {
            if !is_valid_tag(tag) {
                return Err(ApiError::new(
                    ErrorCode::TagInvalid,
                    format!("invalid tag {tag:?}"),
                ));
            }
            tags.push(tag.clone());
        }
    }

    let referrer = referrer_entry(&value, &media_type, &digest, content.len(), is_index)?;
    let subject = referrer.as_ref().map(|(subject, _)| subject.to_string());
    state
        .store
        .put_manifest(
            name,
            NewManifest {
                digest: &digest,
                media_type: &media_type,
                content: &content,
                tags: &tags,
                referrer,
            },
        )
        .await
        .map_err(|e| ApiError::internal("storing manifest", e))?;
    tracing::debug!(repo = name, %digest, ?tags, "manifest stored");

    let mut response = (
        StatusCode::CREATED,
        [
            (
                LOCATION,
                header_value(format!("/v2/{name}/manifests/{digest}")),
            ),
            (docker_content_digest(), header_value(digest.to_string())),
            (CONTENT_LENGTH, HeaderValue::from_static("0")),
        ],
    )
        .into_response();
    if let Some(subject) = subject {
        // Tells OCI 1.1 clients the registry indexed the subject, so they need not maintain a tag schema.
        response.headers_mut().insert(
            HeaderName::from_static("oci-subject"),
            header_value(subject),
        );
    }
    Ok(response)
}

/// The media type to store: the `Content-Type` header, or the body's `mediaType` when the header is absent.
/// Both present and different is refused, as the spec allows, since GET would answer with a type that
/// contradicts the content.
fn media_type(declared: Option<String>, value: &Value) -> Result<String, ApiError> {
    let in_body = value.get("mediaType").and_then(Value::as_str);
    let media_type = match (declared, in_body) {
        (Some(declared), Some(in_body)) if declared != in_body => {
            return Err(invalid(format!(
                "Content-Type {declared} does not match the manifest's mediaType {in_body}"
            )))
        }
        (Some(declared), _) => declared,
        (None, Some(in_body)) => in_body.to_owned(),
        (None, None) => return Err(invalid("Content-Type is required")),
    };
    if [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].contains(&media_type.as_str()) {
        Ok(media_type)
    } else {
        Err(invalid(format!(
            "unsupported manifest type {media_type}; expected one of {OCI_MANIFEST}, {OCI_INDEX}, \
             {DOCKER_MANIFEST}, {DOCKER_LIST}"
        )))
    }
}

fn descriptor_digest(descriptor: &Value, field: &str) -> Result<Digest, ApiError> {
    let raw = descriptor
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{field} descriptor has no digest")))?;
    Digest::parse(raw)
        .map_err(|_| invalid(format!("{field} descriptor has an invalid digest {raw:?}")))
}

fn blob_unknown(digest: &Digest) -> ApiError {
    ApiError::new(
        ErrorCode::ManifestBlobUnknown,
        format!("manifest references {digest}, which is not in this repository"),
    )
    .with_detail(json!({ "digest": digest.to_string() }))
}

/// Whether a layer's media type marks it non-distributable (OCI's `…nondistributable…` types, Docker's
/// foreign layers): such layers are fetched from their `urls`, so the registry need not hold them.
fn non_distributable(media_type: &str) -> bool {
    media_type.contains(".nondistributable.") || media_type.contains(".foreign.")
}

/// A layer's `urls`, each of which must be an http(s) URL.
fn check_urls(layer: &Value, digest: &Digest) -> Result<(), ApiError> {
    let Some(urls) = layer.get("urls") else {
        return Ok(());
    };
    let urls = urls
        .as_array()
        .ok_or_else(|| invalid(format!("layer {digest}: urls is not an array")))?;
    for url in urls {
        let text = url.as_str().unwrap_or_default();
        // `get`, not slicing: the text is a client's, and a byte index inside a multi-byte
        // character would panic.
        let scheme_ok = ["http://", "https://"].iter().any(|scheme| {
            text.len() > scheme.len()
                && text
                    .get(..scheme.len())
                    .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
        });
        if !scheme_ok {
            return Err(invalid(format!(
                "layer {digest}: urls may only hold http or https URLs, not {url}"
            )));
        }
    }
    Ok(())
}

/// Image manifest: config and every layer must be blobs of this repository, except non-distributable
/// layers, which are fetched from their `urls` (only http and https accepted).
async fn check_blobs(state: &AppState, name: &str, manifest: &Value) -> Result<(), ApiError> {
    let config = manifest
        .get("config")
        .filter(|c| c.is_object())
        .ok_or_else(|| invalid("image manifest has no config descriptor"))?;
    let layers = manifest
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("image manifest has no layers array"))?;
    let mut required = vec![descriptor_digest(config, "config")?];
    for layer in layers {
        let digest = descriptor_digest(layer, "layer")?;
        check_urls(layer, &digest)?;
        let media_type = layer
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !non_distributable(media_type) {
            required.push(digest);
        }
    }
    for digest in &required {
        let present = state
            .store
            .blob_size(name, digest)
            .await
            .map_err(|e| ApiError::internal("checking manifest blobs", e))?;
        if present.is_none() {
            return Err(blob_unknown(digest));
        }
    }
    Ok(())
}

/// Index: every child manifest must already be in this repository.
async fn check_children(state: &AppState, name: &str, index: &Value) -> Result<(), ApiError> {
    let children = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("index has no manifests array"))?;
    for child in children {
        let digest = descriptor_digest(child, "manifest")?;
        let present = state
            .store
            .manifest_exists(name, &digest)
            .await
            .map_err(|e| ApiError::internal("checking index children", e))?;
        if !present {
            return Err(blob_unknown(&digest));
        }
    }
    Ok(())
}

/// For a manifest with a `subject`, the subject and the descriptor the referrers API lists for it. Per the
/// spec an image manifest without `artifactType` is listed under its config's media type.
fn referrer_entry(
    value: &Value,
    media_type: &str,
    digest: &Digest,
    size: usize,
    is_index: bool,
) -> Result<Option<(Digest, Value)>, ApiError> {
    let Some(subject) = value.get("subject") else {
        return Ok(None);
    };
    let subject = descriptor_digest(subject, "subject")?;
    let mut descriptor = json!({
        "mediaType": media_type,
        "digest": digest.to_string(),
        "size": size,
    });
    let artifact_type = value
        .get("artifactType")
        .and_then(Value::as_str)
        .or_else(|| {
            (!is_index)
                .then(|| value.pointer("/config/mediaType").and_then(Value::as_str))
                .flatten()
        });
    if let Some(artifact_type) = artifact_type {
        descriptor["artifactType"] = json!(artifact_type);
    }
    if let Some(annotations) = value.get("annotations").filter(|a| a.is_object()) {
        descriptor["annotations"] = annotations.clone();
    }
    Ok(Some((subject, descriptor)))
}

pub async fn delete(state: &AppState, name: &str, reference: &str) -> ApiResult {
    let internal = |e| ApiError::internal("deleting manifest", e);
    let reference_kind = parse_reference(reference).map_err(|_| manifest_unknown(reference))?;
    let removed = match reference_kind {
        Reference::Tag(tag) => state.store.delete_tag(name, &tag).await.map_err(internal)?,
        Reference::Digest(digest) => {
            if let Some(index) = state
                .store
                .manifest_using(name, &digest)
                .await
                .map_err(internal)?
            {
                return Err(super::blobs::still_used(&digest, &index));
            }
            state
                .store
                .delete_manifest(name, &digest)
                .await
                .map_err(internal)?
        }
    };
    if !removed {
        return Err(manifest_unknown(reference));
    }
    Ok((
        StatusCode::ACCEPTED,
        [(CONTENT_LENGTH, HeaderValue::from_static("0"))],
    )
        .into_response())
}

/// `GET /v2/<name>/referrers/<digest>[?artifactType=]`: an OCI index of the manifests whose `subject` is
/// the digest. An unknown subject is an empty index, not an error, as the spec requires.
pub async fn referrers(state: &AppState, name: &str, digest: &str, uri: &Uri) -> ApiResult {
    let subject = parse_digest(digest)?;
    let query = query_pairs(uri);
    let filter = query_value(&query, "artifactType");
    let mut manifests = state
        .store
        .referrers(name, &subject)
        .await
        .map_err(|e| ApiError::internal("listing referrers", e))?;
    if let Some(filter) = filter {
        manifests.retain(|d| d.get("artifactType").and_then(Value::as_str) == Some(filter));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let mut response = (
        StatusCode::OK,
        [(CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX))],
        index.to_string(),
    )
        .into_response();
    if filter.is_some() {
        response.headers_mut().insert(
            HeaderName::from_static("oci-filters-applied"),
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}
