//! Copies of one image (one tarball twice in a build directory, a layout and its archive) are
//! the same image only if their content says so. Before a push, every copy of a repeated image
//! is read and verified; the first intact copy goes up, and a damaged one is reported as such,
//! whichever comes first. (Copies in registries are taken at their manifest digest's word.)

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use ocipush_oci::{sha256_of, VerifyError, VerifyingReader};

use crate::error::PushError;
use crate::plan::{PlannedImage, Production, RepeatedImage};
use crate::producer::Transform;
use crate::report::{Failure, ImageReport};

/// The images to push after copies were verified, and a report for each damaged copy.
pub(crate) struct Verified {
    pub images: Vec<PlannedImage>,
    pub damaged: Vec<ImageReport>,
}

/// Verifies every image that has a repeat, and every repeat; an intact repeat takes the place
/// of a damaged image.
pub(crate) async fn settle_copies(
    mut images: Vec<PlannedImage>,
    repeats: Vec<RepeatedImage>,
) -> Verified {
    let mut damaged = Vec::new();
    let mut checked: Vec<(usize, Result<(), String>)> = Vec::new();
    // Repeats name the image they repeat by its label as planned, even after an intact copy
    // took its place.
    let planned_labels: Vec<String> = images.iter().map(|i| i.image.label.clone()).collect();
    for repeat in repeats {
        let Some(index) = planned_labels.iter().position(|l| *l == repeat.same_as) else {
            continue;
        };
        // Two registry images with one manifest digest are one image: the registries checked
        // every blob against its digest, and the push checks the one it reads again. Reading
        // both whole first would only double what crosses the network.
        if images[index].source.origin.is_some() && repeat.copy.source.origin.is_some() {
            continue;
        }
        let first = match checked.iter().find(|(i, _)| *i == index) {
            Some((_, result)) => result.clone(),
            None => {
                let result = verify(&images[index]).await;
                checked.push((index, result.clone()));
                result
            }
        };
        let copy = verify(&repeat.copy).await;
        match (first, copy) {
            (Err(broken), Ok(())) => {
                // The intact copy goes where the damaged one was bound.
                let mut intact = repeat.copy.clone();
                intact.references = images[index].references.clone();
                let damaged_image = std::mem::replace(&mut images[index], intact);
                damaged.push(damaged_report(&damaged_image, &broken, &repeat.label));
                checked.retain(|(i, _)| *i != index);
                checked.push((index, Ok(())));
            }
            (_, Err(broken)) => {
                damaged.push(damaged_report(
                    &repeat.copy,
                    &broken,
                    &images[index].image.label,
                ));
            }
            (Ok(()), Ok(())) => {}
        }
    }
    Verified { images, damaged }
}

fn damaged_report(image: &PlannedImage, error: &str, other: &str) -> ImageReport {
    ImageReport::skipped(
        image.image.label.clone(),
        Failure {
            message: format!("{}: damaged copy: {error}", image.image.label),
            hint: Some(format!(
                "{other} claims to be the same image; the copy that reads back intact is the one pushed"
            )),
            kind: crate::error::FailureKind::InvalidImage,
        },
    )
}

/// Reads every blob of the image from its source and checks it against its digest (or a
/// layer against its diffID).
async fn verify(image: &PlannedImage) -> Result<(), String> {
    let image = image.clone();
    tokio::task::spawn_blocking(move || {
        for blob in &image.blobs {
            match &blob.production {
                Production::File(job) => {
                    let reader = image
                        .source
                        .blobs
                        .open(&job.path)
                        .map_err(|e| PushError::from(e).to_string())?;
                    verify_file(reader, &job.transform, &job.label).map_err(|e| {
                        match VerifyError::from_io(&e) {
                            Some(verify) => verify.to_string(),
                            None => format!("cannot read {}: {e}", job.label),
                        }
                    })?;
                }
                Production::Bytes(bytes) => {
                    let actual = sha256_of(bytes);
                    if Some(&actual) != blob.digest() {
                        return Err(format!("{} hashes to {actual}", blob.label()));
                    }
                }
                // A daemon's images are the daemon's: one ID, one image.
                Production::Export => {}
            }
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| Err(format!("verifying panicked: {e}")))
}

/// Reads a source file to its end through the check its transform makes while pushing.
fn verify_file(reader: Box<dyn Read + Send>, transform: &Transform, what: &str) -> io::Result<()> {
    let mut checked: Box<dyn Read> = match transform {
        Transform::Verbatim { digest, size } => Box::new(VerifyingReader::new(
            reader,
            what,
            digest.clone(),
            Some(*size),
        )),
        Transform::Gzip {
            diff_id: Some(diff_id),
            ..
        }
        | Transform::Zstd {
            diff_id: Some(diff_id),
            ..
        } => Box::new(VerifyingReader::new(reader, what, diff_id.clone(), None)),
        Transform::GzipPassthrough {
            diff_id: Some(diff_id),
        } => Box::new(VerifyingReader::new(
            MultiGzDecoder::new(reader),
            what,
            diff_id.clone(),
            None,
        )),
        Transform::ZstdPassthrough {
            diff_id: Some(diff_id),
        } => Box::new(VerifyingReader::new(
            zstd::Decoder::new(reader)?,
            what,
            diff_id.clone(),
            None,
        )),
        _ => reader,
    };
    io::copy(&mut checked, &mut io::sink()).map(|_| ())
}
