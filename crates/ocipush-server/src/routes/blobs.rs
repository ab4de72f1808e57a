//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`: blob download (streamed from disk, with single
//! `Range: bytes=` requests answered 206) and removal from a repository.

use axum::body::Body;
use axum::http::header::{
    HeaderMap, HeaderValue, ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE,
};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{docker_content_digest, header_value, parse_digest, AppState};
use crate::api_error::{ApiError, ApiResult, ErrorCode};
use crate::names::Digest;

/// Read size for streaming blobs to the client.
const READ_CHUNK: usize = 64 * 1024;

pub async fn get(
    state: &AppState,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult {
    let digest = parse_digest(digest)?;
    let opened = state
        .store
        .open_blob(name, &digest)
        .await
        .map_err(|e| ApiError::internal("opening blob", e))?;
    let Some((mut file, size)) = opened else {
        return Err(
            ApiError::new(ErrorCode::BlobUnknown, "blob unknown to registry")
                .with_detail(serde_json::json!({ "digest": digest.to_string() })),
        );
    };

    let requested = headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_range(v, size));
    let (status, start, len) = match requested {
        None => (StatusCode::OK, 0, size),
        Some(RangeRequest::Satisfiable { start, end }) => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        Some(RangeRequest::Unsatisfiable) => {
            return Err(ApiError::new(
                ErrorCode::RangeInvalid,
                format!("range not satisfiable for a blob of {size} bytes"),
            )
            .with_header(CONTENT_RANGE, header_value(format!("bytes */{size}"))));
        }
    };

    let mut response_headers = vec![
        (
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (CONTENT_LENGTH, header_value(len.to_string())),
        (docker_content_digest(), header_value(digest.to_string())),
        (ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        (ETAG, header_value(format!("\"{digest}\""))),
    ];
    if status == StatusCode::PARTIAL_CONTENT {
        response_headers.push((
            CONTENT_RANGE,
            header_value(format!("bytes {start}-{}/{size}", start + len - 1)),
        ));
    }
    let body = if head {
        Body::empty()
    } else {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::internal("seeking blob", e))?;
        Body::from_stream(ReaderStream::with_capacity(file.take(len), READ_CHUNK))
    };
    let mut response = (status, body).into_response();
    response.headers_mut().extend(response_headers);
    Ok(response)
}

pub async fn delete(state: &AppState, name: &str, digest: &str) -> ApiResult {
    let digest = parse_digest(digest)?;
    let user = state
        .store
        .manifest_using(name, &digest)
        .await
        .map_err(|e| ApiError::internal("deleting blob", e))?;
    if let Some(manifest) = user {
        return Err(still_used(&digest, &manifest));
    }
    let removed = state
        .store
        .unlink_blob(name, &digest)
        .await
        .map_err(|e| ApiError::internal("deleting blob", e))?;
    if !removed {
        return Err(
            ApiError::new(ErrorCode::BlobUnknown, "blob unknown to registry")
                .with_detail(serde_json::json!({ "digest": digest.to_string() })),
        );
    }
    Ok((
        StatusCode::ACCEPTED,
        [
            (CONTENT_LENGTH, HeaderValue::from_static("0")),
            (docker_content_digest(), header_value(digest.to_string())),
        ],
    )
        .into_response())
}

/// What deleting something a manifest of the repository still names gets: deleting it would leave
/// that manifest, and the tags pointing at it, unpullable.
pub fn still_used(digest: &Digest, manifest: &Digest) -> ApiError {
    ApiError::new(
        ErrorCode::Denied,
        format!("{digest} is used by manifest {manifest} of this repository; delete that manifest first"),
    )
    .with_status(StatusCode::CONFLICT)
    .with_detail(serde_json::json!({ "digest": digest.to_string(), "manifest": manifest.to_string() }))
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// Inclusive byte range within the blob.
    Satisfiable {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

/// Parses a single `bytes=` range against a blob of `size` bytes. Multi-range and malformed headers yield
/// `None`, and the whole blob is sent, which RFC 9110 allows.
fn parse_range(value: &str, size: u64) -> Option<RangeRequest> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let unsatisfiable = Some(RangeRequest::Unsatisfiable);
    if first.is_empty() {
        // Suffix range: the last N bytes.
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 || size == 0 {
            return unsatisfiable;
        }
        return Some(RangeRequest::Satisfiable {
            start: size.saturating_sub(suffix),
            end: size - 1,
        });
    }
    let start: u64 = first.parse().ok()?;
    let end: u64 = if last.is_empty() {
        u64::MAX
    } else {
        last.parse().ok()?
    };
    if end < start {
        return None;
    }
    if start >= size {
        return unsatisfiable;
    }
    Some(RangeRequest::Satisfiable {
        start,
        end: end.min(size - 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_byte_ranges() {
        let sat = |start, end| Some(RangeRequest::Satisfiable { start, end });
        assert_eq!(parse_range("bytes=0-9", 100), sat(0, 9));
        assert_eq!(parse_range("bytes=90-200", 100), sat(90, 99));
        assert_eq!(parse_range("bytes=10-", 100), sat(10, 99));
        assert_eq!(parse_range("bytes=-5", 100), sat(95, 99));
        assert_eq!(parse_range("bytes=-500", 100), sat(0, 99));
        assert_eq!(
            parse_range("bytes=100-", 100),
            Some(RangeRequest::Unsatisfiable)
        );
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=x-1", 100), None);
    }
}
