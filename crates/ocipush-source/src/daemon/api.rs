//! The few Engine API calls ocipush makes, shared by Docker and Podman (its Docker-compatible
//! API): version, image list, image inspect and image export. Paths carry no API version, so
//! the daemon answers in its own; the version it reports is checked against what ocipush needs.

use std::io::Read;

use futures_util::TryStreamExt;
use http_body_util::BodyDataStream;
use serde::Deserialize;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::endpoint::Endpoint;
use super::http::{get, get_json, HttpError};

/// `RootFS.Layers` in image inspect arrived with API 1.23; the export of named images long before.
pub(crate) const MIN_API: (u32, u32) = (1, 24);

#[derive(Debug, Deserialize)]
pub(crate) struct Version {
    #[serde(rename = "ApiVersion", default)]
    pub api_version: String,
    #[serde(rename = "Version", default)]
    pub version: String,
    #[serde(rename = "Components", default)]
    pub components: Vec<Component>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Component {
    #[serde(rename = "Name", default)]
    pub name: String,
}

impl Version {
    /// `Docker 20.10.24` or `Podman 4.3.1`.
    pub fn engine(&self) -> String {
        let podman = self.components.iter().any(|c| c.name.contains("Podman"));
        format!(
            "{} {}",
            if podman { "Podman" } else { "Docker" },
            self.version
        )
    }

    /// The API version as (major, minor), when it parses.
    pub fn api(&self) -> Option<(u32, u32)> {
        let (major, minor) = self.api_version.split_once('.')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    }
}

/// One row of `GET /images/json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Summary {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Size", default)]
    pub size: i64,
}

/// The part of `GET /images/{name}/json` ocipush uses: a list row's fields and more.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Inspect {
    #[serde(flatten)]
    pub summary: Summary,
    #[serde(rename = "Os", default)]
    pub os: String,
    #[serde(rename = "Architecture", default)]
    pub architecture: String,
    #[serde(rename = "Variant", default)]
    pub variant: Option<String>,
    #[serde(rename = "RootFS", default)]
    pub rootfs: Option<RootFs>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RootFs {
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

pub(crate) async fn version(endpoint: &Endpoint) -> Result<Version, HttpError> {
    get_json(endpoint, "/version").await
}

pub(crate) async fn list(endpoint: &Endpoint) -> Result<Vec<Summary>, HttpError> {
    get_json(endpoint, "/images/json").await
}

pub(crate) async fn inspect(endpoint: &Endpoint, name: &str) -> Result<Inspect, HttpError> {
    get_json(endpoint, &format!("/images/{}/json", escape_path(name))).await
}

/// Starts `GET /images/get?names=…` and returns its body as a blocking reader: it must be read
/// on a blocking thread (it waits on the runtime it was made in).
pub(crate) async fn export(
    endpoint: &Endpoint,
    name: &str,
) -> Result<Box<dyn Read + Send>, HttpError> {
    let response = get(
        endpoint,
        &format!("/images/get?names={}", escape_query(name)),
    )
    .await?;
    let stream = BodyDataStream::new(response.into_body()).map_err(std::io::Error::other);
    Ok(Box::new(SyncIoBridge::new(StreamReader::new(stream))))
}

/// Image names are `[host[:port]/]path[:tag][@digest]` or IDs: only `@` and `%`-worthy bytes
/// need escaping in a path (the engines route `/images/{name:.*}/json`).
fn escape_path(name: &str) -> String {
    escape(name, |b| {
        b.is_ascii_alphanumeric() || b"-._~/:".contains(&b)
    })
}

fn escape_query(name: &str) -> String {
    escape(name, |b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn escape(name: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_for_paths_and_queries() {
        assert_eq!(
            escape_path("localhost:5000/team/app:1.0"),
            "localhost:5000/team/app:1.0"
        );
        assert_eq!(escape_path("app@sha256:ab"), "app%40sha256:ab");
        assert_eq!(
            escape_query("localhost:5000/app:1"),
            "localhost%3A5000%2Fapp%3A1"
        );
    }

    #[test]
    fn versions_parse_and_name_the_engine() {
        let v: Version = serde_json::from_str(
            r#"{"ApiVersion":"1.41","Version":"4.3.1","Components":[{"Name":"Podman Engine"}]}"#,
        )
        .unwrap();
        assert_eq!(v.api(), Some((1, 41)));
        assert_eq!(v.engine(), "Podman 4.3.1");
    }
}
