//! Blob operations of the distribution API, one protocol step per function: check existence
//! (HEAD), start an upload (POST), send the content in one streamed PATCH, commit it (PUT with
//! the digest), cancel it (DELETE), and for small blobs held in memory the single POST with the
//! body where the registry stores it (see `single_post.rs`), else POST + one PUT with the body.
//!
//! One streamed PATCH, rather than chunks, is what every registry accepts — Gitea takes only
//! one PATCH per upload — and it lets the digest be learnt while streaming, before the commit.
//! Chunked uploads (`--chunk-size`, or after a 413) are in `chunked.rs`.

use bytes::Bytes;
use futures_util::Stream;
use ocipush_oci::Digest;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};

use crate::error::RegistryError;
use crate::repository::Repository;
use crate::single_post::Way;

/// An upload session opened by POST; its URL moves with every step.
#[derive(Debug, Clone)]
pub struct UploadSession {
    pub(crate) location: Url,
}

impl UploadSession {
    /// The session URL without its query (which may carry the registry's upload state).
    pub fn path(&self) -> &str {
        self.location.path()
    }
}

/// The answer to a cross-repository mount request.
#[derive(Debug)]
pub enum MountOutcome {
    /// The blob is now in the repository, no bytes sent.
    Mounted,
    /// The registry would not mount; it opened an upload session instead (as the spec says).
    Upload(UploadSession),
    /// The registry refused the request (no rights on the source repository, no mount support).
    Refused,
}

/// What the body stream of a PATCH yields.
pub type BodyChunk = Result<Bytes, std::io::Error>;

impl Repository {
    /// HEAD a blob: its size if the repository has it.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<Option<u64>, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let action = format!("HEAD blob {digest}");
        let response = self
            .client
            .send(&action, self.scope(), Method::HEAD, &url, |r| r)
            .await?;
        match response.status() {
            s if s.is_success() => Ok(Some(
                response
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.client.status_error(&action, response).await),
        }
    }

    /// POST a new upload session.
    pub async fn start_upload(&self) -> Result<UploadSession, RegistryError> {
        let url = self.url("blobs/uploads/");
        let action = format!("POST upload to {}", self.name);
        let response = self
            .client
            .send(&action, self.scope(), Method::POST, &url, |r| {
                r.header(CONTENT_LENGTH, "0")
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.client.status_error(&action, response).await);
        }
        Ok(UploadSession {
            location: self.client.resolve_location(&action, &response)?,
        })
    }

    /// POST a cross-repository mount of `digest` from the repository `from` on the same registry.
    pub async fn mount_blob(
        &self,
        digest: &Digest,
        from: &str,
    ) -> Result<MountOutcome, RegistryError> {
        let mut url = self.url("blobs/uploads/");
        url.query_pairs_mut()
            .append_pair("mount", digest.as_ref())
            .append_pair("from", from);
        let action = format!("POST mount {digest} from {from}");
        // The token must allow pulling from `from` as well as pushing here.
        let scope = self.mount_scope(from);
        let response = match self
            .client
            .send(&action, Some(&scope), Method::POST, &url, |r| {
                r.header(CONTENT_LENGTH, "0")
            })
            .await
        {
            Ok(r) => r,
            // Mounting needs pull rights on `from`; without them a normal upload still works.
            Err(RegistryError::Unauthorized { .. }) | Err(RegistryError::Denied { .. }) => {
                return Ok(MountOutcome::Refused)
            }
            Err(e) => return Err(e),
        };
        match response.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::Upload(UploadSession {
                location: self.client.resolve_location(&action, &response)?,
            })),
            s if s.is_client_error() => Ok(MountOutcome::Refused),
            _ => Err(self.client.status_error(&action, response).await),
        }
    }

    /// PATCH the whole content as one streamed request. `length` sets Content-Length when known
    /// (some proxies refuse chunked transfer encoding); otherwise the body is chunk-encoded.
    pub async fn upload_stream<S>(
        &self,
        session: UploadSession,
        body: S,
        length: Option<u64>,
    ) -> Result<UploadSession, RegistryError>
    where
        S: Stream<Item = BodyChunk> + Send + 'static,
    {
        let action = format!("PATCH upload to {}", self.name);
        let response = self
            .client
            .send_once(
                &action,
                self.scope(),
                Method::PATCH,
                &session.location,
                |r| {
                    let r = r
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .body(reqwest::Body::wrap_stream(body));
                    match length {
                        Some(len) => r.header(CONTENT_LENGTH, len),
                        None => r,
                    }
                },
            )
            .await?;
        self.session_after_patch(&action, response).await
    }

    /// A PATCH's answer: success carries the session URL for the next request of the upload.
    pub(crate) async fn session_after_patch(
        &self,
        action: &str,
        response: reqwest::Response,
    ) -> Result<UploadSession, RegistryError> {
        if !response.status().is_success() {
            return Err(self.client.status_error(action, response).await);
        }
        Ok(UploadSession {
            location: self.client.resolve_location(action, &response)?,
        })
    }

    /// PUT the digest to commit an upload whose content was sent.
    pub async fn commit_upload(
        &self,
        session: UploadSession,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        self.put_with_digest(session, digest, Bytes::new()).await
    }

    /// The closing PUT of an upload, `?digest=` added to the session URL, with `body` as the
    /// last (or only) bytes of the blob.
    async fn put_with_digest(
        &self,
        session: UploadSession,
        digest: &Digest,
        body: Bytes,
    ) -> Result<(), RegistryError> {
        let mut url = session.location;
        url.query_pairs_mut().append_pair("digest", digest.as_ref());
        let action = format!("PUT blob {digest}");
        // When the registry committed the blob but its answer was lost (connection cut), a
        // retried PUT finds the session gone (404 BLOB_UPLOAD_UNKNOWN) or, racing the first
        // PUT still at work, a half-moved upload (400 DIGEST_INVALID, seen with distribution);
        // when every answer is lost the retries run out. In each case the blob being in the
        // repository under this digest (the registry checked it) is the answer that went
        // missing, so any failed commit asks for it before failing.
        let response = match self
            .client
            .send(&action, self.scope(), Method::PUT, &url, |r| {
                r.header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, body.len())
                    .body(body.clone())
            })
            .await
        {
            Ok(response) => response,
            Err(e) if e.is_transient() => {
                return match self.blob_exists(digest).await {
                    Ok(Some(_)) => Ok(()),
                    _ => Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        if response.status() != StatusCode::CREATED {
            if let Ok(Some(_)) = self.blob_exists(digest).await {
                return Ok(());
            }
            return Err(self.client.status_error(&action, response).await);
        }
        Ok(())
    }

    /// DELETE an upload session, best effort: the registry expires abandoned ones anyway.
    ///
    /// Known limit: after a PATCH cut off mid-body, distribution refuses a DELETE that carries
    /// the POST's upload state (404 `BLOB_UPLOAD_INVALID`, "upload resumed at wrong offset") and
    /// leaves the partial upload for its own purge; no client can do better without the fresh
    /// state the cut-off PATCH never returned.
    pub async fn cancel_upload(&self, session: UploadSession) {
        let action = format!("DELETE upload in {}", self.name);
        let result = self
            .client
            .send(
                &action,
                self.scope(),
                Method::DELETE,
                &session.location,
                |r| r,
            )
            .await;
        match result {
            Ok(response) if !response.status().is_success() => {
                let error = self.client.status_error(&action, response).await;
                tracing::debug!(error = %error, "the registry refused to cancel an upload");
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cancelling an upload failed"),
        }
    }

    /// Uploads a small blob held in memory: one POST with the body where the registry stores
    /// such (asked once per registry), else POST + one PUT with the body. A single POST that
    /// fails for any reason but the credentials falls back to the two requests.
    pub async fn upload_bytes(&self, digest: &Digest, bytes: Bytes) -> Result<(), RegistryError> {
        let single_post = &self.client.single_post;
        // Held while asking: dropped without an answer, it hands the question on.
        let question = match single_post.way(bytes.len()) {
            Way::TwoRequests => return self.post_then_put(digest, bytes).await,
            Way::SinglePost => None,
            Way::Asking(question) => Some(question),
        };
        match self.post_whole(digest, bytes.clone()).await {
            Ok(PostedWhole::Stored) if question.is_none() => return Ok(()),
            // The first 201 is believed once the blob is found there, whole.
            Ok(PostedWhole::Stored) => match self.blob_exists(digest).await {
                Ok(Some(size)) if size == bytes.len() as u64 => {
                    single_post.learn(true);
                    return Ok(());
                }
                Ok(_) => single_post.learn(false),
                // No answer to the check: the question stays open.
                Err(_) => {}
            },
            Ok(PostedWhole::Opened(session)) => {
                single_post.learn(false);
                return self.put_with_digest(session, digest, bytes).await;
            }
            Ok(PostedWhole::NotUnderstood) => single_post.learn(false),
            // Refused for reasons of its own (the repository, the size): the two requests say
            // what they are; the question stays open.
            Ok(PostedWhole::Refused) => {}
            Err(e @ (RegistryError::Unauthorized { .. } | RegistryError::Denied { .. })) => {
                return Err(e)
            }
            Err(e) => tracing::debug!(error = %e, "single POST failed; sending it as POST + PUT"),
        }
        drop(question);
        self.post_then_put(digest, bytes).await
    }

    /// POST a new session, then PUT the whole blob into it with its digest.
    async fn post_then_put(&self, digest: &Digest, bytes: Bytes) -> Result<(), RegistryError> {
        let session = self.start_upload().await?;
        self.put_with_digest(session, digest, bytes).await
    }

    /// `POST …/blobs/uploads/?digest=D` with the whole blob as its body.
    async fn post_whole(
        &self,
        digest: &Digest,
        bytes: Bytes,
    ) -> Result<PostedWhole, RegistryError> {
        let mut url = self.url("blobs/uploads/");
        url.query_pairs_mut().append_pair("digest", digest.as_ref());
        let action = format!("POST blob {digest}");
        let response = self
            .client
            .send(&action, self.scope(), Method::POST, &url, |r| {
                r.header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, bytes.len())
                    .body(bytes.clone())
            })
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(PostedWhole::Stored),
            StatusCode::ACCEPTED => Ok(PostedWhole::Opened(UploadSession {
                location: self.client.resolve_location(&action, &response)?,
            })),
            // What a registry without single POSTs may answer instead of 202.
            StatusCode::BAD_REQUEST
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::NOT_IMPLEMENTED => {
                tracing::debug!(registry = self.client.registry(), status = %response.status(), "single POST not understood");
                Ok(PostedWhole::NotUnderstood)
            }
            s if s.is_client_error() => Ok(PostedWhole::Refused),
            _ => Err(self.client.status_error(&action, response).await),
        }
    }
}

/// What the registry did with a blob sent whole in its upload POST.
enum PostedWhole {
    /// Stored it (201).
    Stored,
    /// Opened an upload session instead, the body ignored (202).
    Opened(UploadSession),
    /// Answered as a registry without single POSTs may (400, 405, 415, 501).
    NotUnderstood,
    /// Refused it for another reason (another 4xx: the repository, the size).
    Refused,
}
