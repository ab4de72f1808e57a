//! Test harness: an in-process registry on 127.0.0.1:0 over a temporary directory, plus helpers to push
//! blobs and read the spec's error bodies.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

use ocipush_server::{Server, ServerConfig, ServerError, TlsFiles};
use sha2::{Digest as _, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A reqwest client builder for the tests. The workspace's reqwest carries no crypto provider of its
/// own (the engine hands it a finished rustls configuration), so the tests install ring, the one
/// the server uses, as rustls's process default first.
pub fn client_builder() -> reqwest::ClientBuilder {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

pub struct TestServer {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

/// Changes a test's server configuration.
pub type Configure = Box<dyn FnOnce(&mut ServerConfig)>;

#[derive(Default)]
pub struct Options {
    pub tls: Option<TlsFiles>,
    pub htpasswd: Option<PathBuf>,
    pub client: Option<reqwest::Client>,
    pub base: Option<Box<dyn Fn(std::net::SocketAddr) -> String>>,
    /// `ServerConfig::allow_delete`.
    pub delete: bool,
    /// Any other setting.
    pub configure: Option<Configure>,
}

pub async fn start() -> TestServer {
    start_with(Options::default()).await
}

/// A server that answers DELETE (`ServerConfig::allow_delete`).
pub async fn start_deleting() -> TestServer {
    start_with(Options {
        delete: true,
        ..Options::default()
    })
    .await
}

pub async fn start_with(options: Options) -> TestServer {
    launch(tempfile::tempdir().expect("temp dir"), options).await
}

async fn launch(dir: tempfile::TempDir, options: Options) -> TestServer {
    let mut config = ServerConfig::new(
        dir.path().join("store"),
        "127.0.0.1:0".parse().expect("addr"),
    );
    config.tls = options.tls;
    config.htpasswd = options.htpasswd;
    config.allow_delete = options.delete;
    if let Some(configure) = options.configure {
        configure(&mut config);
    }
    let server = Server::bind(config).await.expect("bind");
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0, "port 0 must be resolved to the real port");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));
    let base = match &options.base {
        Some(make) => make(addr),
        None => format!("http://{addr}"),
    };
    TestServer {
        base,
        addr,
        client: options
            .client
            .unwrap_or_else(|| client_builder().build().expect("client")),
        dir,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Resolves a `Location` header (an absolute path) against the server.
    pub fn location(&self, response: &reqwest::Response) -> String {
        let location = header(response, "location");
        assert!(location.starts_with("/v2/"), "Location {location}");
        self.url(&location)
    }

    /// Monolithic upload: POST ?digest= with the whole body.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = digest(data);
        let response = self
            .client
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .expect("POST blob");
        assert_eq!(response.status(), 201, "monolithic upload of {digest}");
        digest
    }

    /// Closes an upload session at `location` with `data` as the last chunk (PUT `?digest=`).
    pub async fn finish_upload(&self, location: &str, data: Vec<u8>) -> reqwest::Response {
        self.client
            .put(format!("{location}?digest={}", digest(&data)))
            .header("content-type", "application/octet-stream")
            .body(data)
            .send()
            .await
            .expect("PUT upload")
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &str,
    ) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("content-type", media_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("PUT manifest")
    }

    /// Pushes a config and one layer, then an image manifest tagged `tag`; returns the manifest and its digest.
    pub async fn push_image(&self, repo: &str, tag: &str, layer: &[u8]) -> (String, String) {
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let config_digest = self.push_blob(repo, config).await;
        let layer_digest = self.push_blob(repo, layer).await;
        let manifest = image_manifest(&config_digest, config.len(), &layer_digest, layer.len());
        let response = self.put_manifest(repo, tag, OCI_MANIFEST, &manifest).await;
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
        (manifest.clone(), digest(manifest.as_bytes()))
    }

    /// Asks the server to shut down without waiting for it.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for `run_until` to return, which must be `Ok`.
    pub async fn wait(&mut self) {
        if let Some(task) = self.task.take() {
            let result = task.await.expect("server task");
            assert!(result.is_ok(), "run_until failed: {result:?}");
        }
    }

    pub async fn stop(mut self) {
        self.signal_stop();
        self.wait().await;
    }

    /// Stops the server and starts a new one (on a new port) over the same store.
    pub async fn restart(mut self) -> TestServer {
        self.signal_stop();
        self.wait().await;
        launch(self.dir, Options::default()).await
    }
}

pub fn image_manifest(config: &str, config_size: usize, layer: &str, layer_size: usize) -> String {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_size}],
    })
    .to_string()
}

/// Deterministic test content of `len` bytes.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing {name} header on {}", response.url()))
        .to_str()
        .expect("ASCII header")
        .to_owned()
}

/// The first error code of a spec error body.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
        .to_owned()
}

/// Files in a store directory (empty if it does not exist).
pub fn files_in(dir: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
        Err(_) => Vec::new(),
    }
}
