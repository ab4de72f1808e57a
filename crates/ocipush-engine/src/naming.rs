//! Where each local image goes: an explicit destination reference, or
//! `{registry}/{namespace}/{image}:{tag}` built from the names and tags the source carries.
//!
//! Rules (also in the README):
//! - `{image}` is the last path component of the image's first name (`team/app` -> `app`); an
//!   image the source leaves unnamed takes the source's file or directory name.
//! - Tags: `-t` tags replace the source's; otherwise every tag the source gives the image; an
//!   image with no tag at all is pushed as `latest`.
//! - With an explicit destination, its tag (if any) comes first, then `-t` tags; with neither,
//!   the image's own first tag, else `latest`.

use ocipush_registry::{Reference, RegistryTarget};
use ocipush_source::LocalImage;

use crate::error::PushError;

/// The tag an image with no tag of its own is pushed as.
pub const DEFAULT_TAG: &str = "latest";

/// Where the user asked images to go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// `ocipush push SOURCE HOST/REPO[:TAG]`.
    Reference(Reference),
    /// `ocipush push -r HOST[/NAMESPACE] SOURCE...`.
    Registry(RegistryTarget),
}

impl Destination {
    /// The registry host (`host[:port]`) it names.
    pub fn registry(&self) -> &str {
        match self {
            Destination::Reference(r) => &r.registry,
            Destination::Registry(t) => &t.registry,
        }
    }
}

/// The references (one repository, one or more tags; or one digest-only reference) an image
/// is pushed to.
pub fn destinations_for(
    image: &LocalImage,
    fallback_name: &str,
    destination: &Destination,
    extra_tags: &[String],
) -> Result<Vec<Reference>, PushError> {
    let own_tags: Vec<String> = dedup(image.names.iter().filter_map(|n| n.tag.clone()).collect());
    match destination {
        Destination::Reference(reference) => {
            if reference.digest.is_some() {
                // A digest-addressed destination writes no tag at all.
                if !extra_tags.is_empty() {
                    return Err(PushError::Naming(format!(
                        "{reference} names a digest; it cannot also take tags"
                    )));
                }
                return Ok(vec![reference.clone()]);
            }
            let mut tags: Vec<String> = reference.tag.iter().cloned().collect();
            tags.extend(extra_tags.iter().cloned());
            if tags.is_empty() {
                tags.push(
                    own_tags
                        .first()
                        .cloned()
                        .unwrap_or_else(|| DEFAULT_TAG.into()),
                );
            }
            dedup(tags)
                .iter()
                .map(|t| reference.with_tag(t).map_err(PushError::from))
                .collect()
        }
        Destination::Registry(target) => {
            let name = image
                .names
                .first()
                .map(|n| n.short_name().to_string())
                .unwrap_or_else(|| sanitize(fallback_name));
            let tags = if !extra_tags.is_empty() {
                dedup(extra_tags.to_vec())
            } else if !own_tags.is_empty() {
                own_tags
            } else {
                vec![DEFAULT_TAG.to_string()]
            };
            tags.iter()
                .map(|t| {
                    target
                        .reference_for(&name, Some(t))
                        .map_err(PushError::from)
                })
                .collect()
        }
    }
}

/// Makes a file name usable as a repository component: lowercase, other characters to `-`.
fn sanitize(name: &str) -> String {
    let lowered: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = lowered.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "image".to_string()
    } else {
        trimmed.to_string()
    }
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocipush_source::{ImageContent, ImageName};

    fn image(names: &[&str]) -> LocalImage {
        LocalImage {
            names: names.iter().filter_map(|n| ImageName::parse(n)).collect(),
            label: "test".into(),
            content: ImageContent::Assembled(ocipush_source::AssembledImage {
                config: vec![],
                config_digest: ocipush_oci::sha256_of(b""),
                layers: vec![],
            }),
            referrers: Vec::new(),
        }
    }

    fn refs(v: Vec<Reference>) -> Vec<String> {
        v.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn registry_target_uses_short_name_and_all_tags() {
        let dest = Destination::Registry(RegistryTarget::parse("localhost:5000/team").unwrap());
        let got = destinations_for(
            &image(&["docker.io/org/app:1.0", "app:latest"]),
            "x",
            &dest,
            &[],
        )
        .unwrap();
        assert_eq!(
            refs(got),
            [
                "localhost:5000/team/app:1.0",
                "localhost:5000/team/app:latest"
            ]
        );
        let got = destinations_for(
            &image(&["app:1.0"]),
            "x",
            &dest,
            &["dev".into(), "dev".into()],
        )
        .unwrap();
        assert_eq!(refs(got), ["localhost:5000/team/app:dev"]);
        let got = destinations_for(&image(&[]), "My Build", &dest, &[]).unwrap();
        assert_eq!(refs(got), ["localhost:5000/team/my-build:latest"]);
    }

    #[test]
    fn explicit_destination_tags() {
        let dest = Destination::Reference(Reference::parse("127.0.0.1:5000/x/y").unwrap());
        let got = destinations_for(&image(&["app:2.0"]), "x", &dest, &[]).unwrap();
        assert_eq!(refs(got), ["127.0.0.1:5000/x/y:2.0"]);
        let got = destinations_for(&image(&[]), "x", &dest, &[]).unwrap();
        assert_eq!(refs(got), ["127.0.0.1:5000/x/y:latest"]);
        let dest = Destination::Reference(Reference::parse("127.0.0.1:5000/x/y:v1").unwrap());
        let got = destinations_for(&image(&["app:2.0"]), "x", &dest, &["v2".into()]).unwrap();
        assert_eq!(
            refs(got),
            ["127.0.0.1:5000/x/y:v1", "127.0.0.1:5000/x/y:v2"]
        );
    }

    #[test]
    fn a_bad_extra_tag_is_refused_before_anything_is_pushed() {
        // Both ways of naming a destination: the whole list is refused, not pushed up to it.
        let explicit = Destination::Reference(Reference::parse("127.0.0.1:5000/x/y").unwrap());
        let registry = Destination::Registry(RegistryTarget::parse("127.0.0.1:5000/x").unwrap());
        for dest in [explicit, registry] {
            let err = destinations_for(
                &image(&["app:2.0"]),
                "x",
                &dest,
                &["good".into(), "bad tag".into()],
            )
            .unwrap_err();
            assert!(matches!(err, PushError::Reference(_)), "{err:?}");
            assert!(err.to_string().contains("bad tag"), "{err}");
        }
    }
}
