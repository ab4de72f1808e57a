//! The reading side of the distribution API, for a registry that is a source: GET a manifest
//! (bounded, with the media types ocipush can copy), GET a blob from an offset (`Range`, so a
//! cut-off read resumes instead of starting over), one protocol step per function.
//!
//! Redirects to blob storage are followed by the HTTP client, which drops `Authorization`
//! whenever a redirect leaves the registry's host (and the client never adds it for another
//! host), so storage services never see the registry's credentials.

use bytes::Bytes;
use ocipush_oci::{Descriptor, Digest, ImageIndex};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use reqwest::{Method, Response, StatusCode};

use crate::error::RegistryError;
use crate::repository::Repository;

/// The largest manifest read: distribution refuses to store bigger ones (4 MiB).
pub const MANIFEST_LIMIT: usize = 4 * 1024 * 1024;

/// A manifest or index as a registry serves it.
#[derive(Debug, Clone)]
pub struct PulledManifest {
    /// The exact bytes, digested as they are.
    pub bytes: Bytes,
    /// The `Content-Type` the registry gave, if any.
    pub media_type: Option<String>,
    /// The `Docker-Content-Digest` the registry gave, if any.
    pub digest_header: Option<String>,
}

/// A blob's body as it comes, from where it was asked to start.
#[derive(Debug)]
pub struct BlobBody {
    response: Response,
    client: std::sync::Arc<crate::client::RegistryClient>,
    action: String,
    /// Where the body starts in the blob: the offset asked for when the registry honoured the
    /// `Range`, else 0 (the whole blob again).
    pub start: u64,
    /// Bytes the body will carry, when the registry said.
    pub length: Option<u64>,
}

impl BlobBody {
    /// The next piece of the body; `None` at its end. A body cut off before the length the
    /// registry announced fails here, as a transient transfer error.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, RegistryError> {
        self.response
            .chunk()
            .await
            .map_err(|e| self.client.transfer_error(&self.action, &e))
    }
}

impl Repository {
    /// GET a manifest by tag or digest: `None` when the repository has no such manifest. A
    /// body cut off on the way is asked for again, as a failed request is.
    pub async fn get_manifest(
        &self,
        reference: &str,
    ) -> Result<Option<PulledManifest>, RegistryError> {
        let mut attempt = 0;
        loop {
            match self.get_manifest_once(reference).await {
                Err(e) if e.is_transient() && attempt < self.client.retry_policy().retries => {
                    attempt += 1;
                    crate::retry_count::note_retry();
                    let delay = self.client.retry_policy().delay(attempt, None);
                    tracing::warn!(
                        "GET manifest {}:{reference}: {e}; retry {attempt} of {} in {:.1}s",
                        self.name,
                        self.client.retry_policy().retries,
                        delay.as_secs_f64()
                    );
                    tokio::time::sleep(delay).await;
                }
                result => return result,
            }
        }
    }

    async fn get_manifest_once(
        &self,
        reference: &str,
    ) -> Result<Option<PulledManifest>, RegistryError> {
        let url = self.url(&format!("manifests/{reference}"));
        let action = format!("GET manifest {}:{reference}", self.name);
        let accept = ocipush_oci::media_type::ACCEPTED_MANIFESTS.join(", ");
        let response = self
            .client
            .send(&action, self.scope(), Method::GET, &url, |r| {
                r.header(ACCEPT, &accept)
            })
            .await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(self.client.status_error(&action, response).await),
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let media_type = header(CONTENT_TYPE.as_str())
            .map(|t| t.split(';').next().unwrap_or_default().trim().to_string());
        let digest_header = header("Docker-Content-Digest");
        let bytes = self.read_bounded(&action, response, MANIFEST_LIMIT).await?;
        Ok(Some(PulledManifest {
            bytes,
            media_type,
            digest_header,
        }))
    }

    /// What refers to the manifest `digest` (OCI 1.1 referrers API): the descriptors of the
    /// referrers index, or `None` when the registry does not serve the API (then the fallback
    /// tag `sha256-HEX` holds them, see [`referrers_tag`]).
    pub async fn get_referrers(
        &self,
        digest: &Digest,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        let url = self.url(&format!("referrers/{digest}"));
        let action = format!("GET referrers of {digest} in {}", self.name);
        let response = self
            .client
            .send(&action, self.scope(), Method::GET, &url, |r| {
                r.header(ACCEPT, ocipush_oci::media_type::OCI_INDEX)
            })
            .await?;
        match response.status() {
            StatusCode::OK => {}
            // No such route: the registry predates the API.
            StatusCode::NOT_FOUND
            | StatusCode::BAD_REQUEST
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::NOT_IMPLEMENTED => return Ok(None),
            _ => return Err(self.client.status_error(&action, response).await),
        }
        let bytes = self.read_bounded(&action, response, MANIFEST_LIMIT).await?;
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| {
            self.client
                .protocol(&action, &format!("the referrers list is not an index: {e}"))
        })?;
        Ok(Some(index.manifests().clone()))
    }

    /// GET a blob from byte `offset` on (`Range: bytes=OFFSET-` past 0). A registry that
    /// ignores the range answers the whole blob: [`BlobBody::start`] says which it did.
    pub async fn get_blob(&self, digest: &Digest, offset: u64) -> Result<BlobBody, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let action = format!("GET blob {digest}");
        let response = self
            .client
            .send(&action, self.scope(), Method::GET, &url, |r| {
                if offset > 0 {
                    r.header(RANGE, format!("bytes={offset}-"))
                } else {
                    r
                }
            })
            .await?;
        let length = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        match response.status() {
            StatusCode::OK => Ok(BlobBody {
                response,
                client: self.client.clone(),
                action,
                start: 0,
                length,
            }),
            StatusCode::PARTIAL_CONTENT => {
                let start = response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(range_start);
                match start {
                    Some(start) if start == offset => Ok(BlobBody {
                        response,
                        client: self.client.clone(),
                        action,
                        start,
                        length,
                    }),
                    _ => Err(self.client.protocol(
                        &action,
                        &format!(
                            "asked for bytes from {offset} on, got a range starting elsewhere"
                        ),
                    )),
                }
            }
            StatusCode::NOT_FOUND => Err(RegistryError::Status {
                registry: self.client.registry().to_string(),
                action,
                status: StatusCode::NOT_FOUND,
                code: Some("BLOB_UNKNOWN".into()),
                message: Some(format!("{} has no blob {digest}", self.name)),
            }),
            _ => Err(self.client.status_error(&action, response).await),
        }
    }

    /// Reads a whole response body, refusing one over `limit` bytes.
    async fn read_bounded(
        &self,
        action: &str,
        mut response: Response,
        limit: usize,
    ) -> Result<Bytes, RegistryError> {
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Err(self.client.protocol(
                            action,
                            &format!("the answer is over {} MiB", limit / (1024 * 1024)),
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(Bytes::from(body)),
                Err(e) => return Err(self.client.transfer_error(action, &e)),
            }
        }
    }
}

/// The tag registries without the referrers API keep a manifest's referrers under, as an index:
/// `sha256-HEX` (the digest with its `:` made a `-`).
pub fn referrers_tag(digest: &Digest) -> String {
    digest.to_string().replace(':', "-")
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL`.
fn range_start(value: &str) -> Option<u64> {
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::range_start;

    #[test]
    fn content_range_start() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/1"), Some(0));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start("items 1-2/3"), None);
    }
}
