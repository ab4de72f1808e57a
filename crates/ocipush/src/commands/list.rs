//! `ocipush list`: what each source holds — names, format, platforms, layers, size, digest (or
//! the image ID, for daemon images). With no source, the images of the Docker/Podman daemon.

use std::fmt::Write as _;
use std::io::Write as _;

use ocipush_engine::registry_source::OpenOptions;
use ocipush_engine::{image_platforms, select_platforms};
use ocipush_source::{ImageContent, LocalImage, Source};
use serde::Serialize;

use crate::cli::ListArgs;
use crate::failure::{CliError, EXIT_GENERAL, EXIT_OK};
use crate::filter::ImageFilter;
use crate::printer::human_bytes;
use crate::settings::{daemon_settings, resolve_platforms, retry_policy};
use crate::sources::{open_all, RegistrySourceSettings};

/// One image as `list` shows it.
#[derive(Debug, Serialize)]
pub struct Row {
    pub source: String,
    pub names: Vec<String>,
    pub format: &'static str,
    pub platforms: Vec<String>,
    pub layers: usize,
    pub size: u64,
    pub digest: Option<String>,
    /// The image ID as docker shows it: the config's digest (for daemon images, the daemon's
    /// ID; none for an index of several images).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why the file could not be read as an image (`--json` lists broken files too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `--json`: the rows as a JSON array.
pub fn json(rows: &[Row]) -> String {
    let mut text = serde_json::to_string_pretty(rows).expect("rows serialise");
    text.push('\n');
    text
}

/// The table: a header, then one line per image, each column as wide as its widest cell
/// (two spaces apart; counts and sizes aligned right), so long names or platform lists never
/// push the columns out of line.
pub fn table(rows: &[Row]) -> String {
    // SOURCE first: a build directory can hold one image in two files, and only the source
    // tells those rows apart.
    const HEADER: [&str; 7] = [
        "SOURCE",
        "NAME",
        "FORMAT",
        "PLATFORMS",
        "LAYERS",
        "SIZE",
        "DIGEST",
    ];
    const RIGHT: [bool; 7] = [false, false, false, false, true, true, false];
    let mut cells: Vec<[String; 7]> = vec![HEADER.map(String::from)];
    for r in rows {
        let name = if r.names.is_empty() {
            "<none>".to_string()
        } else {
            r.names.join(",")
        };
        let platforms = if r.platforms.is_empty() {
            "-".to_string()
        } else {
            r.platforms.join(",")
        };
        let digest = match (&r.digest, &r.id) {
            (Some(digest), _) => digest.clone(),
            // A daemon image is known by its ID; a docker archive's manifest digest comes
            // with the push (its ID is in `--json`).
            (None, Some(id)) if r.format == "daemon" => {
                format!("id {}", ocipush_source::daemon::short_id(id))
            }
            (None, _) => "(assigned on push)".to_string(),
        };
        cells.push([
            r.source.clone(),
            name,
            r.format.to_string(),
            platforms,
            r.layers.to_string(),
            human_bytes(r.size),
            digest,
        ]);
    }
    let mut widths = [0usize; 7];
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &cells {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let _ = if RIGHT[i] {
                write!(text, "{cell:>width$}", width = widths[i])
            } else {
                write!(text, "{cell:<width$}", width = widths[i])
            };
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

pub async fn run(args: ListArgs) -> Result<u8, CliError> {
    let filter = ImageFilter::new(&args.filter)?;
    let (daemon, context_warning) = daemon_settings();
    if let Some(warning) = context_warning {
        eprintln!("warning: {warning}");
    }
    let sources = if args.sources.is_empty() {
        vec!["daemon:".to_string()]
    } else {
        args.sources.clone()
    };
    let platforms = resolve_platforms(&args.platform)?;
    let mut opened = Vec::new();
    let mut broken = Vec::new();
    // `list` has no `--retries`: the default count, as a push without the flag.
    let default_retries = ocipush_registry::RetryPolicy::default().retries;
    let registries =
        RegistrySourceSettings::new(args.source_registry, retry_policy(default_retries));
    // A row names the platforms: single-platform images' configs are read.
    let reading = OpenOptions::default().with_configs(true);
    let found = open_all(&sources, &daemon, &registries, &reading).await?;
    for warning in &found.warnings {
        eprintln!("warning: {warning}");
    }
    for mut source in found.sources {
        source.images.retain(|i| filter.accepts(i));
        opened.push(source);
    }
    for b in &found.broken {
        eprintln!("warning: skipping {}: {}", b.path.display(), b.error);
        broken.push(Row {
            source: b.path.display().to_string(),
            names: Vec::new(),
            format: "unreadable",
            platforms: Vec::new(),
            layers: 0,
            size: 0,
            digest: None,
            id: None,
            error: Some(b.error.to_string()),
        });
    }
    // The same narrowing as `push --platform`: rows show what would be pushed (an index's
    // rewritten digest, the kept manifests' layers and size).
    select_platforms(&mut opened, &platforms).map_err(CliError::from)?;
    let mut rows: Vec<Row> = opened
        .iter()
        .flat_map(|source| source.images.iter().map(move |image| row(source, image)))
        .collect();
    let broken_count = broken.len();
    let text = if args.json {
        rows.extend(broken);
        json(&rows)
    } else {
        table(&rows)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| {
            CliError::with_code(format!("cannot write to stdout: {e}"), None, EXIT_GENERAL)
        })?;
    // Listed what could be read; a broken image still makes the answer "not all well".
    Ok(if broken_count > 0 {
        EXIT_GENERAL
    } else {
        EXIT_OK
    })
}

fn row(source: &Source, image: &LocalImage) -> Row {
    let (layers, digest, id) = match &image.content {
        ImageContent::Stored { root, children, .. } => {
            let docs: Vec<_> = if children.is_empty() {
                vec![root]
            } else {
                children.iter().collect()
            };
            let layers = docs.iter().map(|d| d.blobs().len().saturating_sub(1)).sum();
            // One manifest: its config's digest is the image ID docker would show.
            let id = match docs.as_slice() {
                [only] => only
                    .blobs()
                    .first()
                    .map(|config| config.digest().to_string()),
                _ => None,
            };
            (layers, Some(root.digest().to_string()), id)
        }
        ImageContent::Assembled(a) => (a.layers.len(), None, Some(a.config_digest.to_string())),
        ImageContent::Daemon(d) => (d.diff_ids.len(), None, Some(d.id.clone())),
    };
    Row {
        source: image.label.clone(),
        names: image.names.iter().map(|n| n.to_string()).collect(),
        format: match source.kind {
            ocipush_source::SourceKind::Registry => "registry",
            kind => kind.transport(),
        },
        platforms: image_platforms(source, image)
            .iter()
            .map(|p| p.to_string())
            .collect(),
        layers,
        size: image.size(),
        digest,
        id,
        error: None,
    }
}
