//! Manifest operations: PUT a manifest or index under a tag or digest, and HEAD one to see what a
//! tag points at.

use bytes::Bytes;
use ocipush_oci::Digest;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use crate::error::RegistryError;
use crate::repository::Repository;

const DIGEST_HEADER: &str = "Docker-Content-Digest";

impl Repository {
    /// PUT manifest bytes under `reference` (a tag or the manifest's digest).
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let url = self.url(&format!("manifests/{reference}"));
        let action = format!("PUT manifest {}:{reference}", self.name);
        let response = self
            .client
            .send(&action, self.scope(), Method::PUT, &url, |r| {
                r.header(CONTENT_TYPE, media_type).body(bytes.clone())
            })
            .await?;
        if response.status() != StatusCode::CREATED && response.status() != StatusCode::OK {
            return Err(self.client.status_error(&action, response).await);
        }
        if let Some(returned) = response
            .headers()
            .get(DIGEST_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            if returned != digest.as_ref() {
                return Err(self.client.protocol(
                    &action,
                    &format!("registry stored the manifest as {returned}, expected {digest}"),
                ));
            }
        }
        Ok(())
    }

    /// HEAD a manifest: its digest if it exists.
    pub async fn manifest_digest(&self, reference: &str) -> Result<Option<String>, RegistryError> {
        let url = self.url(&format!("manifests/{reference}"));
        let action = format!("HEAD manifest {}:{reference}", self.name);
        let accept = ocipush_oci::media_type::ACCEPTED_MANIFESTS.join(", ");
        let response = self
            .client
            .send(&action, self.scope(), Method::HEAD, &url, |r| {
                r.header(ACCEPT, &accept)
            })
            .await?;
        match response.status() {
            s if s.is_success() => Ok(response
                .headers()
                .get(DIGEST_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.client.status_error(&action, response).await),
        }
    }
}
