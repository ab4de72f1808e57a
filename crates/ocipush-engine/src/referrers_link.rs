//! Listing a pushed referrer under the manifest it refers to, where the registry has no
//! referrers API: the OCI 1.1 fallback, an index under the tag `sha256-HEX` of the subject,
//! read, extended and written back. A registry with the API lists referrers by itself.

use std::collections::HashMap;

use bytes::Bytes;
use ocipush_oci::{media_type, Digest, Document};
use ocipush_registry::{referrers_tag, Repository};
use ocipush_source::artifact_type;
use serde_json::{json, Map, Value};

use crate::error::PushError;

/// Which registries of the run serve the referrers API, learnt by asking once each.
pub(crate) type ReferrersApi = HashMap<String, bool>;

/// Makes `referrer` findable from `subject` in `repository`. Callers serialise calls (they
/// hold `api`): the tag is read, changed and written back.
pub(crate) async fn link_referrer(
    repository: &Repository,
    subject: &Digest,
    referrer: &Document,
    api: &mut ReferrersApi,
) -> Result<(), PushError> {
    let registry = repository.client().registry();
    let has_api = match api.get(registry) {
        Some(known) => *known,
        None => {
            let known = repository.get_referrers(subject).await?.is_some();
            api.insert(registry.to_owned(), known);
            known
        }
    };
    if has_api {
        return Ok(());
    }
    let tag = referrers_tag(subject);
    let mut manifests: Vec<Value> = match repository.get_manifest(&tag).await? {
        Some(existing) => serde_json::from_slice::<Value>(&existing.bytes)
            .ok()
            .and_then(|index| index.get("manifests").and_then(Value::as_array).cloned())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let digest = referrer.digest().to_string();
    if manifests
        .iter()
        .any(|m| m.get("digest").and_then(Value::as_str) == Some(digest.as_str()))
    {
        return Ok(());
    }
    manifests.push(descriptor(referrer));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_INDEX,
        "manifests": manifests,
    });
    let bytes = serde_json::to_vec(&index).map_err(|e| PushError::Internal(e.to_string()))?;
    let index_digest = ocipush_oci::sha256_of(&bytes);
    repository
        .put_manifest(
            &tag,
            media_type::OCI_INDEX,
            Bytes::from(bytes),
            &index_digest,
        )
        .await?;
    Ok(())
}

/// The referrer as a referrers list names it: media type, digest, size, `artifactType` (else
/// its config's media type) and its annotations.
fn descriptor(referrer: &Document) -> Value {
    let mut entry = Map::new();
    entry.insert("mediaType".into(), referrer.media_type().into());
    entry.insert("digest".into(), referrer.digest().to_string().into());
    entry.insert("size".into(), referrer.size().into());
    if let Some(artifact_type) = artifact_type(referrer) {
        entry.insert("artifactType".into(), artifact_type.into());
    }
    // The annotations as the manifest's JSON has them, whatever their values.
    let own: Map<String, Value> = serde_json::from_slice(referrer.bytes()).unwrap_or_default();
    if let Some(annotations) = own.get("annotations") {
        entry.insert("annotations".into(), annotations.clone());
    }
    Value::Object(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_referrer_is_listed_with_its_artifact_type_and_annotations() {
        let bytes = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sbom","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"annotations":{"org.example":"x"}}"#;
        let doc = Document::parse(bytes.to_vec(), None, "test").unwrap();
        let entry = descriptor(&doc);
        assert_eq!(entry["artifactType"], "application/vnd.example.sbom");
        assert_eq!(entry["annotations"]["org.example"], "x");
        assert_eq!(entry["size"], bytes.len());
        assert_eq!(entry["digest"], doc.digest().to_string());
    }
}
