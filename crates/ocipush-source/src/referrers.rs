//! Manifests that refer to another (`subject`, OCI 1.1): signatures, SBOMs, attestations. A
//! layout's `index.json` lists them as entries of their own; they belong with the image they
//! refer to, and go up with it, by digest.

use ocipush_oci::{Digest, Document, DocumentKind};

use crate::{ImageContent, LocalImage, Referrer};

/// The manifest a document refers to, if it names one.
pub fn subject_of(document: &Document) -> Option<Digest> {
    match document.kind() {
        DocumentKind::Manifest(m) => m.subject().as_ref().map(|d| d.digest().clone()),
        DocumentKind::Index(i) => i.subject().as_ref().map(|d| d.digest().clone()),
    }
}

/// What a referring document is: its `artifactType`, else its config's media type.
pub fn artifact_type(document: &Document) -> Option<String> {
    match document.kind() {
        DocumentKind::Manifest(m) => Some(
            m.artifact_type()
                .as_ref()
                .unwrap_or_else(|| m.config().media_type())
                .to_string(),
        ),
        DocumentKind::Index(i) => i.artifact_type().as_ref().map(|t| t.to_string()),
    }
}

/// Moves every image whose manifest refers to a manifest of another image into that image's
/// referrers (chains included: a signature of an SBOM goes with the SBOM). Images that refer
/// to nothing here stay as they are.
pub(crate) fn attach_referrers(mut images: Vec<LocalImage>) -> Vec<LocalImage> {
    loop {
        let found = images.iter().enumerate().find_map(|(i, image)| {
            let subject = subject_of(root_of(image)?)?;
            let home = images
                .iter()
                .enumerate()
                .position(|(j, other)| j != i && holds(other, &subject))?;
            Some((i, home, subject))
        });
        let Some((i, home, subject)) = found else {
            return images;
        };
        let image = images.remove(i);
        let home = if home > i { home - 1 } else { home };
        attach(&mut images[home], subject, image);
    }
}

/// Puts a referrer under the image (or the referrer of it) that holds its subject.
fn attach(image: &mut LocalImage, subject: Digest, referrer: LocalImage) {
    if !owns(image, &subject) {
        if let Some(inner) = image
            .referrers
            .iter_mut()
            .find(|r| holds(&r.image, &subject))
        {
            return attach(&mut inner.image, subject, referrer);
        }
    }
    image.referrers.push(Referrer {
        subject,
        image: referrer,
    });
}

fn root_of(image: &LocalImage) -> Option<&Document> {
    match &image.content {
        ImageContent::Stored { root, .. } => Some(root),
        _ => None,
    }
}

/// The image's own manifests include `digest`.
fn owns(image: &LocalImage, digest: &Digest) -> bool {
    match &image.content {
        ImageContent::Stored { root, children, .. } => {
            root.digest() == digest || children.iter().any(|c| c.digest() == digest)
        }
        _ => false,
    }
}

/// The image or one of its referrers has the manifest `digest`.
fn holds(image: &LocalImage, digest: &Digest) -> bool {
    owns(image, digest) || image.referrers.iter().any(|r| holds(&r.image, digest))
}
