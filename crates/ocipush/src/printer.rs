//! What `push` writes when it is done: references (or one JSON document) on stdout for scripts,
//! a readable summary on stderr for people.

use std::io::Write;

use ocipush_engine::{ImagePlan, ImageReport, ImageStatus, PushReport};
use ocipush_source::discover::Broken;
use serde::Serialize;

/// The `--json` document (the CLI contract in DESIGN.md).
#[derive(Serialize)]
struct JsonReport<'a> {
    images: Vec<JsonImage<'a>>,
    summary: &'a ocipush_engine::Summary,
}

#[derive(Serialize)]
struct JsonImage<'a> {
    source: &'a str,
    destination: &'a str,
    references: &'a [String],
    digest: Option<&'a str>,
    status: ImageStatus,
    bytes_uploaded: u64,
    bytes_skipped: u64,
    /// Read from a source registry (`docker://` sources).
    bytes_read: u64,
    blobs: &'a ocipush_engine::BlobCounts,
    retries: u64,
    duration_ms: u64,
    error: Option<&'a str>,
    hint: Option<&'a str>,
    /// A referrer's subject: the manifest it refers to.
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
}

/// The `--json` document of a push that stopped before any image was tried (a source that
/// cannot be read, a bad reference): still one document on stdout, for scripts.
pub fn json_failure(error: &crate::failure::CliError) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "images": [],
        "error": error.message,
        "hint": error.hint,
        "exit_code": error.code,
    }))
    .expect("failures serialise")
}

pub fn json(report: &PushReport) -> String {
    let doc = JsonReport {
        images: report
            .images
            .iter()
            .map(|i| JsonImage {
                source: &i.source,
                destination: &i.destination,
                references: &i.references,
                digest: i.digest.as_deref(),
                status: i.status,
                bytes_uploaded: i.bytes_uploaded,
                bytes_skipped: i.bytes_skipped,
                bytes_read: i.bytes_read,
                blobs: &i.blobs,
                retries: i.retries,
                duration_ms: i.duration_ms,
                error: i.error.as_ref().map(|e| e.message.as_str()),
                hint: i.error.as_ref().and_then(|e| e.hint.as_deref()),
                subject: i.subject.as_deref(),
            })
            .collect(),
        summary: &report.summary,
    };
    serde_json::to_string_pretty(&doc).expect("reports serialise")
}

/// `REF@sha256:…` for every reference written.
pub fn references(report: &PushReport, out: &mut dyn Write) -> std::io::Result<()> {
    for image in &report.images {
        if let Some(digest) = &image.digest {
            for reference in &image.references {
                let name = reference.split('@').next().unwrap_or(reference);
                writeln!(out, "{name}@{digest}")?;
            }
        }
    }
    Ok(())
}

/// One line about an image's outcome.
pub fn image_line(report: &ImageReport) -> String {
    match report.status {
        ImageStatus::Pushed => format!(
            "pushed {} -> {} ({}): {} uploaded, {} existing, {} mounted; {}{} sent, {} skipped in {}",
            report.source,
            report.references.join(", "),
            short_digest(report.digest.as_deref().unwrap_or("")),
            report.blobs.uploaded,
            report.blobs.existing,
            report.blobs.mounted,
            match report.bytes_read {
                0 => String::new(),
                n => format!("{} read, ", human_bytes(n)),
            },
            human_bytes(report.bytes_uploaded),
            human_bytes(report.bytes_skipped),
            human_ms(report.duration_ms),
        ),
        ImageStatus::Failed => format!(
            "failed {} -> {}: {}",
            report.source,
            report.destination,
            report
                .error
                .as_ref()
                .map(|e| e.message.as_str())
                .unwrap_or("unknown error")
        ),
        ImageStatus::Skipped => format!("skipped {}", report.source),
    }
}

/// What a push writes on stderr once it is done: each failed image's error (even with `-q`),
/// then, unless quiet, the summary line.
pub fn closing(report: &PushReport, quiet: bool) -> String {
    let mut out = String::new();
    // One failure met by several images (a registry that is down) is said once, naming them.
    let mut failures: Vec<(&str, Option<&str>, Vec<&str>)> = Vec::new();
    for image in &report.images {
        let Some(error) = &image.error else {
            continue;
        };
        let hint = error.hint.as_deref();
        match failures
            .iter_mut()
            .find(|(message, h, _)| *message == error.message && *h == hint)
        {
            Some((_, _, sources)) => sources.push(&image.source),
            None => failures.push((&error.message, hint, vec![&image.source])),
        }
    }
    for (message, hint, sources) in failures {
        let message = match sources.as_slice() {
            // A broken file's own error already starts with its path.
            [source] if message.starts_with(source) => message.to_owned(),
            [source] => format!("{source}: {message}"),
            several => format!(
                "{message} ({} images: {})",
                several.len(),
                several.join(", ")
            ),
        };
        out.push_str(
            &crate::failure::CliError::with_code(
                message,
                hint.map(str::to_owned),
                crate::failure::EXIT_GENERAL,
            )
            .render(),
        );
    }
    if !quiet {
        out.push_str(&summary(report));
        out.push('\n');
    }
    out
}

/// The closing summary on stderr.
pub fn summary(report: &PushReport) -> String {
    let s = &report.summary;
    let secs = (s.duration_ms as f64 / 1000.0).max(0.001);
    format!(
        "{} of {} image(s) pushed{}{}; {} blob(s) uploaded, {} already present, {} mounted; {}{} sent ({}/s), {} skipped{}; {} {}; {}",
        s.pushed,
        s.images,
        if s.failed > 0 { format!(", {} failed", s.failed) } else { String::new() },
        if s.skipped > 0 { format!(", {} skipped", s.skipped) } else { String::new() },
        s.blobs.uploaded,
        s.blobs.existing,
        s.blobs.mounted,
        // A copy from a registry: what crossed the network on the way in.
        match s.bytes_read {
            0 => String::new(),
            n => format!("{} read from source registries, ", human_bytes(n)),
        },
        human_bytes(s.bytes_uploaded),
        human_bytes((s.bytes_uploaded as f64 / secs) as u64),
        human_bytes(s.bytes_skipped),
        // Bytes that moved for blobs that never got in are said, not hidden in "sent".
        match s.bytes_abandoned {
            0 => String::new(),
            n => format!(", {} read for uploads that did not finish", human_bytes(n)),
        },
        s.retries,
        if s.retries == 1 { "retry" } else { "retries" },
        human_ms(s.duration_ms),
    )
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

fn short_digest(d: &str) -> &str {
    &d[..d.len().min(19)]
}

/// `--dry-run`, for people: per image, each blob and what would happen to it, then totals.
pub fn dry_run(plans: &[ImagePlan], broken: &[Broken]) -> String {
    let mut out = String::new();
    let (mut send, mut skip, mut blobs_sent, mut blobs_skipped) = (0u64, 0u64, 0u64, 0u64);
    for plan in plans {
        out.push_str(&format!(
            "{} -> {}\n",
            plan.source,
            plan.references.join(", ")
        ));
        if let Some(error) = &plan.error {
            out.push_str(&format!("  cannot plan: {}\n", error.message));
            continue;
        }
        for blob in &plan.blobs {
            let size = if blob.size > 0 {
                human_bytes(blob.size)
            } else {
                "?".into()
            };
            let mut notes = Vec::new();
            if let Some(algorithm) = blob.compress {
                if blob.action == "upload" {
                    notes.push(format!("{algorithm} on the way"));
                }
            }
            if let Some(from) = &blob.from {
                notes.push(format!("from {from}"));
            }
            if let Some(because) = blob.because {
                notes.push(because.to_string());
            }
            let notes = match notes.is_empty() {
                true => String::new(),
                false => format!("  ({})", notes.join("; ")),
            };
            out.push_str(&format!(
                "  {:<7} {:<26} {size:>10}{notes}\n",
                blob.action, blob.label
            ));
            if blob.action == "upload" {
                send += blob.size;
                blobs_sent += 1;
            } else {
                skip += blob.size;
                blobs_skipped += 1;
            }
        }
        let to_write = plan.references.len() - plan.current.len();
        out.push_str(&match (to_write, plan.current.len()) {
            (_, 0) => format!("  then: manifest, {to_write} reference(s)\n"),
            (0, current) => {
                format!("  then: nothing to write: {current} reference(s) already point at it\n")
            }
            (_, current) => format!(
                "  then: manifest, {to_write} reference(s) ({current} already point at it)\n"
            ),
        });
    }
    for b in broken {
        out.push_str(&format!("{}: skipped: {}\n", b.path.display(), b.error));
    }
    out.push_str(&format!(
        "dry run: {} image(s); would send {blobs_sent} blob(s) ({} read from the sources), skip or mount {blobs_skipped} ({}); nothing was written\n",
        plans.len(),
        human_bytes(send),
        human_bytes(skip)
    ));
    out
}

/// `--dry-run --json`.
pub fn dry_run_json(plans: &[ImagePlan], broken: &[Broken]) -> String {
    let broken: Vec<serde_json::Value> = broken
        .iter()
        .map(|b| serde_json::json!({"source": b.path.display().to_string(), "error": b.error.to_string()}))
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "dry_run": true,
        "images": plans,
        "broken": broken,
    }))
    .expect("plans serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
