//! Images in a Docker or Podman daemon, reached over its Engine API (unix socket or plain TCP).
//!
//! Opening a daemon source costs only API calls (version, inspect): the image's diffIDs are
//! known from inspect, which with the digest cache lets a warm push skip the export entirely.
//! The export (`docker save` as a stream) is started by the engine only when a blob is missing,
//! and read once, front to back, never written to disk.

mod api;
mod endpoint;
mod export;
mod http;

use std::io::Read;

use ocipush_oci::{parse_sha256, Digest};

pub use endpoint::{DaemonSettings, Endpoint};
pub use export::{walk_export, ExportIndex, LargeEntry, SMALL_ENTRY};

use crate::error::SourceError;
use crate::name::ImageName;
use crate::{ImageContent, LocalImage};
use http::HttpError;

/// A reachable daemon.
#[derive(Debug, Clone)]
pub struct Daemon {
    endpoint: Endpoint,
    /// `Docker 20.10.24`, `Podman 4.3.1`.
    pub engine: String,
}

/// An image of a daemon, as inspect describes it.
#[derive(Debug, Clone)]
pub struct DaemonImage {
    /// The daemon that holds it, which the export is asked of.
    pub daemon: Daemon,
    /// What the export is asked for: the name the user gave, or the image ID.
    pub reference: String,
    /// The image ID (`sha256:…`): the config's digest on Docker's classic store and on Podman.
    pub id: String,
    /// Every tag the daemon has for the image.
    pub tags: Vec<String>,
    /// The layers' diffIDs from inspect, bottom first: with the digest cache they let a warm
    /// push skip the export.
    pub diff_ids: Vec<Digest>,
    /// Uncompressed size as the daemon reports it.
    pub size: u64,
    /// `linux/amd64`, `linux/arm64/v8`.
    pub platform: String,
}

impl DaemonImage {
    /// The config's digest, when the image ID is one (every store but containerd's).
    pub fn config_digest(&self) -> Option<Digest> {
        parse_sha256(&self.id).ok()
    }

    /// Starts the export of this image. The reader must be read on a blocking thread.
    pub async fn export(&self) -> Result<Box<dyn Read + Send>, SourceError> {
        api::export(&self.daemon.endpoint, &self.reference)
            .await
            .map_err(|e| self.daemon.error(e, &self.reference))
    }
}

/// One image of a daemon's list.
#[derive(Debug, Clone)]
pub struct DaemonListing {
    /// The image ID (`sha256:…`).
    pub id: String,
    /// Its tags; `<none>:<none>` is left out.
    pub tags: Vec<String>,
    /// Size as the daemon reports it.
    pub size: u64,
}

impl Daemon {
    /// Finds a daemon: the endpoint `settings` name, else the usual Docker and Podman sockets.
    pub async fn connect(settings: &DaemonSettings) -> Result<Daemon, SourceError> {
        let mut tried = Vec::new();
        for endpoint in endpoint::candidates(settings)? {
            if let Endpoint::Unix(socket) = &endpoint {
                if !socket.exists() {
                    tried.push(format!("{endpoint} (no such socket)"));
                    continue;
                }
            }
            match api::version(&endpoint).await {
                Ok(version) => {
                    let engine = version.engine();
                    match version.api() {
                        Some(api) if api >= api::MIN_API => {
                            tracing::debug!("daemon: {engine} at {endpoint}");
                            return Ok(Daemon { endpoint, engine });
                        }
                        _ => {
                            return Err(SourceError::DaemonTooOld {
                                engine,
                                api: version.api_version,
                                minimum: format!("{}.{}", api::MIN_API.0, api::MIN_API.1),
                            })
                        }
                    }
                }
                Err(e) => tried.push(match e {
                    HttpError::Connect { source, .. } => format!("{endpoint} ({source})"),
                    HttpError::Protocol { detail, .. } => format!("{endpoint} ({detail})"),
                    other => format!("{endpoint} ({other})"),
                }),
            }
        }
        Err(SourceError::NoDaemon { tried })
    }

    /// How this daemon is reached.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Every image of the daemon that has a tag, or all of them with `untagged`.
    pub async fn list(&self, untagged: bool) -> Result<Vec<DaemonListing>, SourceError> {
        let rows = api::list(&self.endpoint)
            .await
            .map_err(|e| self.error(e, "the image list"))?;
        Ok(rows
            .into_iter()
            .map(|row| DaemonListing {
                id: row.id,
                tags: real_tags(row.repo_tags),
                size: row.size.max(0) as u64,
            })
            .filter(|row| untagged || !row.tags.is_empty())
            .collect())
    }

    /// Inspects one image by name or ID.
    pub async fn image(&self, reference: &str) -> Result<DaemonImage, SourceError> {
        let inspect = api::inspect(&self.endpoint, reference)
            .await
            .map_err(|e| self.error(e, reference))?;
        let layers = inspect.rootfs.map(|r| r.layers).unwrap_or_default();
        let mut diff_ids = Vec::with_capacity(layers.len());
        for layer in &layers {
            diff_ids.push(parse_sha256(layer).map_err(|e| SourceError::Daemon {
                detail: format!(
                    "{}: inspect of {reference} lists layer `{layer}`: {e}",
                    self.engine
                ),
            })?);
        }
        let mut platform = format!("{}/{}", inspect.os, inspect.architecture);
        if let Some(variant) = inspect.variant.filter(|v| !v.is_empty()) {
            platform = format!("{platform}/{variant}");
        }
        Ok(DaemonImage {
            daemon: self.clone(),
            reference: reference.to_string(),
            id: inspect.summary.id,
            tags: real_tags(inspect.summary.repo_tags),
            diff_ids,
            size: inspect.summary.size.max(0) as u64,
            platform,
        })
    }

    /// Opens `daemon:NAME[:TAG]` (one image, under the name given) or `daemon:` (every tagged
    /// image, under all its tags).
    pub async fn local_images(&self, reference: &str) -> Result<Vec<LocalImage>, SourceError> {
        if !reference.is_empty() {
            let image = self.image(reference).await?;
            // An ID names no tag; a name is what the user wants pushed, not every alias.
            let names = if is_image_id(reference, &image.id) {
                image.tags.clone()
            } else {
                vec![reference.to_string()]
            };
            return Ok(vec![local_image(image, &names)]);
        }
        let mut images = Vec::new();
        for row in self.list(false).await? {
            let image = self.image(&row.id).await?;
            images.push(local_image(image, &row.tags));
        }
        Ok(images)
    }

    fn error(&self, error: HttpError, what: &str) -> SourceError {
        match error {
            HttpError::Status { status, message } if status.as_u16() == 404 => {
                SourceError::DaemonImageUnknown {
                    name: what.to_string(),
                    engine: self.engine.clone(),
                    message,
                }
            }
            other => SourceError::Daemon {
                detail: format!("{} at {}: {other}", self.engine, self.endpoint),
            },
        }
    }
}

fn local_image(image: DaemonImage, names: &[String]) -> LocalImage {
    let label = match names.first() {
        Some(name) => format!("daemon:{name}"),
        None => format!("daemon:{}", short_id(&image.id)),
    };
    LocalImage {
        names: names.iter().filter_map(|n| ImageName::parse(n)).collect(),
        label,
        content: ImageContent::Daemon(image),
        referrers: Vec::new(),
    }
}

/// Engines list untagged images as `<none>:<none>`.
fn real_tags(tags: Option<Vec<String>>) -> Vec<String> {
    tags.unwrap_or_default()
        .into_iter()
        .filter(|t| !t.starts_with("<none>"))
        .collect()
}

fn is_image_id(reference: &str, id: &str) -> bool {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    let given = reference.strip_prefix("sha256:").unwrap_or(reference);
    given.len() >= 12 && hex.starts_with(given)
}

/// The 12 hex digits the engines show for an ID.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_tags() {
        let id = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert!(is_image_id("0123456789ab", id));
        assert!(is_image_id(id, id));
        assert!(!is_image_id("myapp:dev", id));
        assert_eq!(short_id(id), "0123456789ab");
        assert_eq!(
            real_tags(Some(vec!["<none>:<none>".into(), "app:1".into()])),
            vec!["app:1".to_string()]
        );
    }
}
