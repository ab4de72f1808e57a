//! An image index narrowed to some of its manifests (`--platform`), rewritten honestly: the
//! new JSON is the original's text with only entries of `manifests` left out. Every other
//! field, every annotation, the media type and even the formatting stay as they were, so the
//! result differs from the source in exactly what the user asked to drop. Re-serialising the
//! parsed index instead would reorder keys and lose fields `oci-spec` does not model.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::document::{Document, DocumentError};

/// Only the `manifests` array, borrowed from the original text so its position is known.
#[derive(Deserialize)]
struct Manifests<'a> {
    #[serde(borrow)]
    manifests: &'a RawValue,
}

impl Document {
    /// This index with only the entries of `manifests` for which `keep` says yes (given the
    /// entry's position and descriptor), in their original order. At least one must be kept.
    pub fn retain_manifests(
        &self,
        keep: impl Fn(usize, &oci_spec::image::Descriptor) -> bool,
    ) -> Result<Document, DocumentError> {
        let what = format!("index {}", self.digest());
        let invalid = |reason: &str| DocumentError::Rewrite {
            what: what.clone(),
            reason: reason.to_string(),
        };
        if !crate::media_type::is_index(self.media_type()) {
            return Err(invalid("not an image index"));
        }
        let text = std::str::from_utf8(self.bytes()).map_err(|_| invalid("not UTF-8"))?;
        let json_err = |source| DocumentError::Json {
            what: what.clone(),
            source,
        };
        let array: Manifests<'_> = serde_json::from_str(text).map_err(json_err)?;
        let entries: Vec<&RawValue> =
            serde_json::from_str(array.manifests.get()).map_err(json_err)?;
        let parsed = self.children();
        if entries.len() != parsed.len() {
            return Err(invalid("manifests do not parse the same twice"));
        }
        let kept: Vec<usize> = (0..parsed.len()).filter(|&i| keep(i, &parsed[i])).collect();
        if kept.is_empty() {
            return Err(invalid("no manifest left"));
        }

        // Cut the original text around the array and around its entries: the whitespace
        // before the first entry, between the first two and after the last is reused, so a
        // pretty-printed index stays pretty-printed.
        let offset = |inner: &str, outer: &str| inner.as_ptr() as usize - outer.as_ptr() as usize;
        let array_text = array.manifests.get();
        let start = offset(array_text, text);
        let spans: Vec<(usize, usize)> = entries
            .iter()
            .map(|e| {
                let at = offset(e.get(), array_text);
                (at, at + e.get().len())
            })
            .collect();
        let lead = &array_text[1..spans[0].0];
        let trail = &array_text[spans[spans.len() - 1].1..array_text.len() - 1];
        let separator = match spans.get(1) {
            Some(second) => &array_text[spans[0].1..second.0],
            None => ",",
        };
        let mut out = String::with_capacity(text.len());
        out.push_str(&text[..start]);
        out.push('[');
        out.push_str(lead);
        for (n, &i) in kept.iter().enumerate() {
            if n > 0 {
                out.push_str(separator);
            }
            out.push_str(&array_text[spans[i].0..spans[i].1]);
        }
        out.push_str(trail);
        out.push(']');
        out.push_str(&text[start + array_text.len()..]);

        let narrowed = Document::parse(out.into_bytes(), Some(self.media_type()), &what)?;
        let expected: Vec<_> = kept.iter().map(|&i| parsed[i].digest()).collect();
        let got: Vec<_> = narrowed.children().iter().map(|d| d.digest()).collect();
        if expected != got {
            return Err(invalid("the rewritten index lists other manifests"));
        }
        Ok(narrowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type;

    fn entry(n: u8, arch: &str) -> String {
        format!(
            r#"{{"mediaType":"{}","digest":"sha256:{}","size":{n},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
            media_type::OCI_MANIFEST,
            format!("{n:x}").repeat(64).get(..64).unwrap_or_default()
        )
    }

    #[test]
    fn keeps_everything_but_the_dropped_entries() {
        let text = format!(
            "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{}\",\n  \"manifests\": [\n    {},\n    {},\n    {}\n  ],\n  \"annotations\": {{\"org.example\": \"kept\"}},\n  \"x-unknown\": [1, 2]\n}}",
            media_type::OCI_INDEX,
            entry(1, "amd64"),
            entry(2, "arm64"),
            entry(3, "s390x")
        );
        let doc = Document::parse(text.clone().into_bytes(), None, "t").unwrap();
        let narrowed = doc.retain_manifests(|i, _| i != 1).unwrap();
        let expected = format!(
            "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{}\",\n  \"manifests\": [\n    {},\n    {}\n  ],\n  \"annotations\": {{\"org.example\": \"kept\"}},\n  \"x-unknown\": [1, 2]\n}}",
            media_type::OCI_INDEX,
            entry(1, "amd64"),
            entry(3, "s390x")
        );
        assert_eq!(std::str::from_utf8(narrowed.bytes()).unwrap(), expected);
        assert_eq!(narrowed.media_type(), media_type::OCI_INDEX);
        assert_ne!(narrowed.digest(), doc.digest());
        assert_eq!(narrowed.children().len(), 2);

        let all = doc.retain_manifests(|_, _| true).unwrap();
        assert_eq!(all.bytes(), doc.bytes(), "keeping all changes nothing");

        let one = doc.retain_manifests(|i, _| i == 2).unwrap();
        assert!(std::str::from_utf8(one.bytes())
            .unwrap()
            .contains(&format!("[\n    {}\n  ]", entry(3, "s390x"))));
    }

    #[test]
    fn media_type_from_the_descriptor_is_kept_and_compact_json_stays_compact() {
        let text = format!(
            r#"{{"schemaVersion":2,"manifests":[{},{}]}}"#,
            entry(1, "amd64"),
            entry(2, "arm64")
        );
        let doc = Document::parse(
            text.into_bytes(),
            Some(media_type::DOCKER_MANIFEST_LIST),
            "t",
        )
        .unwrap();
        let narrowed = doc.retain_manifests(|i, _| i == 1).unwrap();
        assert_eq!(narrowed.media_type(), media_type::DOCKER_MANIFEST_LIST);
        assert_eq!(
            std::str::from_utf8(narrowed.bytes()).unwrap(),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
                entry(2, "arm64")
            )
        );
    }

    #[test]
    fn refuses_to_drop_everything_or_to_narrow_a_manifest() {
        let text = format!(
            r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
            entry(1, "amd64")
        );
        let doc = Document::parse(text.into_bytes(), None, "t").unwrap();
        assert!(matches!(
            doc.retain_manifests(|_, _| false),
            Err(DocumentError::Rewrite { .. })
        ));
        let manifest = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;
        let doc = Document::parse(manifest.as_bytes().to_vec(), None, "t").unwrap();
        assert!(doc.retain_manifests(|_, _| true).is_err());
    }
}
