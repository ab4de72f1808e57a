//! Blob uploads (`/v2/<name>/blobs/uploads/...`): session start, cross-repository mount, monolithic POST,
//! streamed and chunked PATCH, closing PUT with digest verification, status and cancel.
//!
//! Every answer that leaves a session open carries `Location` (an absolute path, usable as a relative URL
//! against the registry), `Range: 0-<last byte>` and `Docker-Upload-UUID`, as docker and skopeo expect.

use axum::extract::Request;
use axum::http::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, LOCATION, RANGE,
};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use std::time::Duration;

use super::{
    docker_content_digest, header_value, parse_digest, query_pairs, query_value, AppState,
};
use crate::api_error::{ApiError, ApiResult, ErrorCode};
use crate::names::{is_valid_name, Digest};
use crate::store::{UploadError, UploadLimit, UploadSlot};

/// `POST /v2/<name>/blobs/uploads/`, with `?mount=&from=` (mount) or `?digest=` (monolithic) variants.
pub async fn start(state: &AppState, name: &str, request: Request) -> ApiResult {
    let query = query_pairs(request.uri());
    if let Some(mount) = query_value(&query, "mount") {
        let digest = parse_digest(mount)?;
        if try_mount(state, name, query_value(&query, "from"), &digest).await? {
            return Ok(blob_created(name, &digest));
        }
        // The spec says a failed mount falls back to an ordinary upload session.
    } else if let Some(digest) = query_value(&query, "digest") {
        let digest = parse_digest(digest)?;
        let slot = new_session(state, name).await?;
        let body = stall_bounded(request, state.stall_timeout);
        if let Err(err) = state.store.append(&slot, body, None).await {
            let _ = state.store.cancel_upload(&slot).await;
            return Err(upload_error(err, name, &slot));
        }
        return finish(state, name, &slot, &digest).await;
    }
    let slot = new_session(state, name).await?;
    Ok(session_response(StatusCode::ACCEPTED, name, &slot, 0))
}

/// Mounts from `from` if it has the blob; a blob already in `name` also counts as mounted.
async fn try_mount(
    state: &AppState,
    name: &str,
    from: Option<&str>,
    digest: &Digest,
) -> Result<bool, ApiError> {
    let store = &state.store;
    let internal = |e| ApiError::internal("mounting blob", e);
    if store
        .blob_size(name, digest)
        .await
        .map_err(internal)?
        .is_some()
    {
        return Ok(true);
    }
    match from {
        Some(from) if is_valid_name(from) => {
            store.mount_blob(name, from, digest).await.map_err(internal)
        }
        _ => Ok(false),
    }
}

async fn new_session(state: &AppState, name: &str) -> Result<std::sync::Arc<UploadSlot>, ApiError> {
    state
        .store
        .start_upload(name)
        .await
        .map_err(|err| match err {
            UploadError::Limit(limit) => limit_error(limit),
            other => ApiError::internal("starting upload", other),
        })
}

/// A request's body as a stream that fails when no byte arrives for `stall`: the session's lock is
/// then released and the chunk cut off, so the upload stays resumable where it was.
fn stall_bounded(
    request: Request,
    stall: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, String>> + Send {
    let body = request.into_body().into_data_stream();
    futures_util::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout(stall, body.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
            Ok(Some(Err(err))) => Some((Err(err.to_string()), None)),
            Ok(None) => None,
            Err(_) => Some((
                Err(format!("no body bytes for {} s", stall.as_secs())),
                None,
            )),
        }
    })
}

/// What a request that ran into an upload limit gets.
fn limit_error(limit: UploadLimit) -> ApiError {
    match limit {
        UploadLimit::BlobBytes(max) => ApiError::new(
            ErrorCode::SizeInvalid,
            format!("a blob may hold at most {max} bytes on this registry"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE),
        UploadLimit::TotalBytes(max) => ApiError::new(
            ErrorCode::SizeInvalid,
            format!("uploads in progress may hold at most {max} bytes on this registry; try again later"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE),
        UploadLimit::RepositorySessions(max) => ApiError::new(
            ErrorCode::TooManyRequests,
            format!("at most {max} uploads may be open per repository; finish or cancel one first"),
        ),
        UploadLimit::Sessions(max) => ApiError::new(
            ErrorCode::TooManyRequests,
            format!("at most {max} uploads may be open on this registry; try again later"),
        ),
    }
}

/// `PATCH <location>`: appends the body; with `Content-Range` it must continue exactly where the data ends.
pub async fn patch(state: &AppState, name: &str, uuid: &str, request: Request) -> ApiResult {
    let slot = find_session(state, name, uuid).await?;
    let range = content_range(request.headers())?;
    let body = stall_bounded(request, state.stall_timeout);
    let size = state
        .store
        .append(&slot, body, range)
        .await
        .map_err(|err| upload_error(err, name, &slot))?;
    Ok(session_response(StatusCode::ACCEPTED, name, &slot, size))
}

/// `PUT <location>?digest=`: appends an optional last chunk, verifies the digest and commits the blob.
pub async fn put(state: &AppState, name: &str, uuid: &str, request: Request) -> ApiResult {
    let query = query_pairs(request.uri());
    let Some(digest) = query_value(&query, "digest") else {
        return Err(ApiError::new(
            ErrorCode::DigestInvalid,
            "the digest query parameter is required to complete an upload",
        ));
    };
    let digest = parse_digest(digest)?;
    let slot = find_session(state, name, uuid).await?;
    let range = content_range(request.headers())?;
    let body = stall_bounded(request, state.stall_timeout);
    state
        .store
        .append(&slot, body, range)
        .await
        .map_err(|err| upload_error(err, name, &slot))?;
    finish(state, name, &slot, &digest).await
}

/// `GET <location>`: how much the session holds, so a client can resume.
pub async fn status(state: &AppState, name: &str, uuid: &str) -> ApiResult {
    let slot = find_session(state, name, uuid).await?;
    let size = slot
        .size()
        .await
        .map_err(|err| upload_error(err, name, &slot))?;
    Ok(session_response(StatusCode::NO_CONTENT, name, &slot, size))
}

/// `DELETE <location>`: abandons the session and its data.
pub async fn cancel(state: &AppState, name: &str, uuid: &str) -> ApiResult {
    let slot = find_session(state, name, uuid).await?;
    state
        .store
        .cancel_upload(&slot)
        .await
        .map_err(|err| upload_error(err, name, &slot))?;
    Ok((
        StatusCode::NO_CONTENT,
        [(CONTENT_LENGTH, HeaderValue::from_static("0"))],
    )
        .into_response())
}

async fn finish(state: &AppState, name: &str, slot: &UploadSlot, digest: &Digest) -> ApiResult {
    let size = state
        .store
        .finish_upload(slot, digest)
        .await
        .map_err(|err| match err {
            UploadError::DigestMismatch { computed } => ApiError::new(
                ErrorCode::DigestInvalid,
                format!("uploaded content has digest {computed}, not {digest}"),
            )
            .with_detail(serde_json::json!({
                "expected": digest.to_string(),
                "computed": computed.to_string(),
            })),
            other => upload_error(other, name, slot),
        })?;
    tracing::debug!(repo = name, %digest, size, "blob committed");
    Ok(blob_created(name, digest))
}

async fn find_session(
    state: &AppState,
    name: &str,
    uuid: &str,
) -> Result<std::sync::Arc<UploadSlot>, ApiError> {
    state
        .store
        .upload(name, uuid)
        .await
        .map_err(|e| ApiError::internal("looking up upload", e))?
        .ok_or_else(unknown_session)
}

fn unknown_session() -> ApiError {
    ApiError::new(
        ErrorCode::BlobUploadUnknown,
        "blob upload unknown to registry",
    )
}

/// `Content-Range: <start>-<end>` (the spec's form; `bytes ` / `bytes=` prefixes and a `/total` suffix are
/// tolerated) as `(start, length)`.
fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(value) = headers.get(CONTENT_RANGE) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::new(
            ErrorCode::BlobUploadInvalid,
            "invalid Content-Range header, expected <start>-<end>",
        )
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    let text = text
        .strip_prefix("bytes")
        .map(|rest| rest.trim_start_matches(['=', ' ']))
        .unwrap_or(text);
    let text = text.split('/').next().unwrap_or(text);
    let (start, end) = text.split_once('-').ok_or_else(invalid)?;
    let start: u64 = start.trim().parse().map_err(|_| invalid())?;
    let end: u64 = end.trim().parse().map_err(|_| invalid())?;
    // `end < start` is invalid; `0-18446744073709551615` names more bytes than a u64 counts.
    let length = end
        .checked_sub(start)
        .and_then(|last| last.checked_add(1))
        .ok_or_else(invalid)?;
    Ok(Some((start, length)))
}

fn upload_error(err: UploadError, name: &str, slot: &UploadSlot) -> ApiError {
    match err {
        UploadError::Gone => unknown_session(),
        UploadError::RangeMismatch { start, size } => ApiError::new(
            ErrorCode::RangeInvalid,
            format!("chunk starts at byte {start} but the upload holds {size} bytes"),
        )
        .with_header(LOCATION, location(name, slot))
        .with_header(RANGE, range_header(size))
        .with_header(upload_uuid(), header_value(slot.uuid().to_owned())),
        UploadError::SizeMismatch { expected, got } => ApiError::new(
            ErrorCode::SizeInvalid,
            format!("Content-Range announced {expected} bytes but the body carried {got}"),
        ),
        UploadError::Body(reason) => ApiError::new(
            ErrorCode::BlobUploadInvalid,
            format!("could not read the request body: {reason}"),
        ),
        UploadError::DigestMismatch { computed } => ApiError::new(
            ErrorCode::DigestInvalid,
            format!("uploaded content has digest {computed}"),
        ),
        UploadError::Limit(limit) => limit_error(limit),
        UploadError::Io(err) => ApiError::internal("writing upload", err),
    }
}

fn session_response(status: StatusCode, name: &str, slot: &UploadSlot, size: u64) -> Response {
    (
        status,
        [
            (LOCATION, location(name, slot)),
            (RANGE, range_header(size)),
            (upload_uuid(), header_value(slot.uuid().to_owned())),
            (CONTENT_LENGTH, HeaderValue::from_static("0")),
        ],
    )
        .into_response()
}

fn blob_created(name: &str, digest: &Digest) -> Response {
    (
        StatusCode::CREATED,
        [
            (LOCATION, header_value(format!("/v2/{name}/blobs/{digest}"))),
            (docker_content_digest(), header_value(digest.to_string())),
            (CONTENT_LENGTH, HeaderValue::from_static("0")),
        ],
    )
        .into_response()
}

fn location(name: &str, slot: &UploadSlot) -> HeaderValue {
    header_value(format!("/v2/{name}/blobs/uploads/{}", slot.uuid()))
}

/// `0-<last byte>`; an empty session reads `0-0`, as the reference registry answers.
fn range_header(size: u64) -> HeaderValue {
    header_value(format!("0-{}", size.saturating_sub(1)))
}

fn upload_uuid() -> HeaderName {
    HeaderName::from_static("docker-upload-uuid")
}
