//! `ocipush list`: what each source holds — names, format, layers, size, digest.

use std::io::Write;

use ocipush_oci::DocumentKind;
use ocipush_source::{open_path, ImageContent, LocalImage, Source};
use serde::Serialize;

use crate::cli::ListArgs;
use crate::failure::{CliError, EXIT_OK};
use crate::printer::human_bytes;

#[derive(Serialize)]
struct Row {
    source: String,
    names: Vec<String>,
    format: &'static str,
    platforms: Vec<String>,
    layers: usize,
    size: u64,
    digest: Option<String>,
}

pub fn run(args: ListArgs) -> Result<u8, CliError> {
    let mut rows = Vec::new();
    for arg in &args.sources {
        let source =
            open_path(arg).map_err(|e| CliError::from(ocipush_engine::PushError::from(e)))?;
        for image in &source.images {
            rows.push(row(&source, image));
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&rows).expect("rows serialise")
        );
    } else {
        let _ = writeln!(
            out,
            "{:<40} {:<15} {:>6} {:>10}  DIGEST",
            "NAME", "FORMAT", "LAYERS", "SIZE"
        );
        for r in &rows {
            let name = if r.names.is_empty() {
                "<none>".to_string()
            } else {
                r.names.join(",")
            };
            let _ = writeln!(
                out,
                "{:<40} {:<15} {:>6} {:>10}  {}",
                name,
                r.format,
                r.layers,
                human_bytes(r.size),
                r.digest.as_deref().unwrap_or("(assigned on push)")
            );
        }
    }
    Ok(EXIT_OK)
}

fn row(source: &Source, image: &LocalImage) -> Row {
    let names = image.names.iter().map(|n| n.to_string()).collect();
    match &image.content {
        ImageContent::Stored { root, children, .. } => {
            let docs: Vec<_> = if children.is_empty() {
                vec![root]
            } else {
                children.iter().collect()
            };
            let layers = docs.iter().map(|d| d.blobs().len().saturating_sub(1)).sum();
            let size = docs
                .iter()
                .flat_map(|d| d.blobs())
                .map(|b| b.size())
                .sum::<u64>();
            let platforms = match root.kind() {
                DocumentKind::Index(index) => index
                    .manifests()
                    .iter()
                    .filter_map(|m| m.platform().as_ref())
                    .map(|p| format!("{}/{}", p.os(), p.architecture()))
                    .collect(),
                DocumentKind::Manifest(_) => Vec::new(),
            };
            Row {
                source: image.label.clone(),
                names,
                format: source.kind.transport(),
                platforms,
                layers,
                size,
                digest: Some(root.digest().to_string()),
            }
        }
        ImageContent::Assembled(a) => Row {
            source: image.label.clone(),
            names,
            format: source.kind.transport(),
            platforms: Vec::new(),
            layers: a.layers.len(),
            size: a.layers.iter().map(|l| l.size).sum::<u64>() + a.config.len() as u64,
            digest: None,
        },
    }
}
